// Key schedule: SKEYSEED and the IKE SA keys (RFC 7296 §2.14), IKE SA rekey
// (§2.18) and Child SA KEYMAT (§2.17), for AEAD ciphers per RFC 5282/4106.

package suite

import (
	"fmt"

	"github.com/ovnsec/ovnsec/internal/ike/message"
)

// Params are the negotiated algorithms of an IKE SA or Child SA.
type Params struct {
	PRF     message.PRFID  // IKE SA only
	Encr    message.EncrID // ENCR_AES_GCM_16
	KeyBits int            // 128 or 256 (the transform's KEY_LENGTH)
	Integ   message.IntegID
}

// saltLen is the implicit nonce part appended to AES-GCM keys (RFC 5282 §7,
// RFC 4106 §8.1).
const saltLen = 4

// EncrKeyLen returns the length of an encryption key including salt.
func (p Params) EncrKeyLen() (int, error) {
	switch p.Encr {
	case message.ENCR_AES_GCM_16:
		if p.KeyBits != 128 && p.KeyBits != 192 && p.KeyBits != 256 {
			return 0, fmt.Errorf("ike suite: %s key length %d bits is invalid (use 128, 192 or 256)", p.Encr, p.KeyBits)
		}
		if p.Integ != message.AUTH_NONE {
			return 0, fmt.Errorf("ike suite: AEAD %s cannot be combined with integrity %s", p.Encr, p.Integ)
		}
		return p.KeyBits/8 + saltLen, nil
	}
	return 0, fmt.Errorf("ike suite: encryption %s is not supported (use AES_GCM_16)", p.Encr)
}

// IKEKeys are the seven secrets of an IKE SA. Ai and Ar are empty for AEAD
// ciphers; Ei and Er are AES key | 4-byte salt.
type IKEKeys struct {
	D, Ai, Ar, Ei, Er, Pi, Pr Key
}

// Zero wipes all keys.
func (k *IKEKeys) Zero() { zeroAll(k.D, k.Ai, k.Ar, k.Ei, k.Er, k.Pi, k.Pr) }

// SKEYSEED computes prf(Ni | Nr, g^ir) for a new IKE SA.
func SKEYSEED(prf PRF, ni, nr, gir []byte) Key {
	k := make([]byte, 0, len(ni)+len(nr))
	k = append(append(k, ni...), nr...)
	return Key(prf.Sum(nil, k, gir))
}

// RekeySKEYSEED computes prf(SK_d(old), g^ir(new) | Ni | Nr) for an IKE SA
// rekeyed with CREATE_CHILD_SA. prf is the old IKE SA's PRF (RFC 7296 §2.18).
func RekeySKEYSEED(oldPRF PRF, oldSKd Key, gir, ni, nr []byte) Key {
	return Key(oldPRF.Sum(nil, oldSKd, gir, ni, nr))
}

// DeriveIKEKeys expands SKEYSEED into {SK_d | SK_ai | SK_ar | SK_ei | SK_er |
// SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) using p.PRF.
func DeriveIKEKeys(p Params, skeyseed Key, ni, nr []byte, spii, spir message.SPI) (*IKEKeys, error) {
	prf, err := NewPRF(p.PRF)
	if err != nil {
		return nil, err
	}
	el, err := p.EncrKeyLen()
	if err != nil {
		return nil, err
	}
	seed := make([]byte, 0, len(ni)+len(nr)+16)
	seed = append(append(append(append(seed, ni...), nr...), spii[:]...), spir[:]...)
	ps := prf.Size()
	km, err := prf.Plus(skeyseed, seed, 3*ps+2*el)
	if err != nil {
		return nil, err
	}
	k := &IKEKeys{}
	take := func(n int) Key {
		out := km[:n:n]
		km = km[n:]
		return out
	}
	k.D = take(ps)
	k.Ai, k.Ar = take(0), take(0)
	k.Ei, k.Er = take(el), take(el)
	k.Pi, k.Pr = take(ps), take(ps)
	return k, nil
}

// NewIKEKeys computes SKEYSEED for a new IKE SA and derives its keys,
// wiping SKEYSEED afterwards.
func NewIKEKeys(p Params, gir, ni, nr []byte, spii, spir message.SPI) (*IKEKeys, error) {
	prf, err := NewPRF(p.PRF)
	if err != nil {
		return nil, err
	}
	s := SKEYSEED(prf, ni, nr, gir)
	defer s.Zero()
	return DeriveIKEKeys(p, s, ni, nr, spii, spir)
}

// ChildKeys are the keys of a Child SA pair: I2R protects traffic from the
// IKE SA initiator to the responder, R2I the reverse. For AES-GCM each is
// AES key | 4-byte salt (RFC 4106 §8.1) and the Integ keys are empty.
type ChildKeys struct {
	EncrI2R, IntegI2R Key
	EncrR2I, IntegR2I Key
}

// Zero wipes all keys.
func (k *ChildKeys) Zero() { zeroAll(k.EncrI2R, k.IntegI2R, k.EncrR2I, k.IntegR2I) }

// DeriveChildKeys computes KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr) and
// splits it for ESP with p.Encr/p.KeyBits: I2R keys first, encryption before
// integrity (RFC 7296 §2.17). gir is nil without PFS. Ni and Nr are the
// nonces of the exchange creating the Child SA.
func DeriveChildKeys(prf PRF, skd Key, p Params, gir, ni, nr []byte) (*ChildKeys, error) {
	el, err := p.EncrKeyLen()
	if err != nil {
		return nil, err
	}
	seed := make([]byte, 0, len(gir)+len(ni)+len(nr))
	seed = append(append(append(seed, gir...), ni...), nr...)
	km, err := prf.Plus(skd, seed, 2*el)
	clear(seed)
	if err != nil {
		return nil, err
	}
	return &ChildKeys{EncrI2R: km[:el:el], EncrR2I: km[el : 2*el : 2*el]}, nil
}
