package enroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
	"github.com/ovnsec/ovnsec/internal/pki"
)

// enrolled starts a runner that enrols ch1 with a token.
func enrolled(t *testing.T, life time.Duration, mod func(*EnrollerConfig)) (*estServer, *runner) {
	t.Helper()
	dir := newPKI(t)
	clk := newFake()
	es := startEST(t, dir, clk, Config{Lifetime: life})
	tok := tokenFile(t, dir, clk, "ch1")
	r := newRunner(t, es, "ch1", func(c *EnrollerConfig) {
		c.TokenFile = tok
		if mod != nil {
			mod(c)
		}
	})
	r.start()
	if st := r.e.Status(); st.State != "enrolled" {
		t.Fatalf("not enrolled: %+v", st)
	}
	return es, r
}

// The certificate is renewed over mutual TLS at its planned point (not a
// check before), under the same paths, with a new key; the database is
// not touched again.
func TestRenewAtTwoThirds(t *testing.T) {
	es, r := enrolled(t, time.Hour, nil)
	p := r.e.cfg.Paths
	first := fileCert(t, p)
	firstKey, _ := os.ReadFile(p.Key)
	plan := r.e.Status().NextRenewal
	// Checks come and go before the plan.
	for r.e.Status().NextAttempt.Before(plan) {
		st := r.next()
		if st.Issued != 1 {
			t.Fatalf("renewed at %v, planned at %v", st.LastAttempt, plan)
		}
	}
	st := r.advanceTo(plan)
	if st.Issued != 2 || st.LastOp != "simplereenroll" || st.State != "enrolled" {
		t.Fatalf("no renewal at the plan: %+v", st)
	}
	second := fileCert(t, p)
	secondKey, _ := os.ReadFile(p.Key)
	if second.Equal(first) || string(secondKey) == string(firstKey) || !pki.SameName(second.RawSubject, first.RawSubject) {
		t.Error("the renewal did not give a new certificate for a new key with the same subject")
	}
	if n := es.count("simplereenroll"); n != 1 {
		t.Errorf("%d simplereenroll answered", n)
	}
	if len(r.publishedPaths()) != 1 {
		t.Errorf("the database was changed again: %v", r.publishedPaths())
	}
	if st.NextRenewal.Sub(st.LastAttempt) < 35*time.Minute {
		t.Errorf("next renewal %v after the renewal", st.NextRenewal.Sub(st.LastAttempt))
	}
	// ca/renew renews at once.
	st = r.renewNow()
	if st.Issued != 3 || st.LastOp != "simplereenroll" {
		t.Errorf("RenewNow: %+v", st)
	}
}

// A failing renewal is retried with a doubling, jittered delay, capped at
// a tenth of the life while the certificate is valid; when the
// certificate expires meanwhile the status says so; once the service is
// back, the chassis enrols again with its token (the expired certificate
// no longer authenticates).
func TestRenewBackoffAndExpiry(t *testing.T) {
	dir := newPKI(t)
	clk := newFake()
	es := startEST(t, dir, clk, Config{Lifetime: time.Hour})
	tokStore := NewTokenStore(dir, clk)
	tok, _, err := tokStore.Create("ch1", 24*time.Hour, true)
	if err != nil {
		t.Fatal(err)
	}
	tf := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tf, []byte(tok.Secret()), 0o600)
	r := newRunner(t, es, "ch1", func(c *EnrollerConfig) { c.TokenFile = tf })
	r.start()
	es.down.Store(true)
	st := r.advanceTo(r.e.Status().NextRenewal)
	var delays []time.Duration
	for i := 0; i < 6; i++ {
		if st.State != "renewing" || !strings.Contains(st.LastError, "HTTP 503") || st.Failures != i+1 {
			t.Fatalf("attempt %d: %+v", i+1, st)
		}
		delays = append(delays, st.NextAttempt.Sub(st.LastAttempt))
		st = r.next()
	}
	for i, d := range delays {
		want := min(MinRetry<<i, 6*time.Minute) // a tenth of the life
		if d < want*8/10-time.Second || d > want*12/10+time.Second {
			t.Errorf("delay %d: %v, want %v ± 20 %%", i+1, d, want)
		}
	}
	// Past the end of the certificate.
	cert := fileCert(t, r.e.cfg.Paths)
	st = r.advanceTo(cert.NotAfter.Add(time.Second))
	for st.LastAttempt.Before(cert.NotAfter) {
		st = r.next()
	}
	if st.State != "failing" || !strings.Contains(st.Detail, "expired at") || st.LastError == "" {
		t.Fatalf("expired: %+v", st)
	}
	if txt := st.Text(clk.Now()); !strings.Contains(txt, "EXPIRED") || !strings.Contains(txt, "HTTP 503") {
		t.Errorf("ca/status text:\n%s", txt)
	}
	es.down.Store(false)
	st = r.next()
	if st.State != "enrolled" || st.LastOp != "simpleenroll" || st.Issued != 2 {
		t.Fatalf("after the service came back: %+v", st)
	}
}

// At start, a certificate that is missing, expired, for another name or
// from another CA is replaced (with the token); a usable one is kept, and
// one the database does not name yet is published.
func TestStartRule(t *testing.T) {
	type setup func(t *testing.T, dir string, clk *clocktest.Fake, p Paths) Paths
	write := func(t *testing.T, p Paths, c *x509.Certificate, k *ecdsa.PrivateKey) {
		kp, _ := pki.EncodePrivateKey(k)
		if err := os.WriteFile(p.Cert, EncodeBundle([]*x509.Certificate{c}), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p.Key, kp, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	elsewhere := func(t *testing.T) Paths { return PathsIn(t.TempDir()) }
	for _, tc := range []struct {
		name      string
		setup     setup
		enrol     bool
		published int
		why       string
	}{
		{"missing", func(t *testing.T, _ string, _ *clocktest.Fake, _ Paths) Paths { return Paths{} }, true, 1, "cannot be read"},
		{"usable elsewhere", func(t *testing.T, dir string, clk *clocktest.Fake, _ Paths) Paths {
			q := elsewhere(t)
			c, k := issueDirect(t, dir, "ch1", clk.Now(), time.Hour)
			write(t, q, c, k)
			return q
		}, false, 0, ""},
		{"usable ours, not in the database", func(t *testing.T, dir string, clk *clocktest.Fake, p Paths) Paths {
			c, k := issueDirect(t, dir, "ch1", clk.Now(), time.Hour)
			write(t, p, c, k)
			return Paths{}
		}, false, 1, ""},
		{"expired", func(t *testing.T, dir string, clk *clocktest.Fake, p Paths) Paths {
			c, k := issueDirect(t, dir, "ch1", clk.Now().Add(-3*time.Hour), time.Hour)
			write(t, p, c, k)
			return p
		}, true, 0, "expired at"},
		{"another name", func(t *testing.T, dir string, clk *clocktest.Fake, p Paths) Paths {
			q := elsewhere(t)
			c, k := issueDirect(t, dir, "ch2", clk.Now(), time.Hour)
			write(t, q, c, k)
			return q
		}, true, 1, "not for this chassis"},
		{"another CA", func(t *testing.T, _ string, clk *clocktest.Fake, p Paths) Paths {
			c, k := issueDirect(t, newPKI(t), "ch1", clk.Now(), time.Hour)
			write(t, p, c, k)
			return p
		}, true, 0, "not signed by a CA the service publishes"},
		{"key of another certificate", func(t *testing.T, dir string, clk *clocktest.Fake, p Paths) Paths {
			c, _ := issueDirect(t, dir, "ch1", clk.Now(), time.Hour)
			_, k := issueDirect(t, dir, "ch1", clk.Now(), time.Hour)
			write(t, p, c, k)
			return p
		}, true, 0, "does not belong to certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newPKI(t)
			clk := newFake()
			es := startEST(t, dir, clk, Config{})
			tok := tokenFile(t, dir, clk, "ch1")
			p := PathsIn(t.TempDir())
			inUse := tc.setup(t, dir, clk, p)
			r := newRunner(t, es, "ch1", func(c *EnrollerConfig) { c.TokenFile, c.Paths, c.InUse = tok, p, inUse })
			r.start()
			st := r.e.Status()
			if st.State != "enrolled" {
				t.Fatalf("status %+v", st)
			}
			if got := es.count("simpleenroll"); (got == 1) != tc.enrol {
				t.Errorf("enrolments %d, want enrol=%v", got, tc.enrol)
			}
			if tc.enrol && !strings.Contains(r.log.String(), tc.why) {
				t.Errorf("the log does not say %q:\n%s", tc.why, r.log.String())
			}
			if got := r.publishedPaths(); len(got) != tc.published || (len(got) == 1 && got[0] != p) {
				t.Errorf("published %v, want %d times %v", got, tc.published, p)
			}
			if !tc.enrol && st.InUse != inUse && !inUse.IsZero() {
				t.Errorf("in use %v, want the database's %v", st.InUse, inUse)
			}
		})
	}
}

// Without a token, a chassis that needs a new certificate says how to
// get one; the status says the same.
func TestNoTokenSaysWhatToDo(t *testing.T) {
	dir := newPKI(t)
	clk := newFake()
	es := startEST(t, dir, clk, Config{})
	r := newRunner(t, es, "ch1", nil)
	r.start()
	st := r.e.Status()
	if st.State != "failing" || !strings.Contains(st.LastError, "ovnsec ca token create --chassis ch1") || !strings.Contains(st.LastError, "--enroll-token-file") {
		t.Fatalf("status %+v", st)
	}
	r.stop()
	// A used-up one-time token: 401 and what to do.
	tok := tokenFile(t, dir, clk, "ch1")
	r2 := newRunner(t, es, "ch1", func(c *EnrollerConfig) { c.TokenFile = tok })
	r2.start()
	r2.stop()
	r3 := newRunner(t, es, "ch1", func(c *EnrollerConfig) { c.TokenFile = tok })
	r3.start()
	if st := r3.e.Status(); !strings.Contains(st.LastError, "HTTP 401") || !strings.Contains(st.LastError, "used up") {
		t.Fatalf("a used token: %+v", st)
	}
}

// A renewal the service refuses (here: the chassis' certificate was made
// for a subject the service no longer accepts, simulated by refusing
// simplereenroll) falls back to the bootstrap token.
func TestReenrolRefusedFallsBackToToken(t *testing.T) {
	dir := newPKI(t)
	clk := newFake()
	es := startEST(t, dir, clk, Config{Lifetime: time.Hour})
	tok, _, _ := NewTokenStore(dir, clk).Create("ch1", 24*time.Hour, true)
	tf := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tf, []byte(tok.Secret()), 0o600)
	r := newRunner(t, es, "ch1", func(c *EnrollerConfig) { c.TokenFile = tf })
	r.start()
	h := es.srv.Handler()
	es.setOverride(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasSuffix(req.URL.Path, "simplereenroll") {
			writeError(w, http.StatusForbidden, "refused: for the test")
			return
		}
		h.ServeHTTP(w, req)
	})
	st := r.renewNow()
	if st.Issued != 2 || st.LastOp != "simpleenroll" || st.State != "enrolled" {
		t.Fatalf("status %+v", st)
	}
	if !strings.Contains(r.log.String(), "renewal with the current certificate refused; enrolling with the bootstrap token") {
		t.Errorf("log:\n%s", r.log.String())
	}
}

// A database that cannot be updated is tried again; the certificate is
// not enrolled twice for it.
func TestPublishRetried(t *testing.T) {
	fails := 2
	es, r := func() (*estServer, *runner) {
		dir := newPKI(t)
		clk := newFake()
		es := startEST(t, dir, clk, Config{})
		tok := tokenFile(t, dir, clk, "ch1")
		r := newRunner(t, es, "ch1", func(c *EnrollerConfig) {
			c.TokenFile = tok
			pub := c.Publish
			c.Publish = func(ctx context.Context, p Paths) error {
				if fails > 0 {
					fails--
					return errors.New("ovsdb-server is away")
				}
				return pub(ctx, p)
			}
		})
		r.start()
		return es, r
	}()
	st := r.e.Status()
	if st.State != "renewing" || !strings.Contains(st.LastError, "could not be pointed at it: ovsdb-server is away") {
		t.Fatalf("status %+v", st)
	}
	st = r.next()
	st = r.next()
	if st.State != "enrolled" || len(r.publishedPaths()) != 1 || es.count("simpleenroll") != 1 {
		t.Fatalf("status %+v, published %v, enrolments %d", st, r.publishedPaths(), es.count("simpleenroll"))
	}
}

// A CA rollover: the chassis trusts both CAs at its next check, renews
// under the new CA one check interval later (so that its peers have the
// new CA by then), keeps both while the old one is published, and drops
// the old one from its bundle when the service retires it.
func TestCARollover(t *testing.T) {
	dir := newPKI(t)
	clk := newFake()
	es := startEST(t, dir, clk, Config{Lifetime: 6 * time.Hour})
	tok := tokenFile(t, dir, clk, "ch1")
	r := newRunner(t, es, "ch1", func(c *EnrollerConfig) { c.TokenFile = tok })
	r.start()
	oldCA := caCerts(t, dir)[0]
	res, err := (pki.Dir{Path: dir, Env: pki.Env{Now: clk.Now}}).Rollover(pki.RolloverOptions{Overlap: 8 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	st := r.next()
	p := r.e.cfg.Paths
	bundle, _ := pki.LoadCertificates(p.CA)
	if len(bundle) != 2 || !bundle[0].Equal(res.New) || !bundle[1].Equal(oldCA) || len(st.CAs) != 2 {
		t.Fatalf("bundle after the rollover: %d certificates", len(bundle))
	}
	if st.Issued != 1 || fileCert(t, p).CheckSignatureFrom(oldCA) != nil {
		t.Fatal("renewed at once")
	}
	seen := st.LastAttempt
	st = r.next()
	if st.Issued != 2 || st.LastAttempt.Sub(seen) != time.Hour || st.LastOp != "simplereenroll" {
		t.Fatalf("not renewed one check interval (an hour) after the new CA appeared: %+v", st)
	}
	if c := fileCert(t, p); c.CheckSignatureFrom(res.New) != nil || !strings.Contains(st.Certificate.Issuer, res.New.Subject.CommonName) {
		t.Fatal("the renewed certificate is not from the new CA")
	}
	// No more renewals for the rollover.
	st = r.next()
	if st.Issued != 2 {
		t.Fatalf("renewed again: %+v", st)
	}
	// Retirement: the old CA leaves the bundle.
	for st.LastAttempt.Before(res.Retire) {
		st = r.next()
	}
	bundle, _ = pki.LoadCertificates(p.CA)
	if len(bundle) != 1 || !bundle[0].Equal(res.New) || len(st.CAs) != 1 || st.State != "enrolled" {
		t.Fatalf("bundle after the retirement: %d certificates; status %+v", len(bundle), st)
	}
}

// A chassis that trusted the CA by its fingerprint keeps working from its
// bundle after that CA retired (the service no longer publishes it), also
// after a restart; a service whose CA changed while the chassis was away
// is found again by the fingerprint of the new CA.
func TestFingerprintAfterRetirement(t *testing.T) {
	dir := newPKI(t)
	clk := newFake()
	es := startEST(t, dir, clk, Config{Lifetime: 6 * time.Hour})
	tok := tokenFile(t, dir, clk, "ch1")
	fp := FingerprintOf(caCerts(t, dir)[0])
	p := PathsIn(t.TempDir())
	r := newRunner(t, es, "ch1", func(c *EnrollerConfig) { c.TokenFile, c.Paths, c.Trust = tok, p, Trust{Fingerprint: &fp} })
	r.start()
	res, err := (pki.Dir{Path: dir, Env: pki.Env{Now: clk.Now}}).Rollover(pki.RolloverOptions{Overlap: 6 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	st := r.e.Status()
	for st.LastAttempt.Before(res.Retire) {
		st = r.next()
	}
	if b, _ := pki.LoadCertificates(p.CA); len(b) != 1 || !b[0].Equal(res.New) || st.State != "enrolled" {
		t.Fatalf("after the retirement: status %+v", st)
	}
	r.stop()
	r2 := newRunner(t, es, "ch1", func(c *EnrollerConfig) { c.Paths, c.InUse, c.Trust = p, p, Trust{Fingerprint: &fp} })
	r2.start()
	// (It may renew, with its certificate: its plan may have come.)
	if st := r2.e.Status(); st.State != "enrolled" || st.LastError != "" || st.LastOp == "simpleenroll" {
		t.Fatalf("restarted with the retired CA's fingerprint: %+v", st)
	}
	r2.stop()
	// A new CA altogether (pki init --force) while away: the bundle no
	// longer authenticates the service, the new fingerprint does, and
	// the old certificate is replaced with a new token.
	if err := (pki.Dir{Path: dir, Env: pki.Env{Now: clk.Now}}).Init(pki.InitOptions{Force: true, Key: pki.KeySpec{Type: pki.KeyECDSA}}); err != nil {
		t.Fatal(err)
	}
	fresh := FingerprintOf(caCerts(t, dir)[0])
	tok2 := tokenFile(t, dir, clk, "ch1")
	r3 := newRunner(t, es, "ch1", func(c *EnrollerConfig) {
		c.Paths, c.InUse, c.TokenFile, c.Trust = p, p, tok2, Trust{Fingerprint: &fresh}
	})
	r3.start()
	if st := r3.e.Status(); st.State != "enrolled" || st.Issued != 1 || st.LastOp != "simpleenroll" {
		t.Fatalf("with a new CA's fingerprint: %+v", st)
	}
}
