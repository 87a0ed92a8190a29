// Stage: the EST server. HTTPS under /.well-known/est/: cacerts (GET),
// simpleenroll and simplereenroll (POST of a base64 PKCS#10 request,
// answered with a base64 PKCS#7 certs-only holding the new certificate).
// Each request is authenticated, checked against the identity rules (and
// the Southbound database when configured), and only then signed; every
// decision is logged with its reason, and a refusal is an HTTP error whose
// body says why.

package enroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/pki"
)

// DefaultLifetime is the validity of issued certificates.
const DefaultLifetime = 90 * 24 * time.Hour

// MinLifetime is the shortest certificate lifetime a server accepts.
const MinLifetime = time.Minute

// PathPrefix is where the EST operations live (RFC 7030 section 3.2.2).
const PathPrefix = "/.well-known/est/"

// chassisTimeout bounds one Southbound lookup.
const chassisTimeout = 10 * time.Second

// Config configures a Server. Dir is required; zero values of the rest
// take the defaults.
type Config struct {
	// Dir is the ovs-pki directory; its switch CA signs.
	Dir string
	// Store gives the CA certificates (NewDirStore(Dir) when nil).
	Store CAStore
	// Tokens are the bootstrap tokens (NewTokenStore(Dir) when nil).
	Tokens *TokenStore
	// Chassis, when set, must know every enrolling chassis (--sb-db).
	Chassis ChassisLookup
	// CheckSource, with Chassis, requires the request to come from one
	// of the chassis' Encap IPs.
	CheckSource bool
	// Lifetime of issued certificates (DefaultLifetime).
	Lifetime time.Duration
	Log      *slog.Logger
	Clock    clock.Clock
}

// Server is the EST CA service.
type Server struct {
	dir         pki.Dir
	store       CAStore
	tokens      *TokenStore
	chassis     ChassisLookup
	checkSource bool
	lifetime    time.Duration
	log         *slog.Logger
	clock       clock.Clock

	tlsMu   sync.Mutex
	tlsCert *tls.Certificate
	// tlsIssued is when tlsCert was issued (its NotBefore is backdated).
	tlsIssued time.Time
}

// NewServer checks cfg and the CA (it must load) and returns a Server.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("enroll: no PKI directory")
	}
	c := clock.Or(cfg.Clock)
	s := &Server{
		dir:         pki.Dir{Path: cfg.Dir, Env: pki.Env{Now: c.Now}},
		store:       cfg.Store,
		tokens:      cfg.Tokens,
		chassis:     cfg.Chassis,
		checkSource: cfg.CheckSource,
		lifetime:    cfg.Lifetime,
		log:         cfg.Log,
		clock:       c,
	}
	if s.store == nil {
		s.store = NewDirStore(cfg.Dir, c)
	}
	if s.tokens == nil {
		s.tokens = NewTokenStore(cfg.Dir, c)
	}
	if s.lifetime == 0 {
		s.lifetime = DefaultLifetime
	}
	// Lifetimes of minutes are for tests and demos of renewal; chassis
	// check every sixth of the life, so shorter ones would be noise.
	if s.lifetime < MinLifetime {
		return nil, fmt.Errorf("enroll: certificate lifetime %v is shorter than %v", s.lifetime, MinLifetime)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if _, err := s.store.CAs(); err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	return s, nil
}

// Handler serves the EST operations.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(PathPrefix+"cacerts", s.cacerts)
	mux.HandleFunc(PathPrefix+"simpleenroll", func(w http.ResponseWriter, r *http.Request) { s.enroll(w, r, false) })
	mux.HandleFunc(PathPrefix+"simplereenroll", func(w http.ResponseWriter, r *http.Request) { s.enroll(w, r, true) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s is not an EST operation of this server; use %scacerts, %ssimpleenroll or %ssimplereenroll", r.URL.Path, PathPrefix, PathPrefix, PathPrefix))
	})
	return mux
}

// writeError sends a refusal: status and one line of text saying why.
func writeError(w http.ResponseWriter, status int, reason string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintf(w, "%s\n", reason)
}

// writeCerts sends certificates as a base64 certs-only PKCS#7.
func writeCerts(w http.ResponseWriter, r *http.Request, certs []*x509.Certificate) error {
	body, err := EncodeCertsOnlyBase64(certs)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", MediaCertsOnly)
	h.Set("Content-Transfer-Encoding", "base64")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	return nil
}

// sourceAddr is the request's peer address.
func sourceAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func (s *Server) cacerts(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "cacerts takes GET")
		return
	}
	set, err := s.store.CAs()
	if err != nil {
		s.log.Error("cacerts: CA not usable", "err", err)
		writeError(w, http.StatusInternalServerError, "the CA cannot be read; see the server's log")
		return
	}
	if err := writeCerts(w, r, set.Published()); err != nil {
		s.log.Error("cacerts", "err", err)
		writeError(w, http.StatusInternalServerError, "cannot encode the CA certificates")
	}
}

// enroll serves simpleenroll (re false) and simplereenroll (re true).
func (s *Server) enroll(w http.ResponseWriter, r *http.Request, re bool) {
	op := "simpleenroll"
	if re {
		op = "simplereenroll"
	}
	src := sourceAddr(r)
	var id Identity
	fail := func(err error) {
		status := statusOf(err)
		reason := err.Error()
		if status == http.StatusInternalServerError {
			s.log.Error("enrolment failed", "op", op, "chassis", id.Chassis, "auth", id.Method, "token", id.Token.ID(), "source", src, "err", err)
			reason = "internal error: " + reason
		} else {
			s.log.Warn("enrolment refused", "op", op, "chassis", id.Chassis, "auth", id.Method, "token", id.Token.ID(), "source", src, "status", status, "reason", reason)
		}
		if status == http.StatusUnauthorized && !re {
			w.Header().Set("WWW-Authenticate", `Basic realm="ovnsec EST", charset="UTF-8"`)
		}
		writeError(w, status, "refused: "+reason)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		fail(refuse(http.StatusMethodNotAllowed, "%s takes POST", op))
		return
	}
	set, err := s.store.CAs()
	if err != nil {
		fail(fmt.Errorf("the CA cannot be read: %w", err))
		return
	}
	id, err = s.authenticate(r, set, re)
	if err != nil {
		fail(err)
		return
	}
	if err := checkRequestType(r.Header.Get("Content-Type")); err != nil {
		fail(refuse(http.StatusUnsupportedMediaType, "%v", err))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			fail(refuse(http.StatusRequestEntityTooLarge, "the body is larger than %d bytes", MaxRequestBody))
		} else {
			fail(refuse(http.StatusBadRequest, "reading the body: %v", err))
		}
		return
	}
	csr, err := ParseRequestBody(body)
	if err != nil {
		fail(refuse(http.StatusBadRequest, "%v", err))
		return
	}
	if err := CheckRequest(csr, id.Chassis); err != nil {
		fail(err)
		return
	}
	if re && !pki.SameName(csr.RawSubject, id.Cert.RawSubject) {
		fail(refuse(http.StatusForbidden, "the request's subject %q is not the current certificate's subject %q; a renewal keeps the subject (RFC 7030 section 4.2.2)", csr.Subject.String(), id.Cert.Subject.String()))
		return
	}
	if err := s.checkChassis(r.Context(), id.Chassis, src); err != nil {
		fail(err)
		return
	}
	var cert *x509.Certificate
	issue := func() error {
		var err error
		cert, err = s.issue(set, id.Chassis, csr)
		return err
	}
	if id.Method == AuthToken {
		err = s.tokens.Use(id.Chassis, id.Token, issue)
	} else {
		err = issue()
	}
	if err != nil {
		fail(err)
		return
	}
	s.log.Info("certificate issued", "op", op, "chassis", id.Chassis, "auth", id.Method, "token", id.Token.ID(), "source", src,
		"serial", pki.FormatSerial(cert.SerialNumber), "not_after", cert.NotAfter.UTC().Format(time.RFC3339), "key", keyDesc(cert.PublicKey))
	if err := writeCerts(w, r, []*x509.Certificate{cert}); err != nil {
		s.log.Error("write answer", "op", op, "chassis", id.Chassis, "err", err)
	}
}

// authenticate finds who the request is from. simplereenroll needs the
// chassis' current certificate (mutual TLS); simpleenroll takes a
// bootstrap token (HTTP Basic: user name = chassis name, password =
// token) or, without one, a client certificate this CA issued.
func (s *Server) authenticate(r *http.Request, set *CASet, re bool) (Identity, error) {
	var peer []*x509.Certificate
	if r.TLS != nil {
		peer = r.TLS.PeerCertificates
	}
	user, pass, basic := r.BasicAuth()
	if basic && !re {
		id := Identity{Method: AuthToken, Token: Token(pass)}
		if err := pki.ValidateName(user); err != nil {
			return id, refuse(http.StatusUnauthorized, "the Basic user name must be the chassis name: %v", err)
		}
		id.Chassis = user
		if err := s.tokens.Check(user, id.Token); err != nil {
			if errors.Is(err, ErrToken) {
				return id, refuse(http.StatusUnauthorized, "%v", err)
			}
			return id, err
		}
		return id, nil
	}
	if len(peer) == 0 {
		if re {
			return Identity{}, refuse(http.StatusUnauthorized, "simplereenroll needs mutual TLS with the chassis' current certificate (curl --cert CERT --key KEY); enrol with a bootstrap token instead if it has none")
		}
		return Identity{}, refuse(http.StatusUnauthorized, "no credentials: authenticate with HTTP Basic (user name = chassis name, password = a token from ovnsec ca token create) or with a client certificate this CA issued")
	}
	name, err := verifyClientCert(peer, set.Trusted, s.clock.Now())
	if err != nil {
		return Identity{Method: AuthCertificate}, err
	}
	return Identity{Chassis: name, Method: AuthCertificate, Cert: peer[0]}, nil
}

// checkChassis applies the Southbound checks, when configured.
func (s *Server) checkChassis(ctx context.Context, name string, src netip.Addr) error {
	if s.chassis == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, chassisTimeout)
	defer cancel()
	ch, err := s.chassis.LookupChassis(ctx, name)
	if errors.Is(err, ErrUnknownChassis) {
		return refuse(http.StatusForbidden, "chassis %q is not a Chassis in the OVN Southbound database; start ovn-controller on it with system-id %s first", name, name)
	}
	if err != nil {
		return refuse(http.StatusServiceUnavailable, "chassis %q cannot be checked in the OVN Southbound database (%v); try again later", name, err)
	}
	if !s.checkSource {
		return nil
	}
	if !src.IsValid() || !slices.Contains(ch.EncapIPs, src) {
		return refuse(http.StatusForbidden, "the request comes from %v, which is not an Encap IP of chassis %q (%v); enrol from the chassis' tunnel address, or serve with --no-check-source when a proxy or NAT is in between", src, name, ch.EncapIPs)
	}
	return nil
}

// issue signs the chassis certificate.
func (s *Server) issue(set *CASet, name string, csr *x509.CertificateRequest) (*x509.Certificate, error) {
	subject, err := pki.EnrolmentSubject(set.Issuer.Cert, name)
	if err != nil {
		return nil, refuse(http.StatusForbidden, "%v", err)
	}
	return s.dir.Issue(set.Issuer, pki.IssueOptions{
		Subject: subject, PublicKey: csr.PublicKey, DNSNames: []string{name}, Lifetime: s.lifetime,
	})
}

func keyDesc(pub any) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	}
	return fmt.Sprintf("%T", pub)
}

// ServerIdentity names the server in its TLS certificate.
type ServerIdentity struct {
	DNSNames []string
	IPs      []netip.Addr
}

// ListenIdentity is the identity for a listen address: its IP (every
// local address when it is unspecified, as in ":8443") or its host name,
// and the machine's host name.
func ListenIdentity(listen string) (ServerIdentity, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return ServerIdentity{}, fmt.Errorf("listen address %q: want HOST:PORT, IP:PORT or :PORT: %w", listen, err)
	}
	var id ServerIdentity
	if hn, err := os.Hostname(); err == nil && hn != "" {
		id.DNSNames = append(id.DNSNames, hn)
	}
	a, aerr := netip.ParseAddr(host)
	switch {
	case host == "" || (aerr == nil && a.IsUnspecified()):
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return id, fmt.Errorf("list local addresses for the server certificate: %w", err)
		}
		for _, ad := range addrs {
			if p, err := netip.ParsePrefix(ad.String()); err == nil {
				id.IPs = append(id.IPs, p.Addr().Unmap())
			}
		}
	case aerr == nil:
		id.IPs = append(id.IPs, a.Unmap())
	default:
		if !slices.Contains(id.DNSNames, host) {
			id.DNSNames = append(id.DNSNames, host)
		}
	}
	return id, nil
}

// TLSConfig is the server's TLS configuration. With a certificate given it
// is served as is; otherwise the CA issues one for id (serverAuth, the
// configured lifetime) at the first handshake, and again when two thirds
// of its life have passed or the CA changed. Client certificates are
// requested but checked by the handlers, so that a refusal can say why.
func (s *Server) TLSConfig(id ServerIdentity, given *tls.Certificate) *tls.Config {
	tc := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequestClientCert,
	}
	if given != nil {
		tc.Certificates = []tls.Certificate{*given}
		return tc
	}
	tc.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.serverCertificate(id) }
	return tc
}

// serverCertificate returns the server's own certificate as TLSConfig
// serves it without a given one, issuing it when needed.
func (s *Server) serverCertificate(id ServerIdentity) (*tls.Certificate, error) {
	set, err := s.store.CAs()
	if err != nil {
		return nil, err
	}
	s.tlsMu.Lock()
	defer s.tlsMu.Unlock()
	now := s.clock.Now()
	if c := s.tlsCert; c != nil {
		life := c.Leaf.NotAfter.Sub(s.tlsIssued)
		sameCA := len(c.Certificate) > 1 && string(c.Certificate[1]) == string(set.Issuer.Cert.Raw)
		if sameCA && now.Before(s.tlsIssued.Add(life*2/3)) {
			return c, nil
		}
	}
	key, err := pki.GenerateKey(pki.KeySpec{Type: pki.KeyECDSA}, nil)
	if err != nil {
		return nil, err
	}
	name := "ovnsec-ca"
	if len(id.DNSNames) > 0 && pki.ValidateName(id.DNSNames[0]) == nil {
		name = id.DNSNames[0]
	}
	subject, err := pki.EnrolmentSubject(set.Issuer.Cert, name)
	if err != nil {
		return nil, err
	}
	var ips []net.IP
	for _, a := range id.IPs {
		ips = append(ips, net.IP(a.AsSlice()))
	}
	cert, err := s.dir.Issue(set.Issuer, pki.IssueOptions{
		Subject: subject, PublicKey: key.Public(), DNSNames: id.DNSNames, IPAddresses: ips,
		Lifetime: s.lifetime, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, fmt.Errorf("issue the server's TLS certificate: %w", err)
	}
	s.log.Info("server certificate issued", "serial", pki.FormatSerial(cert.SerialNumber), "dns", id.DNSNames, "ips", id.IPs, "not_after", cert.NotAfter.UTC().Format(time.RFC3339))
	chain := [][]byte{cert.Raw, set.Issuer.Cert.Raw}
	// During a rollover a client that has only the old CA still verifies
	// the server through the link certificate (NewWithOld).
	for _, l := range set.Links {
		if string(l.RawSubject) == string(set.Issuer.Cert.RawSubject) && string(l.RawIssuer) != string(l.RawSubject) {
			chain = append(chain, l.Raw)
		}
	}
	s.tlsCert = &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: cert}
	s.tlsIssued = now
	return s.tlsCert, nil
}

// Serve serves HTTPS on ln until ctx ends, then shuts down (waiting up to
// five seconds for requests in flight) and returns nil.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tc *tls.Config) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         tc,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelInfo),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve EST: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	<-errc
	return nil
}
