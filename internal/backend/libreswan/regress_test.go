package libreswan

import (
	"context"
	"crypto"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// waitActions polls until f recorded want (in order, among others) since
// from.
func waitActions(t *testing.T, f *fakePluto, from int, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := f.actions(from)
		i := 0
		for _, a := range got {
			if i < len(want) && a == want[i] {
				i++
			}
		}
		if i == len(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("actions %v, want %v in order", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The command sets: `ipsec auto ...` before libreswan 5, `ipsec ...`
// from 5 (239b59bdf), every one naming the root configuration and pluto's
// socket.
func TestCommandSets(t *testing.T) {
	for _, tc := range []struct {
		version string
		auto    bool
	}{{"Libreswan 4.10\n", true}, {"Libreswan 5.3\n", false}} {
		f := newFakePluto()
		f.version = tc.version
		b, _ := newTestBackend(t, f, fakeCreds{}, func(c *Config) { c.RootConf = "/etc/ipsec.conf" })
		if err := b.Ensure(context.Background(), tun("gr", tunnel.TypeGRE, tunnel.AuthPSK)); err != nil {
			t.Fatal(err)
		}
		var start []string
		for _, c := range f.calls {
			if slices.Contains(c, "--start") {
				start = c
			}
		}
		want := []string{"/usr/sbin/ipsec", "--config", "/etc/ipsec.conf", "--ctlsocket", b.cfg.Ctl, "--start", "--asynchronous", "gr-1"}
		if tc.auto {
			want = slices.Insert(want, 1, "auto")
		}
		if !slices.Equal(start, want) {
			t.Errorf("%s: start = %q, want %q", strings.TrimSpace(tc.version), start, want)
		}
		data, _ := os.ReadFile(b.cfg.Conf)
		if strings.Contains(string(data), "keyingtries") == !tc.auto || strings.Contains(string(data), "conn %default") {
			t.Errorf("%s: sub-config file:\n%s", tc.version, data)
		}
	}
}

// Crossing streams (upstream e998d4558, libreswan 1903): only the "-out-"
// half and gre are started; the "-in-" half is added for the peer to
// initiate.
func TestAddInStartOut(t *testing.T) {
	f := newFakePluto()
	b, _ := newTestBackend(t, f, fakeCreds{}, nil)
	if err := b.Ensure(context.Background(), tun("gnv", tunnel.TypeGeneve, tunnel.AuthPSK)); err != nil {
		t.Fatal(err)
	}
	if got, want := f.actions(0), []string{"add gnv-in-1", "start gnv-out-1 async"}; !slices.Equal(got, want) {
		t.Errorf("actions %v, want %v", got, want)
	}
	// Ensure again: healthy, nothing is touched.
	n := f.ncalls()
	if err := b.Ensure(context.Background(), tun("gnv", tunnel.TypeGeneve, tunnel.AuthPSK)); err != nil {
		t.Fatal(err)
	}
	if got := f.actions(n); len(got) != 0 {
		t.Errorf("second Ensure: %v", got)
	}
}

// Reconciliation churn (upstream 6fc522174): nothing is brought up or
// deleted before a conn has waited a whole interval; then the added half
// is brought up, the started one deleted as defunct and started again; a
// conn that became active is left alone.
func TestNoEarlyReconciliation(t *testing.T) {
	f := newFakePluto()
	b, clk := newTestBackend(t, f, fakeCreds{}, nil)
	ctx := context.Background()
	if err := b.Ensure(ctx, tun("gnv", tunnel.TypeGeneve, tunnel.AuthPSK)); err != nil {
		t.Fatal(err)
	}
	if err := b.Ensure(ctx, tun("gr", tunnel.TypeGRE, tunnel.AuthPSK)); err != nil {
		t.Fatal(err)
	}
	n := f.ncalls()
	clk.Advance(14 * time.Second)
	b.ops.Lock()
	b.refreshAll(ctx)
	b.ops.Unlock()
	if got := f.actions(n); len(got) != 0 {
		t.Fatalf("after 14 s: %v, want nothing", got)
	}
	f.mu.Lock()
	f.active["gr-1"] = true
	f.mu.Unlock()
	clk.Advance(time.Second) // the ticker fires
	waitActions(t, f, n, "up gnv-in-1 async", "delete gnv-out-1")
	clk.Advance(15 * time.Second)
	waitActions(t, f, n, "up gnv-in-1 async", "delete gnv-out-1", "start gnv-out-1 async")
	for _, a := range f.actions(n) {
		if strings.Contains(a, "gr-1") {
			t.Errorf("active gr-1 was touched: %v", f.actions(n))
		}
	}
	st, err := b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st["gr"].Phase != backend.PhaseUp || st["gnv"].Phase == backend.PhaseUp {
		t.Errorf("status gr %+v, gnv %+v", st["gr"], st["gnv"])
	}
	rep, err := b.Report(ctx, "ipsec/status")
	if err != nil || !strings.HasPrefix(rep, "{'gr': {'gr-1': '#") {
		t.Errorf("ipsec/status = %q, %v", rep, err)
	}
}

// A hanging `ipsec auto --start` (libreswan 4.5-4.15, upstream 91e6bc3f8)
// is killed at --command-timeout; the conn is deleted as upstream does and
// the backend goes on with the next tunnel.
func TestHangingStart(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "ipsec")
	log := filepath.Join(dir, "calls")
	body := "#!/bin/sh\necho \"$*\" >> " + log + "\n" +
		"case \"$*\" in\n*--version*) echo 'Libreswan 4.10';;\n*--start*hang*) exec sleep 60;;\nesac\nexit 0\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	f := newFakePluto()
	b, _ := newTestBackend(t, f, fakeCreds{}, func(c *Config) {
		c.IPsec = script
		c.Runner = routeRunner{ipsec: script, real: ExecRunner{Timeout: 500 * time.Millisecond}, fake: f}
	})
	start := time.Now()
	err := b.Ensure(context.Background(), tun("hang", tunnel.TypeGRE, tunnel.AuthPSK))
	if err == nil || !strings.Contains(err.Error(), "timed out") || time.Since(start) > 10*time.Second {
		t.Fatalf("Ensure = %v after %v, want a timeout within seconds", err, time.Since(start))
	}
	if err := b.Ensure(context.Background(), tun("next", tunnel.TypeGRE, tunnel.AuthPSK)); err != nil {
		t.Fatalf("the next tunnel: %v", err)
	}
	calls, _ := os.ReadFile(log)
	if !strings.Contains(string(calls), "--delete hang-1") || !strings.Contains(string(calls), "--start --asynchronous next-1") {
		t.Errorf("calls:\n%s", calls)
	}
}

// routeRunner runs the ipsec script for real and the rest on the fake.
type routeRunner struct {
	ipsec string
	real  Runner
	fake  *fakePluto
}

func (r routeRunner) Run(ctx context.Context, argv []string) (Result, error) {
	if argv[0] == r.ipsec {
		return r.real.Run(ctx, argv)
	}
	return r.fake.Run(ctx, argv)
}

// Certificates replaced while ovnsecd was down (upstream 83de251fa): the
// NSS database holds the old local certificate twice and an old CA; each
// is removed and the current ones imported, leaving one entry per
// nickname.
func TestStaleNSSCertificates(t *testing.T) {
	ca, caKey := newCert(t, "ca", nil, nil)
	cert, key := newCert(t, "a", ca, caKey)
	oldCA, oldCAKey := newCert(t, "old-ca", nil, nil)
	old1, _ := newCert(t, "a", oldCA, oldCAKey)
	old2, _ := newCert(t, "a", oldCA, oldCAKey)
	f := newFakePluto()
	f.nss[certKeyPrefix+"a"] = [][]byte{old1.Raw, old2.Raw}
	f.nss[caNickname] = [][]byte{oldCA.Raw}
	cr := fakeCreds{
		certs: map[string][]*x509.Certificate{"/k/a-cert.pem": {cert}, "/k/ca.pem": {ca}},
		keys:  map[string]crypto.Signer{"/k/a-privkey.pem": key},
	}
	b, _ := newTestBackend(t, f, cr, nil)
	if err := b.Ensure(context.Background(), tun("gnv", tunnel.TypeGeneve, tunnel.AuthCASigned)); err != nil {
		t.Fatal(err)
	}
	if got := f.nss[certKeyPrefix+"a"]; len(got) != 1 || string(got[0]) != string(cert.Raw) {
		t.Errorf("ovs_certkey_a holds %d certificates, want the current one only", len(got))
	}
	if got := f.nss[caNickname]; len(got) != 1 || string(got[0]) != string(ca.Raw) {
		t.Errorf("ovs_cert_cacert holds %d certificates, want the current CA only", len(got))
	}
	var removed int
	for _, c := range f.calls {
		if c[0] == "certutil" && (c[1] == "-F" || c[1] == "-D") {
			removed++
		}
	}
	if removed != 3 {
		t.Errorf("%d removals, want 3 (two stale local certificates, one stale CA)", removed)
	}
	// Unchanged files: nothing is imported again.
	n := f.ncalls()
	if err := b.Ensure(context.Background(), tun("gnv", tunnel.TypeGeneve, tunnel.AuthCASigned)); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.calls[n:] {
		if c[0] == "pk12util" || (c[0] == "certutil" && c[1] != "-L") {
			t.Errorf("unchanged certificates touched NSS: %q", c)
		}
	}
}

// A restarted pluto has lost every conn: Status says so and the next pass
// loads each conn once.
func TestPlutoRestart(t *testing.T) {
	f := newFakePluto()
	b, clk := newTestBackend(t, f, fakeCreds{}, nil)
	ctx := context.Background()
	if err := b.Ensure(ctx, tun("gnv", tunnel.TypeGeneve, tunnel.AuthPSK)); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.down = true
	f.mu.Unlock()
	st, err := b.Status(ctx)
	if err != nil || st["gnv"].Code != backend.CodeBackendUnreachable || !strings.Contains(st["gnv"].Reason, "pluto is not answering") {
		t.Fatalf("pluto down: %+v, %v", st["gnv"], err)
	}
	f.mu.Lock()
	f.down = false
	clear(f.loaded)
	f.mu.Unlock()
	st, _ = b.Status(ctx)
	if st["gnv"].Phase != backend.PhaseNotLoaded {
		t.Fatalf("pluto restarted: %+v", st["gnv"])
	}
	n := f.ncalls()
	clk.Advance(15 * time.Second)
	waitActions(t, f, n, "add gnv-in-1", "start gnv-out-1 async")
	if err := b.Ensure(ctx, tun("gnv", tunnel.TypeGeneve, tunnel.AuthPSK)); err != nil {
		t.Fatal(err)
	}
	if got := f.actions(n); len(got) != 2 {
		t.Errorf("after the restart: %v, want each conn loaded once", got)
	}
}

// Only conns ovnsecd wrote are deleted: pluto may hold others (north-south
// conns of the same host).
func TestOnlyOwnConnsDeleted(t *testing.T) {
	f := newFakePluto()
	f.loaded["vpn-1"] = true
	f.loaded["old-in-3"] = true
	f.loaded["gnv-in-7"] = true
	b, _ := newTestBackend(t, f, fakeCreds{}, func(c *Config) {
		if err := os.WriteFile(c.Conf, []byte("conn old-in-3\n    left=1.2.3.4\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	ctx := context.Background()
	names, err := b.Loaded(ctx)
	if err != nil || !slices.Equal(names, []string{"old"}) {
		t.Fatalf("Loaded = %v, %v; want [old]", names, err)
	}
	if err := b.Ensure(ctx, tun("gnv", tunnel.TypeGeneve, tunnel.AuthPSK)); err != nil {
		t.Fatal(err)
	}
	if err := b.Remove(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	got := f.actions(0)
	for _, want := range []string{"delete gnv-in-7", "delete old-in-3"} {
		if !slices.Contains(got, want) {
			t.Errorf("actions %v lack %q", got, want)
		}
	}
	if slices.Contains(got, "delete vpn-1") {
		t.Errorf("a foreign conn was deleted: %v", got)
	}
}

// Without --no-restart-ike-daemon the start purges ovs_cert* from NSS,
// empties the files and deletes the previous run's conns; Close with
// cleanup removes everything again.
func TestRestartAndCleanup(t *testing.T) {
	f := newFakePluto()
	f.nss["ovs_certkey_x"] = [][]byte{{1}}
	f.nss["ovs_cert_y"] = [][]byte{{2}}
	f.nss["someone"] = [][]byte{{3}}
	f.loaded["tun-1"] = true
	var cfg Config
	b, _ := newTestBackend(t, f, fakeCreds{}, func(c *Config) {
		c.Restart = true
		if err := os.WriteFile(c.Conf, []byte("conn tun-1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg = *c
	})
	if _, ok := f.nss["someone"]; !ok || len(f.nss) != 1 {
		t.Errorf("NSS after the start: %v", sortedKeys(f.nss))
	}
	if f.loaded["tun-1"] {
		t.Error("the previous run's conn is still loaded")
	}
	ctx := context.Background()
	if err := b.Ensure(ctx, tun("gnv", tunnel.TypeGeneve, tunnel.AuthPSK)); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctx, true); err != nil {
		t.Fatal(err)
	}
	if len(f.loaded) != 0 {
		t.Errorf("after cleanup pluto holds %v", sortedKeys(f.loaded))
	}
	secrets, _ := os.ReadFile(cfg.Secrets)
	if strings.Contains(string(secrets), "PSK") {
		t.Errorf("secrets after cleanup:\n%s", secrets)
	}
	if err := b.Ensure(ctx, tun("gnv", tunnel.TypeGeneve, tunnel.AuthPSK)); err == nil {
		t.Error("Ensure after Close succeeded")
	}
}

// The kernel's refusal of the Child SA (this kernel: XFRM without ESP) is
// reported as such from pluto's log; without the log the reason says how
// to get it.
func TestStatusKernelRefused(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "pluto.log")
	f := newFakePluto()
	b, _ := newTestBackend(t, f, fakeCreds{}, func(c *Config) { c.PlutoLog = logFile })
	ctx := context.Background()
	if err := b.Ensure(ctx, tun("gnv", tunnel.TypeGeneve, tunnel.AuthPSK)); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.ike = []string{"other-out-1"} // one IKE SA per peer, under another conn
	f.loaded["other-out-1"] = true
	f.mu.Unlock()
	st, _ := b.Status(ctx)
	if st["gnv"].Phase != backend.PhaseConnecting {
		t.Errorf("just started: %+v", st["gnv"])
	}
	line := `Dec  8 01:50:40.603651: ERROR: "gnv-in-1" #2: netlink response for Add SA esp.e962950e@192.0.2.1: Function not implemented (errno 38)` + "\n"
	if err := os.WriteFile(logFile, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	st, _ = b.Status(ctx)
	g := st["gnv"]
	if g.Code != backend.CodeKernelRefused || !strings.Contains(g.Reason, "kernel refused") || !strings.Contains(g.Reason, "errno 38") || g.IKE == nil {
		t.Errorf("status %+v", g)
	}
}

// Commands fail loudly: a conn pluto failed to initiate is deleted.
func TestFailedInitiate(t *testing.T) {
	f := newFakePluto()
	b, _ := newTestBackend(t, f, fakeCreds{}, func(c *Config) {
		c.Runner = failRunner{f}
	})
	err := b.Ensure(context.Background(), tun("gr", tunnel.TypeGRE, tunnel.AuthPSK))
	if err == nil || !strings.Contains(err.Error(), "failed to initiate") {
		t.Fatalf("Ensure = %v", err)
	}
	if !slices.Contains(f.actions(0), "delete gr-1") {
		t.Errorf("actions %v", f.actions(0))
	}
}

type failRunner struct{ f *fakePluto }

func (r failRunner) Run(ctx context.Context, argv []string) (Result, error) {
	res, err := r.f.Run(ctx, argv)
	if slices.Contains(argv, "--start") {
		res.Stdout = "000 \"gr-1\": Failed to initiate connection"
	}
	return res, err
}
