package enroll

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/pki"
)

// A chassis enrols at the first contact, trusting the CA file it was
// given: its own P-256 key, a certificate for its name from the served CA,
// the key 0600, the bundle, the database pointed at the files once, and a
// renewal planned at a jittered two thirds of the life.
func TestEnrolFirstContact(t *testing.T) {
	dir := newPKI(t)
	clk := newFake()
	es := startEST(t, dir, clk, Config{Lifetime: 90 * time.Minute})
	tok := tokenFile(t, dir, clk, "ch1")
	r := newRunner(t, es, "ch1", func(c *EnrollerConfig) { c.TokenFile = tok })
	r.start()
	st := r.e.Status()
	if st.State != "enrolled" || st.LastError != "" || st.Issued != 1 || st.LastOp != "simpleenroll" {
		t.Fatalf("status %+v", st)
	}
	p := r.e.cfg.Paths
	cert := fileCert(t, p)
	cas := caCerts(t, dir)
	if cert.Subject.CommonName != "ch1" || !slices.Equal(cert.DNSNames, []string{"ch1"}) || cert.CheckSignatureFrom(cas[0]) != nil {
		t.Errorf("certificate %v %v is not ch1's from the served CA", cert.Subject, cert.DNSNames)
	}
	key, err := pki.LoadPrivateKey(p.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckIssued(cert, "ch1", key.Public(), cas, clk.Now()); err != nil {
		t.Errorf("the written key and certificate do not belong together: %v", err)
	}
	if kd := keyDesc(cert.PublicKey); kd != "ECDSA P-256" {
		t.Errorf("key %s, want ECDSA P-256", kd)
	}
	if m := fileMode(t, p.Key); m != 0o600 {
		t.Errorf("key mode %04o", m)
	}
	bundle, err := pki.LoadCertificates(p.CA)
	if err != nil || len(bundle) != 1 || !bundle[0].Equal(cas[0]) {
		t.Errorf("bundle %v, %v", bundle, err)
	}
	if got := r.publishedPaths(); len(got) != 1 || got[0] != p {
		t.Errorf("published %v, want once %v", got, p)
	}
	if st.InUse != p || st.Certificate == nil || st.Certificate.Subject != cert.Subject.String() || len(st.CAs) != 1 {
		t.Errorf("status %+v", st)
	}
	life := cert.NotAfter.Sub(st.LastAttempt)
	at := st.NextRenewal.Sub(st.LastAttempt)
	if at < time.Duration(float64(life)*RenewFracMin)-time.Second || at > time.Duration(float64(life)*RenewFracMax)+time.Second {
		t.Errorf("next renewal %v after issue, want %.2f-%.2f of %v", at, RenewFracMin, RenewFracMax, life)
	}
	if !st.NextAttempt.Equal(clk.Now().Add(15 * time.Minute)) {
		t.Errorf("next check at %v, want a sixth of 90 min later", st.NextAttempt.Sub(clk.Now()))
	}
	// Another check changes nothing and publishes nothing again.
	st = r.next()
	if st.Issued != 1 || st.LastOp != "cacerts" || len(r.publishedPaths()) != 1 {
		t.Errorf("a check re-enrolled or republished: %+v", st)
	}
	text := st.Text(clk.Now())
	for _, want := range []string{"State:         enrolled", "  Subject:     " + cert.Subject.String(), "  Issuer:      " + cas[0].Subject.String(),
		"  Not after:   " + cert.NotAfter.UTC().Format(time.RFC3339), "Next renewal:", "Last error:    none"} {
		if !strings.Contains(text, want) {
			t.Errorf("ca/status text lacks %q:\n%s", want, text)
		}
	}
	// Neither the key nor the token ever reaches the log.
	secret, _ := os.ReadFile(tok)
	keyPEM, _ := os.ReadFile(p.Key)
	logs := r.log.String() + es.log.String()
	if strings.Contains(logs, strings.TrimSpace(string(secret))) || strings.Contains(logs, "PRIVATE KEY") ||
		strings.Contains(logs, string(pemBody(keyPEM))) {
		t.Errorf("a secret reached the logs:\n%s", logs)
	}
}

// pemBody is the base64 of a PEM file's first block.
func pemBody(data []byte) string {
	b, _ := pem.Decode(data)
	if b == nil {
		return "\x00none"
	}
	return base64.StdEncoding.EncodeToString(b.Bytes)[:40]
}

// The fingerprint of the CA certificate authenticates the first contact.
func TestEnrolWithFingerprint(t *testing.T) {
	dir := newPKI(t)
	clk := newFake()
	es := startEST(t, dir, clk, Config{})
	fp := FingerprintOf(caCerts(t, dir)[0])
	tok := tokenFile(t, dir, clk, "ch1")
	r := newRunner(t, es, "ch1", func(c *EnrollerConfig) { c.TokenFile, c.Trust = tok, Trust{Fingerprint: &fp} })
	r.start()
	if st := r.e.Status(); st.State != "enrolled" || st.Issued != 1 {
		t.Fatalf("status %+v", st)
	}
	if !strings.Contains(r.log.String(), "first contact authenticated by the CA fingerprint") {
		t.Errorf("the log does not say how the first contact was trusted:\n%s", r.log.String())
	}
}

// The first contact refuses a service it cannot authenticate: a CA file of
// another CA, a fingerprint that matches nothing the service publishes.
// Nothing is written, the token is not used up, and the status says why.
func TestFirstContactRefused(t *testing.T) {
	other := caCerts(t, newPKI(t))[0]
	wrongFP := FingerprintOf(other)
	for _, tc := range []struct {
		name  string
		trust Trust
		want  string
	}{
		{"wrong CA file", Trust{Anchors: []*x509.Certificate{other}}, "not signed by a CA this chassis trusts"},
		{"fingerprint mismatch", Trust{Fingerprint: &wrongFP}, "no CA certificate the CA service publishes has the fingerprint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newPKI(t)
			clk := newFake()
			es := startEST(t, dir, clk, Config{})
			tok := tokenFile(t, dir, clk, "ch1")
			r := newRunner(t, es, "ch1", func(c *EnrollerConfig) { c.TokenFile, c.Trust = tok, tc.trust })
			r.start()
			st := r.e.Status()
			if st.State != "failing" || !strings.Contains(st.LastError, tc.want) || st.Failures != 1 {
				t.Fatalf("status %+v, want failing with %q", st, tc.want)
			}
			for _, f := range []string{r.e.cfg.Paths.Cert, r.e.cfg.Paths.Key, r.e.cfg.Paths.CA} {
				if _, err := os.Stat(f); err == nil {
					t.Errorf("%s was written", f)
				}
			}
			if n := es.count("simpleenroll"); n != 0 {
				t.Errorf("%d enrolments answered", n)
			}
			recs, _ := NewTokenStore(dir, clk).List()
			if len(recs) != 1 || recs[0].Uses != 0 {
				t.Errorf("the token was used: %+v", recs)
			}
			if len(r.publishedPaths()) != 0 {
				t.Error("the database was changed")
			}
			// Retried after MinRetry ± 20 %.
			if d := st.NextAttempt.Sub(st.LastAttempt); d < MinRetry*8/10 || d > MinRetry*12/10+time.Second {
				t.Errorf("retry in %v", d)
			}
		})
	}
}

// A service that answers with a certificate that is not exactly ours (for
// another chassis, with an extra name, for another key, from another CA,
// a CA certificate) is refused; nothing is written.
func TestIssuedCertificateChecked(t *testing.T) {
	dir := newPKI(t)
	otherDir := newPKI(t)
	for _, tc := range []struct {
		name string
		make func(t *testing.T, clk *testClock, csr *x509.CertificateRequest) *x509.Certificate
		want string
	}{
		{"another name", func(t *testing.T, c *testClock, csr *x509.CertificateRequest) *x509.Certificate {
			return issueFor(t, dir, c, "ch2", csr.PublicKey, []string{"ch2"})
		}, `does not name chassis "ch1"`},
		{"extra SAN", func(t *testing.T, c *testClock, csr *x509.CertificateRequest) *x509.Certificate {
			return issueFor(t, dir, c, "ch1", csr.PublicKey, []string{"ch1", "ch2"})
		}, "not exactly DNS:ch1"},
		{"another key", func(t *testing.T, c *testClock, csr *x509.CertificateRequest) *x509.Certificate {
			return issueFor(t, dir, c, "ch1", ecKey(t).Public(), []string{"ch1"})
		}, "not for this chassis' key"},
		{"another CA", func(t *testing.T, c *testClock, csr *x509.CertificateRequest) *x509.Certificate {
			return issueFor(t, otherDir, c, "ch1", csr.PublicKey, []string{"ch1"})
		}, "not signed by a CA the service publishes"},
		{"the CA itself", func(t *testing.T, c *testClock, csr *x509.CertificateRequest) *x509.Certificate {
			return caCerts(t, dir)[0]
		}, "not for this chassis' key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFake()
			es := startEST(t, dir, clk, Config{})
			es.setOverride(func(w http.ResponseWriter, r *http.Request) {
				if !strings.HasSuffix(r.URL.Path, "simpleenroll") {
					es.srv.Handler().ServeHTTP(w, r)
					return
				}
				body, _ := io.ReadAll(r.Body)
				csr, err := ParseRequestBody(body)
				if err != nil {
					t.Error(err)
					return
				}
				writeCerts(w, r, []*x509.Certificate{tc.make(t, &testClock{clk.Now}, csr)})
			})
			tok := tokenFile(t, dir, clk, "ch1")
			r := newRunner(t, es, "ch1", func(c *EnrollerConfig) { c.TokenFile = tok })
			r.start()
			st := r.e.Status()
			if st.State != "failing" || !strings.Contains(st.LastError, "refusing what the CA service issued") || !strings.Contains(st.LastError, tc.want) {
				t.Fatalf("status %+v, want a refusal with %q", st, tc.want)
			}
			for _, f := range []string{r.e.cfg.Paths.Cert, r.e.cfg.Paths.Key} {
				if _, err := os.Stat(f); err == nil {
					t.Errorf("%s was written", f)
				}
			}
			if len(r.publishedPaths()) != 0 {
				t.Error("the database was changed")
			}
		})
	}
}

type testClock struct{ now func() time.Time }

// issueFor signs a certificate for name with the CA of dir, as a
// misbehaving service would.
func issueFor(t *testing.T, dir string, c *testClock, name string, pub any, dns []string) *x509.Certificate {
	t.Helper()
	d := pki.Dir{Path: dir, Env: pki.Env{Now: c.now}}
	ca, err := d.LoadCA(pki.SwitchCA)
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := pki.EnrolmentSubject(ca.Cert, name)
	cert, err := d.Issue(ca, pki.IssueOptions{Subject: subj, PublicKey: pub, DNSNames: dns, Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestParseServerURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://192.0.2.10:8443":                    "https://192.0.2.10:8443",
		"https://ca.example/":                        "https://ca.example",
		"https://[2001:db8::1]:8443":                 "https://[2001:db8::1]:8443",
		"https://192.0.2.10:8443/.well-known/est/":   "https://192.0.2.10:8443",
		"https://192.0.2.10:8443/.well-known/est":    "https://192.0.2.10:8443",
		"http://192.0.2.10:8443":                     "",
		"192.0.2.10:8443":                            "",
		"https://user:secret@192.0.2.10:8443":        "",
		"https://192.0.2.10:8443/other":              "",
		"https://192.0.2.10:8443/?x=1":               "",
		"https://:8443":                              "",
		"https://192.0.2.10:99999":                   "",
		"https://192.0.2.10:8443/.well-known/est/x/": "",
	} {
		u, err := ParseServerURL(in)
		switch {
		case want == "" && err == nil:
			t.Errorf("%q accepted as %v", in, u)
		case want != "" && (err != nil || u.String() != want):
			t.Errorf("%q: %v, %v; want %s", in, u, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: the error repeats the password: %v", in, err)
		}
	}
}

func TestParseFingerprint(t *testing.T) {
	c := caCerts(t, newPKI(t))[0]
	fp := FingerprintOf(c)
	hexs := strings.ReplaceAll(fp.String(), ":", "")
	for _, in := range []string{hexs, strings.ToUpper(hexs), fp.String(), strings.ToUpper(fp.String()),
		"sha256 Fingerprint=" + strings.ToUpper(fp.String()), "sha256:" + hexs, " " + hexs + "\n"} {
		got, err := ParseFingerprint(in)
		if err != nil || got != fp {
			t.Errorf("%q: %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", hexs[:62], hexs + "00", "zz" + hexs[2:], "sha1:" + hexs} {
		if _, err := ParseFingerprint(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// CABundle keeps the self-signed CAs of a rollover's cacerts answer (the
// new one first) and drops the link certificates.
func TestCABundleDropsLinks(t *testing.T) {
	dir := newPKI(t)
	res, err := (pki.Dir{Path: dir}).Rollover(pki.RolloverOptions{Overlap: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	set, err := NewDirStore(dir, nil).CAs()
	if err != nil {
		t.Fatal(err)
	}
	pub := set.Published()
	if len(pub) != 4 {
		t.Fatalf("published %d certificates, want new, old and two links", len(pub))
	}
	got := CABundle(append(pub, pub[0]))
	if len(got) != 2 || !got[0].Equal(res.New) || !got[1].Equal(res.Old) {
		t.Errorf("bundle %v", got)
	}
}

func TestReasonText(t *testing.T) {
	for in, want := range map[string]string{
		"refused: wrong token\n":        "refused: wrong token",
		"a\x1b[31mred\r\nline\t two":    "a [31mred line two",
		"":                              "(no reason given)",
		"\xff\xfe ok":                   "? ok",
		strings.Repeat("x", 1000):       strings.Repeat("x", maxReasonLen) + "...",
		"  spaced    out  ":             "spaced out",
		"line1\nline2\u2028\u202eright": "line1 line2 right",
	} {
		if got := ReasonText([]byte(in)); got != want {
			t.Errorf("ReasonText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTokenFile(t *testing.T) {
	d := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	if tok, err := ReadTokenFile(write("ok", "0123456789abcdef.c2VjcmV0\n", 0o600)); err != nil || tok != "0123456789abcdef.c2VjcmV0" {
		t.Errorf("good token: %q, %v", tok, err)
	}
	for name, tc := range map[string]struct {
		content string
		mode    os.FileMode
		want    string
	}{
		"readable by others": {"0123456789abcdef.c2VjcmV0", 0o644, "chmod 600"},
		"empty":              {"\n\n", 0o600, "empty"},
		"two tokens":         {"a.b c.d", 0o600, "more than one token"},
	} {
		_, err := ReadTokenFile(write(name, tc.content, tc.mode))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "c2VjcmV0") {
			t.Errorf("%s: the error quotes the token: %v", name, err)
		}
	}
	if _, err := ReadTokenFile(filepath.Join(d, "missing")); err == nil {
		t.Error("a missing file was read")
	}
}

// The CA service's refusal reaches the caller as a RefusedError with its
// reason; a wrong token is one.
func TestClientRefusal(t *testing.T) {
	dir := newPKI(t)
	clk := newFake()
	es := startEST(t, dir, clk, Config{})
	cl, err := NewClient(es.url, clk)
	if err != nil {
		t.Fatal(err)
	}
	k := ecKey(t)
	csr, err := NewRequest(k, "ch1", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.Enroll(t.Context(), caCerts(t, dir), csr, "ch1", Token("0123456789abcdef.wrong"))
	var re *RefusedError
	if !errors.As(err, &re) || re.Status != http.StatusUnauthorized || !strings.Contains(re.Reason, "refused") || !re.AuthRefused() {
		t.Fatalf("wrong token: %v", err)
	}
	if strings.Contains(err.Error(), "wrong") && strings.Contains(err.Error(), "0123456789abcdef.wrong") {
		t.Errorf("the error repeats the token: %v", err)
	}
	// And a good one works through the same call.
	tok := token(t, dir, "ch1", false)
	cert, err := cl.Enroll(t.Context(), caCerts(t, dir), csr, "ch1", tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckIssued(cert, "ch1", k.Public(), caCerts(t, dir), clk.Now()); err != nil {
		t.Error(err)
	}
}

// With a lifetime of minutes, the server's own TLS certificate is issued
// again at two thirds of its life counted from its issue, not from its
// backdated start (which would issue one per handshake).
func TestServerCertificateShortLifetime(t *testing.T) {
	dir := newPKI(t)
	clk := newFake()
	srv, err := NewServer(Config{Dir: dir, Clock: clk, Lifetime: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	id := ServerIdentity{DNSNames: []string{"ca"}}
	a, err := srv.serverCertificate(id)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(70 * time.Second)
	if b, _ := srv.serverCertificate(id); b != a {
		t.Error("issued again before two thirds of its life")
	}
	clk.Advance(15 * time.Second)
	if c, _ := srv.serverCertificate(id); c == a {
		t.Error("not issued again after two thirds of its life")
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		90 * time.Second:                            "1m30s",
		47 * time.Hour:                              "47h0m0s",
		2159*time.Hour + 59*time.Minute:             "89d23h",
		48 * time.Hour:                              "2d0h",
		1500*time.Millisecond + 20*time.Microsecond: "2s",
	} {
		if got := human(d); got != want {
			t.Errorf("human(%v) = %q, want %q", d, got, want)
		}
	}
}
