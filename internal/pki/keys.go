// Stage: keys. Generating, encoding and loading private keys. RSA (default
// 3072 bits, like ovs-pki since 3.5) and ECDSA (P-256 by default) are
// supported; DSA, which ovs-pki still offers, is refused.

package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
)

// KeyType names a private key algorithm.
type KeyType string

// Supported key types.
const (
	KeyRSA   KeyType = "rsa"
	KeyECDSA KeyType = "ecdsa"
)

// Defaults and limits for key sizes.
const (
	DefaultRSABits   = 3072
	MinRSABits       = 2048
	MaxRSABits       = 16384
	DefaultECDSABits = 256
)

// KeySpec says which key to generate. Bits 0 means the type's default.
type KeySpec struct {
	Type KeyType
	Bits int
}

// ParseKeyType parses the --key option value.
func ParseKeyType(s string) (KeyType, error) {
	switch s {
	case "", "rsa":
		return KeyRSA, nil
	case "ecdsa", "ec":
		return KeyECDSA, nil
	case "dsa":
		return "", fmt.Errorf("key type dsa is not supported, use rsa or ecdsa")
	}
	return "", fmt.Errorf("key type %q is not supported, use rsa or ecdsa", s)
}

// normalize fills in defaults and validates the spec.
func (s KeySpec) normalize() (KeySpec, error) {
	if s.Type == "" {
		s.Type = KeyRSA
	}
	switch s.Type {
	case KeyRSA:
		if s.Bits == 0 {
			s.Bits = DefaultRSABits
		}
		if s.Bits < MinRSABits || s.Bits > MaxRSABits {
			return s, fmt.Errorf("RSA key size %d bits is out of range: use --bits between %d and %d (default %d)", s.Bits, MinRSABits, MaxRSABits, DefaultRSABits)
		}
	case KeyECDSA:
		if s.Bits == 0 {
			s.Bits = DefaultECDSABits
		}
		if curveFor(s.Bits) == nil {
			return s, fmt.Errorf("ECDSA key size %d bits is not supported: use --bits 256 (P-256), 384 (P-384) or 521 (P-521)", s.Bits)
		}
	default:
		_, err := ParseKeyType(string(s.Type))
		return s, err
	}
	return s, nil
}

func curveFor(bits int) elliptic.Curve {
	switch bits {
	case 256:
		return elliptic.P256()
	case 384:
		return elliptic.P384()
	case 521:
		return elliptic.P521()
	}
	return nil
}

// GenerateKey makes a new private key. A nil rnd means crypto/rand.
func GenerateKey(spec KeySpec, rnd io.Reader) (crypto.Signer, error) {
	spec, err := spec.normalize()
	if err != nil {
		return nil, err
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	switch spec.Type {
	case KeyECDSA:
		k, err := ecdsa.GenerateKey(curveFor(spec.Bits), rnd)
		if err != nil {
			return nil, fmt.Errorf("generate ECDSA P-%d key: %w", spec.Bits, err)
		}
		return k, nil
	default:
		k, err := rsa.GenerateKey(rnd, spec.Bits)
		if err != nil {
			return nil, fmt.Errorf("generate RSA %d-bit key: %w", spec.Bits, err)
		}
		return k, nil
	}
}

// EncodePrivateKey returns key as a PKCS#8 "PRIVATE KEY" PEM block, the
// format openssl 3 (and so ovs-pki) writes.
func EncodePrivateKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKeyPEM reads the first private key in PEM data: PKCS#8,
// PKCS#1 RSA or SEC 1 EC. Encrypted keys are refused.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no PEM private key found (expected a \"-----BEGIN PRIVATE KEY-----\" block)")
		}
		if _, ok := b.Headers["Proc-Type"]; ok {
			return nil, errors.New("private key is encrypted; ovs-monitor-ipsec and ovnsec need an unencrypted key (openssl pkey -in KEY -out KEY.plain)")
		}
		var k any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("private key is encrypted; ovs-monitor-ipsec and ovnsec need an unencrypted key (openssl pkey -in KEY -out KEY.plain)")
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", b.Type, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key type %T", k)
		}
		return s, nil
	}
}

// LoadPrivateKey reads and parses a PEM private key file.
func LoadPrivateKey(path string) (crypto.Signer, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("load private key: %w", err)
	}
	k, err := ParsePrivateKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("load private key %s: %w", path, err)
	}
	return k, nil
}

// signatureAlgorithm picks the signature for a signing key: SHA-512 for RSA
// (ovs-pki's default_md), the curve's matching hash for ECDSA.
func signatureAlgorithm(key crypto.Signer) x509.SignatureAlgorithm {
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		return x509.SHA512WithRSA
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P384():
			return x509.ECDSAWithSHA384
		case elliptic.P521():
			return x509.ECDSAWithSHA512
		}
		return x509.ECDSAWithSHA256
	case ed25519.PublicKey:
		return x509.PureEd25519
	}
	return x509.UnknownSignatureAlgorithm
}

// publicKeyEqual reports whether two public keys are the same key.
func publicKeyEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// describeKey is a short human description, e.g. "RSA 3072" or "ECDSA P-256".
func describeKey(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}
