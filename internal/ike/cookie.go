// Stateless cookies (RFC 7296 §2.6): Cookie = <VersionIDofSecret> |
// Hash(Ni | IPi | SPIi | <secret>), with SHA-256 and a one-byte version,
// a secret that changes every cookieSecretLifetime on the engine's clock,
// and cookies of the previous secret still accepted for cookieGrace after
// the change.

package ike

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/ovnsec/ovnsec/internal/ike/message"
)

const (
	// cookieSecretLifetime is how long one secret makes cookies.
	cookieSecretLifetime = time.Minute
	// cookieGrace is how long cookies of the replaced secret stay valid:
	// enough for the initiator's retry to arrive (one round trip, and its
	// retransmissions of the first seconds).
	cookieGrace = 10 * time.Second
	// cookieLen is the version byte and a SHA-256 digest (RFC 7296 allows
	// 1 to 64 bytes).
	cookieLen = 1 + sha256.Size
	// maxNonce is the longest nonce RFC 7296 §2.10 allows.
	maxNonce = 256
)

// cookieSecret is one generation of the secret.
type cookieSecret struct {
	version byte
	key     [32]byte
	born    time.Time
}

// cookieJar makes and checks cookies. Both reader goroutines use it, so
// it has its own lock (IKE_SA_INIT requests only, never the ESP path).
type cookieJar struct {
	mu        sync.Mutex
	rand      io.Reader
	cur, prev cookieSecret
	prevUntil time.Time // cookies of prev are accepted before this
}

func (j *cookieJar) init(rand io.Reader, now time.Time) error {
	j.rand = rand
	if _, err := io.ReadFull(rand, j.cur.key[:]); err != nil {
		return fmt.Errorf("ike: read random cookie secret: %w", err)
	}
	j.cur.born = now
	return nil
}

// rotate replaces an expired secret (j.mu held). Secrets change lazily,
// when a cookie is made or checked: no timer runs while nobody asks.
func (j *cookieJar) rotate(now time.Time) error {
	if now.Sub(j.cur.born) < cookieSecretLifetime {
		return nil
	}
	next := cookieSecret{version: j.cur.version + 1, born: now}
	if _, err := io.ReadFull(j.rand, next.key[:]); err != nil {
		return fmt.Errorf("ike: read random cookie secret: %w", err)
	}
	// Cookies of cur were made before its lifetime ended: accept them
	// until cookieGrace after that.
	clear(j.prev.key[:])
	j.prev, j.prevUntil = j.cur, j.cur.born.Add(cookieSecretLifetime+cookieGrace)
	j.cur = next
	return nil
}

// sum returns Hash(Ni | IPi | SPIi | <secret>), IPi in its 16-byte form.
// The input is built on the stack: no allocation per request.
func (s *cookieSecret) sum(ni []byte, ip netip.Addr, spii message.SPI) [sha256.Size]byte {
	var buf [maxNonce + 16 + 8 + 32]byte
	n := copy(buf[:], ni[:min(len(ni), maxNonce)])
	a := ip.Unmap().As16()
	n += copy(buf[n:], a[:])
	n += copy(buf[n:], spii[:])
	n += copy(buf[n:], s.key[:])
	d := sha256.Sum256(buf[:n])
	clear(buf[n-len(s.key) : n])
	return d
}

// make returns the cookie for a request with nonce ni and SPIi spii from ip.
func (j *cookieJar) make(now time.Time, ni []byte, ip netip.Addr, spii message.SPI) ([]byte, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.rotate(now); err != nil {
		return nil, err
	}
	d := j.cur.sum(ni, ip, spii)
	return append([]byte{j.cur.version}, d[:]...), nil
}

// valid reports whether c is the cookie of the current secret, or of the
// previous one within its grace period, for this request.
func (j *cookieJar) valid(now time.Time, c, ni []byte, ip netip.Addr, spii message.SPI) bool {
	if len(c) != cookieLen {
		return false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.rotate(now) != nil {
		return false
	}
	var s *cookieSecret
	switch {
	case c[0] == j.cur.version:
		s = &j.cur
	case c[0] == j.prev.version && now.Before(j.prevUntil):
		s = &j.prev
	default:
		return false
	}
	d := s.sum(ni, ip, spii)
	return subtle.ConstantTimeCompare(c[1:], d[:]) == 1
}
