// Test helpers: small certificates made directly with crypto/x509, and a
// snapshot of a directory tree to prove an operation changed nothing.

package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return testNow }

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testCA is a CA made in memory.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newTestCA(t testing.TB, cn string) testCA {
	t.Helper()
	key := ecKey(t)
	subj, err := encodeName([]attr{{oidCountry, "US"}, {oidOrg, OVSOrganization}, {oidCN, cn}})
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), RawSubject: subj,
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.AddDate(10, 0, 0),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{c, key}
}

// leafSpec describes a leaf certificate for check tests.
type leafSpec struct {
	cn        string
	san       []string
	notBefore time.Time
	notAfter  time.Time
	onlyCN    bool // subject is just CN=...
	usage     x509.KeyUsage
	eku       []x509.ExtKeyUsage
}

func (ca testCA) issue(t testing.TB, s leafSpec, key crypto.Signer) []byte {
	t.Helper()
	if s.notBefore.IsZero() {
		s.notBefore = testNow.Add(-time.Hour)
	}
	if s.notAfter.IsZero() {
		s.notAfter = testNow.AddDate(1, 0, 0)
	}
	if s.usage == 0 {
		s.usage = x509.KeyUsageDigitalSignature
	}
	attrs := []attr{{oidCountry, "US"}, {oidOrg, OVSOrganization}, {oidCN, s.cn}}
	if s.onlyCN {
		attrs = attrs[2:]
	}
	subj, err := encodeName(attrs)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), RawSubject: subj, DNSNames: s.san,
		NotBefore: s.notBefore, NotAfter: s.notAfter, KeyUsage: s.usage, ExtKeyUsage: s.eku,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// v1Cert makes an X.509 version 1 certificate (no version field, no
// extensions) signed by ca, which crypto/x509 cannot create.
func (ca testCA) v1Cert(t testing.TB, cn string, key crypto.Signer) []byte {
	t.Helper()
	subj, err := encodeName([]attr{{oidCountry, "US"}, {oidOrg, OVSOrganization}, {oidCN, cn}})
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	alg := pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}}
	tbs := struct {
		Serial    *big.Int
		Alg       pkix.AlgorithmIdentifier
		Issuer    asn1.RawValue
		Validity  struct{ NotBefore, NotAfter time.Time }
		Subject   asn1.RawValue
		PublicKey asn1.RawValue
	}{big.NewInt(9), alg, asn1.RawValue{FullBytes: ca.cert.RawSubject},
		struct{ NotBefore, NotAfter time.Time }{testNow.Add(-time.Hour), testNow.AddDate(1, 0, 0)},
		asn1.RawValue{FullBytes: subj}, asn1.RawValue{FullBytes: spki}}
	tbsDER, err := asn1.Marshal(tbs)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(tbsDER)
	sig, err := ca.key.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := asn1.Marshal(struct {
		TBS asn1.RawValue
		Alg pkix.AlgorithmIdentifier
		Sig asn1.BitString
	}{asn1.RawValue{FullBytes: tbsDER}, alg, asn1.BitString{Bytes: sig, BitLength: len(sig) * 8}})
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func writeTestFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func keyPEM(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	b, err := EncodePrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// snapshot records every path under root with its mode and contents.
func snapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + string(b)
		}
		m[p] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameSnapshot(t testing.TB, before, after map[string]string) {
	t.Helper()
	for p, v := range before {
		if a, ok := after[p]; !ok {
			t.Errorf("%s disappeared", p)
		} else if a != v {
			t.Errorf("%s changed", p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s appeared", p)
		}
	}
}

func pemOf(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
