package native

// Certificates for the integration tests: ECDSA P-256 keys, CN = SAN DNS =
// "hv-<letter>", as ovs-pki and OVN make them.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/tunnel"
	"github.com/ovnsec/ovnsec/test/netns"
)

// writeCert makes a key and a certificate for cn, signed by parent/parentKey
// (self-signed when parent is nil), and writes <cn>-cert.pem and
// <cn>-key.pem into dir. It returns the certificate path, key path and the
// parsed certificate and key.
func writeCert(t *testing.T, dir, cn string, isCA bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (string, string, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"ovnsec test"}, CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		tmpl.DNSNames = []string{cn}
	}
	signer, signerKey := tmpl, k
	if parent != nil {
		signer, signerKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, k.Public(), signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cp, kp := filepath.Join(dir, cn+"-cert.pem"), filepath.Join(dir, cn+"-key.pem")
	if err := os.WriteFile(cp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kp, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cp, kp, cert, k
}

// hostCert returns (creating once) the self-signed certificate of host h.
func hostCert(t *testing.T, dir string, h *netns.OVSHost) (cert, key string) {
	t.Helper()
	cn := "hv-" + h.Letter
	cert, key = filepath.Join(dir, cn+"-cert.pem"), filepath.Join(dir, cn+"-key.pem")
	if _, err := os.Stat(cert); err != nil {
		writeCert(t, dir, cn, false, nil, nil)
	}
	return cert, key
}

func selfSignedAuth(t *testing.T, dir string, tun *tunnel.Tunnel, h, peer *netns.OVSHost) {
	tun.Auth = tunnel.AuthSelfSigned
	tun.Certificate, tun.PrivateKey = hostCert(t, dir, h)
	tun.RemoteCert, _ = hostCert(t, dir, peer)
	tun.LocalName, tun.RemoteName = "hv-"+h.Letter, "hv-"+peer.Letter
}

func caSignedAuth(t *testing.T, dir string, tun *tunnel.Tunnel, h, peer *netns.OVSHost) {
	caPath := filepath.Join(dir, "ca-cert.pem")
	if _, err := os.Stat(caPath); err != nil {
		_, _, ca, caKey := writeCert(t, dir, "ca", true, nil, nil)
		for _, l := range []string{"a", "b"} {
			writeCert(t, dir, "hv-"+l, false, ca, caKey)
		}
	}
	cn := "hv-" + h.Letter
	tun.Auth = tunnel.AuthCASigned
	tun.Certificate, tun.PrivateKey = filepath.Join(dir, cn+"-cert.pem"), filepath.Join(dir, cn+"-key.pem")
	tun.CACert = caPath
	tun.LocalName, tun.RemoteName = cn, "hv-"+peer.Letter
}
