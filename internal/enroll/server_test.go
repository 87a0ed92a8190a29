package enroll

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/pki"
)

// A chassis enrols with a token and gets exactly the certificate the
// policy describes; the answer has RFC 7030's media type; the issue is
// recorded in the CA directory and logged.
func TestEnrolWithToken(t *testing.T) {
	dir := newPKI(t)
	ts := startServer(t, dir, Config{})
	key := ecKey(t)
	a := ts.do(req{op: "simpleenroll", user: "ch1", token: string(token(t, dir, "ch1", false)), csr: chassisCSR(t, key, "ch1")})
	cert := a.issued(t)
	if got := a.header.Get("Content-Type"); got != MediaCertsOnly {
		t.Errorf("Content-Type %q, want %q", got, MediaCertsOnly)
	}
	if got := a.header.Get("Content-Transfer-Encoding"); got != "base64" {
		t.Errorf("Content-Transfer-Encoding %q", got)
	}
	if cert.Subject.CommonName != "ch1" || !slices.Equal(cert.Subject.Organization, []string{"Open vSwitch"}) {
		t.Errorf("subject %v", cert.Subject)
	}
	if cn, ok := pki.OVSCommonName(cert); !ok || cn != "ch1" {
		t.Errorf("ovs-monitor-ipsec would read CN %q, %v", cn, ok)
	}
	if !slices.Equal(cert.DNSNames, []string{"ch1"}) || len(cert.IPAddresses)+len(cert.EmailAddresses)+len(cert.URIs) != 0 {
		t.Errorf("SANs %v %v %v %v", cert.DNSNames, cert.IPAddresses, cert.EmailAddresses, cert.URIs)
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("keyUsage %v", cert.KeyUsage)
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("extKeyUsage %v", cert.ExtKeyUsage)
	}
	if cert.IsCA || !cert.BasicConstraintsValid {
		t.Errorf("basicConstraints: CA %v valid %v", cert.IsCA, cert.BasicConstraintsValid)
	}
	if n := cert.SerialNumber.BitLen(); n > 128 || n < 64 {
		t.Errorf("serial %x has %d bits, want 128 random bits", cert.SerialNumber, n)
	}
	if got := cert.NotAfter.Sub(cert.NotBefore); got != DefaultLifetime+5*time.Minute {
		t.Errorf("validity %v, want %v after a 5 minute backdate", got, DefaultLifetime)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		t.Error("the certificate is not for the request's key")
	}
	// What the rest of ovnsec checks: the pki check passes.
	certPath := filepath.Join(t.TempDir(), "ch1-cert.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := pki.Check(certPath, pki.CheckOptions{CAPath: pki.Dir{Path: dir}.CACertPath(pki.SwitchCA), Name: "ch1"})
	if !rep.OK() {
		t.Errorf("pki check: %v", rep.Err())
	}
	if _, err := os.Stat(pki.Dir{Path: dir}.NewcertPath(pki.SwitchCA, cert.SerialNumber)); err != nil {
		t.Errorf("newcerts: %v", err)
	}
	idx, _ := os.ReadFile(filepath.Join(dir, "switchca", "index.txt"))
	if !strings.Contains(string(idx), "\t"+pki.FormatSerial(cert.SerialNumber)+"\tunknown\t/O=Open vSwitch/CN=ch1\n") {
		t.Errorf("index.txt does not record the certificate:\n%s", idx)
	}
	if l := ts.log.String(); !strings.Contains(l, `msg="certificate issued" op=simpleenroll chassis=ch1 auth=token`) {
		t.Errorf("no issue in the log:\n%s", l)
	}
}

func TestLifetime(t *testing.T) {
	dir := newPKI(t)
	ts := startServer(t, dir, Config{Lifetime: 48 * time.Hour})
	cert := ts.do(req{op: "simpleenroll", user: "ch1", token: string(token(t, dir, "ch1", false)), csr: chassisCSR(t, ecKey(t), "ch1")}).issued(t)
	if got := cert.NotAfter.Sub(cert.NotBefore); got != 48*time.Hour+5*time.Minute {
		t.Errorf("validity %v, want 48h after a 5 minute backdate", got)
	}
	if _, err := NewServer(Config{Dir: dir, Lifetime: 59 * time.Second}); err == nil {
		t.Error("a lifetime under a minute was accepted")
	}
	// Minutes are for tests and demos of renewal (ca serve --lifetime 2m).
	if _, err := NewServer(Config{Dir: dir, Lifetime: 2 * time.Minute}); err != nil {
		t.Errorf("a two-minute lifetime was refused: %v", err)
	}
}

func TestCACerts(t *testing.T) {
	dir := newPKI(t)
	ts := startServer(t, dir, Config{})
	a := ts.do(req{op: "cacerts"})
	certs, err := ParseCertsOnlyBase64([]byte(a.body))
	if err != nil || a.status != 200 {
		t.Fatalf("cacerts: %d %v %s", a.status, err, a.body)
	}
	want, _ := pki.LoadCertificates(pki.Dir{Path: dir}.CACertPath(pki.SwitchCA))
	if len(certs) != 1 || !certs[0].Equal(want[0]) {
		t.Errorf("cacerts gave %d certificates, not the CA", len(certs))
	}
	if a.header.Get("Content-Type") != MediaCertsOnly {
		t.Errorf("Content-Type %q", a.header.Get("Content-Type"))
	}
	ts.do(req{op: "cacerts", method: http.MethodPost}).refused(t, http.StatusMethodNotAllowed, "GET")
	ts.do(req{op: "nosuch", method: http.MethodGet}).refused(t, http.StatusNotFound, "not an EST operation")
}

// Every refusal of simpleenroll, each with its reason in the body; none
// of them uses up the token.
func TestEnrolRefusals(t *testing.T) {
	dir := newPKI(t)
	ts := startServer(t, dir, Config{})
	tok := token(t, dir, "ch1", false)
	ok := chassisCSR(t, ecKey(t), "ch1")
	store := NewTokenStore(dir, nil)

	otherTok := token(t, dir, "ch2", false)
	revoked := token(t, dir, "ch1", false)
	if err := store.Revoke(revoked.ID()); err != nil {
		t.Fatal(err)
	}
	expired, _, err := NewTokenStore(dir, &fixedClock{t: time.Now().Add(-2 * time.Hour)}).Create("ch1", time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	wrongSecret := Token(string(tok.ID()) + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	rsaWeak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := ecKey(t)
	o := pkix.Name{Organization: []string{"Open vSwitch"}, CommonName: "ch1"}
	twoCNName := pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidCommonName, Value: "ch1"}, {Type: oidCommonName, Value: "ch2"}}}
	u, _ := url.Parse("spiffe://x/ch1")
	foreign := foreignCert(t, "ch1")

	cases := []struct {
		name   string
		r      req
		status int
		why    string
	}{
		{"no credentials", req{csr: ok}, 401, "no credentials"},
		{"wrong token", req{user: "ch1", token: string(wrongSecret), csr: ok}, 401, "wrong token"},
		{"unknown token", req{user: "ch1", token: "nonsense", csr: ok}, 401, "wrong or unknown token"},
		{"token of another chassis", req{user: "ch1", token: string(otherTok), csr: ok}, 401, "made for another chassis"},
		{"revoked token", req{user: "ch1", token: string(revoked), csr: ok}, 401, "was revoked"},
		{"expired token", req{user: "ch1", token: string(expired), csr: ok}, 401, "expired at"},
		{"bad user name", req{user: "ch 1", token: string(tok), csr: ok}, 401, "user name must be the chassis name"},
		{"CN is another chassis", req{user: "ch1", token: string(tok), csr: chassisCSR(t, k, "ch2")}, 403, `CN "ch2" is not the authenticated chassis name "ch1"`},
		{"no CN", req{user: "ch1", token: string(tok), csr: makeCSR(t, k, csrSpec{subject: pkix.Name{Organization: []string{"x"}}, dns: []string{"ch1"}})}, 403, "has no CN"},
		{"two CNs", req{user: "ch1", token: string(tok), csr: makeCSR(t, k, csrSpec{subject: twoCNName, dns: []string{"ch1"}})}, 403, "has 2 CNs"},
		{"extra DNS SAN", req{user: "ch1", token: string(tok), csr: makeCSR(t, k, csrSpec{subject: o, dns: []string{"ch1", "ch2"}})}, 403, "[DNS:ch2] besides DNS:ch1"},
		{"IP SAN", req{user: "ch1", token: string(tok), csr: makeCSR(t, k, csrSpec{subject: o, dns: []string{"ch1"}, ips: []net.IP{net.ParseIP("192.0.2.7")}})}, 403, "[IP:192.0.2.7] besides"},
		{"URI SAN", req{user: "ch1", token: string(tok), csr: makeCSR(t, k, csrSpec{subject: o, dns: []string{"ch1"}, uris: []*url.URL{u}})}, 403, "[URI:spiffe://x/ch1] besides"},
		{"email SAN", req{user: "ch1", token: string(tok), csr: makeCSR(t, k, csrSpec{subject: o, dns: []string{"ch1"}, emails: []string{"a@example.com"}})}, 403, "[email:a@example.com] besides"},
		{"SAN other than the CN", req{user: "ch1", token: string(tok), csr: makeCSR(t, k, csrSpec{subject: o, dns: []string{"ch2"}})}, 403, "[DNS:ch2] besides"},
		{"no SAN", req{user: "ch1", token: string(tok), csr: makeCSR(t, k, csrSpec{subject: o})}, 403, "no subjectAltName"},
		{"RSA 1024", req{user: "ch1", token: string(tok), csr: chassisCSR(t, rsaWeak, "ch1")}, 403, "RSA key has 1024 bits; the minimum is 2048"},
		{"P-224", req{user: "ch1", token: string(tok), csr: chassisCSR(t, p224, "ch1")}, 403, "curve P-224"},
		{"no content type", req{user: "ch1", token: string(tok), csr: ok, contentType: "-"}, 415, "no Content-Type"},
		{"wrong content type", req{user: "ch1", token: string(tok), csr: ok, contentType: "application/json"}, 415, "is not application/pkcs10"},
		{"not base64", req{user: "ch1", token: string(tok), body: []byte("%%%")}, 400, "not base64"},
		{"PEM body", req{user: "ch1", token: string(tok), body: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: ok})}, 400, "the body is PEM"},
		{"not a request", req{user: "ch1", token: string(tok), body: []byte("aGVsbG8=")}, 400, "not a PKCS#10"},
		{"too large", req{user: "ch1", token: string(tok), body: []byte(strings.Repeat("A", MaxRequestBody+4))}, 413, "larger than"},
		{"GET", req{method: http.MethodGet}, 405, "takes POST"},
		{"certificate of another CA", req{csr: ok, cert: foreign}, 401, "not one this CA issued"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.r.op = "simpleenroll"
			a := ts.do(c.r)
			a.refused(t, c.status, c.why)
			if !strings.HasPrefix(a.body, "refused: ") {
				t.Errorf("body %q does not start with refused:", a.body)
			}
			if c.status == 401 && a.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	if l := ts.log.String(); strings.Count(l, `msg="enrolment refused"`) != len(cases) {
		t.Errorf("want %d refusals logged with their reasons:\n%s", len(cases), l)
	}
	// None of these used up the token.
	ts.do(req{op: "simpleenroll", user: "ch1", token: string(tok), csr: ok}).issued(t)
	ts.do(req{op: "simpleenroll", user: "ch1", token: string(tok), csr: ok}).refused(t, 401, "already used")
}

// foreignCert is a client certificate for name from a CA the server does
// not know.
func foreignCert(t testing.TB, name string) *tls.Certificate {
	t.Helper()
	other := newPKI(t)
	d := pki.Dir{Path: other}
	ca, err := d.LoadCA(pki.SwitchCA)
	if err != nil {
		t.Fatal(err)
	}
	k := ecKey(t)
	subj, _ := pki.EnrolmentSubject(ca.Cert, name)
	c, err := d.Issue(ca, pki.IssueOptions{Subject: subj, PublicKey: k.Public(), DNSNames: []string{name}, Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tlsCert(c, k)
}

// issueDirect issues a certificate for name from dir's CA with now as the
// current time, bypassing the server.
func issueDirect(t testing.TB, dir, name string, now time.Time, life time.Duration, eku ...x509.ExtKeyUsage) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	d := pki.Dir{Path: dir, Env: pki.Env{Now: func() time.Time { return now }}}
	ca, err := d.LoadCA(pki.SwitchCA)
	if err != nil {
		t.Fatal(err)
	}
	k := ecKey(t)
	subj, _ := pki.EnrolmentSubject(ca.Cert, name)
	c, err := d.Issue(ca, pki.IssueOptions{Subject: subj, PublicKey: k.Public(), DNSNames: []string{name}, Lifetime: life, ExtKeyUsage: eku})
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

// Renewal over mutual TLS with the current certificate: accepted with the
// same subject (and a new key), refused without a certificate, with
// another subject, with an expired certificate, with another CA's, and
// with one that does not allow client use.
func TestReenrol(t *testing.T) {
	dir := newPKI(t)
	ts := startServer(t, dir, Config{})
	k1 := ecKey(t)
	cur := ts.do(req{op: "simpleenroll", user: "ch1", token: string(token(t, dir, "ch1", false)), csr: chassisCSR(t, k1, "ch1")}).issued(t)

	k2 := ecKey(t)
	renewed := ts.do(req{op: "simplereenroll", cert: tlsCert(cur, k1), csr: chassisCSR(t, k2, "ch1")}).issued(t)
	if !k2.PublicKey.Equal(renewed.PublicKey) || renewed.SerialNumber.Cmp(cur.SerialNumber) == 0 || !pki.SameName(renewed.RawSubject, cur.RawSubject) {
		t.Error("the renewed certificate is not a new certificate for the new key with the same subject")
	}
	if !strings.Contains(ts.log.String(), `op=simplereenroll chassis=ch1 auth=certificate`) {
		t.Errorf("renewal not logged:\n%s", ts.log.String())
	}

	expired, ek := issueDirect(t, dir, "ch1", time.Now().Add(-100*24*time.Hour), 24*time.Hour)
	serverOnly, sk := issueDirect(t, dir, "ch1", time.Now(), time.Hour, x509.ExtKeyUsageServerAuth)
	otherSubject := makeCSR(t, k2, csrSpec{subject: pkix.Name{Country: []string{"US"}, Organization: []string{"Open vSwitch"}, CommonName: "ch1"}, dns: []string{"ch1"}})
	cases := []struct {
		name   string
		r      req
		status int
		why    string
	}{
		{"no client certificate", req{csr: chassisCSR(t, k2, "ch1")}, 401, "needs mutual TLS"},
		{"token instead of certificate", req{user: "ch1", token: string(token(t, dir, "ch1", false)), csr: chassisCSR(t, k2, "ch1")}, 401, "needs mutual TLS"},
		{"another subject", req{cert: tlsCert(cur, k1), csr: otherSubject}, 403, "is not the current certificate's subject"},
		{"another chassis", req{cert: tlsCert(cur, k1), csr: chassisCSR(t, k2, "ch2")}, 403, `CN "ch2" is not the authenticated chassis name "ch1"`},
		{"expired certificate", req{cert: tlsCert(expired, ek), csr: chassisCSR(t, k2, "ch1")}, 401, "expired at"},
		{"another CA's certificate", req{cert: foreignCert(t, "ch1"), csr: chassisCSR(t, k2, "ch1")}, 401, "not one this CA issued"},
		{"server-only certificate", req{cert: tlsCert(serverOnly, sk), csr: chassisCSR(t, k2, "ch1")}, 401, "for client use"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.r.op = "simplereenroll"
			a := ts.do(c.r)
			a.refused(t, c.status, c.why)
			if a.header.Get("WWW-Authenticate") != "" {
				t.Error("simplereenroll asked for Basic authentication")
			}
		})
	}
}

// simpleenroll also takes a certificate this CA issued (an SB RBAC
// certificate, say) instead of a token, for its own name only.
func TestEnrolWithCertificate(t *testing.T) {
	dir := newPKI(t)
	ts := startServer(t, dir, Config{})
	c, k := issueDirect(t, dir, "ch1", time.Now(), time.Hour)
	nk := ecKey(t)
	got := ts.do(req{op: "simpleenroll", cert: tlsCert(c, k), csr: chassisCSR(t, nk, "ch1")}).issued(t)
	if got.Subject.CommonName != "ch1" {
		t.Errorf("CN %q", got.Subject.CommonName)
	}
	ts.do(req{op: "simpleenroll", cert: tlsCert(c, k), csr: chassisCSR(t, nk, "ch2")}).refused(t, 403, "not the authenticated chassis name")

	// A certificate made the ovs-pki way (ovnsec pki req + sign: the
	// subject C=US, ST=CA, O, OU, CN and no extendedKeyUsage, as OVN's SB
	// RBAC certificates) authenticates as its CN.
	w := t.TempDir()
	if _, err := pki.Req(w, "ch3", pki.ReqOptions{Key: pki.KeySpec{Type: pki.KeyECDSA}}, pki.Env{}); err != nil {
		t.Fatal(err)
	}
	f := pki.FilesFor(w, "ch3")
	sr, err := pki.Dir{Path: dir}.Sign(f.Req, f.Cert, pki.SignOptions{})
	if err != nil || len(sr.Cert.ExtKeyUsage) != 0 {
		t.Fatalf("ovs-pki style certificate: %v", err)
	}
	rk, err := pki.LoadPrivateKey(f.Key)
	if err != nil {
		t.Fatal(err)
	}
	ts.do(req{op: "simpleenroll", cert: tlsCert(sr.Cert, rk), csr: chassisCSR(t, nk, "ch3")}).issued(t)
}

// Parallel enrolments with one one-time token: exactly one is issued.
func TestOneTimeTokenParallel(t *testing.T) {
	dir := newPKI(t)
	ts := startServer(t, dir, Config{})
	tok := token(t, dir, "ch1", false)
	const n = 8
	csrs := make([][]byte, n)
	for i := range csrs {
		csrs[i] = chassisCSR(t, ecKey(t), "ch1")
	}
	var wg sync.WaitGroup
	answers := make([]answer, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			answers[i], errs[i] = ts.try(req{op: "simpleenroll", user: "ch1", token: string(tok), csr: csrs[i]})
		}()
	}
	close(start)
	wg.Wait()
	issued := 0
	for i, a := range answers {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		switch {
		case a.status == 200:
			issued++
		case a.status == 401 && strings.Contains(a.body, "already used"):
		default:
			t.Errorf("request %d: %d %s", i, a.status, a.body)
		}
	}
	if issued != 1 {
		t.Fatalf("%d certificates issued with one one-time token, want 1", issued)
	}
	recs, err := NewTokenStore(dir, nil).List()
	if err != nil || len(recs) != 1 || recs[0].Uses != 1 {
		t.Fatalf("token record: %+v %v", recs, err)
	}
}

func TestReusableToken(t *testing.T) {
	dir := newPKI(t)
	ts := startServer(t, dir, Config{})
	tok := token(t, dir, "ch1", true)
	for range 2 {
		ts.do(req{op: "simpleenroll", user: "ch1", token: string(tok), csr: chassisCSR(t, ecKey(t), "ch1")}).issued(t)
	}
	ts.do(req{op: "simpleenroll", user: "ch2", token: string(tok), csr: chassisCSR(t, ecKey(t), "ch2")}).refused(t, 401, "another chassis")
	recs, _ := NewTokenStore(dir, nil).List()
	if len(recs) != 1 || recs[0].Uses != 2 || recs[0].State(time.Now()) != "valid" {
		t.Errorf("records %+v", recs)
	}
}

// The server's TLS certificate comes from the CA and names the listen
// address and the host name.
func TestServerCertificate(t *testing.T) {
	dir := newPKI(t)
	srv, err := NewServer(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	id, err := ListenIdentity("127.0.0.1:8443")
	if err != nil {
		t.Fatal(err)
	}
	tc := srv.TLSConfig(id, nil)
	c, err := tc.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	hn, _ := os.Hostname()
	leaf := c.Leaf
	if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) || !slices.Contains(leaf.DNSNames, hn) {
		t.Errorf("server certificate names %v %v, want 127.0.0.1 and %q", leaf.IPAddresses, leaf.DNSNames, hn)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("server certificate EKU %v", leaf.ExtKeyUsage)
	}
	ca, _ := pki.Dir{Path: dir}.LoadCA(pki.SwitchCA)
	if err := leaf.CheckSignatureFrom(ca.Cert); err != nil {
		t.Errorf("not from the CA: %v", err)
	}
	again, _ := tc.GetCertificate(nil)
	if again != c {
		t.Error("the server certificate was issued again at once")
	}
	all, err := ListenIdentity(":8443")
	if err != nil || len(all.IPs) == 0 || !slices.Contains(all.IPs, netipLoopback) {
		t.Errorf("identity for :8443: %+v %v", all, err)
	}
}

var netipLoopback = netip.MustParseAddr("127.0.0.1")
