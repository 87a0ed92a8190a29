// Client test helpers: a CA service on httptest with a fake clock, that a
// test can take down or make misbehave, and an Enroller driven by the
// same clock.

package enroll

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
	"github.com/ovnsec/ovnsec/internal/pki"
)

// estServer is an in-process CA service.
type estServer struct {
	t    testing.TB
	dir  string
	url  string
	srv  *Server
	clk  *clocktest.Fake
	log  *syncBuffer
	down atomic.Bool // answer 503 to everything
	// override, when set, answers instead of the server.
	mu       sync.Mutex
	override http.HandlerFunc
	ops      []string // operations answered with 200
}

func startEST(t testing.TB, dir string, clk *clocktest.Fake, cfg Config) *estServer {
	t.Helper()
	cfg.Dir, cfg.Clock = dir, clk
	logs := &syncBuffer{}
	cfg.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	es := &estServer{t: t, dir: dir, srv: srv, clk: clk, log: logs}
	h := srv.Handler()
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if es.down.Load() {
			writeError(w, http.StatusServiceUnavailable, "down for the test")
			return
		}
		es.mu.Lock()
		o := es.override
		es.mu.Unlock()
		if o != nil {
			o(w, r)
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == http.StatusOK {
			es.mu.Lock()
			es.ops = append(es.ops, strings.TrimPrefix(r.URL.Path, PathPrefix))
			es.mu.Unlock()
		}
	}))
	// The server's certificate names the address the client dials.
	// StartTLS would add httptest's own certificate, which Go serves to
	// clients that send no SNI (an IP address): a TLS listener instead.
	addr := hs.Listener.Addr().String()
	hs.Listener = tls.NewListener(hs.Listener, srv.TLSConfig(identityFor(t, hs.Listener.Addr()), nil))
	hs.Start()
	t.Cleanup(func() {
		hs.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	es.url = "https://" + addr
	return es
}

func identityFor(t testing.TB, a net.Addr) ServerIdentity {
	t.Helper()
	id, err := ListenIdentity(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(s int) {
	r.status = s
	r.ResponseWriter.WriteHeader(s)
}

// answered lists the operations answered with success, in order.
func (es *estServer) answered() []string {
	es.mu.Lock()
	defer es.mu.Unlock()
	return append([]string(nil), es.ops...)
}

func (es *estServer) count(op string) int {
	n := 0
	for _, o := range es.answered() {
		if o == op {
			n++
		}
	}
	return n
}

func (es *estServer) setOverride(h http.HandlerFunc) {
	es.mu.Lock()
	es.override = h
	es.mu.Unlock()
}

// caCerts reads the CA file of the directory.
func caCerts(t testing.TB, dir string) []*x509.Certificate {
	t.Helper()
	cas, err := pki.LoadCertificates(pki.Dir{Path: dir}.CACertPath(pki.SwitchCA))
	if err != nil {
		t.Fatal(err)
	}
	return cas
}

// tokenFile writes a new token for chassis (mode 0600) and returns its path.
func tokenFile(t testing.TB, dir string, clk *clocktest.Fake, chassis string) string {
	t.Helper()
	tok, _, err := NewTokenStore(dir, clk).Create(chassis, time.Hour*24*365, false)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(tok.Secret()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// runner is an Enroller running on a fake clock.
type runner struct {
	t      testing.TB
	e      *Enroller
	clk    *clocktest.Fake
	log    *syncBuffer
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	published []Paths
}

// newRunner builds an Enroller for es; mod adjusts the configuration.
func newRunner(t testing.TB, es *estServer, name string, mod func(*EnrollerConfig)) *runner {
	t.Helper()
	cl, err := NewClient(es.url, es.clk)
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{t: t, clk: es.clk, log: &syncBuffer{}}
	cfg := EnrollerConfig{
		Client: cl, Name: name, Paths: PathsIn(t.TempDir()), Trust: Trust{Anchors: caCerts(t, es.dir)[:1]},
		Clock: es.clk, Log: slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Publish: func(_ context.Context, p Paths) error {
			r.mu.Lock()
			r.published = append(r.published, p)
			r.mu.Unlock()
			return nil
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	r.e, err = NewEnroller(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *runner) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		r.e.Run(ctx)
	}()
	r.t.Cleanup(r.stop)
	r.idle()
}

func (r *runner) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.cancel = nil
	if r.t.Failed() {
		r.t.Logf("enroller log:\n%s", r.log.String())
	}
}

// idle waits until the enroller has made an attempt and waits for its
// next one on the fake clock.
func (r *runner) idle() Status {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := r.e.Status()
		if next, ok := r.clk.Next(); ok && !st.LastAttempt.IsZero() && next.Equal(st.NextAttempt) {
			return st
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the enroller did not settle; status %+v", st)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// renewNow asks for a renewal and waits for the attempt.
func (r *runner) renewNow() Status {
	r.t.Helper()
	before := r.e.Status().Attempts
	r.e.RenewNow()
	deadline := time.Now().Add(20 * time.Second)
	for r.e.Status().Attempts == before {
		if time.Now().After(deadline) {
			r.t.Fatal("RenewNow made no attempt")
		}
		time.Sleep(2 * time.Millisecond)
	}
	return r.idle()
}

// advanceTo moves the fake clock to at and waits for the enroller.
func (r *runner) advanceTo(at time.Time) Status {
	r.t.Helper()
	if d := at.Sub(r.clk.Now()); d > 0 {
		r.clk.Advance(d)
	}
	return r.idle()
}

// next moves the fake clock to the next attempt and waits for it.
func (r *runner) next() Status {
	r.t.Helper()
	return r.advanceTo(r.e.Status().NextAttempt)
}

func (r *runner) publishedPaths() []Paths {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Paths(nil), r.published...)
}

// fileCert reads the certificate file the enroller writes.
func fileCert(t testing.TB, p Paths) *x509.Certificate {
	t.Helper()
	c, err := pki.LoadCertificates(p.Cert)
	if err != nil {
		t.Fatal(err)
	}
	return c[0]
}

func newFake() *clocktest.Fake { return clocktest.New(time.Now().Truncate(time.Second)) }
