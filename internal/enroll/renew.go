// Stage: the chassis' certificate over time. An Enroller keeps one chassis
// enrolled with the CA service, on the injected clock:
//
//   - every check fetches cacerts (over TLS verified with the CA bundle it
//     already has and the operator's first-contact trust) and rewrites the
//     CA bundle when the answer changed: during a CA rollover it holds the
//     old and the new CA, after the retirement only the new one;
//   - the certificate in use is replaced at once when it is missing,
//     unreadable, not for this key, expired, not yet valid, for another
//     name or not signed by a CA the service publishes: with
//     simpleenroll and the bootstrap token;
//   - it is renewed (simplereenroll over mutual TLS with itself) at a
//     jittered two thirds of its life, and when a new CA issues
//     certificates: once one check interval after the new CA first
//     appeared, so that the other chassis have fetched it and accept the
//     new certificate in new IKE SAs;
//   - every new key is made here (ECDSA P-256) and every answer checked
//     (CheckIssued) before the key, certificate and bundle are written
//     under the same paths, each atomically; the credentials component
//     notices and the backends follow without tearing SAs down;
//   - a failed attempt is retried with a growing, jittered delay.
//
// Checks come every sixth of the certificate's life (between 10 s and an
// hour), and the status (Status) says what happened and what comes next.

package enroll

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/pki"
)

// Timing of the Enroller.
const (
	// RenewFracMin and RenewFracMax bound the share of a certificate's
	// life after which it is renewed; each certificate's point is taken
	// from its fingerprint, so chassis do not all renew at once and a
	// restart keeps the plan.
	RenewFracMin = 0.62
	RenewFracMax = 0.71
	// MinCheck and MaxCheck bound the interval between cacerts checks
	// (a sixth of the certificate's life).
	MinCheck = 10 * time.Second
	MaxCheck = time.Hour
	// MinRetry and MaxRetry bound the delay after a failed attempt; it
	// doubles with every failure (and never exceeds a tenth of the
	// certificate's life while the certificate is usable).
	MinRetry = 5 * time.Second
	MaxRetry = 5 * time.Minute
)

// EnrollerConfig configures an Enroller. Client, Name, Paths and Trust are
// required.
type EnrollerConfig struct {
	Client *Client
	// Name is the chassis name (Open_vSwitch external_ids:system-id).
	Name string
	// Paths are the files the enroller writes.
	Paths Paths
	// InUse are the files the database names now (other_config); zero
	// when it names none.
	InUse Paths
	Trust Trust
	// TokenFile holds the bootstrap token ("" when there is none).
	TokenFile string
	// Publish makes the database name p (other_config:certificate,
	// private_key, ca_cert); nil: nothing is published.
	Publish func(ctx context.Context, p Paths) error
	Clock   clock.Clock
	Log     *slog.Logger
}

// Enroller keeps a chassis enrolled. Run runs it; Status and RenewNow may
// be called from any goroutine.
type Enroller struct {
	cfg   EnrollerConfig
	clock clock.Clock
	log   *slog.Logger
	wake  chan struct{}
	force atomic.Bool

	mu sync.Mutex
	st Status

	// Owned by Run.
	inUse   Paths // the files in use
	dbPaths Paths // what the database names, as far as we know
	cert    *x509.Certificate
	key     crypto.Signer
	certErr string    // why the files in use cannot be read
	start   time.Time // when the certificate's life began for us
	bundle  []*x509.Certificate
	anchor  *x509.Certificate // the CA the fingerprint found
	// caChange is when cacerts first named a CA the bundle lacked;
	// zero when no renewal is pending for it.
	caChange time.Time
	failures int
	issued   int
}

// NewEnroller checks cfg and returns an Enroller.
func NewEnroller(cfg EnrollerConfig) (*Enroller, error) {
	if cfg.Client == nil {
		return nil, errors.New("enroll: no CA service client")
	}
	if err := pki.ValidateName(cfg.Name); err != nil {
		return nil, fmt.Errorf("enroll: chassis name (Open_vSwitch external_ids:system-id): %w", err)
	}
	if cfg.Paths.Cert == "" || cfg.Paths.Key == "" || cfg.Paths.CA == "" {
		return nil, errors.New("enroll: the certificate, key and CA bundle paths are required")
	}
	if err := cfg.Trust.Check(); err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	e := &Enroller{cfg: cfg, clock: clock.Or(cfg.Clock), log: cfg.Log, wake: make(chan struct{}, 1)}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.inUse, e.dbPaths = cfg.InUse, cfg.InUse
	if e.inUse.Cert == "" {
		e.inUse = cfg.Paths
	}
	e.st = Status{Server: cfg.Client.URL(), Chassis: cfg.Name, State: "starting", Paths: cfg.Paths, InUse: e.inUse}
	return e, nil
}

// Status returns the current status.
func (e *Enroller) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.st
	s.CAs = slices.Clone(s.CAs)
	if s.Certificate != nil {
		c := *s.Certificate
		s.Certificate = &c
	}
	return s
}

// RenewNow asks for a renewal at once (ovs-appctl ca/renew).
func (e *Enroller) RenewNow() {
	e.force.Store(true)
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Run keeps the chassis enrolled until ctx ends.
func (e *Enroller) Run(ctx context.Context) error {
	e.load()
	e.log.Info("automatic certificates: following the CA service", "server", e.cfg.Client.URL(), "chassis", e.cfg.Name,
		"certificate", e.inUse.Cert, "dir_files", e.cfg.Paths)
	for {
		next := e.step(ctx)
		if ctx.Err() != nil {
			return nil
		}
		e.wait(ctx, next)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// wait returns at until, on RenewNow or when ctx ends.
func (e *Enroller) wait(ctx context.Context, until time.Time) {
	d := until.Sub(e.clock.Now())
	if d <= 0 {
		return
	}
	ch := make(chan struct{}, 1)
	t := e.clock.AfterFunc(d, func() { ch <- struct{}{} })
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-ch:
	case <-e.wake:
	}
}

// load reads the files in use and the CA bundle.
func (e *Enroller) load() {
	now := e.clock.Now()
	e.cert, e.key, e.certErr = nil, nil, ""
	certs, err := pki.LoadCertificates(e.inUse.Cert)
	switch {
	case err != nil:
		e.certErr = fmt.Sprintf("certificate %s cannot be read: %v", e.inUse.Cert, err)
	default:
		key, kerr := pki.LoadPrivateKey(e.inUse.Key)
		if kerr != nil {
			e.certErr = fmt.Sprintf("private key %s cannot be read: %v", e.inUse.Key, kerr)
			break
		}
		e.cert, e.key = certs[0], privateKey{key}
		e.start = e.cert.NotBefore
		if st, err := os.Stat(e.inUse.Cert); err == nil && st.ModTime().After(e.start) {
			e.start = minTime(st.ModTime(), now)
		}
	}
	if b, err := pki.LoadCertificates(e.cfg.Paths.CA); err == nil {
		e.bundle = CABundle(b)
	}
	e.mu.Lock()
	e.st.Certificate = certStatus(e.cert)
	e.st.CAs = casStatus(e.bundle)
	e.mu.Unlock()
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func casStatus(cas []*x509.Certificate) []CertStatus {
	var out []CertStatus
	for _, c := range cas {
		out = append(out, *certStatus(c))
	}
	return out
}

// step makes one attempt and returns when the next is due.
func (e *Enroller) step(ctx context.Context) time.Time {
	now := e.clock.Now()
	op, err := e.attempt(ctx, now)
	done := e.clock.Now()
	var next time.Time
	if err != nil {
		if ctx.Err() != nil {
			return done
		}
		e.failures++
		delay := e.retryDelay()
		next = done.Add(delay)
		e.log.Warn("automatic certificates: attempt failed", "op", op, "err", err, "retry_in", delay.Round(time.Second), "failures", e.failures)
	} else {
		e.failures = 0
		next = e.nextCheck(done)
		e.log.Debug("automatic certificates: checked", "op", op, "next", next)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	s := &e.st
	s.LastAttempt, s.LastOp, s.NextAttempt, s.Failures, s.Issued = now, op, next, e.failures, e.issued
	s.Attempts++
	s.InUse = e.inUse
	s.Certificate = certStatus(e.cert)
	s.CAs = casStatus(e.bundle)
	s.NextRenewal = time.Time{}
	if e.cert != nil {
		s.NextRenewal = e.renewAt()
	}
	if err == nil {
		s.LastSuccess, s.LastError = done, ""
	} else {
		s.LastError = err.Error()
	}
	why := e.problem(done, e.bundle)
	switch {
	case why != "":
		s.State, s.Detail = "failing", why
		if err == nil {
			s.Detail += "; the next attempt replaces it"
		}
	case err != nil:
		s.State, s.Detail = "renewing", fmt.Sprintf("the certificate is valid until %s; retrying", e.cert.NotAfter.UTC().Format(time.RFC3339))
	default:
		s.State, s.Detail = "enrolled", ""
	}
	return next
}

// attempt checks cacerts and replaces or renews the certificate when it
// must. op is the last EST operation tried.
func (e *Enroller) attempt(ctx context.Context, now time.Time) (op string, err error) {
	roots, err := e.roots(ctx)
	if err != nil {
		return "cacerts", err
	}
	published, err := e.cfg.Client.CACerts(ctx, roots)
	var unknown x509.UnknownAuthorityError
	if err != nil && e.cfg.Trust.Fingerprint != nil && e.anchor == nil && errors.As(err, &unknown) {
		// The bundle no longer authenticates the service (a new CA while
		// this chassis was away): the operator's fingerprint may.
		ca, berr := e.cfg.Client.Bootstrap(ctx, *e.cfg.Trust.Fingerprint)
		if berr != nil {
			return "cacerts", fmt.Errorf("%w; and by the CA fingerprint: %v", err, berr)
		}
		e.anchor = ca
		roots = append(roots, ca)
		published, err = e.cfg.Client.CACerts(ctx, roots)
	}
	if err != nil {
		return "cacerts", err
	}
	bundle := CABundle(published)
	if len(bundle) == 0 {
		return "cacerts", fmt.Errorf("the CA service's cacerts answer holds %d certificates and no self-signed CA certificate; is %s an EST CA service for chassis?", len(published), e.cfg.Client.URL())
	}
	if err := e.updateBundle(now, bundle); err != nil {
		return "cacerts", err
	}
	why := e.problem(now, bundle)
	if why == "" {
		why = e.due(now, bundle)
	}
	if why != "" {
		return e.renew(ctx, roots, bundle, why)
	}
	if e.inUse == e.cfg.Paths && e.dbPaths != e.cfg.Paths {
		if err := e.publish(ctx); err != nil {
			return "cacerts", err
		}
	}
	return "cacerts", nil
}

// roots are the CA certificates that authenticate the CA service: the CA
// bundle and the first-contact trust. The fingerprint is looked up only
// when there is nothing else (a first contact): once the CA it names has
// retired, the service no longer publishes it, and the bundle carries on.
func (e *Enroller) roots(ctx context.Context) ([]*x509.Certificate, error) {
	roots := slices.Clone(e.bundle)
	roots = append(roots, e.cfg.Trust.Anchors...)
	if fp := e.cfg.Trust.Fingerprint; fp != nil {
		if e.anchor == nil && len(roots) == 0 {
			ca, err := e.cfg.Client.Bootstrap(ctx, *fp)
			if err != nil {
				return nil, err
			}
			e.log.Info("automatic certificates: first contact authenticated by the CA fingerprint", "ca", ca.Subject.String(), "sha256", fp.String())
			e.anchor = ca
		}
		if e.anchor != nil {
			roots = append(roots, e.anchor)
		}
	}
	return roots, nil
}

// updateBundle writes the CA bundle when cacerts changed, and notes a new
// CA (a rollover) for a renewal under it.
func (e *Enroller) updateBundle(now time.Time, bundle []*x509.Certificate) error {
	if sameBundle(e.bundle, bundle) {
		return nil
	}
	if err := writeFileAtomic(e.cfg.Paths.CA, EncodeBundle(bundle), 0o644); err != nil {
		return fmt.Errorf("CA bundle: %w", err)
	}
	added := gained(e.bundle, bundle)
	old := e.bundle
	e.bundle = bundle
	var subjects []string
	for _, c := range bundle {
		subjects = append(subjects, c.Subject.String())
	}
	if len(old) > 0 && len(added) > 0 {
		e.caChange = now
		e.log.Info("automatic certificates: the CA service publishes a new CA; the certificate is renewed under it after one check interval", "file", e.cfg.Paths.CA, "cas", subjects, "renew_after", e.checkInterval())
	} else {
		e.log.Info("automatic certificates: CA bundle written", "file", e.cfg.Paths.CA, "cas", subjects)
	}
	return nil
}

// problem says why the certificate in use must be replaced now ("" when
// it is usable): the identity and validity checks of the start
// rule, and a chain to the bundle (when there is one).
func (e *Enroller) problem(now time.Time, bundle []*x509.Certificate) string {
	c := e.cert
	if c == nil {
		if e.certErr != "" {
			return e.certErr
		}
		return "no certificate"
	}
	if p, ok := e.key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !p.Equal(c.PublicKey) {
		return fmt.Sprintf("private key %s does not belong to certificate %s", e.inUse.Key, e.inUse.Cert)
	}
	if now.Before(c.NotBefore) {
		return fmt.Sprintf("certificate %s is not valid before %s", e.inUse.Cert, c.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(c.NotAfter) {
		return fmt.Sprintf("certificate %s expired at %s", e.inUse.Cert, c.NotAfter.UTC().Format(time.RFC3339))
	}
	if cn, ok := pki.OVSCommonName(c); !ok || cn != e.cfg.Name || !slices.Equal(c.DNSNames, []string{e.cfg.Name}) {
		return fmt.Sprintf("certificate %s is for %q (SAN DNS %v), not for this chassis %q", e.inUse.Cert, c.Subject.CommonName, c.DNSNames, e.cfg.Name)
	}
	if len(bundle) > 0 {
		if err := verifyChain(c, bundle, now); err != nil {
			return fmt.Sprintf("certificate %s is %v", e.inUse.Cert, err)
		}
	}
	return ""
}

// due says why a usable certificate is to be renewed now ("" when not).
func (e *Enroller) due(now time.Time, bundle []*x509.Certificate) string {
	if e.force.Load() {
		return "renewal asked for"
	}
	if !e.caChange.IsZero() {
		if issuedBy(e.cert, bundle[0]) {
			e.caChange = time.Time{}
		} else if !now.Before(e.caChange.Add(e.checkInterval())) {
			return fmt.Sprintf("a new CA issues certificates (%s)", bundle[0].Subject.String())
		}
	}
	if !now.Before(e.renewAt()) {
		return "two thirds of its life have passed"
	}
	return ""
}

// issuedBy reports whether ca signed c.
func issuedBy(c, ca *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, ca.RawSubject) && c.CheckSignatureFrom(ca) == nil
}

// renew replaces the certificate: simplereenroll with the current one when
// it is usable, else (or when the service refuses it) simpleenroll with
// the bootstrap token.
func (e *Enroller) renew(ctx context.Context, roots, bundle []*x509.Certificate, why string) (op string, err error) {
	name := e.cfg.Name
	k, err := pki.GenerateKey(pki.KeySpec{Type: pki.KeyECDSA}, nil)
	if err != nil {
		return "simpleenroll", err
	}
	key := privateKey{k}
	var issued *x509.Certificate
	if e.problem(e.clock.Now(), bundle) == "" {
		op = "simplereenroll"
		csr, err := NewRequest(key, name, e.cert.RawSubject)
		if err != nil {
			return op, err
		}
		cur := tls.Certificate{Certificate: [][]byte{e.cert.Raw}, PrivateKey: e.key.(privateKey).Signer, Leaf: e.cert}
		issued, err = e.cfg.Client.Reenroll(ctx, roots, csr, cur)
		var re *RefusedError
		switch {
		case err == nil:
		case errors.As(err, &re) && re.AuthRefused() && e.cfg.TokenFile != "":
			e.log.Warn("automatic certificates: renewal with the current certificate refused; enrolling with the bootstrap token", "err", err)
		default:
			return op, fmt.Errorf("renew (%s): %w", why, err)
		}
	}
	if issued == nil {
		op = "simpleenroll"
		if e.cfg.TokenFile == "" {
			return op, fmt.Errorf("a new certificate is needed (%s) and no bootstrap token is configured: make one with ovnsec ca token create --chassis %s and give it with --enroll-token-file", why, name)
		}
		tok, err := ReadTokenFile(e.cfg.TokenFile)
		if err != nil {
			return op, fmt.Errorf("a new certificate is needed (%s): %w", why, err)
		}
		csr, err := NewRequest(key, name, nil)
		if err != nil {
			return op, err
		}
		issued, err = e.cfg.Client.Enroll(ctx, roots, csr, name, tok)
		var re *RefusedError
		if errors.As(err, &re) && re.Status == 401 {
			return op, fmt.Errorf("enrol (%s): %w; the token in %s is wrong, used up, expired or revoked: make a new one (ovnsec ca token create --chassis %s) and write it there", why, err, e.cfg.TokenFile, name)
		}
		if err != nil {
			return op, fmt.Errorf("enrol (%s): %w", why, err)
		}
	}
	now := e.clock.Now()
	if err := CheckIssued(issued, name, key.Public(), bundle, now); err != nil {
		return op, fmt.Errorf("refusing what the CA service issued: %w", err)
	}
	keyPEM, err := pki.EncodePrivateKey(key.Signer)
	if err != nil {
		return op, err
	}
	defer clear(keyPEM)
	if err := writeFilesAtomic([]fileOut{
		{path: e.cfg.Paths.Key, data: keyPEM, mode: 0o600},
		{path: e.cfg.Paths.Cert, data: EncodeBundle([]*x509.Certificate{issued}), mode: 0o644},
	}); err != nil {
		return op, err
	}
	e.cert, e.key, e.certErr, e.start, e.inUse = issued, key, "", now, e.cfg.Paths
	e.caChange = time.Time{}
	e.force.Store(false)
	e.issued++
	e.log.Info("automatic certificates: certificate issued", "op", op, "why", why, "subject", issued.Subject.String(),
		"issuer", issued.Issuer.String(), "serial", pki.FormatSerial(issued.SerialNumber),
		"not_after", issued.NotAfter.UTC().Format(time.RFC3339), "next_renewal", e.renewAt().UTC().Format(time.RFC3339), "file", e.cfg.Paths.Cert)
	if e.dbPaths != e.cfg.Paths {
		if err := e.publish(ctx); err != nil {
			return op, err
		}
	}
	return op, nil
}

// publish makes the database name the enroller's files.
func (e *Enroller) publish(ctx context.Context) error {
	if e.cfg.Publish == nil {
		e.dbPaths = e.cfg.Paths
		return nil
	}
	if err := e.cfg.Publish(ctx, e.cfg.Paths); err != nil {
		return fmt.Errorf("certificate written to %s, but the database could not be pointed at it: %w", e.cfg.Paths.Cert, err)
	}
	e.log.Info("automatic certificates: Open_vSwitch other_config now names the enrolled files", "certificate", e.cfg.Paths.Cert,
		"private_key", e.cfg.Paths.Key, "ca_cert", e.cfg.Paths.CA, "before", e.dbPaths)
	e.dbPaths = e.cfg.Paths
	return nil
}

// life is the certificate's life from when it began for us.
func (e *Enroller) life() time.Duration {
	if e.cert == nil {
		return 0
	}
	return e.cert.NotAfter.Sub(e.start)
}

// renewAt is when the certificate in use is due for renewal.
func (e *Enroller) renewAt() time.Time {
	return e.start.Add(time.Duration(float64(e.life()) * renewFrac(e.cert)))
}

// renewFrac is the certificate's renewal point, from its fingerprint.
func renewFrac(c *x509.Certificate) float64 {
	h := sha256.Sum256(c.Raw)
	u := float64(binary.BigEndian.Uint64(h[:8])) / float64(math.MaxUint64)
	return RenewFracMin + (RenewFracMax-RenewFracMin)*u
}

// checkInterval is the time between cacerts checks.
func (e *Enroller) checkInterval() time.Duration {
	l := e.life()
	if l <= 0 {
		return time.Minute
	}
	return min(max(l/6, MinCheck), MaxCheck)
}

// nextCheck is when the next attempt is due after a successful one.
func (e *Enroller) nextCheck(now time.Time) time.Time {
	next := now.Add(e.checkInterval())
	if e.cert != nil {
		if r := e.renewAt(); r.Before(next) {
			next = r
		}
		if !e.caChange.IsZero() {
			if r := e.caChange.Add(e.checkInterval()); r.Before(next) {
				next = r
			}
		}
	}
	return maxTime(next, now.Add(time.Second))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// retryDelay is the delay after e.failures failures in a row: MinRetry
// doubling up to MaxRetry (a tenth of the certificate's life while it
// is still usable, so that a renewal has several chances), ±20 %.
func (e *Enroller) retryDelay() time.Duration {
	limit := MaxRetry
	if e.problem(e.clock.Now(), e.bundle) == "" {
		limit = min(MaxRetry, max(MinRetry, e.life()/10))
	}
	d := MinRetry
	for i := 1; i < e.failures && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// fileOut is one file to write.
type fileOut struct {
	path string
	data []byte
	mode os.FileMode
}

// writeFilesAtomic writes every file to a temporary file first and then
// renames them into place in order, so that a failure before the renames
// changes nothing.
func writeFilesAtomic(outs []fileOut) error {
	tmps := make([]string, 0, len(outs))
	defer func() {
		for _, t := range tmps {
			if t != "" {
				os.Remove(t)
			}
		}
	}()
	for _, o := range outs {
		t, err := writeTemp(o)
		if err != nil {
			return err
		}
		tmps = append(tmps, t)
	}
	for i, o := range outs {
		if err := os.Rename(tmps[i], o.path); err != nil {
			return fmt.Errorf("write %s: %w", o.path, err)
		}
		tmps[i] = ""
	}
	for _, o := range outs {
		syncDir(filepath.Dir(o.path))
	}
	return nil
}
