// Pseudorandom functions and prf+ (RFC 7296 §2.13) over HMAC-SHA2 (RFC 4868).

package suite

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
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
	m := p.newHMAC(key)
	defer m.wipe()
	m.begin()
	for _, d := range data {
		m.h.Write(d)
	}
	return m.sum(dst)
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
	m := p.newHMAC(key)
	defer m.wipe()
	if n > p.size {
		m.save()
	}
	var prev []byte
	for i := 1; len(out) < n; i++ {
		m.begin()
		m.h.Write(prev)
		m.h.Write(seed)
		m.ctr[0] = byte(i)
		m.h.Write(m.ctr[:])
		start := len(out)
		out = m.sum(out)
		prev = out[start:]
	}
	clear(out[n:cap(out)])
	return out[:n:n], nil
}

// Sizes of the largest digest and block of the supported hashes (SHA-512).
const (
	maxHashSize  = sha512.Size
	maxBlockSize = sha512.BlockSize
)

// hmacState is HMAC (RFC 2104) over one digest, for one key: two
// allocations (itself and the digest) where crypto/hmac.New makes about
// five. For several MACs with the key (prf+), save keeps the digest states
// after the pads, which later MACs restore instead of hashing the pads
// again (as crypto/hmac does). TestPRFMatchesCryptoHMAC checks it against
// crypto/hmac for every key length up to 300 bytes. Not safe for
// concurrent use.
type hmacState struct {
	h     hash.Hash
	block int
	pad   [maxBlockSize]byte // key ^ ipad, or key ^ opad inside sum
	dig   [maxHashSize]byte  // inner digest, or the hashed long key
	ctr   [1]byte            // prf+ counter octet (a local would escape)

	// Set by save for prf+: the digest states after ipad and after opad.
	saved        bool
	inner, outer []byte
	state        *[2][2 * maxBlockSize]byte // a marshaled SHA-512 state is 204 bytes
}

func (p PRF) newHMAC(key []byte) *hmacState {
	m := &hmacState{h: p.newHash()}
	m.block = m.h.BlockSize()
	k := key
	if len(k) > m.block {
		m.h.Write(k)
		k = m.h.Sum(m.dig[:0])
		m.h.Reset()
	}
	copy(m.pad[:], k)
	clear(m.dig[:])
	for i := range m.pad[:m.block] {
		m.pad[i] ^= 0x36
	}
	return m
}

// save records the digest states after the pads, if the digest can
// marshal its state (the standard library's SHA-2 digests can).
func (m *hmacState) save() {
	a, ok1 := m.h.(encoding.BinaryAppender)
	_, ok2 := m.h.(encoding.BinaryUnmarshaler)
	if !ok1 || !ok2 {
		return
	}
	m.state = new([2][2 * maxBlockSize]byte)
	pad := m.pad[:m.block]
	m.h.Reset()
	m.h.Write(pad)
	inner, err1 := a.AppendBinary(m.state[0][:0])
	flipPad(pad)
	m.h.Reset()
	m.h.Write(pad)
	outer, err2 := a.AppendBinary(m.state[1][:0])
	flipPad(pad)
	m.saved = err1 == nil && err2 == nil
	m.inner, m.outer = inner, outer
}

// flipPad turns key ^ ipad into key ^ opad and back.
func flipPad(pad []byte) {
	for i := range pad {
		pad[i] ^= 0x36 ^ 0x5c
	}
}

// begin starts a MAC: write the data to m.h, then call sum.
func (m *hmacState) begin() {
	if m.saved && m.h.(encoding.BinaryUnmarshaler).UnmarshalBinary(m.inner) == nil {
		return
	}
	m.h.Reset()
	m.h.Write(m.pad[:m.block])
}

// sum appends the MAC of the data written since begin to dst.
func (m *hmacState) sum(dst []byte) []byte {
	in := m.h.Sum(m.dig[:0])
	if !m.saved || m.h.(encoding.BinaryUnmarshaler).UnmarshalBinary(m.outer) != nil {
		pad := m.pad[:m.block]
		flipPad(pad)
		m.h.Reset()
		m.h.Write(pad)
		flipPad(pad)
	}
	m.h.Write(in)
	return m.h.Sum(dst)
}

// wipe clears the key-dependent state.
func (m *hmacState) wipe() {
	m.h.Reset()
	clear(m.pad[:])
	clear(m.dig[:])
	if m.state != nil {
		clear(m.state[:])
	}
}
