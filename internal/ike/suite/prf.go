// Pseudorandom functions and prf+ (RFC 7296 §2.13) over HMAC-SHA2 (RFC 4868).

package suite

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"

	"github.com/ovnsec/ovnsec/internal/ike/message"
)

// PRF is a negotiated pseudorandom function.
type PRF struct {
	id      message.PRFID
	newHash func() hash.Hash
	size    int
}

// NewPRF returns the PRF with the given transform ID. Supported:
// PRF_HMAC_SHA2_256, PRF_HMAC_SHA2_384 and PRF_HMAC_SHA2_512.
func NewPRF(id message.PRFID) (PRF, error) {
	switch id {
	case message.PRF_HMAC_SHA2_256:
		return PRF{id, sha256.New, sha256.Size}, nil
	case message.PRF_HMAC_SHA2_384:
		return PRF{id, sha512.New384, sha512.Size384}, nil
	case message.PRF_HMAC_SHA2_512:
		return PRF{id, sha512.New, sha512.Size}, nil
	}
	return PRF{}, fmt.Errorf("ike suite: PRF %s is not supported (use HMAC-SHA2-256/384/512)", id)
}

// ID returns the transform ID.
func (p PRF) ID() message.PRFID { return p.id }

// Size is the output length, which is also the preferred key length for
// SK_d, SK_pi and SK_pr (RFC 7296 §2.14).
func (p PRF) Size() int { return p.size }

// Sum appends prf(key, data[0] | data[1] | ...) to dst.
func (p PRF) Sum(dst, key []byte, data ...[]byte) []byte {
	if p.newHash == nil {
		panic("ike suite: zero PRF used; construct it with NewPRF")
	}
	m := hmac.New(p.newHash, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(dst)
}

// Plus computes n octets of prf+(key, seed) = T1 | T2 | ... with
// T1 = prf(key, seed | 0x01) and Ti = prf(key, Ti-1 | seed | i). At most
// 255 iterations are allowed.
func (p PRF) Plus(key, seed []byte, n int) (Key, error) {
	if p.newHash == nil {
		return nil, fmt.Errorf("ike suite: zero PRF used; construct it with NewPRF")
	}
	if n < 0 || n > 255*p.size {
		return nil, fmt.Errorf("ike suite: prf+ cannot produce %d bytes with %s (max %d)", n, p.id, 255*p.size)
	}
	out := make(Key, 0, n+p.size)
	m := hmac.New(p.newHash, key)
	var prev []byte
	for i := 1; len(out) < n; i++ {
		m.Reset()
		m.Write(prev)
		m.Write(seed)
		m.Write([]byte{byte(i)})
		start := len(out)
		out = m.Sum(out)
		prev = out[start:]
	}
	clear(out[n:cap(out)])
	return out[:n:n], nil
}
