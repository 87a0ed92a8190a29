// Renewal against the fake charon: files renewed under the same path, read
// through a real creds.Store, are loaded into charon for the tunnels that
// use them, without unloading connections or terminating SAs; half a
// renewal is held back and said so in the status.

package strongswan

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
	"github.com/ovnsec/ovnsec/internal/creds"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// renewPKI writes a CA and one host's certificate and key into a temp
// directory and renews them in place.
type renewPKI struct {
	t                   *testing.T
	ca                  *x509.Certificate
	caKey               crypto.Signer
	caPath, cert, key   string
	serial              int64
	hostKey             crypto.Signer
	hostName            string
	notBefore, notAfter time.Time
}

func newRenewPKI(t *testing.T, host string) *renewPKI {
	t.Helper()
	dir := t.TempDir()
	p := &renewPKI{t: t, caPath: filepath.Join(dir, "cacert.pem"), cert: filepath.Join(dir, host+"-cert.pem"),
		key: filepath.Join(dir, host+"-privkey.pem"), hostName: host,
		notBefore: time.Now().Add(-time.Hour), notAfter: time.Now().Add(24 * time.Hour)}
	p.renewCA()
	p.writeKey(p.newKey())
	p.writeCert()
	return p
}

func (p *renewPKI) newKey() crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	return k
}

// replaceFile writes data to path through a rename, as renewal tools do.
func (p *renewPKI) replaceFile(path string, data []byte) {
	p.t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		p.t.Fatal(err)
	}
}

func (p *renewPKI) create(tmpl *x509.Certificate, pub crypto.PublicKey, parent *x509.Certificate, signer crypto.Signer) *x509.Certificate {
	p.t.Helper()
	p.serial++
	tmpl.SerialNumber = big.NewInt(p.serial)
	tmpl.NotBefore, tmpl.NotAfter = p.notBefore, p.notAfter
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		p.t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		p.t.Fatal(err)
	}
	return c
}

// renewCA writes a new CA certificate (with a new key) to caPath.
func (p *renewPKI) renewCA() {
	p.caKey = p.newKey()
	p.ca = p.create(&x509.Certificate{Subject: pkix.Name{CommonName: "renew test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, p.caKey.Public(), nil, p.caKey)
	p.replaceFile(p.caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.ca.Raw}))
}

// writeKey writes k to the key path; the certificate is left as it is.
func (p *renewPKI) writeKey(k crypto.Signer) {
	p.hostKey = k
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		p.t.Fatal(err)
	}
	p.replaceFile(p.key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// writeCert issues a certificate for the current host key and writes it
// to the certificate path; it returns its PEM.
func (p *renewPKI) writeCert() []byte {
	c := p.create(&x509.Certificate{Subject: pkix.Name{CommonName: p.hostName}, DNSNames: []string{p.hostName},
		KeyUsage: x509.KeyUsageDigitalSignature}, p.hostKey.Public(), p.ca, p.caKey)
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	p.replaceFile(p.cert, data)
	return data
}

func (p *renewPKI) tunnel() tunnel.Tunnel {
	return tunnel.Tunnel{
		Name: "gnv1", Version: 1, State: tunnel.StateConfigured, Type: tunnel.TypeGeneve,
		LocalIP: "192.0.2.1", RemoteIP: "192.0.2.2", AddressFamily: "IPv4", DstPort: 6081,
		Auth: tunnel.AuthCASigned, Certificate: p.cert, PrivateKey: p.key, CACert: p.caPath,
		LocalName: p.hostName, RemoteName: "peer",
	}
}

// established makes the fake list an IKE_SA with both children up, so
// that Ensure initiates nothing.
func established(t *testing.T, f *fakeCharon) {
	f.setSAs(listSAEvent(t, "gnv1-1", "7", "ESTABLISHED",
		childMsg(t, "gnv1-out-1", "3", "INSTALLED", "c1", "c2", nil, nil),
		childMsg(t, "gnv1-in-1", "4", "INSTALLED", "c3", "c4", nil, nil)))
}

func cmds(calls []fakeCall) []string {
	var out []string
	for _, c := range calls {
		out = append(out, c.Cmd)
	}
	return out
}

// callsUntil collects the fake's commands until one named want arrives.
func callsUntil(t *testing.T, f *fakeCharon, want string) []fakeCall {
	t.Helper()
	var got []fakeCall
	deadline := time.Now().Add(30 * time.Second)
	for {
		got = append(got, f.takeCalls()...)
		if slices.ContainsFunc(got, func(c fakeCall) bool { return c.Cmd == want }) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("charon never got %s; got %v", want, cmds(got))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// statusUntil polls Status until ok accepts the tunnel's status.
func statusUntil(t *testing.T, b *Backend, name string, ok func(backend.TunnelStatus) bool) backend.TunnelStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := b.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if ok(m[name]) {
			return m[name]
		}
		if time.Now().After(deadline) {
			t.Fatalf("status of %s never converged; last %+v", name, m[name])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func credNote(s backend.TunnelStatus) string {
	for _, d := range s.Details {
		if strings.HasPrefix(d, "Credentials: ") {
			return d
		}
	}
	return ""
}

// noTeardown fails if charon was asked to unload a connection or
// terminate an SA.
func noTeardown(t *testing.T, calls []fakeCall) {
	t.Helper()
	for _, c := range calls {
		if c.Cmd == "unload-conn" || c.Cmd == "terminate" || c.Cmd == "unload-shared" || c.Cmd == "unload-key" {
			t.Errorf("renewal sent %s %s", c.Cmd, c.Msg)
		}
	}
}

func loadedCert(calls []fakeCall, flag string) []string {
	var out []string
	for _, c := range calls {
		if c.Cmd == "load-cert" && c.Msg.Get("flag") == flag {
			out = append(out, c.Msg.Get("data").(string))
		}
	}
	return out
}

func connCerts(t *testing.T, calls []fakeCall) []string {
	t.Helper()
	for _, c := range calls {
		if c.Cmd == "load-conn" {
			v, _ := path(t, c.Msg, "gnv1-1", "local", "certs").([]string)
			return v
		}
	}
	return nil
}

func TestRenewalLoadsRenewedFiles(t *testing.T) {
	f := newFakeCharon(t)
	established(t, f)
	store := creds.NewStore(creds.Options{Log: slog.New(slog.DiscardHandler), Poll: time.Hour})
	b := New(Config{ViciSocket: f.socket, Creds: store}, nil)
	t.Cleanup(func() { _ = b.Close(context.Background(), false) })
	ctx := context.Background()
	p := newRenewPKI(t, "ch1")
	psk := geneveTunnel() // a PSK tunnel is not affected by any file
	psk.Name = "gnv9"
	if err := b.Ensure(ctx, psk); err != nil {
		t.Fatal(err)
	}
	if err := b.Ensure(ctx, p.tunnel()); err != nil {
		t.Fatal(err)
	}
	if got := cmds(f.takeCalls()); !slices.Contains(got, "load-key") || !slices.Contains(got, "load-conn") {
		t.Fatalf("first Ensure sent %v", got)
	}

	// A new certificate for the same key: the certificate and the
	// connection that embeds it are loaded again, nothing else.
	newPEM := p.writeCert()
	if got := store.Refresh(); !slices.Equal(got, []string{p.cert}) {
		t.Fatalf("store saw %v change", got)
	}
	calls := callsUntil(t, f, "load-conn")
	noTeardown(t, calls)
	if c := loadedCert(calls, "NONE"); len(c) != 1 || c[0] != string(newPEM) {
		t.Errorf("renewed certificate not loaded: %v", cmds(calls))
	}
	if c := connCerts(t, calls); len(c) != 1 || c[0] != string(newPEM) {
		t.Errorf("connection loaded with certs %q, want the renewed one", c)
	}
	if slices.Contains(cmds(calls), "load-key") || slices.Contains(cmds(calls), "load-shared") {
		t.Errorf("renewal of the certificate alone reloaded %v", cmds(calls))
	}

	// Half a renewal: the key is replaced first. charon keeps the pair it
	// has, and the status says why the files are not in use.
	p.writeKey(p.newKey())
	store.Refresh()
	st := statusUntil(t, b, "gnv1", func(s backend.TunnelStatus) bool { return credNote(s) != "" })
	want := "Credentials: renewed files not applied, new IKE SAs use the previous ones: private key " + p.key + " does not match certificate " + p.cert
	if !strings.HasPrefix(credNote(st), want) {
		t.Errorf("status note %q, want prefix %q", credNote(st), want)
	}
	if calls := f.takeCalls(); len(calls) != 0 {
		t.Errorf("half a renewal sent %v", cmds(calls))
	}
	// The reconciler's own Ensure holds it back too, and succeeds.
	if err := b.Ensure(ctx, p.tunnel()); err != nil {
		t.Errorf("Ensure during half a renewal: %v", err)
	}
	if calls := f.takeCalls(); len(calls) != 0 {
		t.Errorf("Ensure during half a renewal sent %v", cmds(calls))
	}

	// The certificate follows: the matching pair is loaded, the note goes.
	newPEM = p.writeCert()
	store.Refresh()
	calls = callsUntil(t, f, "load-conn")
	noTeardown(t, calls)
	if got := cmds(calls); !slices.Contains(got, "load-key") || len(loadedCert(calls, "NONE")) != 1 {
		t.Errorf("completed renewal sent %v, want load-key and load-cert", got)
	}
	if c := connCerts(t, calls); len(c) != 1 || c[0] != string(newPEM) {
		t.Errorf("connection loaded with certs %q, want the renewed one", c)
	}
	st = statusUntil(t, b, "gnv1", func(s backend.TunnelStatus) bool { return credNote(s) == "" })
	if st.Version != 1 {
		t.Errorf("version %d after renewal", st.Version)
	}

	// A renewed CA bundle is loaded as a CA and into the connection.
	p.renewCA()
	store.Refresh()
	calls = callsUntil(t, f, "load-conn")
	noTeardown(t, calls)
	if c := loadedCert(calls, "CA"); len(c) != 1 || !strings.Contains(c[0], "BEGIN CERTIFICATE") {
		t.Errorf("renewed CA not loaded: %v", cmds(calls))
	}

	// A removed tunnel is never brought back by a renewal, even one
	// picked before the removal; another tunnel using the same files is
	// renewed.
	other := p.tunnel()
	other.Name = "gnv2"
	if err := b.Ensure(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := b.Remove(ctx, "gnv1"); err != nil {
		t.Fatal(err)
	}
	f.takeCalls()
	if err := b.ensure(ctx, p.tunnel(), true); !errors.Is(err, errSuperseded) {
		t.Errorf("renewal of a removed tunnel: %v", err)
	}
	p.writeCert()
	store.Refresh()
	calls = callsUntil(t, f, "load-conn")
	noTeardown(t, calls)
	for _, c := range calls {
		if c.Cmd == "load-conn" && !slices.Equal(c.Msg.Keys(), []string{"gnv2-1"}) {
			t.Errorf("renewal after Remove loaded %v", c.Msg.Keys())
		}
	}
	if m, _ := b.Status(ctx); len(m) != 2 || m["gnv1"].Name != "" {
		t.Errorf("Status after Remove and renewal: %v", m)
	}
}

// A pair that does not match is not loaded by a first Ensure either: the
// error names both files.
func TestEnsureRefusesMismatchedPair(t *testing.T) {
	f := newFakeCharon(t)
	store := creds.NewStore(creds.Options{Log: slog.New(slog.DiscardHandler), Poll: time.Hour})
	b := New(Config{ViciSocket: f.socket, Creds: store}, nil)
	t.Cleanup(func() { _ = b.Close(context.Background(), false) })
	p := newRenewPKI(t, "ch1")
	p.writeKey(p.newKey())
	err := b.Ensure(context.Background(), p.tunnel())
	if err == nil || !strings.Contains(err.Error(), "private key "+p.key+" does not match certificate "+p.cert) {
		t.Errorf("Ensure with a mismatched pair: %v", err)
	}
	if calls := f.takeCalls(); len(calls) != 0 {
		t.Errorf("mismatched pair sent %v", cmds(calls))
	}
}

// A renewal charon refused is tried again after RetryInterval, on the
// backend's clock, and the status says meanwhile that the renewed files
// are not in use.
func TestRenewalRetries(t *testing.T) {
	f := newFakeCharon(t)
	established(t, f)
	clk := clocktest.New(t0)
	store := creds.NewStore(creds.Options{Clock: clk, Log: slog.New(slog.DiscardHandler)})
	const retry = 15 * time.Second
	b := New(Config{ViciSocket: f.socket, Creds: store, Clock: clk, RetryInterval: retry}, nil)
	t.Cleanup(func() { _ = b.Close(context.Background(), false) })
	p := newRenewPKI(t, "ch1")
	if err := b.Ensure(context.Background(), p.tunnel()); err != nil {
		t.Fatal(err)
	}
	f.takeCalls()

	f.failNext("load-cert", 1)
	newPEM := p.writeCert()
	store.Refresh()
	st := statusUntil(t, b, "gnv1", func(s backend.TunnelStatus) bool { return credNote(s) != "" })
	if n := credNote(st); !strings.Contains(n, "load certificate "+p.cert) || !strings.Contains(n, "injected failure") {
		t.Errorf("status note %q, want the refused load-cert", n)
	}
	if c := loadedCert(f.takeCalls(), "NONE"); len(c) != 1 {
		t.Fatalf("renewal tried load-cert %d times, want once", len(c))
	}

	// Only the backend's clock brings the retry.
	var calls []fakeCall
	deadline := time.Now().Add(30 * time.Second)
	for !slices.ContainsFunc(calls, func(c fakeCall) bool { return c.Cmd == "load-conn" }) {
		if time.Now().After(deadline) {
			t.Fatalf("renewal never retried; charon got %v", cmds(calls))
		}
		clk.Advance(retry)
		time.Sleep(10 * time.Millisecond)
		calls = append(calls, f.takeCalls()...)
	}
	noTeardown(t, calls)
	if c := loadedCert(calls, "NONE"); len(c) != 1 || c[0] != string(newPEM) {
		t.Errorf("retry loaded %v", cmds(calls))
	}
	statusUntil(t, b, "gnv1", func(s backend.TunnelStatus) bool { return credNote(s) == "" })
}
