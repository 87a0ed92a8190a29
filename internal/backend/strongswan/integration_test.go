// Integration test against two real charons in network namespaces: PSK and
// CA-signed tunnels, version change, Remove, charon restart.

package strongswan

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

func newTestBackend(t *testing.T, h *host) *Backend {
	b := New(Config{ViciSocket: h.socket, PeerGrace: 2 * time.Second, RetryInterval: 2 * time.Second, LogRetry: 200 * time.Millisecond}, testLogger(t).With("host", h.ns))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(ctx, false)
	})
	return b
}

func pskTunnel(name string, version int, local, remote string) tunnel.Tunnel {
	return tunnel.Tunnel{
		Name: name, Version: version, State: tunnel.StateConfigured,
		Type: tunnel.TypeGeneve, LocalIP: local, RemoteIP: remote, AddressFamily: "IPv4",
		DstPort: 6081, Auth: tunnel.AuthPSK, PSK: tunnel.NewSecret("swordfish-sswt"),
		CustomOptions: []tunnel.Option{{Key: "dpd-delay", Value: "10s"}},
	}
}

// waitStatus polls Status until ok accepts the tunnel's status.
func waitStatus(t *testing.T, b *Backend, name string, within time.Duration, ok func(backend.TunnelStatus) bool, tick ...func()) backend.TunnelStatus {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(within)
	var last backend.TunnelStatus
	for {
		for _, f := range tick {
			f()
		}
		m, err := b.Status(ctx)
		if err != nil {
			t.Fatalf("Status: %v", err)
		}
		last = m[name]
		if ok(last) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("tunnel %s: status did not converge within %s; last: phase %q reason %q details %q", name, within, last.Phase, last.Reason, last.Details)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// childOutcome waits until the tunnel is up or the kernel refusal is
// reported, and checks the reason says so plainly. reconcile is called on
// every poll, like the reconciler's periodic Ensure.
func childOutcome(t *testing.T, b *Backend, name string, reconcile func()) backend.TunnelStatus {
	t.Helper()
	st := waitStatus(t, b, name, 30*time.Second, func(s backend.TunnelStatus) bool {
		return s.Phase == backend.PhaseUp || strings.Contains(s.Reason, "kernel refused")
	}, reconcile)
	if st.IKE == nil || st.IKE.State != "established" || st.IKE.SPIi == "" || st.IKE.SPIr == "" || st.IKE.Established.IsZero() {
		t.Errorf("tunnel %s: IKE_SA described as %+v, want an established one with its SPIs", name, st.IKE)
	}
	if st.Phase == backend.PhaseUp {
		t.Logf("%s is up: this kernel installs ESP SAs", name)
		if st.Code != backend.CodeNone || len(st.Children) == 0 {
			t.Errorf("tunnel %s up with code %q and children %+v", name, st.Code, st.Children)
		}
		return st
	}
	if st.Phase != backend.PhaseDown || !strings.HasPrefix(st.Reason, reasonKernelRefused) || st.Code != backend.CodeKernelRefused {
		t.Fatalf("tunnel %s: phase %q reason %q code %q, want down with %q", name, st.Phase, st.Reason, st.Code, reasonKernelRefused)
	}
	t.Logf("%s: %s", name, st.Reason)
	return st
}

func ikeEstablished(st backend.TunnelStatus, conn string) bool {
	for _, d := range st.Details {
		if strings.HasPrefix(d, conn+"[") && strings.Contains(d, ": ESTABLISHED") {
			return true
		}
	}
	return false
}

func TestIntegrationTwoCharons(t *testing.T) {
	a, bh := newPair(t)
	ba, bb := newTestBackend(t, a), newTestBackend(t, bh)
	ctx := context.Background()

	// --- PSK geneve tunnel, version 1 ---
	ta := pskTunnel("gnv0", 1, "192.0.2.1", "192.0.2.2")
	tb := pskTunnel("gnv0", 1, "192.0.2.2", "192.0.2.1")
	if err := ba.Ensure(ctx, ta); err != nil {
		t.Fatalf("Ensure A: %v", err)
	}
	if err := bb.Ensure(ctx, tb); err != nil {
		t.Fatalf("Ensure B: %v", err)
	}
	conns := a.swanctl("--list-conns")
	for _, want := range []string{
		"gnv0-1: IKEv2",
		"gnv0-in-1: TRANSPORT",
		"gnv0-out-1: TRANSPORT",
	} {
		if !strings.Contains(conns, want) {
			t.Errorf("swanctl --list-conns lacks %q:\n%s", want, conns)
		}
	}
	checkSelectors(t, conns, "gnv0-in-1", "dynamic[udp/6081]", "dynamic[udp]")
	checkSelectors(t, conns, "gnv0-out-1", "dynamic[udp]", "dynamic[udp/6081]")

	reconcile := func(pairs ...any) func() {
		return func() {
			for i := 0; i+1 < len(pairs); i += 2 {
				b, tn := pairs[i].(*Backend), pairs[i+1].(tunnel.Tunnel)
				if err := b.Ensure(ctx, tn); err != nil {
					t.Errorf("periodic Ensure %s: %v", tn.Name, err)
				}
			}
		}
	}
	psk1 := reconcile(ba, ta, bb, tb)
	for _, side := range []struct {
		b *Backend
		h *host
	}{{ba, a}, {bb, bh}} {
		st := childOutcome(t, side.b, "gnv0", psk1)
		if !ikeEstablished(st, "gnv0-1") {
			t.Errorf("%s: no ESTABLISHED IKE_SA gnv0-1 in details %q", side.h.ns, st.Details)
		}
		if !strings.Contains(side.h.swanctl("--list-sas"), "ESTABLISHED") {
			t.Errorf("%s: swanctl --list-sas shows no ESTABLISHED IKE_SA", side.h.ns)
		}
	}
	captureCharonReplies(t, a, "psk", "gnv0-1")
	rep, err := ba.Report(ctx, "ipsec/status")
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := ba.Status(ctx); st["gnv0"].Phase != backend.PhaseUp && rep != "{}" {
		t.Errorf("ipsec/status with no installed CHILD_SA = %s, want {}", rep)
	}
	// The trap policies charon installed (auto=route) are reported like
	// `ip xfrm policy` prints them.
	pols, err := ba.Report(ctx, "xfrm/policies")
	if err != nil {
		t.Fatal(err)
	}
	ipx, _ := exec.Command("ip", "-n", "sswt-a", "xfrm", "policy").CombinedOutput()
	for _, want := range []string{
		"src 192.0.2.1/32 dst 192.0.2.2/32 proto udp dport 6081",
		"src 192.0.2.1/32 dst 192.0.2.2/32 proto udp sport 6081",
	} {
		if !strings.Contains(pols, "'"+want+"'") || !strings.Contains(string(ipx), want+" ") {
			t.Errorf("policy %q: xfrm/policies = %s\nip xfrm policy:\n%s", want, pols, ipx)
		}
	}
	loaded, err := ba.Loaded(ctx)
	if err != nil || len(loaded) != 1 || loaded[0] != "gnv0" {
		t.Errorf("Loaded = %v, %v; want [gnv0]", loaded, err)
	}

	// Idempotent: Ensure again must not disturb the IKE_SA.
	before := a.swanctl("--list-sas", "--ike", "gnv0-1")
	if err := ba.Ensure(ctx, ta); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	after := a.swanctl("--list-sas", "--ike", "gnv0-1")
	if firstLine(before) != firstLine(after) {
		t.Errorf("second Ensure disturbed the IKE_SA:\nbefore %s\nafter  %s", firstLine(before), firstLine(after))
	}

	// --- Version 2 unloads version 1 ---
	ta2, tb2 := ta, tb
	ta2.Version, tb2.Version = 2, 2
	if err := ba.Ensure(ctx, ta2); err != nil {
		t.Fatalf("Ensure v2 A: %v", err)
	}
	if err := bb.Ensure(ctx, tb2); err != nil {
		t.Fatalf("Ensure v2 B: %v", err)
	}
	conns = a.swanctl("--list-conns")
	if strings.Contains(conns, "gnv0-1:") || strings.Contains(conns, "gnv0-in-1") {
		t.Errorf("version 1 still loaded after Ensure v2:\n%s", conns)
	}
	if !strings.Contains(conns, "gnv0-in-2: TRANSPORT") || !strings.Contains(conns, "gnv0-out-2: TRANSPORT") {
		t.Errorf("version 2 not loaded:\n%s", conns)
	}
	st := childOutcome(t, ba, "gnv0", reconcile(ba, ta2, bb, tb2))
	if st.Version != 2 {
		t.Errorf("status version %d, want 2", st.Version)
	}

	// --- Remove unloads ---
	if err := ba.Remove(ctx, "gnv0"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := bb.Remove(ctx, "gnv0"); err != nil {
		t.Fatalf("Remove B: %v", err)
	}
	if conns := a.swanctl("--list-conns"); strings.Contains(conns, "gnv0") {
		t.Errorf("Remove left connections:\n%s", conns)
	}
	if keys := a.sharedKeys(); len(keys) != 0 {
		t.Errorf("Remove left shared keys %v", keys)
	}
	if loaded, err := ba.Loaded(ctx); err != nil || len(loaded) != 0 {
		t.Errorf("Loaded after Remove = %v, %v", loaded, err)
	}
	if m, _ := ba.Status(ctx); len(m) != 0 {
		t.Errorf("Status after Remove = %v, want empty", m)
	}

	// --- a connection somebody else loaded is never touched ---
	a.loadForeignConn("home-2")

	// --- wrong PSK: the reason names the authentication failure ---
	tw, twb := pskTunnel("gnv5", 1, "192.0.2.1", "192.0.2.2"), pskTunnel("gnv5", 1, "192.0.2.2", "192.0.2.1")
	twb.PSK = tunnel.NewSecret("not-the-same")
	st = waitStatus(t, ba, "gnv5", 20*time.Second, func(s backend.TunnelStatus) bool {
		return s.Phase == backend.PhaseDown && strings.Contains(s.Reason, "AUTHENTICATION_FAILED")
	}, reconcile(ba, tw, bb, twb))
	t.Logf("wrong PSK: %s", st.Reason)
	if st.Code != CodeAuthFailed {
		t.Errorf("wrong PSK: code %q, want %q", st.Code, CodeAuthFailed)
	}

	// --- a restarted ovnsecd finds its leftovers (and only those) ---
	ba2 := newTestBackend(t, a)
	if loaded, err := ba2.Loaded(ctx); err != nil || len(loaded) != 1 || loaded[0] != "gnv5" {
		t.Errorf("fresh backend Loaded = %v, %v; want [gnv5]", loaded, err)
	}
	if m, err := ba2.Status(ctx); err != nil || m["gnv5"].Version != 1 || len(m) != 1 {
		t.Errorf("fresh backend Status = %+v, %v", m, err)
	}
	if err := ba2.Remove(ctx, "gnv5"); err != nil {
		t.Fatalf("Remove leftover: %v", err)
	}
	if err := bb.Remove(ctx, "gnv5"); err != nil {
		t.Fatalf("Remove gnv5 on B: %v", err)
	}
	if loaded, err := ba.Loaded(ctx); err != nil || len(loaded) != 0 {
		t.Errorf("Loaded after removing leftovers = %v, %v", loaded, err)
	}
	_ = ba.Remove(ctx, "gnv5") // forget it in the first backend too

	// --- CA-signed geneve tunnel ---
	pki := newTestPKI(t)
	caKey, ca := pki.newCA(t)
	ca1 := pki.issue(t, caKey, ca, "sswt-a", "rsa")
	cb1 := pki.issue(t, caKey, ca, "sswt-b", "pkcs8")
	caTunnel := func(local, remote, localName, remoteName string, c hostCreds) tunnel.Tunnel {
		return tunnel.Tunnel{
			Name: "gnv1", Version: 1, State: tunnel.StateConfigured, Type: tunnel.TypeGeneve,
			LocalIP: local, RemoteIP: remote, AddressFamily: "IPv4", DstPort: 6081,
			Auth: tunnel.AuthCASigned, Certificate: c.cert, PrivateKey: c.key, CACert: pki.caPath,
			LocalName: localName, RemoteName: remoteName,
		}
	}
	tca := caTunnel(tunnel.DefaultRoute, "192.0.2.2", "sswt-a", "sswt-b", ca1)
	tcb := caTunnel("192.0.2.2", "192.0.2.1", "sswt-b", "sswt-a", cb1)
	if err := ba.Ensure(ctx, tca); err != nil {
		t.Fatalf("Ensure CA A: %v", err)
	}
	if err := bb.Ensure(ctx, tcb); err != nil {
		t.Fatalf("Ensure CA B: %v", err)
	}
	for _, side := range []struct {
		b *Backend
		h *host
	}{{ba, a}, {bb, bh}} {
		st := childOutcome(t, side.b, "gnv1", reconcile(ba, tca, bb, tcb))
		if !ikeEstablished(st, "gnv1-1") {
			t.Errorf("%s: CA tunnel IKE_SA not established: %q", side.h.ns, st.Details)
		}
	}
	captureCharonReplies(t, a, "ca", "gnv1-1")
	// A fresh backend (ovnsecd restarted with --no-restart-ike-daemon)
	// reloads the same connection without disturbing its IKE_SAs.
	before = a.swanctl("--list-sas", "--ike", "gnv1-1")
	ba3 := newTestBackend(t, a)
	if err := ba3.Ensure(ctx, tca); err != nil {
		t.Fatalf("fresh backend Ensure: %v", err)
	}
	after = a.swanctl("--list-sas", "--ike", "gnv1-1")
	for _, id := range ikeSAIDs(before, "gnv1-1") {
		if !strings.Contains(after, "gnv1-1: "+id+",") {
			t.Errorf("re-Ensure from a fresh backend tore down IKE_SA %s:\nbefore\n%s\nafter\n%s", id, before, after)
		}
	}
	if len(ikeSAIDs(before, "gnv1-1")) == 0 {
		t.Errorf("no gnv1-1 IKE_SA listed:\n%s", before)
	}
	_ = ba3.Close(ctx, false)

	// --- a certificate renewed under the same path (new key too) is
	// loaded by the backend on its own: no new version, no Ensure; the
	// IKE_SAs established before stay, and a new IKE_SA authenticates
	// with the renewed pair ---
	before = a.swanctl("--list-sas", "--ike", "gnv1-1")
	renewed := pki.issue(t, caKey, ca, "sswt-a", "rsa")
	if renewed != ca1 {
		t.Fatalf("renewal wrote %+v, want the same paths %+v", renewed, ca1)
	}
	serial := certSerial(t, renewed.cert)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(a.swanctl("--list-certs"), serial) {
		if time.Now().After(deadline) {
			t.Fatalf("renewed certificate (serial %s) never loaded into charon:\n%s", serial, a.swanctl("--list-certs"))
		}
		time.Sleep(250 * time.Millisecond)
	}
	after = a.swanctl("--list-sas", "--ike", "gnv1-1")
	for _, l := range ikeSALines(before, "gnv1-1") {
		if !strings.Contains(after, l+"\n") {
			t.Errorf("renewal disturbed IKE_SA %q:\nbefore\n%s\nafter\n%s", l, before, after)
		}
	}
	if len(ikeSALines(before, "gnv1-1")) == 0 {
		t.Errorf("no gnv1-1 IKE_SA listed before the renewal:\n%s", before)
	}
	if st, _ := ba.Status(ctx); st["gnv1"].Version != 1 || credNoteOf(st["gnv1"]) != "" {
		t.Errorf("after renewal: version %d, details %q", st["gnv1"].Version, st["gnv1"].Details)
	}
	a.swanctl("--terminate", "--ike", "gnv1-1", "--force", "--timeout", "5")
	st = childOutcome(t, ba, "gnv1", reconcile(ba, tca, bb, tcb))
	if !ikeEstablished(st, "gnv1-1") {
		t.Errorf("no IKE_SA with the renewed certificate: %q", st.Details)
	}
	for _, l := range ikeSALines(before, "gnv1-1") {
		if strings.Contains(a.swanctl("--list-sas", "--ike", "gnv1-1"), l+"\n") {
			t.Errorf("IKE_SA %q survived --terminate: the new one proves nothing", l)
		}
	}

	sas := a.swanctl("--list-sas")
	if !strings.Contains(sas, "local  'sswt-a'") || !strings.Contains(sas, "remote 'sswt-b'") {
		t.Errorf("CA tunnel identities not the certificate names:\n%s", sas)
	}

	// --- charon restart: not loaded, then Ensure reloads ---
	a.stop(syscall.SIGKILL)
	st = waitStatus(t, ba, "gnv1", 10*time.Second, func(s backend.TunnelStatus) bool {
		return s.Phase == backend.PhaseDown && strings.Contains(s.Reason, "strongSwan charon is not reachable at "+a.socket)
	})
	if st.Code != backend.CodeBackendUnreachable {
		t.Errorf("charon down: code %q, want %q", st.Code, backend.CodeBackendUnreachable)
	}
	if err := ba.Ensure(ctx, tca); err == nil || !strings.Contains(err.Error(), "not reachable") {
		t.Errorf("Ensure with charon down = %v, want not reachable", err)
	}
	a.start()
	st = waitStatus(t, ba, "gnv1", 10*time.Second, func(s backend.TunnelStatus) bool {
		return s.Phase == backend.PhaseNotLoaded
	})
	t.Logf("after restart: %s", st.Reason)
	if err := ba.Ensure(ctx, tca); err != nil {
		t.Fatalf("Ensure after restart: %v", err)
	}
	if !strings.Contains(a.swanctl("--list-conns"), "gnv1-in-1: TRANSPORT") {
		t.Errorf("Ensure after restart did not reload gnv1")
	}
	st = childOutcome(t, ba, "gnv1", reconcile(ba, tca, bb, tcb))
	if !ikeEstablished(st, "gnv1-1") {
		t.Errorf("after restart: IKE_SA not re-established: %q", st.Details)
	}

	a.loadForeignConn("home-2") // the restart lost the first one

	// --- self-signed (pinned peer certificate) gre tunnel ---
	for _, side := range []*Backend{ba, bb} {
		if err := side.Remove(ctx, "gnv1"); err != nil {
			t.Fatalf("Remove gnv1: %v", err)
		}
	}
	sa := pki.issue(t, nil, nil, "sswt-ss-a", "ec")
	sb := pki.issue(t, nil, nil, "sswt-ss-b", "rsa")
	ssTunnel := func(local, remote, localName, remoteName string, c hostCreds, peerCert string) tunnel.Tunnel {
		return tunnel.Tunnel{
			Name: "gre0", Version: 1, State: tunnel.StateConfigured, Type: tunnel.TypeGRE,
			LocalIP: local, RemoteIP: remote, AddressFamily: "IPv4",
			Auth: tunnel.AuthSelfSigned, Certificate: c.cert, PrivateKey: c.key, RemoteCert: peerCert,
			LocalName: localName, RemoteName: remoteName,
		}
	}
	tsa := ssTunnel("192.0.2.1", "192.0.2.2", "sswt-ss-a", "sswt-ss-b", sa, sb.cert)
	tsb := ssTunnel("192.0.2.2", "192.0.2.1", "sswt-ss-b", "sswt-ss-a", sb, sa.cert)
	ssRec := reconcile(ba, tsa, bb, tsb)
	ssRec()
	checkSelectors(t, a.swanctl("--list-conns"), "gre0-1", "dynamic[gre]", "dynamic[gre]")
	for _, side := range []struct {
		b *Backend
		h *host
	}{{ba, a}, {bb, bh}} {
		st := childOutcome(t, side.b, "gre0", ssRec)
		if !ikeEstablished(st, "gre0-1") {
			t.Errorf("%s: self-signed gre IKE_SA not established: %q", side.h.ns, st.Details)
		}
	}

	// --- Close with cleanup unloads everything ---
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := ba.Close(cctx, true); err != nil {
		t.Fatalf("Close(cleanup): %v", err)
	}
	if conns := a.swanctl("--list-conns"); strings.Contains(conns, "gre0") || strings.Contains(conns, "gnv") {
		t.Errorf("Close(cleanup) left connections:\n%s", conns)
	}
	if keys := a.sharedKeys(); len(keys) != 0 {
		t.Errorf("Close(cleanup) left shared keys %v", keys)
	}
	if conns := a.swanctl("--list-conns"); !strings.Contains(conns, "home-2:") {
		t.Errorf("Close(cleanup) removed a connection ovnsec did not load:\n%s", conns)
	}
}

// ikeSAIDs returns the "#N" ids of the IKE_SAs of conn in swanctl output.
func ikeSAIDs(out, conn string) []string {
	var ids []string
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, conn+": #"); ok {
			id, _, _ := strings.Cut(rest, ",")
			ids = append(ids, "#"+id)
		}
	}
	return ids
}

// ikeSALines returns the first line of every IKE_SA of conn in swanctl
// output: its unique id, state and SPIs.
func ikeSALines(out, conn string) []string {
	var ls []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, conn+": #") {
			ls = append(ls, l)
		}
	}
	return ls
}

// certSerial returns a PEM certificate file's serial as swanctl prints it.
func certSerial(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, x := range c.SerialNumber.Bytes() {
		parts = append(parts, fmt.Sprintf("%02x", x))
	}
	return strings.Join(parts, ":")
}

func credNoteOf(s backend.TunnelStatus) string {
	for _, d := range s.Details {
		if strings.HasPrefix(d, "Credentials: ") {
			return d
		}
	}
	return ""
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// checkSelectors finds the child block in swanctl --list-conns output and
// checks its local and remote selectors.
func checkSelectors(t *testing.T, out, child, local, remote string) {
	t.Helper()
	i := strings.Index(out, child+": TRANSPORT")
	if i < 0 {
		t.Errorf("child %s not listed", child)
		return
	}
	lines := strings.Split(out[i:], "\n")
	if len(lines) < 3 {
		t.Errorf("child %s: short listing", child)
		return
	}
	gotL := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(lines[1]), "local:"))
	gotR := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(lines[2]), "remote:"))
	if gotL != local || gotR != remote {
		t.Errorf("child %s selectors local %q remote %q, want %q %q", child, gotL, gotR, local, remote)
	}
}
