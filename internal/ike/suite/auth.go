// AUTH payload computation (RFC 7296 §2.15): signed octets, shared-key MIC,
// and signatures for methods 1 (RSA), 9–11 (ECDSA, RFC 4754) and 14
// (Digital Signature, RFC 7427).

package suite

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/ovnsec/ovnsec/internal/ike/message"
)

// SignedOctets returns the octets an AUTH payload covers:
// RealMessage | peer's Nonce data | prf(SK_px, IDx'), where realMessage is
// the sender's own first message (IKE_SA_INIT request or response) as sent,
// nonce is the other side's nonce, skp is the sender's SK_pi or SK_pr and
// idBody is the sender's ID payload body (message.ID.Body()).
func SignedOctets(prf PRF, skp Key, realMessage, nonce, idBody []byte) []byte {
	out := make([]byte, 0, len(realMessage)+len(nonce)+prf.Size())
	out = append(append(out, realMessage...), nonce...)
	return prf.Sum(out, skp, idBody)
}

// keyPad is the fixed string of the shared key MIC (RFC 7296 §2.15).
const keyPad = "Key Pad for IKEv2"

// PSKAuth returns the AUTH data for method 2:
// prf(prf(secret, "Key Pad for IKEv2"), signedOctets).
func PSKAuth(prf PRF, secret, signed []byte) []byte {
	k := PSKKey(prf, secret)
	defer k.Zero()
	return PSKAuthWith(prf, k, signed)
}

// VerifyPSKAuth reports in constant time whether data is the method-2 AUTH
// for secret and signed.
func VerifyPSKAuth(prf PRF, secret, signed, data []byte) bool {
	return hmac.Equal(PSKAuth(prf, secret, signed), data)
}

// PSKKey returns prf(secret, "Key Pad for IKEv2"), the key of the method-2
// AUTH. It depends on the secret and the PRF only, so a caller may keep it
// (as secret as the secret) for PSKAuthWith.
func PSKKey(prf PRF, secret []byte) Key {
	return Key(prf.Sum(nil, secret, []byte(keyPad)))
}

// PSKAuthWith is PSKAuth with key = PSKKey(prf, secret).
func PSKAuthWith(prf PRF, key Key, signed []byte) []byte {
	return prf.Sum(nil, key, signed)
}

// VerifyPSKAuthWith is VerifyPSKAuth with key = PSKKey(prf, secret).
func VerifyPSKAuthWith(prf PRF, key Key, signed, data []byte) bool {
	return hmac.Equal(PSKAuthWith(prf, key, signed), data)
}

// SigScheme is a signature algorithm for AUTH method 14 (RFC 7427).
type SigScheme uint8

// Signature schemes with their RFC 7427 Appendix A AlgorithmIdentifiers.
const (
	SigRSAPKCS1SHA256 SigScheme = iota + 1 // sha256WithRSAEncryption
	SigRSAPKCS1SHA384                      // sha384WithRSAEncryption
	SigRSAPKCS1SHA512                      // sha512WithRSAEncryption
	SigRSAPSSSHA256                        // RSASSA-PSS, SHA-256, MGF1-SHA-256, salt 32
	SigECDSASHA256                         // ecdsa-with-SHA256
	SigECDSASHA384                         // ecdsa-with-SHA384
	SigECDSASHA512                         // ecdsa-with-SHA512
)

// DER AlgorithmIdentifier encodings (RFC 7427 Appendix A).
const (
	algRSASHA256 = "\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b\x05\x00"
	algRSASHA384 = "\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0c\x05\x00"
	algRSASHA512 = "\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0d\x05\x00"
	algPSSSHA256 = "\x30\x41\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0a\x30\x34" +
		"\xa0\x0f\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00" +
		"\xa1\x1c\x30\x1a\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x08" +
		"\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00" +
		"\xa2\x03\x02\x01\x20"
	algECDSASHA256 = "\x30\x0a\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02"
	algECDSASHA384 = "\x30\x0a\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x03"
	algECDSASHA512 = "\x30\x0a\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x04"
)

func (s SigScheme) algID() string {
	switch s {
	case SigRSAPKCS1SHA256:
		return algRSASHA256
	case SigRSAPKCS1SHA384:
		return algRSASHA384
	case SigRSAPKCS1SHA512:
		return algRSASHA512
	case SigRSAPSSSHA256:
		return algPSSSHA256
	case SigECDSASHA256:
		return algECDSASHA256
	case SigECDSASHA384:
		return algECDSASHA384
	case SigECDSASHA512:
		return algECDSASHA512
	}
	return ""
}

// AlgorithmIdentifier returns the DER AlgorithmIdentifier of s, or nil.
func (s SigScheme) AlgorithmIdentifier() []byte {
	if a := s.algID(); a != "" {
		return []byte(a)
	}
	return nil
}

// Hash returns the hash of s as announced in SIGNATURE_HASH_ALGORITHMS.
func (s SigScheme) Hash() message.HashAlgorithm {
	switch s {
	case SigRSAPKCS1SHA256, SigRSAPSSSHA256, SigECDSASHA256:
		return message.HashSHA2_256
	case SigRSAPKCS1SHA384, SigECDSASHA384:
		return message.HashSHA2_384
	case SigRSAPKCS1SHA512, SigECDSASHA512:
		return message.HashSHA2_512
	}
	return 0
}

func (s SigScheme) String() string {
	switch s {
	case SigRSAPKCS1SHA256:
		return "sha256WithRSAEncryption"
	case SigRSAPKCS1SHA384:
		return "sha384WithRSAEncryption"
	case SigRSAPKCS1SHA512:
		return "sha512WithRSAEncryption"
	case SigRSAPSSSHA256:
		return "RSASSA-PSS-SHA256"
	case SigECDSASHA256:
		return "ecdsa-with-SHA256"
	case SigECDSASHA384:
		return "ecdsa-with-SHA384"
	case SigECDSASHA512:
		return "ecdsa-with-SHA512"
	}
	return fmt.Sprintf("SigScheme(%d)", uint8(s))
}

func (s SigScheme) isRSA() bool { return s >= SigRSAPKCS1SHA256 && s <= SigRSAPSSSHA256 }

func (s SigScheme) cryptoHash() crypto.Hash {
	switch s.Hash() {
	case message.HashSHA2_256:
		return crypto.SHA256
	case message.HashSHA2_384:
		return crypto.SHA384
	case message.HashSHA2_512:
		return crypto.SHA512
	}
	return 0
}

func digest(h crypto.Hash, b []byte) []byte {
	switch h {
	case crypto.SHA1:
		d := sha1.Sum(b)
		return d[:]
	case crypto.SHA256:
		d := sha256.Sum256(b)
		return d[:]
	case crypto.SHA384:
		d := sha512.Sum384(b)
		return d[:]
	case crypto.SHA512:
		d := sha512.Sum512(b)
		return d[:]
	}
	return nil
}

// ecdsaMethod returns the curve and hash of AUTH methods 9, 10 and 11.
func ecdsaMethod(m message.AuthMethod) (elliptic.Curve, crypto.Hash, bool) {
	switch m {
	case message.AuthECDSAP256:
		return elliptic.P256(), crypto.SHA256, true
	case message.AuthECDSAP384:
		return elliptic.P384(), crypto.SHA384, true
	case message.AuthECDSAP521:
		return elliptic.P521(), crypto.SHA512, true
	}
	return nil, 0, false
}

type ecdsaSig struct{ R, S *big.Int }

// Sign returns the AUTH payload data for method over signed octets.
// method is AuthRSASig (PKCS#1 v1.5 with SHA-1), AuthECDSAP256/P384/P521
// (RFC 4754: r | s over SHA-256/384/512) or AuthDigitalSignature, for which
// scheme selects the algorithm and the data is the length-prefixed
// AlgorithmIdentifier followed by the signature (RFC 7427 §3).
func Sign(key crypto.Signer, method message.AuthMethod, scheme SigScheme, signed []byte) ([]byte, error) {
	pub := key.Public()
	switch method {
	case message.AuthRSASig:
		if _, ok := pub.(*rsa.PublicKey); !ok {
			return nil, fmt.Errorf("ike suite: AUTH %s needs an RSA key, have %T", method, pub)
		}
		return key.Sign(rand.Reader, digest(crypto.SHA1, signed), crypto.SHA1)
	case message.AuthECDSAP256, message.AuthECDSAP384, message.AuthECDSAP521:
		curve, h, _ := ecdsaMethod(method)
		ep, ok := pub.(*ecdsa.PublicKey)
		if !ok || ep.Curve != curve {
			return nil, fmt.Errorf("ike suite: AUTH %s needs an ECDSA %s key", method, curve.Params().Name)
		}
		der, err := key.Sign(rand.Reader, digest(h, signed), h)
		if err != nil {
			return nil, fmt.Errorf("ike suite: sign AUTH %s: %w", method, err)
		}
		var sig ecdsaSig
		if rest, err := asn1.Unmarshal(der, &sig); err != nil || len(rest) != 0 {
			return nil, fmt.Errorf("ike suite: signer returned a malformed ECDSA signature")
		}
		n := (curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*n)
		sig.R.FillBytes(out[:n])
		sig.S.FillBytes(out[n:])
		return out, nil
	case message.AuthDigitalSignature:
		alg := scheme.algID()
		if alg == "" {
			return nil, fmt.Errorf("ike suite: unknown signature scheme %s", scheme)
		}
		var opts crypto.SignerOpts = scheme.cryptoHash()
		switch pub.(type) {
		case *rsa.PublicKey:
			if !scheme.isRSA() {
				return nil, fmt.Errorf("ike suite: scheme %s cannot sign with an RSA key", scheme)
			}
			if scheme == SigRSAPSSSHA256 {
				opts = &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256}
			}
		case *ecdsa.PublicKey:
			if scheme.isRSA() {
				return nil, fmt.Errorf("ike suite: scheme %s cannot sign with an ECDSA key", scheme)
			}
		default:
			return nil, fmt.Errorf("ike suite: unsupported key type %T for AUTH %s", pub, method)
		}
		sig, err := key.Sign(rand.Reader, digest(opts.HashFunc(), signed), opts)
		if err != nil {
			return nil, fmt.Errorf("ike suite: sign AUTH %s with %s: %w", method, scheme, err)
		}
		out := make([]byte, 0, 1+len(alg)+len(sig))
		out = append(append(append(out, byte(len(alg))), alg...), sig...)
		return out, nil
	}
	return nil, fmt.Errorf("ike suite: AUTH method %s is not a signature method", method)
}

// ErrBadSignature is returned when an AUTH signature does not verify.
var ErrBadSignature = errors.New("ike suite: AUTH signature does not verify")

// Verify checks the AUTH data of a signature method against the peer's
// public key. For method 14 it returns the scheme the peer used so policy
// can judge it; unknown AlgorithmIdentifiers are rejected.
func Verify(pub crypto.PublicKey, method message.AuthMethod, signed, data []byte) (SigScheme, error) {
	switch method {
	case message.AuthRSASig:
		rp, ok := pub.(*rsa.PublicKey)
		if !ok {
			return 0, fmt.Errorf("ike suite: AUTH %s needs an RSA key, peer has %T", method, pub)
		}
		if rsa.VerifyPKCS1v15(rp, crypto.SHA1, digest(crypto.SHA1, signed), data) != nil {
			return 0, ErrBadSignature
		}
		return 0, nil
	case message.AuthECDSAP256, message.AuthECDSAP384, message.AuthECDSAP521:
		curve, h, _ := ecdsaMethod(method)
		ep, ok := pub.(*ecdsa.PublicKey)
		if !ok || ep.Curve != curve {
			return 0, fmt.Errorf("ike suite: AUTH %s needs an ECDSA %s key", method, curve.Params().Name)
		}
		n := (curve.Params().BitSize + 7) / 8
		if len(data) != 2*n {
			return 0, ErrBadSignature
		}
		r, s := new(big.Int).SetBytes(data[:n]), new(big.Int).SetBytes(data[n:])
		if !ecdsa.Verify(ep, digest(h, signed), r, s) {
			return 0, ErrBadSignature
		}
		return 0, nil
	case message.AuthDigitalSignature:
		if len(data) < 1 || len(data) < 1+int(data[0]) {
			return 0, fmt.Errorf("ike suite: AUTH %s data too short for its AlgorithmIdentifier", method)
		}
		alg, sig := data[1:1+int(data[0])], data[1+int(data[0]):]
		var scheme SigScheme
		for s := SigRSAPKCS1SHA256; s <= SigECDSASHA512; s++ {
			if bytes.Equal(alg, []byte(s.algID())) {
				scheme = s
			}
		}
		if scheme == 0 {
			return 0, fmt.Errorf("ike suite: AUTH %s uses an unsupported AlgorithmIdentifier %x", method, alg)
		}
		d := digest(scheme.cryptoHash(), signed)
		switch p := pub.(type) {
		case *rsa.PublicKey:
			if !scheme.isRSA() {
				return scheme, fmt.Errorf("ike suite: peer signed with %s but has an RSA key", scheme)
			}
			var err error
			if scheme == SigRSAPSSSHA256 {
				err = rsa.VerifyPSS(p, crypto.SHA256, d, sig, &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256})
			} else {
				err = rsa.VerifyPKCS1v15(p, scheme.cryptoHash(), d, sig)
			}
			if err != nil {
				return scheme, ErrBadSignature
			}
			return scheme, nil
		case *ecdsa.PublicKey:
			if scheme.isRSA() {
				return scheme, fmt.Errorf("ike suite: peer signed with %s but has an ECDSA key", scheme)
			}
			if !ecdsa.VerifyASN1(p, d, sig) {
				return scheme, ErrBadSignature
			}
			return scheme, nil
		}
		return scheme, fmt.Errorf("ike suite: unsupported peer key type %T", pub)
	}
	return 0, fmt.Errorf("ike suite: AUTH method %s is not a signature method", method)
}
