// Credentials: reads the certificates and private key a tunnel names
// (certificate, private key, CA, pinned peer certificate) through the
// shared credentials component (internal/creds) and builds the VICI
// load-key, load-cert and load-shared messages. Files are parsed in Go, so
// that a bad file is reported with its path instead of as charon's
// "parsing failed".

package strongswan

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/strongswan/govici/vici"

	"github.com/ovnsec/ovnsec/internal/creds"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// CredLoader reads certificates and keys by path (creds.Source): a
// *creds.Store (the default), or a fake in tests.
type CredLoader = creds.Source

// keyMaterial is a private key in the form charon's load-key takes.
type keyMaterial struct {
	Type string // rsa, ecdsa, ed25519
	DER  []byte
}

// credMaterial is everything read from disk for one tunnel.
type credMaterial struct {
	pemMaterial
	Key *keyMaterial

	// The parsed local certificate and key, to check that they belong
	// together.
	cert   *x509.Certificate
	signer crypto.Signer
}

// keyMatches reports an error unless the private key belongs to the local
// certificate, both as read (not as the files may be by now).
func (m credMaterial) keyMatches(t tunnel.Tunnel) error {
	if m.cert == nil || m.signer == nil {
		return nil
	}
	return creds.KeyMatches(m.cert, t.Certificate, m.signer, t.PrivateKey)
}

// readCreds reads the files the tunnel's auth mode needs.
func readCreds(t tunnel.Tunnel, cl CredLoader) (credMaterial, error) {
	var m credMaterial
	if t.Auth != tunnel.AuthSelfSigned && t.Auth != tunnel.AuthCASigned {
		return m, nil
	}
	certs, err := readCerts(cl, t.Certificate, "certificate")
	if err != nil {
		return m, err
	}
	m.LocalCert, m.cert = certPEM(certs[0]), certs[0]
	if t.PrivateKey == "" {
		return m, errors.New("no private key file configured")
	}
	signer, err := cl.PrivateKey(t.PrivateKey)
	if err != nil {
		return m, err
	}
	k, err := keyOf(signer)
	if err != nil {
		return m, fmt.Errorf("private key %s: %w", t.PrivateKey, err)
	}
	m.Key, m.signer = &k, signer
	if t.Auth == tunnel.AuthSelfSigned {
		peer, err := readCerts(cl, t.RemoteCert, "peer certificate")
		if err != nil {
			return m, err
		}
		m.RemoteCert = certPEM(peer[0])
	} else {
		cas, err := readCerts(cl, t.CACert, "CA certificate")
		if err != nil {
			return m, err
		}
		for _, c := range cas {
			m.CACerts = append(m.CACerts, certPEM(c))
		}
	}
	return m, nil
}

// readCerts returns every certificate of a file. The credentials component
// names the path in its errors; what says which setting it is for.
func readCerts(cl CredLoader, path, what string) ([]*x509.Certificate, error) {
	if path == "" {
		return nil, fmt.Errorf("no %s file configured", what)
	}
	certs, err := cl.Certificates(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(certs) == 0 { // a CredLoader must not do this; never index an empty list
		return nil, fmt.Errorf("%s %s: no certificate found", what, path)
	}
	return certs, nil
}

// certPEM is the PEM block charon's load-cert and the connection's certs
// take for one certificate.
func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// keyOf encodes a private key as charon's load-key wants it: PKCS#1 for
// RSA, SEC 1 for ECDSA, PKCS#8 for Ed25519.
func keyOf(s crypto.Signer) (keyMaterial, error) {
	switch k := s.(type) {
	case *rsa.PrivateKey:
		return keyMaterial{Type: "rsa", DER: x509.MarshalPKCS1PrivateKey(k)}, nil
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return keyMaterial{}, fmt.Errorf("encode EC private key: %w", err)
		}
		return keyMaterial{Type: "ecdsa", DER: der}, nil
	case ed25519.PrivateKey:
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return keyMaterial{}, fmt.Errorf("encode Ed25519 private key: %w", err)
		}
		return keyMaterial{Type: "ed25519", DER: der}, nil
	}
	return keyMaterial{}, fmt.Errorf("unsupported private key type %T; use an RSA, ECDSA or Ed25519 key", s)
}

// sharedID is the load-shared identifier of a tunnel's PSK; one per
// interface, so that a new version replaces the old secret.
func sharedID(iface string) string { return "ovnsec-psk-" + iface }

// loadSharedMsg builds load-shared for a PSK tunnel. Like ipsec.secrets'
// "%any <remote_ip> : PSK", the owner is the peer's address, which is also
// its default IKE identity.
func loadSharedMsg(t tunnel.Tunnel) (*vici.Message, error) {
	m := vici.NewMessage()
	for _, kv := range []struct {
		k string
		v any
	}{
		{"id", sharedID(t.Name)},
		{"type", "IKE"},
		{"data", t.PSK.Reveal()},
		{"owners", []string{t.RemoteIP}},
	} {
		if err := m.Set(kv.k, kv.v); err != nil {
			return nil, fmt.Errorf("build load-shared for %s: %w", t.Name, err)
		}
	}
	return m, nil
}

func loadKeyMsg(k keyMaterial) (*vici.Message, error) {
	m := vici.NewMessage()
	if err := m.Set("type", k.Type); err != nil {
		return nil, err
	}
	if err := m.Set("data", string(k.DER)); err != nil {
		return nil, err
	}
	return m, nil
}

// loadKeyReply is what charon answers to load-key: the key's id, which
// unload-key takes.
type loadKeyReply struct {
	ID string `vici:"id"`
}

// loadCertMsg builds load-cert; flag is NONE or CA.
func loadCertMsg(pemData []byte, flag string) (*vici.Message, error) {
	m := vici.NewMessage()
	for _, kv := range [][2]string{{"type", "X509"}, {"flag", flag}, {"data", string(pemData)}} {
		if err := m.Set(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// fingerprint identifies credential material without keeping it around.
func fingerprint(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		l := len(p)
		for i := range n {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}
