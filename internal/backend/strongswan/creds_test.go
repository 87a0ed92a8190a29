package strongswan

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/creds"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// keyOf gives charon's load-key exactly what the package's own parser
// gave it before the credentials component read the files: PKCS#1 for RSA
// (also from PKCS#8), SEC 1 for ECDSA (also from PKCS#8), PKCS#8 for
// Ed25519.
func TestKeyOf(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	pkcs1 := x509.MarshalPKCS1PrivateKey(rsaKey)
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	p8rsa, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	p8ec, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	p8ed, _ := x509.MarshalPKCS8PrivateKey(edKey)
	enc := func(typ string, der []byte) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	}
	ecParams := enc("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})

	dir := t.TempDir()
	store := creds.NewStore(creds.Options{Log: slog.New(slog.DiscardHandler)})
	tests := []struct {
		name string
		in   []byte
		typ  string
		der  []byte
	}{
		{"pkcs1", enc("RSA PRIVATE KEY", pkcs1), "rsa", pkcs1},
		{"sec1 after EC PARAMETERS", append(ecParams, enc("EC PRIVATE KEY", sec1)...), "ecdsa", sec1},
		{"pkcs8 rsa", enc("PRIVATE KEY", p8rsa), "rsa", pkcs1},
		{"pkcs8 ec", enc("PRIVATE KEY", p8ec), "ecdsa", sec1},
		{"pkcs8 ed25519", enc("PRIVATE KEY", p8ed), "ed25519", p8ed},
	}
	for i, tc := range tests {
		path := filepath.Join(dir, fmt.Sprintf("key%d.pem", i))
		if err := os.WriteFile(path, tc.in, 0o600); err != nil {
			t.Fatal(err)
		}
		signer, err := store.PrivateKey(path)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		k, err := keyOf(signer)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if k.Type != tc.typ || !bytes.Equal(k.DER, tc.der) {
			t.Errorf("%s: got type %s, DER equal %v; want %s", tc.name, k.Type, bytes.Equal(k.DER, tc.der), tc.typ)
		}
	}
	if _, err := keyOf(fakeSigner{}); err == nil || !strings.Contains(err.Error(), "unsupported private key type") {
		t.Errorf("keyOf(unknown signer) err = %v", err)
	}
}

// fakeSigner is a crypto.Signer of no type charon knows.
type fakeSigner struct{}

func (fakeSigner) Public() crypto.PublicKey                                  { return nil }
func (fakeSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) { return nil, nil }

func selfSigned(t *testing.T, cn string) []byte {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(4102444800, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestReadCreds(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(k)
	local, peer, ca1, ca2 := selfSigned(t, "ch1"), selfSigned(t, "ch2"), selfSigned(t, "ca1"), selfSigned(t, "ca2")
	dir := t.TempDir()
	files := map[string][]byte{
		"cert.pem":  append([]byte("junk before\n"), local...),
		"key.pem":   pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
		"peer.pem":  peer,
		"ca.pem":    append(append([]byte{}, ca1...), ca2...),
		"empty.pem": []byte("nothing here"),
		"bad.pem":   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}}),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	store := creds.NewStore(creds.Options{Log: slog.New(slog.DiscardHandler)})
	base := tunnel.Tunnel{Name: "gnv0", Certificate: p("cert.pem"), PrivateKey: p("key.pem"), CACert: p("ca.pem"), RemoteCert: p("peer.pem")}

	ca := base
	ca.Auth = tunnel.AuthCASigned
	m, err := readCreds(ca, store)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.LocalCert, local) || len(m.CACerts) != 2 || !bytes.Equal(m.CACerts[1], ca2) || m.RemoteCert != nil {
		t.Errorf("CA mode material wrong: local %v, %d CAs, remote %v", bytes.Equal(m.LocalCert, local), len(m.CACerts), m.RemoteCert != nil)
	}
	if m.Key == nil || m.Key.Type != "ecdsa" || !bytes.Equal(m.Key.DER, sec1) {
		t.Errorf("key = %+v", m.Key)
	}

	ss := base
	ss.Auth = tunnel.AuthSelfSigned
	m, err = readCreds(ss, store)
	if err != nil || !bytes.Equal(m.RemoteCert, peer) || m.CACerts != nil {
		t.Errorf("self-signed mode: %v, remote equal %v, CAs %d", err, bytes.Equal(m.RemoteCert, peer), len(m.CACerts))
	}

	psk := base
	psk.Auth = tunnel.AuthPSK
	if m, err := readCreds(psk, failingLoader{}); err != nil || !reflect.DeepEqual(m, credMaterial{}) {
		t.Errorf("PSK mode read files: %v %+v", err, m)
	}

	// Every error names the file (the credentials component's wording)
	// and, for the peer and CA files, which setting it is.
	errCases := []struct {
		edit func(*tunnel.Tunnel)
		want string
	}{
		{func(t *tunnel.Tunnel) { t.Certificate = p("missing.pem") }, "read certificate " + p("missing.pem") + ": "},
		{func(t *tunnel.Tunnel) { t.Certificate = "" }, "no certificate file configured"},
		{func(t *tunnel.Tunnel) { t.PrivateKey = p("missing.pem") }, "read private key " + p("missing.pem") + ": "},
		{func(t *tunnel.Tunnel) { t.PrivateKey = "" }, "no private key file configured"},
		{func(t *tunnel.Tunnel) { t.PrivateKey = p("cert.pem") }, "private key " + p("cert.pem") + ": no PEM private key block"},
		{func(t *tunnel.Tunnel) { t.CACert = p("empty.pem") }, "CA certificate: certificate " + p("empty.pem") + ": no PEM block found"},
		{func(t *tunnel.Tunnel) { t.CACert = p("bad.pem") }, "CA certificate: certificate " + p("bad.pem") + ": "},
		{func(t *tunnel.Tunnel) { t.Auth, t.RemoteCert = tunnel.AuthSelfSigned, p("missing.pem") }, "peer certificate: read certificate " + p("missing.pem") + ": "},
	}
	for _, tc := range errCases {
		tn := ca
		tc.edit(&tn)
		if _, err := readCreds(tn, store); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
}

// failingLoader fails every read: PSK tunnels must read no file.
type failingLoader struct{}

func (failingLoader) Certificates(string) ([]*x509.Certificate, error) {
	return nil, errors.New("must not read")
}
func (failingLoader) PrivateKey(string) (crypto.Signer, error) {
	return nil, errors.New("must not read")
}

func TestCredMessages(t *testing.T) {
	m, err := loadSharedMsg(tunnel.Tunnel{Name: "gnv0", RemoteIP: "192.0.2.9", PSK: tunnel.NewSecret("pw")})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"id": "ovnsec-psk-gnv0", "type": "IKE", "data": "pw", "owners": []string{"192.0.2.9"}} {
		if got := m.Get(k); !reflect.DeepEqual(got, want) {
			t.Errorf("load-shared %s = %#v, want %#v", k, got, want)
		}
	}
	km, err := loadKeyMsg(keyMaterial{Type: "rsa", DER: []byte{0, 1, 2}})
	if err != nil || km.Get("type") != "rsa" || km.Get("data") != string([]byte{0, 1, 2}) {
		t.Errorf("load-key message %v %v", km, err)
	}
	cm, err := loadCertMsg([]byte("PEM"), "CA")
	if err != nil || cm.Get("type") != "X509" || cm.Get("flag") != "CA" || cm.Get("data") != "PEM" {
		t.Errorf("load-cert message %v %v", cm, err)
	}
	if fingerprint([]byte("ab"), []byte("c")) == fingerprint([]byte("a"), []byte("bc")) {
		t.Error("fingerprint does not separate parts")
	}
	if fingerprint([]byte("x")) != fingerprint([]byte("x")) {
		t.Error("fingerprint not deterministic")
	}
}
