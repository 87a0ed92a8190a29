package native

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
	"github.com/ovnsec/ovnsec/internal/ike"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

func TestGuardInvalidTunnel(t *testing.T) {
	r := newRig(t)
	// A protected tunnel turns INVALID: the reconciler guards it and removes
	// its SAs; its IKE peer goes, its policy stays.
	good := geneveTunnel(1)
	if err := r.b.Ensure(ctx, good); err != nil {
		t.Fatal(err)
	}
	bad := geneveTunnel(2)
	bad.State, bad.Reason = tunnel.StateInvalid, ": must choose a authentication method"
	if refused, err := r.b.Guard(ctx, []tunnel.Tunnel{bad}); err != nil || refused != nil {
		t.Fatal(refused, err)
	}
	if err := r.b.Remove(ctx, bad.Name); err != nil {
		t.Fatal(err)
	}
	if got := r.att.get(); len(got) != 1 || !bridgeBlocks(got, bad) {
		t.Fatalf("policies after Guard and Remove = %+v, want the peer still protected", got)
	}
	if len(r.eng.removed) == 0 {
		t.Errorf("the IKE peer of the now invalid tunnel was not removed")
	}
	st, err := r.b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := st[bad.Name]
	if s.Phase != backend.PhaseDown || !s.Blocked || !strings.Contains(s.Reason, "configuration is invalid") || !strings.Contains(s.Reason, "never sent in clear") {
		t.Errorf("status = %+v", s)
	}
	if names, _ := r.b.Loaded(ctx); len(names) != 0 {
		t.Errorf("Loaded = %v, want nothing: a guard holds no connection", names)
	}
	// Fixed again: Ensure protects it; the guard stays underneath.
	fixed := geneveTunnel(3)
	if _, err := r.b.Guard(ctx, []tunnel.Tunnel{fixed}); err != nil {
		t.Fatal(err)
	}
	if err := r.b.Ensure(ctx, fixed); err != nil {
		t.Fatal(err)
	}
	if got := r.att.get(); len(got) != 1 {
		t.Fatalf("policies after fix = %+v", got)
	}
	if st, _ := r.b.Status(ctx); st[bad.Name].Blocked {
		t.Errorf("still blocked after Ensure: %+v", st[bad.Name])
	}
	// No longer required and removed: nothing left.
	if _, err := r.b.Guard(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := r.att.get(); len(got) != 1 {
		t.Fatalf("Guard lifted the policy of a tunnel whose SAs still exist: %+v", got)
	}
	if err := r.b.Remove(ctx, bad.Name); err != nil {
		t.Fatal(err)
	}
	if got := r.att.get(); len(got) != 0 {
		t.Fatalf("policies after Remove = %+v", got)
	}
}

func TestGuardRefusesWhatItCannotDrop(t *testing.T) {
	r := newRig(t)
	flow := geneveTunnel(1)
	flow.Name, flow.RemoteIP = "flow0", "flow"
	port4500 := geneveTunnel(1)
	port4500.Name, port4500.RemoteIP, port4500.DstPort = "nat0", "198.51.100.4", 4500
	v6 := geneveTunnel(1)
	v6.Name, v6.RemoteIP, v6.AddressFamily = "six0", "2001:db8::2", "IPv6"
	for _, t := range []*tunnel.Tunnel{&flow, &port4500, &v6} {
		setAddrs(t)
	}
	ok := geneveTunnel(1)
	refused, err := r.b.Guard(ctx, []tunnel.Tunnel{flow, port4500, v6, ok})
	if err != nil {
		t.Fatal(err)
	}
	if len(refused) != 2 || refused["flow0"] == nil || refused["nat0"] == nil {
		t.Fatalf("refused = %v, want flow0 and nat0", refused)
	}
	if !strings.Contains(refused["flow0"].Error(), "not an IP address") {
		t.Errorf("flow refusal: %v", refused["flow0"])
	}
	got := r.att.get()
	if !bridgeBlocks(got, v6) || !bridgeBlocks(got, ok) || len(got) != 2 {
		t.Fatalf("policies = %+v, want the IPv6 and the IPv4 tunnel blocked", got)
	}
	// Ensure of the IPv6 tunnel fails (the engine protects IPv4 only) and
	// leaves it blocked; Ensure of the flow tunnel fails loudly.
	if err := r.b.Ensure(ctx, v6); err == nil || !strings.Contains(err.Error(), "IPv4") {
		t.Fatalf("Ensure IPv6: %v", err)
	}
	if !bridgeBlocks(r.att.get(), v6) {
		t.Fatal("IPv6 tunnel no longer blocked after a failed Ensure")
	}
	if err := r.b.Ensure(ctx, flow); err == nil || !strings.Contains(err.Error(), "cannot drop") {
		t.Fatalf("Ensure flow: %v", err)
	}
}

func TestGuardOneInstallForAll(t *testing.T) {
	r := newRig(t)
	a := geneveTunnel(1)
	c := geneveTunnel(1)
	c.Name, c.RemoteIP = "ovn-c-0", "198.51.100.3"
	setAddrs(&c)
	sets := r.att.sets
	if _, err := r.b.Guard(ctx, []tunnel.Tunnel{a, c}); err != nil {
		t.Fatal(err)
	}
	if r.att.sets != sets+1 || len(r.att.get()) != 2 {
		t.Fatalf("Guard: %d installs, policies %+v; want one install protecting both", r.att.sets-sets, r.att.get())
	}
	if _, err := r.b.Guard(ctx, []tunnel.Tunnel{a, c}); err != nil || r.att.sets != sets+1 {
		t.Fatalf("an unchanged guard set was installed again (%d installs, %v)", r.att.sets-sets, err)
	}
	if err := r.b.Ensure(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got := r.att.get(); len(got) != 2 {
		t.Fatalf("after Ensure of one: policies %+v, want both still protected", got)
	}
	if r.att.sets != sets+1 {
		t.Errorf("Ensure of a guarded tunnel installed br-phy again (%d installs in all): its policy was already in place", r.att.sets-sets)
	}
}

// Ensure alone (no Guard) fails closed too, and Remove then lifts the
// guard it made.
func TestEnsureGuardsWithoutGuard(t *testing.T) {
	r := newRig(t)
	bad := geneveTunnel(1)
	bad.Auth, bad.Certificate, bad.PrivateKey, bad.CACert, bad.RemoteName = tunnel.AuthCASigned, "/c.pem", "/k.pem", "/missing.pem", "hv2"
	if err := r.b.Ensure(ctx, bad); err == nil {
		t.Fatal("Ensure with an unreadable CA succeeded")
	}
	if !bridgeBlocks(r.att.get(), bad) {
		t.Fatalf("policies = %+v, want the failed tunnel blocked", r.att.get())
	}
	if err := r.b.Remove(ctx, bad.Name); err != nil {
		t.Fatal(err)
	}
	if got := r.att.get(); len(got) != 0 {
		t.Fatalf("policies after Remove = %+v", got)
	}
}

// The status is data: the IKE engine's reason code, the IKE SA and the
// Child SAs with their counters; the detail lines are rendered from it.
func TestStatusIsTyped(t *testing.T) {
	r := newRig(t)
	tt := geneveTunnel(1)
	if err := r.b.Ensure(ctx, tt); err != nil {
		t.Fatal(err)
	}
	r.eng.setStatus(ike.PeerStatus{Name: "ovn-b-0-1", Known: true, State: ike.SADown, Code: ike.ReasonPeerRefusedAuth, Reason: "AUTHENTICATION_FAILED from peer"})
	st, _ := r.b.Status(ctx)
	if s := st[tt.Name]; s.Phase != backend.PhaseDown || s.Code != "peer_refused_auth" || s.IKE == nil || s.IKE.State != "down" || s.Details[0] != "IKE SA: down" {
		t.Fatalf("down: %+v", s)
	}
	r.eng.setStatus(ike.PeerStatus{Name: "ovn-b-0-1", Known: true, State: ike.SAEstablished, Code: ike.ReasonNone, Algorithms: "AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519"})
	for _, c := range []ike.ChildSA{child(t, "ovn-b-0-1", "ovn-b-0-in-1", 0x1001, 0x2001, 1), child(t, "ovn-b-0-1", "ovn-b-0-out-1", 0x1002, 0x2002, 3)} {
		r.eng.handler.HandleChildSA(ike.ChildEstablished, c)
	}
	st, _ = r.b.Status(ctx)
	s := st[tt.Name]
	if s.Phase != backend.PhaseUp || s.Code != backend.CodeNone || s.IKE.State != "established" || len(s.Children) != 2 {
		t.Fatalf("up: %+v", s)
	}
	c := s.Children[0]
	if c.Name != "ovn-b-0-in-1" || c.InSPI != "00001001" || c.OutSPI != "00002001" || c.Encap != "none" || c.Drops != nil {
		t.Errorf("child %+v", c)
	}
	want := "ovn-b-0-in-1: ESP SPIs 00001001_i 00002001_o, AES_GCM_16_256, encap none, in 0 pkts/0 bytes, out 0 pkts/0 bytes, drops none"
	if !slices.Contains(s.Details, want) {
		t.Errorf("details %q lack %q", s.Details, want)
	}
}

// The sweeper runs on the backend's clock: late initiation happens when
// the fake clock passes the peer grace, with no real waiting.
func TestSweeperRunsOnTheClock(t *testing.T) {
	clk := clocktest.New(time.Unix(1700000000, 0))
	eng := newFakeIKE()
	b, err := newBackend(Config{
		Local: local, Bridge: "br-phy", PeerGrace: 10 * time.Second, Clock: clk, Sweep: time.Second,
		NewIKE: func(c ike.Config) (IKE, error) { eng.handler = c.Handler; return eng, nil },
		Creds:  fakeCreds{}, Log: slog.New(slog.DiscardHandler),
	}, &fakeAtt{}, newChanDev(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(ctx, false) })
	tt := geneveTunnel(1)
	tt.RemoteIP = "198.51.100.0" // lower than ours: we wait for the peer
	setAddrs(&tt)
	if err := b.Ensure(ctx, tt); err != nil {
		t.Fatal(err)
	}
	initiated := func() int {
		eng.mu.Lock()
		defer eng.mu.Unlock()
		return len(eng.initiated)
	}
	for range 9 {
		clk.Advance(time.Second)
	}
	if n := initiated(); n != 0 {
		t.Fatalf("initiated %d times within the grace", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for initiated() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the sweeper did not initiate after the grace on the fake clock")
		}
		clk.Advance(time.Second)
		time.Sleep(5 * time.Millisecond)
	}
}
