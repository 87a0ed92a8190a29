// Test certificates: generated per test with crypto/x509 into t.TempDir(),
// so that no key material is committed and every case is explicit.

package tunnel

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testNow is the injected "now" of every test.
var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

type certSpec struct {
	cn        string   // subject CN; "" for none
	extraRDN  bool     // add O and OU after the CN, like ovs-pki
	moreCN    string   // a second CN, after the first in DER order
	dns       []string // SAN DNS
	notBefore time.Time
	notAfter  time.Time
}

// newKey returns a fresh P-256 key (fast to generate).
func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// certDER creates a self-signed certificate for key.
func certDER(t testing.TB, s certSpec, key crypto.Signer) []byte {
	t.Helper()
	if s.notBefore.IsZero() {
		s.notBefore = testNow.Add(-24 * time.Hour)
	}
	if s.notAfter.IsZero() {
		s.notAfter = testNow.Add(365 * 24 * time.Hour)
	}
	var subj pkix.Name
	if s.extraRDN {
		subj.Organization = []string{"ovnsec"}
		subj.OrganizationalUnit = []string{"switchca"}
	}
	if s.cn != "" {
		// ExtraNames so that the CN is the only RDN when extraRDN is false.
		subj.ExtraNames = append(subj.ExtraNames, pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: s.cn})
	}
	if s.moreCN != "" {
		subj.ExtraNames = append(subj.ExtraNames, pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: s.moreCN})
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      subj,
		DNSNames:     s.dns,
		NotBefore:    s.notBefore,
		NotAfter:     s.notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func pemBytes(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// writeFile writes data to dir/name and returns the path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeCertAndKey writes name-cert.pem and name-privkey.pem (SEC1) into dir.
func writeCertAndKey(t testing.TB, dir, name string, s certSpec) (certPath, keyPath string) {
	t.Helper()
	key := newKey(t)
	certPath = writeFile(t, dir, name+"-cert.pem", pemBytes("CERTIFICATE", certDER(t, s, key)))
	sec1, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPath = writeFile(t, dir, name+"-privkey.pem", pemBytes("EC PRIVATE KEY", sec1))
	return certPath, keyPath
}
