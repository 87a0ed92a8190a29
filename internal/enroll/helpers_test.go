// Test helpers: a PKI directory, a server on 127.0.0.1 with a free port,
// requests made with Go's own client, and certificate requests of any
// shape.

package enroll

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/pki"
)

// newPKI makes an ECDSA ovs-pki directory (fast to make).
func newPKI(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	if err := (pki.Dir{Path: dir}).Init(pki.InitOptions{Key: pki.KeySpec{Type: pki.KeyECDSA}}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// fixedClock is a clock at one moment, for making things in the past.
type fixedClock struct {
	clock.Real
	t time.Time
}

func (c *fixedClock) Now() time.Time { return c.t }

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testServer is a running Server.
type testServer struct {
	t    testing.TB
	dir  string
	url  string
	pool *x509.CertPool
	srv  *Server
	log  *syncBuffer
}

// startServer serves dir on 127.0.0.1 with a free port; cfg.Dir is set.
func startServer(t testing.TB, dir string, cfg Config) *testServer {
	t.Helper()
	cfg.Dir = dir
	logs := &syncBuffer{}
	cfg.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	id, err := ListenIdentity(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, srv.TLSConfig(id, nil)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	cas, err := pki.LoadCertificates(pki.Dir{Path: dir}.CACertPath(pki.SwitchCA))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	return &testServer{t: t, dir: dir, url: "https://" + ln.Addr().String(), pool: pool, srv: srv, log: logs}
}

// answer is an HTTP answer.
type answer struct {
	status int
	header http.Header
	body   string
}

// req describes one EST request.
type req struct {
	op          string // cacerts, simpleenroll, simplereenroll
	method      string // default POST (GET for cacerts)
	user, token string // Basic credentials when user != ""
	csr         []byte // DER; sent base64
	body        []byte // raw body instead of csr
	contentType string // default application/pkcs10
	cert        *tls.Certificate
}

func (ts *testServer) do(r req) answer {
	ts.t.Helper()
	a, err := ts.try(r)
	if err != nil {
		ts.t.Fatalf("%s: %v", r.op, err)
	}
	return a
}

// try is do without failing the test (for other goroutines).
func (ts *testServer) try(r req) (answer, error) {
	tc := &tls.Config{RootCAs: ts.pool, ServerName: "127.0.0.1"}
	if r.cert != nil {
		c := *r.cert
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 60 * time.Second}
	defer cl.CloseIdleConnections()
	method := r.method
	if method == "" {
		method = http.MethodPost
		if r.op == "cacerts" {
			method = http.MethodGet
		}
	}
	body := r.body
	if body == nil && r.csr != nil {
		body = []byte(base64.StdEncoding.EncodeToString(r.csr))
	}
	hr, err := http.NewRequest(method, ts.url+PathPrefix+r.op, bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	ct := r.contentType
	if ct == "" && method == http.MethodPost {
		ct = MediaPKCS10
	}
	if ct != "-" {
		hr.Header.Set("Content-Type", ct)
	}
	if r.user != "" {
		hr.SetBasicAuth(r.user, r.token)
	}
	resp, err := cl.Do(hr)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}, err
}

// issued reads the certificate of a successful enrolment.
func (a answer) issued(t testing.TB) *x509.Certificate {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", a.status, a.body)
	}
	certs, err := ParseCertsOnlyBase64([]byte(a.body))
	if err != nil {
		t.Fatalf("answer: %v\n%s", err, a.body)
	}
	if len(certs) != 1 {
		t.Fatalf("answer holds %d certificates, want 1", len(certs))
	}
	return certs[0]
}

// refused checks a refusal's status and that its body says why.
func (a answer) refused(t testing.TB, status int, why string) {
	t.Helper()
	if a.status != status || !strings.Contains(a.body, why) {
		t.Fatalf("got %d %q, want %d with %q", a.status, a.body, status, why)
	}
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// csrSpec shapes a request.
type csrSpec struct {
	subject pkix.Name
	raw     []byte // RawSubject instead of subject
	dns     []string
	ips     []net.IP
	emails  []string
	uris    []*url.URL
}

// chassisCSR is a request as a good client makes it for name.
func chassisCSR(t testing.TB, key crypto.Signer, name string) []byte {
	t.Helper()
	return makeCSR(t, key, csrSpec{subject: pkix.Name{Organization: []string{"Open vSwitch"}, CommonName: name}, dns: []string{name}})
}

func makeCSR(t testing.TB, key crypto.Signer, s csrSpec) []byte {
	t.Helper()
	d, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: s.subject, RawSubject: s.raw, DNSNames: s.dns, IPAddresses: s.ips, EmailAddresses: s.emails, URIs: s.uris,
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// tlsCert pairs an issued certificate with its key for mutual TLS.
func tlsCert(c *x509.Certificate, key crypto.Signer) *tls.Certificate {
	return &tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}
}

// token makes a token for chassis with the real clock.
func token(t testing.TB, dir, chassis string, reusable bool) Token {
	t.Helper()
	tok, _, err := NewTokenStore(dir, nil).Create(chassis, time.Hour, reusable)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func fileMode(t testing.TB, p string) os.FileMode {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}
