// Credentials: reads the PEM files a tunnel names (certificate, private key,
// CA, pinned peer certificate) and builds the VICI load-key, load-cert and
// load-shared messages. Parsing is done here, in Go, so that a bad file is
// reported with its path instead of as charon's "parsing failed".

package strongswan

import (
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

	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// keyMaterial is a private key in the form charon's load-key takes.
type keyMaterial struct {
	Type string // rsa, ecdsa, ed25519
	DER  []byte
}

// credMaterial is everything read from disk for one tunnel.
type credMaterial struct {
	pemMaterial
	Key *keyMaterial
}

// readFileFunc reads a file; injected so tests need no files.
type readFileFunc func(path string) ([]byte, error)

// readCreds reads the files the tunnel's auth mode needs.
func readCreds(t tunnel.Tunnel, read readFileFunc) (credMaterial, error) {
	var m credMaterial
	if t.Auth != tunnel.AuthSelfSigned && t.Auth != tunnel.AuthCASigned {
		return m, nil
	}
	certs, err := readCertsFile(t.Certificate, "certificate", read)
	if err != nil {
		return m, err
	}
	m.LocalCert = certs[0]
	data, err := read(t.PrivateKey)
	if err != nil {
		return m, fmt.Errorf("read private key %s: %w (ovnsecd must be able to read it)", t.PrivateKey, err)
	}
	k, err := parsePrivateKey(data)
	if err != nil {
		return m, fmt.Errorf("private key %s: %w", t.PrivateKey, err)
	}
	m.Key = &k
	if t.Auth == tunnel.AuthSelfSigned {
		peer, err := readCertsFile(t.RemoteCert, "peer certificate", read)
		if err != nil {
			return m, err
		}
		m.RemoteCert = peer[0]
	} else {
		cas, err := readCertsFile(t.CACert, "CA certificate", read)
		if err != nil {
			return m, err
		}
		m.CACerts = cas
	}
	return m, nil
}

// readCertsFile returns every certificate in a PEM file, each re-encoded as
// its own PEM block, after checking that it parses.
func readCertsFile(path, what string, read readFileFunc) ([][]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("no %s file configured", what)
	}
	data, err := read(path)
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w (ovnsecd must be able to read it)", what, path, err)
	}
	certs, err := parseCertsPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	return certs, nil
}

func parseCertsPEM(data []byte) ([][]byte, error) {
	var out [][]byte
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.Bytes}))
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return out, nil
}

// parsePrivateKey accepts PKCS#1 RSA, SEC 1 EC and unencrypted PKCS#8 keys
// in PEM (or bare DER) and returns them as charon's load-key wants them.
func parsePrivateKey(data []byte) (keyMaterial, error) {
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY":
			if _, enc := b.Headers["Proc-Type"]; enc {
				return keyMaterial{}, errors.New("encrypted PEM private keys are not supported; store it unencrypted (mode 0600)")
			}
			return parseKeyDER(b.Type, b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return keyMaterial{}, errors.New("encrypted PKCS#8 private keys are not supported; store it unencrypted (mode 0600)")
		}
	}
	// Not PEM: try DER.
	for _, typ := range []string{"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"} {
		if k, err := parseKeyDER(typ, data); err == nil {
			return k, nil
		}
	}
	return keyMaterial{}, errors.New("no RSA, EC or PKCS#8 private key found")
}

func parseKeyDER(typ string, der []byte) (keyMaterial, error) {
	switch typ {
	case "RSA PRIVATE KEY":
		if _, err := x509.ParsePKCS1PrivateKey(der); err != nil {
			return keyMaterial{}, fmt.Errorf("parse RSA private key: %w", err)
		}
		return keyMaterial{Type: "rsa", DER: der}, nil
	case "EC PRIVATE KEY":
		if _, err := x509.ParseECPrivateKey(der); err != nil {
			return keyMaterial{}, fmt.Errorf("parse EC private key: %w", err)
		}
		return keyMaterial{Type: "ecdsa", DER: der}, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return keyMaterial{}, fmt.Errorf("parse PKCS#8 private key: %w", err)
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return keyMaterial{Type: "rsa", DER: x509.MarshalPKCS1PrivateKey(k)}, nil
	case *ecdsa.PrivateKey:
		sec1, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return keyMaterial{}, fmt.Errorf("re-encode EC private key: %w", err)
		}
		return keyMaterial{Type: "ecdsa", DER: sec1}, nil
	case ed25519.PrivateKey:
		return keyMaterial{Type: "ed25519", DER: der}, nil
	}
	return keyMaterial{}, fmt.Errorf("unsupported private key type %T", k)
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
