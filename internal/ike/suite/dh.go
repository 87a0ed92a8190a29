// Diffie-Hellman groups 14 (MODP 2048, RFC 3526), 19 (ECP-256, RFC 5903) and
// 31 (Curve25519, RFC 8031) with the IKE encodings of public values.

package suite

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/ovnsec/ovnsec/internal/ike/message"
)

// DH is one ephemeral Diffie-Hellman key pair. Public is the KE payload
// data; Shared validates the peer's KE data and returns g^ir.
type DH interface {
	Group() message.DHGroup
	Public() []byte
	Shared(peer []byte) ([]byte, error)
}

// NewDH generates a key pair in group g, reading randomness from r
// (crypto/rand.Reader if nil).
func NewDH(g message.DHGroup, r io.Reader) (DH, error) {
	if r == nil {
		r = rand.Reader
	}
	switch g {
	case message.MODP_2048:
		return newMODP(r)
	case message.ECP_256:
		k, err := ecdh.P256().GenerateKey(r)
		if err != nil {
			return nil, fmt.Errorf("ike suite: generate %s key: %w", g, err)
		}
		return &ecDH{group: g, key: k, pub: k.PublicKey().Bytes()[1:]}, nil
	case message.CURVE_25519:
		k, err := ecdh.X25519().GenerateKey(r)
		if err != nil {
			return nil, fmt.Errorf("ike suite: generate %s key: %w", g, err)
		}
		return &ecDH{group: g, key: k, pub: k.PublicKey().Bytes()}, nil
	}
	return nil, fmt.Errorf("ike suite: DH group %s is not supported (use 14, 19 or 31)", g)
}

// ecDH covers ECP-256, whose IKE public value is x | y without the 0x04
// point-format octet and whose shared secret is the x coordinate
// (RFC 5903 §7, §9), and Curve25519 (RFC 8031 §3).
type ecDH struct {
	group message.DHGroup
	key   *ecdh.PrivateKey
	pub   []byte
}

func (d *ecDH) Group() message.DHGroup { return d.group }
func (d *ecDH) Public() []byte         { return d.pub }

func (d *ecDH) Shared(peer []byte) ([]byte, error) {
	if len(peer) != len(d.pub) {
		return nil, fmt.Errorf("ike suite: %s public value of %d bytes, want %d", d.group, len(peer), len(d.pub))
	}
	enc := peer
	if d.group == message.ECP_256 {
		enc = append([]byte{4}, peer...)
	}
	pk, err := d.key.Curve().NewPublicKey(enc)
	if err != nil {
		return nil, fmt.Errorf("ike suite: invalid %s public value: %w", d.group, err)
	}
	s, err := d.key.ECDH(pk)
	if err != nil {
		return nil, fmt.Errorf("ike suite: %s key agreement: %w", d.group, err)
	}
	if subtle.ConstantTimeCompare(s, make([]byte, len(s))) == 1 {
		return nil, errors.New("ike suite: all-zero shared secret (low-order peer point)")
	}
	return s, nil
}

// modp2048 is the 2048-bit MODP prime of RFC 3526 §3; the generator is 2.
const modp2048 = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1" +
	"29024E088A67CC74020BBEA63B139B22514A08798E3404DD" +
	"EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245" +
	"E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED" +
	"EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D" +
	"C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F" +
	"83655D23DCA3AD961C62F356208552BB9ED529077096966D" +
	"670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B" +
	"E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9" +
	"DE2BCBF6955817183995497CEA956AE515D2261898FA0510" +
	"15728E5A8AACAA68FFFFFFFFFFFFFFFF"

const (
	modpLen      = 256 // octets of the modulus, public values and g^ir
	modpExpBytes = 40  // 320-bit private exponents (RFC 3526 §8 suggests 220–320)
)

func modpPrime() *big.Int {
	p, _ := new(big.Int).SetString(modp2048, 16)
	return p
}

// modpDH is group 14. Exponentiation uses math/big, which is not constant
// time; the exponent is ephemeral and used for one exchange only.
type modpDH struct {
	p, x *big.Int
	pub  []byte
}

func newMODP(r io.Reader) (*modpDH, error) {
	var xb [modpExpBytes]byte
	if _, err := io.ReadFull(r, xb[:]); err != nil {
		return nil, fmt.Errorf("ike suite: generate %s key: %w", message.MODP_2048, err)
	}
	xb[0] |= 0x80 // full-length exponent
	d := &modpDH{p: modpPrime(), x: new(big.Int).SetBytes(xb[:])}
	clear(xb[:])
	y := new(big.Int).Exp(big.NewInt(2), d.x, d.p)
	d.pub = y.FillBytes(make([]byte, modpLen))
	return d, nil
}

func (d *modpDH) Group() message.DHGroup { return message.MODP_2048 }
func (d *modpDH) Public() []byte         { return d.pub }

func (d *modpDH) Shared(peer []byte) ([]byte, error) {
	if len(peer) != modpLen {
		return nil, fmt.Errorf("ike suite: %s public value of %d bytes, want %d", message.MODP_2048, len(peer), modpLen)
	}
	y := new(big.Int).SetBytes(peer)
	pm1 := new(big.Int).Sub(d.p, big.NewInt(1))
	if y.Cmp(big.NewInt(1)) <= 0 || y.Cmp(pm1) >= 0 {
		return nil, fmt.Errorf("ike suite: %s public value out of range (need 1 < y < p-1)", message.MODP_2048)
	}
	z := new(big.Int).Exp(y, d.x, d.p)
	return z.FillBytes(make([]byte, modpLen)), nil
}
