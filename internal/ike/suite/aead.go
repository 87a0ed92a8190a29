// The SK payload cipher: AES-GCM with a 16-octet ICV (RFC 5282), a 4-octet
// salt from the key material and an 8-octet explicit IV from a counter.

package suite

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/ovnsec/ovnsec/internal/ike/message"
)

const (
	ivLen  = 8
	icvLen = 16
)

// ErrAuth is returned when an SK payload fails authentication.
var ErrAuth = errors.New("ike suite: message authentication failed")

// AEAD protects SK/SKF payloads in one direction (SK_ei or SK_er). It
// implements message.Sealer and message.Opener. Seal draws IVs from a
// counter, so IVs never repeat under one key; Seal and Open are safe for
// concurrent use and do not allocate.
type AEAD struct {
	aead cipher.AEAD
	salt [saltLen]byte

	// The nonce buffers live here rather than on the stack because passing
	// a stack array to the cipher.AEAD interface makes it escape (one
	// allocation per call); the mutexes guard them and the counter.
	sealMu    sync.Mutex
	ctr       uint64
	sealNonce [saltLen + ivLen]byte
	openMu    sync.Mutex
	openNonce [saltLen + ivLen]byte
}

var (
	_ message.Sealer = (*AEAD)(nil)
	_ message.Opener = (*AEAD)(nil)
)

// NewAEAD returns the SK cipher for key = AES key | salt (as derived by
// DeriveIKEKeys). The key is copied into the cipher state; the caller may
// Zero it afterwards.
func NewAEAD(id message.EncrID, key Key) (*AEAD, error) {
	if id != message.ENCR_AES_GCM_16 {
		return nil, fmt.Errorf("ike suite: SK cipher %s is not supported (use AES_GCM_16)", id)
	}
	n := len(key) - saltLen
	if n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("ike suite: %s key material of %d bytes, want 20, 28 or 36 (key and salt)", id, len(key))
	}
	b, err := aes.NewCipher(key[:n])
	if err != nil {
		return nil, fmt.Errorf("ike suite: %s key: %w", id, err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("ike suite: %s: %w", id, err)
	}
	a := &AEAD{aead: g}
	copy(a.salt[:], key[n:])
	return a, nil
}

// IVLen returns 8.
func (a *AEAD) IVLen() int { return ivLen }

// ICVLen returns 16.
func (a *AEAD) ICVLen() int { return icvLen }

// Seal writes the next counter value into iv, encrypts plaintext in place
// and writes the ICV after it (cap(plaintext) must have room for it).
func (a *AEAD) Seal(iv, plaintext, aad []byte) error {
	if len(iv) != ivLen {
		return fmt.Errorf("ike suite: IV buffer of %d bytes, want %d", len(iv), ivLen)
	}
	if cap(plaintext)-len(plaintext) < icvLen {
		return fmt.Errorf("ike suite: no room for the %d-byte ICV after the plaintext", icvLen)
	}
	a.sealMu.Lock()
	defer a.sealMu.Unlock()
	if a.ctr == math.MaxUint64 {
		return errors.New("ike suite: IV counter exhausted; rekey the IKE SA")
	}
	a.ctr++
	nonce := a.sealNonce[:]
	copy(nonce, a.salt[:])
	putUint64(nonce[saltLen:], a.ctr)
	copy(iv, nonce[saltLen:])
	a.aead.Seal(plaintext[:0], nonce, plaintext, aad)
	return nil
}

// SealWithIV is Seal with a caller-chosen IV, for known-answer tests and
// interoperability checks only: reusing an IV under one key breaks GCM.
func (a *AEAD) SealWithIV(iv, plaintext, aad []byte) error {
	if len(iv) != ivLen || cap(plaintext)-len(plaintext) < icvLen {
		return errors.New("ike suite: bad IV or no room for the ICV")
	}
	a.sealMu.Lock()
	defer a.sealMu.Unlock()
	nonce := a.sealNonce[:]
	copy(nonce, a.salt[:])
	copy(nonce[saltLen:], iv)
	a.aead.Seal(plaintext[:0], nonce, plaintext, aad)
	return nil
}

// Open authenticates body = IV | ciphertext | ICV with aad and appends the
// plaintext to dst, which must not overlap body. body is not modified.
func (a *AEAD) Open(dst, body, aad []byte) ([]byte, error) {
	if len(body) < ivLen+icvLen {
		return dst, fmt.Errorf("ike suite: encrypted body of %d bytes is shorter than IV and ICV", len(body))
	}
	a.openMu.Lock()
	defer a.openMu.Unlock()
	nonce := a.openNonce[:]
	copy(nonce, a.salt[:])
	copy(nonce[saltLen:], body[:ivLen])
	out, err := a.aead.Open(dst, nonce, body[ivLen:], aad)
	if err != nil {
		return dst, ErrAuth
	}
	return out, nil
}

func putUint64(b []byte, v uint64) {
	_ = b[7]
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}
