package creds

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
)

var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// issue makes a certificate for key, signed by parent/parentKey (self-signed
// when parent is nil).
func issue(t testing.TB, cn string, isCA bool, key crypto.Signer, parent *x509.Certificate, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn},
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(24 * time.Hour), IsCA: isCA, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func certPEM(cs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range cs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

func keyPEM(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// replace writes data to path atomically (rename), as a renewal does.
func replace(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func newStore(t *testing.T) (*Store, *clocktest.Fake) {
	clk := clocktest.New(testNow)
	return NewStore(Options{Clock: clk, Log: slog.New(slog.DiscardHandler)}), clk
}

func TestStoreReadsChainsKeysAndBundles(t *testing.T) {
	dir := t.TempDir()
	caKey, leafKey := newKey(t), newKey(t)
	ca := issue(t, "ca", true, caKey, nil, nil)
	leaf := issue(t, "hv1", false, leafKey, ca, caKey)
	certPath, keyPath, caPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "ca.pem")
	other := issue(t, "other-ca", true, newKey(t), nil, nil)
	replace(t, certPath, certPEM(leaf, ca))
	replace(t, keyPath, keyPEM(t, leafKey))
	replace(t, caPath, certPEM(other, ca))
	s, _ := newStore(t)

	chain, err := s.Certificates(certPath)
	if err != nil || len(chain) != 2 || !chain[0].Equal(leaf) {
		t.Fatalf("chain %d %v", len(chain), err)
	}
	bundle, err := s.Certificates(caPath)
	if err != nil || len(bundle) != 2 {
		t.Fatalf("bundle %d %v", len(bundle), err)
	}
	if err := s.KeyMatches(certPath, keyPath); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(certPath, caPath, testNow); err != nil {
		t.Fatalf("Verify against a bundle holding the CA second: %v", err)
	}
	if err := s.Verify(certPath, caPath, testNow.Add(48*time.Hour)); err == nil || !strings.Contains(err.Error(), "not signed by a CA") {
		t.Fatalf("Verify of an expired certificate: %v", err)
	}
	wrongKey := filepath.Join(dir, "wrong.pem")
	replace(t, wrongKey, keyPEM(t, newKey(t)))
	if err := s.KeyMatches(certPath, wrongKey); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("KeyMatches with another key: %v", err)
	}
	if _, err := s.PrivateKey(certPath); err == nil || !strings.Contains(err.Error(), "no PEM private key") {
		t.Fatalf("a certificate read as a key: %v", err)
	}
	if _, err := s.Certificates(filepath.Join(dir, "gone.pem")); err == nil || !strings.Contains(err.Error(), "read certificate "+filepath.Join(dir, "gone.pem")+": open") || !strings.Contains(err.Error(), "check the path") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestStoreNotifiesChanges(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cert.pem")
	k := newKey(t)
	first := issue(t, "hv1", false, k, nil, nil)
	replace(t, path, certPEM(first))
	s, clk := newStore(t)
	ch, cancel := s.Subscribe()
	defer cancel()
	if _, err := s.Certificates(path); err != nil {
		t.Fatal(err)
	}
	fp1, _ := s.Fingerprint(path)

	// Same content rewritten: no change.
	replace(t, path, certPEM(first))
	if got := s.Refresh(); len(got) != 0 {
		t.Fatalf("rewrite with the same content reported as a change: %v", got)
	}
	// Renewed under the same path: one change, the new certificate served.
	second := issue(t, "hv1", false, k, nil, nil)
	replace(t, path, certPEM(second))
	done := make(chan struct{})
	go func() { defer close(done); s.Run(t.Context()) }()
	deadline := time.Now().Add(5 * time.Second)
	var c Change
	for got := false; !got; {
		clk.Advance(DefaultPoll)
		select {
		case c = <-ch:
			got = true
		case <-time.After(10 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("no change event after a renewal")
			}
		}
	}
	if !slices.Equal(c.Paths, []string{path}) {
		t.Fatalf("change %v", c.Paths)
	}
	if certs, _ := s.Certificates(path); !certs[0].Equal(second) {
		t.Fatal("the old certificate is still served after the change")
	}
	if fp2, _ := s.Fingerprint(path); fp2 == fp1 {
		t.Fatal("fingerprint unchanged")
	}
	// Removed, then back: a change each time.
	os.Remove(path)
	if got := s.Refresh(); !slices.Equal(got, []string{path}) {
		t.Fatalf("removal: %v", got)
	}
	if got := s.Refresh(); len(got) != 0 {
		t.Fatalf("still missing reported again: %v", got)
	}
	replace(t, path, certPEM(second))
	if got := s.Refresh(); !slices.Equal(got, []string{path}) {
		t.Fatalf("re-appearance: %v", got)
	}
}

// A subscriber that does not read gets the changes merged, none lost.
func TestStoreMergesPendingChanges(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.pem"), filepath.Join(dir, "b.pem")
	k := newKey(t)
	replace(t, a, certPEM(issue(t, "a", false, k, nil, nil)))
	replace(t, b, certPEM(issue(t, "b", false, k, nil, nil)))
	s, _ := newStore(t)
	ch, cancel := s.Subscribe()
	defer cancel()
	s.Certificates(a)
	s.Certificates(b)
	replace(t, a, certPEM(issue(t, "a2", false, k, nil, nil)))
	s.Refresh()
	replace(t, b, certPEM(issue(t, "b2", false, k, nil, nil)))
	s.Refresh()
	c := <-ch
	if !slices.Equal(c.Paths, []string{a, b}) {
		t.Fatalf("merged change %v, want both files", c.Paths)
	}
	select {
	case c := <-ch:
		t.Fatalf("second pending change %v", c)
	default:
	}
}
