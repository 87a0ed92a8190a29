package strongswan

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/tunnel"
)

func TestParsePrivateKey(t *testing.T) {
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
	enc := func(typ string, der []byte, h map[string]string) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der, Headers: h})
	}
	ecParams := enc("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}, nil)

	tests := []struct {
		name    string
		in      []byte
		typ     string
		der     []byte
		wantErr string
	}{
		{"pkcs1", enc("RSA PRIVATE KEY", pkcs1, nil), "rsa", pkcs1, ""},
		{"sec1 after EC PARAMETERS", append(ecParams, enc("EC PRIVATE KEY", sec1, nil)...), "ecdsa", sec1, ""},
		{"pkcs8 rsa", enc("PRIVATE KEY", p8rsa, nil), "rsa", pkcs1, ""},
		{"pkcs8 ec", enc("PRIVATE KEY", p8ec, nil), "ecdsa", sec1, ""},
		{"pkcs8 ed25519", enc("PRIVATE KEY", p8ed, nil), "ed25519", p8ed, ""},
		{"bare DER pkcs8", p8ec, "ecdsa", sec1, ""},
		{"encrypted pkcs8", enc("ENCRYPTED PRIVATE KEY", []byte{1, 2, 3}, nil), "", nil, "encrypted PKCS#8"},
		{"legacy encrypted", enc("RSA PRIVATE KEY", pkcs1, map[string]string{"Proc-Type": "4,ENCRYPTED"}), "", nil, "encrypted PEM"},
		{"corrupt", enc("RSA PRIVATE KEY", []byte{1, 2, 3}, nil), "", nil, "parse RSA private key"},
		{"garbage", []byte("hello"), "", nil, "no RSA, EC or PKCS#8 private key"},
		{"certificate only", enc("CERTIFICATE", []byte{1}, nil), "", nil, "no RSA, EC or PKCS#8 private key"},
	}
	for _, tc := range tests {
		k, err := parsePrivateKey(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if k.Type != tc.typ || !bytes.Equal(k.DER, tc.der) {
			t.Errorf("%s: got type %s, DER equal %v; want %s", tc.name, k.Type, bytes.Equal(k.DER, tc.der), tc.typ)
		}
	}
}

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
	files := map[string][]byte{
		"/c/cert.pem":  append([]byte("junk before\n"), local...),
		"/c/key.pem":   pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
		"/c/peer.pem":  peer,
		"/c/ca.pem":    append(append([]byte{}, ca1...), ca2...),
		"/c/empty.pem": []byte("nothing here"),
		"/c/bad.pem":   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}}),
	}
	read := func(p string) ([]byte, error) {
		if b, ok := files[p]; ok {
			return b, nil
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	base := tunnel.Tunnel{Name: "gnv0", Certificate: "/c/cert.pem", PrivateKey: "/c/key.pem", CACert: "/c/ca.pem", RemoteCert: "/c/peer.pem"}

	ca := base
	ca.Auth = tunnel.AuthCASigned
	m, err := readCreds(ca, read)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.LocalCert, local) || len(m.CACerts) != 2 || !bytes.Equal(m.CACerts[1], ca2) || m.RemoteCert != nil {
		t.Errorf("CA mode material wrong: local %v, %d CAs, remote %v", bytes.Equal(m.LocalCert, local), len(m.CACerts), m.RemoteCert != nil)
	}
	if m.Key == nil || m.Key.Type != "ecdsa" {
		t.Errorf("key = %+v", m.Key)
	}

	ss := base
	ss.Auth = tunnel.AuthSelfSigned
	m, err = readCreds(ss, read)
	if err != nil || !bytes.Equal(m.RemoteCert, peer) || m.CACerts != nil {
		t.Errorf("self-signed mode: %v, remote equal %v, CAs %d", err, bytes.Equal(m.RemoteCert, peer), len(m.CACerts))
	}

	psk := base
	psk.Auth = tunnel.AuthPSK
	if m, err := readCreds(psk, func(string) ([]byte, error) { return nil, errors.New("must not read") }); err != nil || !reflect.DeepEqual(m, credMaterial{}) {
		t.Errorf("PSK mode read files: %v %+v", err, m)
	}

	errCases := []struct {
		edit func(*tunnel.Tunnel)
		want string
	}{
		{func(t *tunnel.Tunnel) { t.Certificate = "/c/missing.pem" }, "read certificate /c/missing.pem"},
		{func(t *tunnel.Tunnel) { t.Certificate = "" }, "no certificate file configured"},
		{func(t *tunnel.Tunnel) { t.PrivateKey = "/c/missing.pem" }, "read private key /c/missing.pem"},
		{func(t *tunnel.Tunnel) { t.PrivateKey = "/c/cert.pem" }, "private key /c/cert.pem: no RSA"},
		{func(t *tunnel.Tunnel) { t.CACert = "/c/empty.pem" }, "CA certificate /c/empty.pem: no PEM CERTIFICATE block"},
		{func(t *tunnel.Tunnel) { t.CACert = "/c/bad.pem" }, "CA certificate /c/bad.pem: parse certificate"},
	}
	for _, tc := range errCases {
		tn := ca
		tc.edit(&tn)
		if _, err := readCreds(tn, read); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
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
