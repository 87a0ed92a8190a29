package native

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

var ctx = context.Background()

func TestEnsureIdempotentAndVersions(t *testing.T) {
	r := newRig(t)
	if err := r.b.Ensure(ctx, geneveTunnel(1)); err != nil {
		t.Fatal(err)
	}
	if got := r.att.get(); len(got) != 1 || got[0].PeerIP != remote || got[0].Mode != ovsbridge.ModeProtected {
		t.Fatalf("policies %+v", got)
	}
	if len(r.eng.added) != 1 || r.eng.added[0] != "ovn-b-0-1" {
		t.Fatalf("engine peers %v", r.eng.added)
	}
	sets := r.att.sets
	if err := r.b.Ensure(ctx, geneveTunnel(1)); err != nil {
		t.Fatal(err)
	}
	if len(r.eng.added) != 1 || r.att.sets != sets {
		t.Errorf("unchanged tunnel re-applied: peers %v, rule installs %d -> %d", r.eng.added, sets, r.att.sets)
	}
	if err := r.b.Ensure(ctx, geneveTunnel(2)); err != nil {
		t.Fatal(err)
	}
	if len(r.eng.removed) != 1 || r.eng.removed[0] != "ovn-b-0-1" || r.eng.added[1] != "ovn-b-0-2" {
		t.Errorf("version change: removed %v added %v", r.eng.removed, r.eng.added)
	}
	names, _ := r.b.Loaded(ctx)
	if len(names) != 1 || names[0] != "ovn-b-0" {
		t.Errorf("Loaded = %v", names)
	}
	if err := r.b.Remove(ctx, "ovn-b-0"); err != nil {
		t.Fatal(err)
	}
	if got := r.att.get(); len(got) != 0 {
		t.Errorf("policies after Remove: %+v", got)
	}
	if names, _ := r.b.Loaded(ctx); len(names) != 0 {
		t.Errorf("Loaded after Remove = %v", names)
	}
	if err := r.b.Remove(ctx, "ovn-b-0"); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestEnsureErrors(t *testing.T) {
	t.Run("second tunnel to the same remote", func(t *testing.T) {
		r := newRig(t)
		if err := r.b.Ensure(ctx, geneveTunnel(1)); err != nil {
			t.Fatal(err)
		}
		other := geneveTunnel(1)
		other.Name, other.Type, other.DstPort = "vx0", tunnel.TypeVXLAN, 4789
		if err := r.b.Ensure(ctx, other); err == nil || !strings.Contains(err.Error(), "one tunnel per remote") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("engine refuses the peer: tunnel blocked", func(t *testing.T) {
		r := newRig(t)
		r.eng.addErr = errors.New("ike: bad proposal")
		if err := r.b.Ensure(ctx, geneveTunnel(1)); err == nil || !strings.Contains(err.Error(), "bad proposal") {
			t.Fatalf("err = %v", err)
		}
		if got := r.att.get(); !bridgeBlocks(got, geneveTunnel(1)) {
			t.Errorf("a failed Ensure left the tunnel unprotected: %+v", got)
		}
		if names, _ := r.b.Loaded(ctx); len(names) != 0 {
			t.Errorf("Loaded = %v", names)
		}
	})
	t.Run("rules cannot be installed", func(t *testing.T) {
		r := newRig(t)
		r.att.err = errors.New("ovs-ofctl: connection refused")
		if err := r.b.Ensure(ctx, geneveTunnel(1)); err == nil || !strings.Contains(err.Error(), "br-phy rules") {
			t.Fatalf("err = %v", err)
		}
		if len(r.eng.added) != 0 {
			t.Error("IKE peer added although the rules failed")
		}
	})
	t.Run("unsupported option is a partial error", func(t *testing.T) {
		r := newRig(t)
		tt := geneveTunnel(1)
		tt.CustomOptions = []tunnel.Option{{Key: "dpdaction", Value: "restart"}}
		err := r.b.Ensure(ctx, tt)
		if err == nil || !backend.IsPartial(err) || !strings.Contains(err.Error(), "ipsec_dpdaction") {
			t.Fatalf("err = %v, want a partial error", err)
		}
		if len(r.eng.added) != 1 {
			t.Error("tunnel not applied")
		}
	})
	t.Run("closed", func(t *testing.T) {
		r := newRig(t)
		r.b.Close(ctx, false)
		if err := r.b.Ensure(ctx, geneveTunnel(1)); err == nil {
			t.Fatal("Ensure after Close succeeded")
		}
	})
}

// geneveFrame is a tunnel frame from us to the remote.
func geneveFrame() []byte {
	b := ipv4Frame(local, remote, 17, 8+50)
	ip := b[14:]
	binary.BigEndian.PutUint16(ip[20:], 40000)
	binary.BigEndian.PutUint16(ip[22:], 6081)
	binary.BigEndian.PutUint16(ip[24:], 58)
	return b
}

// ipv4Frame is an Ethernet frame with an IPv4 header (checksummed) from
// src to dst of protocol proto and n bytes of payload, all zero.
func ipv4Frame(src, dst netip.Addr, proto byte, n int) []byte {
	b := make([]byte, 14+20+n)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	s, d := src.As4(), dst.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	return b
}

func TestChildSALifecycle(t *testing.T) {
	r := newRig(t)
	if err := r.b.Ensure(ctx, geneveTunnel(1)); err != nil {
		t.Fatal(err)
	}
	peer := "ovn-b-0-1"
	tbl := r.b.Hook().Table()

	// A tunnel packet before any SA is held.
	r.dev.in <- geneveFrame()
	waitUntil(t, "frame held", func() bool { return r.b.Loop().Hold().Len(remote) == 1 })
	st, _ := r.b.Status(ctx)
	if s := st["ovn-b-0"]; s.Phase != backend.PhaseDown || s.Reason == "" {
		t.Errorf("status before IKE: %+v", s)
	}

	// The -in- child alone does not carry our traffic.
	r.eng.handler.HandleChildSA(ike.ChildEstablished, child(t, peer, "ovn-b-0-in-1", 0xc0000001, 0xd0000001, 1))
	if tbl.Outbound(remote) != nil {
		t.Fatal("the -in- child's SA became the outbound SA")
	}
	if p, ok := r.b.Hook().PeerOf(0xc0000001); !ok || p != remote {
		t.Errorf("inbound SA bound to %v %v", p, ok)
	}
	r.eng.setStatus(ike.PeerStatus{Name: peer, Known: true, State: ike.SAEstablished, Algorithms: "AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519"})
	st, _ = r.b.Status(ctx)
	if s := st["ovn-b-0"]; s.Phase != backend.PhaseConnecting || !strings.Contains(s.Reason, "ovn-b-0-out-1") {
		t.Errorf("status with one child: %+v", s)
	}

	// The -out- child carries it: the held frame leaves as ESP.
	c := child(t, peer, "ovn-b-0-out-1", 0xc0000002, 0xd0000002, 3)
	keyCopy := c.InKey
	r.eng.handler.HandleChildSA(ike.ChildEstablished, c)
	if o := tbl.Outbound(remote); o == nil || o.SPI() != 0xd0000002 {
		t.Fatalf("outbound SA %v", o)
	}
	// The keys live as long as the Child SA (a handover saves them).
	if zeroed(t, keyCopy) {
		t.Error("Child SA keys erased while the Child SA is installed")
	}
	waitUntil(t, "held frame released", func() bool { return len(r.dev.writes()) == 1 })
	if w := r.dev.writes()[0]; w[14+9] != 50 || binary.BigEndian.Uint32(w[34:]) != 0xd0000002 {
		t.Errorf("released frame: proto %d spi %#x", w[14+9], binary.BigEndian.Uint32(w[34:]))
	}
	// A frame from the peer with an unknown SPI is dropped and shows up in
	// the tunnel's details.
	r.dev.in <- espFrame(remote, local, 0x7777)
	waitUntil(t, "unknown SPI counted", func() bool { return r.b.Hook().Stats().Drops["drop_no_sa"] == 1 })
	st, _ = r.b.Status(ctx)
	s := st["ovn-b-0"]
	if d := strings.Join(s.Details, "\n"); !strings.Contains(d, "ESP engine drops (all peers): drop_no_sa=1") {
		t.Errorf("details lack the engine drops:\n%s", d)
	}
	if s.Phase != backend.PhaseUp || len(s.Conns) != 2 || !s.Conns[0].Active || !s.Conns[1].Active {
		t.Fatalf("status up: %+v", s)
	}
	details := strings.Join(s.Details, "\n")
	for _, want := range []string{"c0000002_i d0000002_o", "out 1 pkts", "AES_GCM_16_256", "IKE SA: established"} {
		if !strings.Contains(details, want) {
			t.Errorf("details lack %q:\n%s", want, details)
		}
	}
	rep, err := r.b.Report(ctx, "ipsec/status")
	if err != nil {
		t.Fatal(err)
	}
	want := "{'ovn-b-0': {'ovn-b-0-in-1': 'ovn-b-0-in-1{1}:  INSTALLED, TRANSPORT, ESP SPIs: c0000001_i d0000001_o', " +
		"'ovn-b-0-out-1': 'ovn-b-0-out-1{2}:  INSTALLED, TRANSPORT, ESP SPIs: c0000002_i d0000002_o'}}"
	if rep != want {
		t.Errorf("ipsec/status\n got %s\nwant %s", rep, want)
	}

	// Rekey of the -out- child that we initiated: make-before-break, the
	// peer installed the new pair before answering, so we switch at once.
	nc := child(t, peer, "ovn-b-0-out-1", 0xc0000003, 0xd0000003, 5)
	nc.Replaces, nc.Initiator = 0xc0000002, true
	r.eng.handler.HandleChildSA(ike.ChildRekeyed, nc)
	if o := tbl.Outbound(remote); o == nil || o.SPI() != 0xd0000003 {
		t.Fatalf("outbound after rekey %v", o)
	}
	if tbl.Inbound(0xc0000002) == nil || tbl.Inbound(0xc0000003) == nil {
		t.Error("old and new inbound SAs must both accept during the grace period")
	}
	if ts := tbl.Stats(); ts.Retiring != 1 {
		t.Errorf("retiring %d, want 1", ts.Retiring)
	}
	// The replaced child's deletion leaves the new SAs alone.
	r.eng.handler.HandleChildSA(ike.ChildDeleted, c) // the engine reports the same record, keys included
	if !zeroed(t, keyCopy) {
		t.Error("Child SA keys not erased when it was deleted")
	}
	if o := tbl.Outbound(remote); o == nil || o.SPI() != 0xd0000003 {
		t.Fatal("deleting the replaced child removed the new outbound SA")
	}
	// Rekey of the -in- child retires its old inbound SA.
	ni := child(t, peer, "ovn-b-0-in-1", 0xc0000004, 0xd0000004, 7)
	ni.Replaces = 0xc0000001
	r.eng.handler.HandleChildSA(ike.ChildRekeyed, ni)
	if tbl.Inbound(0xc0000004) == nil || tbl.Stats().Retiring != 2 {
		t.Errorf("in rekey: stats %+v", tbl.Stats())
	}
	if o := tbl.Outbound(remote); o.SPI() != 0xd0000003 {
		t.Error("the -in- child's rekey changed the outbound SA")
	}
	// Deleting the current -out- child removes the outbound SA.
	r.eng.handler.HandleChildSA(ike.ChildDeleted, child(t, peer, "ovn-b-0-out-1", 0xc0000003, 0xd0000003, 5))
	if tbl.Outbound(remote) != nil || tbl.Inbound(0xc0000003) != nil {
		t.Error("deleted child's SAs still installed")
	}
	st, _ = r.b.Status(ctx)
	if s := st["ovn-b-0"]; s.Phase == backend.PhaseUp {
		t.Errorf("status up without the -out- child: %+v", s)
	}
	// Events of unknown peers are ignored.
	r.eng.handler.HandleChildSA(ike.ChildEstablished, child(t, "gone-1", "gone-out-1", 0xc0000009, 0xd0000009, 9))
	if tbl.Inbound(0xc0000009) != nil {
		t.Error("SA of an unknown peer installed")
	}
}

func TestChildSAEncapSwitchesRules(t *testing.T) {
	r := newRig(t)
	if err := r.b.Ensure(ctx, geneveTunnel(1)); err != nil {
		t.Fatal(err)
	}
	c := child(t, "ovn-b-0-1", "ovn-b-0-out-1", 0xc0000002, 0xd0000002, 3)
	c.Encap = esp.Encap{Type: esp.EncapUDP, SrcPort: 4500, DstPort: 4500}
	r.eng.handler.HandleChildSA(ike.ChildEstablished, c)
	if got := r.att.get(); len(got) != 1 || got[0].Encap != ovsbridge.EncapUDP4500 {
		t.Fatalf("policies after a NAT-T child: %+v", got)
	}
	if o := r.b.Hook().Table().Outbound(remote); o == nil || o.Encap().Type != esp.EncapUDP {
		t.Errorf("outbound SA %v", o)
	}
	rep, _ := r.b.Report(ctx, "ipsec/status")
	if !strings.Contains(rep, "TRANSPORT-in-UDP") {
		t.Errorf("ipsec/status %s", rep)
	}
}

func TestChildSATunnelModeRefused(t *testing.T) {
	r := newRig(t)
	if err := r.b.Ensure(ctx, geneveTunnel(1)); err != nil {
		t.Fatal(err)
	}
	r.eng.setStatus(ike.PeerStatus{Name: "ovn-b-0-1", Known: true, State: ike.SAEstablished})
	c := child(t, "ovn-b-0-1", "ovn-b-0-out-1", 0xc0000002, 0xd0000002, 3)
	c.Mode = esp.Tunnel
	r.eng.handler.HandleChildSA(ike.ChildEstablished, c)
	if r.b.Hook().Table().Outbound(remote) != nil {
		t.Fatal("tunnel-mode SA installed")
	}
	st, _ := r.b.Status(ctx)
	if s := st["ovn-b-0"]; s.Phase != backend.PhaseDown || !strings.Contains(s.Reason, "transport mode") {
		t.Errorf("status %+v", s)
	}
}

func TestReports(t *testing.T) {
	r := newRig(t)
	tests := []struct {
		cmd, want string
		err       bool
	}{
		{"ipsec/status", "{}", false},
		{"xfrm/state", "{}", false},
		{"xfrm/policies", "{}", false},
		{"tunnels/show", "", true},
	}
	for _, tc := range tests {
		got, err := r.b.Report(ctx, tc.cmd)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("Report(%s) = %q, %v", tc.cmd, got, err)
		}
	}
	if err := r.b.Ensure(ctx, geneveTunnel(1)); err != nil {
		t.Fatal(err)
	}
	r.eng.handler.HandleChildSA(ike.ChildEstablished, child(t, "ovn-b-0-1", "ovn-b-0-out-1", 0xc0000002, 0xd0000002, 3))
	got, _ := r.b.Report(ctx, "xfrm/state")
	if !strings.Contains(got, "'198.51.100.2': [") || !strings.Contains(got, "spi 0xc0000002") || !strings.Contains(got, "spi 0xd0000002") {
		t.Errorf("xfrm/state %s", got)
	}
}

func TestPyStr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abc", "'abc'"},
		{"it's", `"it's"`},
		{`a'b"c`, `'a\'b"c'`},
		{"x\ny\\", `'x\ny\\'`},
		{"\x01", `'\x01'`},
	}
	for _, tc := range tests {
		if got := pyStr(tc.in); got != tc.want {
			t.Errorf("pyStr(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestClose(t *testing.T) {
	t.Run("without cleanup keeps the rules (fail closed)", func(t *testing.T) {
		r := newRig(t)
		if err := r.b.Ensure(ctx, geneveTunnel(1)); err != nil {
			t.Fatal(err)
		}
		if err := r.b.Close(ctx, false); err != nil {
			t.Fatal(err)
		}
		if got := r.att.get(); len(got) != 1 || r.att.detached {
			t.Errorf("policies %+v detached %v", got, r.att.detached)
		}
		if err := r.b.Close(ctx, false); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
	t.Run("with cleanup removes peers and detaches", func(t *testing.T) {
		r := newRig(t)
		if err := r.b.Ensure(ctx, geneveTunnel(1)); err != nil {
			t.Fatal(err)
		}
		r.eng.handler.HandleChildSA(ike.ChildEstablished, child(t, "ovn-b-0-1", "ovn-b-0-out-1", 0xc0000002, 0xd0000002, 3))
		if err := r.b.Close(ctx, true); err != nil {
			t.Fatal(err)
		}
		if !r.att.detached || len(r.eng.removed) != 1 {
			t.Errorf("detached %v removed %v", r.att.detached, r.eng.removed)
		}
		if r.b.Hook().Table().Outbound(remote) != nil {
			t.Error("SAs left after cleanup")
		}
	})
}

func TestNewRejectsBadLocal(t *testing.T) {
	for _, a := range []netip.Addr{{}, netip.MustParseAddr("2001:db8::1"), netip.IPv4Unspecified()} {
		_, err := newBackend(Config{Local: a, NewIKE: func(ike.Config) (IKE, error) { return newFakeIKE(), nil }}, &fakeAtt{}, newChanDev(), nil, nil)
		if err == nil {
			t.Errorf("local %v accepted", a)
		}
	}
}

// zeroed reports whether k's bytes are all zero: an SA made from k seals
// like one made from a zero key.
func zeroed(t *testing.T, k esp.Key) bool {
	t.Helper()
	zk, err := esp.NewKey(make([]byte, k.Len()))
	if err != nil {
		t.Fatal(err)
	}
	seal := func(k esp.Key) []byte {
		sa, err := esp.NewSA(esp.Config{SPI: 0x100, Dir: esp.Outbound, Mode: esp.Transport, Key: k})
		if err != nil {
			t.Fatal(err)
		}
		out, err := sa.Seal(make([]byte, 64), []byte("probe"), 17)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	return string(seal(k)) == string(seal(zk))
}

func TestEngineStoppedShowsInStatus(t *testing.T) {
	r := newRig(t)
	if err := r.b.Ensure(ctx, geneveTunnel(1)); err != nil {
		t.Fatal(err)
	}
	r.eng.setStatus(ike.PeerStatus{Name: "ovn-b-0-1", Known: true, State: ike.SAEstablished})
	r.eng.fail <- errors.New("read udp 198.51.100.1:500: use of closed network connection")
	waitUntil(t, "engine failure in status", func() bool {
		st, _ := r.b.Status(ctx)
		s := st["ovn-b-0"]
		return s.Phase == backend.PhaseDown && strings.Contains(s.Reason, "IKE engine stopped") && strings.Contains(s.Reason, "closed network")
	})
}

func TestInitiateLate(t *testing.T) {
	r := newRig(t)
	tt := geneveTunnel(1)
	tt.RemoteIP = "198.51.100.0" // lower than ours: the peer initiates
	setAddrs(&tt)
	if err := r.b.Ensure(ctx, tt); err != nil {
		t.Fatal(err)
	}
	if r.eng.peers["ovn-b-0-1"].Initiate {
		t.Fatal("the higher address initiates at once")
	}
	count := func() int {
		r.eng.mu.Lock()
		defer r.eng.mu.Unlock()
		return len(r.eng.initiated)
	}
	steps := []struct {
		advance time.Duration
		state   ike.SAState
		want    int
	}{
		{5 * time.Second, ike.SADown, 0},         // within the grace
		{6 * time.Second, ike.SAConnecting, 0},   // the peer is at it
		{0, ike.SADown, 1},                       // grace over, still down: initiate
		{3 * time.Second, ike.SADown, 1},         // not again within a grace period
		{10 * time.Second, ike.SADown, 2},        // again after another period
		{20 * time.Second, ike.SAEstablished, 2}, // up: nothing to do
	}
	for i, s := range steps {
		r.advance(s.advance)
		r.eng.setStatus(ike.PeerStatus{Name: "ovn-b-0-1", Known: true, State: s.state})
		r.b.initiateLate()
		if got := count(); got != s.want {
			t.Fatalf("step %d (%+v): %d initiations, want %d", i, s, got, s.want)
		}
	}
	// The lower address never initiates late: its engine restarts itself.
	r2 := newRig(t)
	if err := r2.b.Ensure(ctx, geneveTunnel(1)); err != nil {
		t.Fatal(err)
	}
	r2.advance(time.Minute)
	r2.b.initiateLate()
	if len(r2.eng.initiated) != 0 {
		t.Error("initiating side initiated late")
	}
}

// Packets of a down tunnel that find no SA make either side initiate at
// once (the peer may hold SAs we lost), at most every demandRetry, and
// only while no IKE SA is up or being set up.
func TestInitiateOnDemand(t *testing.T) {
	r := newRig(t)
	if err := r.b.Ensure(ctx, geneveTunnel(1)); err != nil {
		t.Fatal(err)
	}
	peer := "ovn-b-0-1"
	count := func() int {
		r.eng.mu.Lock()
		defer r.eng.mu.Unlock()
		return len(r.eng.initiated)
	}
	held := 0
	send := func() {
		held++
		r.dev.in <- geneveFrame()
		waitUntil(t, "frame held", func() bool { return r.b.Hook().Demand(remote) == uint64(held) })
	}
	steps := []struct {
		name    string
		advance time.Duration
		state   ike.SAState
		packet  bool
		want    int
	}{
		{"no packets: nothing", time.Second, ike.SADown, false, 0},
		{"a held packet: initiate", time.Second, ike.SADown, true, 1},
		{"again within demandRetry: wait", time.Second, ike.SADown, true, 1},
		{"after demandRetry, packets since: initiate", 2 * time.Second, ike.SADown, false, 2},
		{"no packets since: nothing", 3 * time.Second, ike.SADown, false, 2},
		{"connecting: let it finish", 3 * time.Second, ike.SAConnecting, true, 2},
		{"established: nothing", 3 * time.Second, ike.SAEstablished, true, 2},
	}
	for _, s := range steps {
		r.advance(s.advance)
		if s.packet {
			send()
		}
		r.eng.setStatus(ike.PeerStatus{Name: peer, Known: true, State: s.state})
		r.b.initiateLate()
		if got := count(); got != s.want {
			t.Fatalf("%s: %d initiations, want %d", s.name, got, s.want)
		}
	}
}

// A rekey we answered: the initiator installs the new pair only when our
// response arrives, so we keep sending under the old SA until the peer
// deletes the old child, sends under the new SA, or promoteAfter passes.
func TestResponderRekeyDefersOutbound(t *testing.T) {
	for _, tc := range []struct {
		name string
		sign func(r *rig, peer string)
	}{
		{"peer deletes the old child", func(r *rig, peer string) {
			r.eng.handler.HandleChildSA(ike.ChildDeleted, child(t, peer, "ovn-b-0-out-1", 0xc0000002, 0xd0000002, 3))
		}},
		{"no sign within promoteAfter", func(r *rig, peer string) {
			r.advance(promoteAfter - time.Millisecond)
			r.b.promotePending()
			if o := r.b.Hook().Table().Outbound(remote); o.SPI() != 0xd0000002 {
				t.Fatalf("switched before promoteAfter: %v", o)
			}
			r.advance(time.Millisecond)
			r.b.promotePending()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			if err := r.b.Ensure(ctx, geneveTunnel(1)); err != nil {
				t.Fatal(err)
			}
			peer := "ovn-b-0-1"
			tbl := r.b.Hook().Table()
			r.eng.handler.HandleChildSA(ike.ChildEstablished, child(t, peer, "ovn-b-0-out-1", 0xc0000002, 0xd0000002, 3))
			nc := child(t, peer, "ovn-b-0-out-1", 0xc0000003, 0xd0000003, 5)
			nc.Replaces = 0xc0000002 // Initiator false: we answered
			r.eng.handler.HandleChildSA(ike.ChildRekeyed, nc)
			if o := tbl.Outbound(remote); o == nil || o.SPI() != 0xd0000002 {
				t.Fatalf("outbound right after a rekey we answered: %v, want the old SA d0000002", o)
			}
			if tbl.Inbound(0xc0000003) == nil || tbl.Inbound(0xc0000002) == nil {
				t.Fatal("new and old inbound SAs must both accept")
			}
			r.b.promotePending() // no packet under the new SA yet, too early
			if o := tbl.Outbound(remote); o.SPI() != 0xd0000002 {
				t.Fatalf("switched without a sign from the peer: %v", o)
			}
			tc.sign(r, peer)
			if o := tbl.Outbound(remote); o == nil || o.SPI() != 0xd0000003 {
				t.Fatalf("outbound after %s: %v, want the new SA d0000003", tc.name, o)
			}
		})
	}
}

// The side with the higher address leaves the lower one a head start:
// held packets make it initiate only demandHeadStart after configuring.
func TestInitiateOnDemandHeadStart(t *testing.T) {
	r := newRig(t)
	tt := geneveTunnel(1)
	lower := netip.MustParseAddr("198.51.100.0")
	tt.RemoteIP = lower.String() // we are the higher address
	setAddrs(&tt)
	if err := r.b.Ensure(ctx, tt); err != nil {
		t.Fatal(err)
	}
	frame := ipv4Frame(local, lower, 17, 8+50)
	binary.BigEndian.PutUint16(frame[14+22:], 6081)
	binary.BigEndian.PutUint16(frame[14+24:], 58)
	r.dev.in <- frame
	waitUntil(t, "frame held", func() bool { return r.b.Hook().Demand(lower) == 1 })
	count := func() int {
		r.eng.mu.Lock()
		defer r.eng.mu.Unlock()
		return len(r.eng.initiated)
	}
	r.eng.setStatus(ike.PeerStatus{Name: "ovn-b-0-1", Known: true, State: ike.SADown})
	r.advance(demandHeadStart - time.Millisecond)
	r.b.initiateLate()
	if n := count(); n != 0 {
		t.Fatalf("initiated %d times within the head start", n)
	}
	r.advance(time.Millisecond)
	r.b.initiateLate()
	if n := count(); n != 1 {
		t.Fatalf("initiated %d times after the head start with packets waiting, want 1", n)
	}
}

func TestPacketLoopFailureShowsInStatus(t *testing.T) {
	r := newRig(t)
	if err := r.b.Ensure(ctx, geneveTunnel(1)); err != nil {
		t.Fatal(err)
	}
	r.dev.Close() // the TAP read fails
	waitUntil(t, "loop failure in status", func() bool {
		st, _ := r.b.Status(ctx)
		s := st["ovn-b-0"]
		return s.Phase == backend.PhaseDown && strings.Contains(s.Reason, "packet loop stopped")
	})
}

func TestSALifetimeEventRekeys(t *testing.T) {
	r := newRig(t)
	if err := r.b.Ensure(ctx, geneveTunnel(1)); err != nil {
		t.Fatal(err)
	}
	r.eng.handler.HandleChildSA(ike.ChildEstablished, child(t, "ovn-b-0-1", "ovn-b-0-out-1", 0xc0000002, 0xd0000002, 3))
	r.eng.handler.HandleChildSA(ike.ChildEstablished, child(t, "ovn-b-0-1", "ovn-b-0-in-1", 0xc0000001, 0xd0000001, 1))
	tests := []struct {
		ev   esp.Event
		want string
	}{
		{esp.Event{SPI: 0xd0000002, Dir: esp.Outbound, Kind: esp.SoftExpired, Limit: esp.LimitSequence}, "ovn-b-0-1/ovn-b-0-out-1"},
		{esp.Event{SPI: 0xc0000001, Dir: esp.Inbound, Kind: esp.HardExpired, Limit: esp.LimitPackets}, "ovn-b-0-1/ovn-b-0-in-1"},
		{esp.Event{SPI: 0xc0000002, Dir: esp.Outbound, Kind: esp.SoftExpired}, ""}, // no outbound SA with that SPI
		{esp.Event{SPI: 0x12345678, Dir: esp.Inbound, Kind: esp.SoftExpired}, ""},
	}
	for _, tc := range tests {
		r.eng.mu.Lock()
		r.eng.rekeyed = nil
		r.eng.mu.Unlock()
		r.b.notifySA(tc.ev)
		if tc.want == "" {
			time.Sleep(50 * time.Millisecond)
			r.eng.mu.Lock()
			n := len(r.eng.rekeyed)
			r.eng.mu.Unlock()
			if n != 0 {
				t.Errorf("%+v: rekeyed %v", tc.ev, r.eng.rekeyed)
			}
			continue
		}
		waitUntil(t, "rekey of "+tc.want, func() bool {
			r.eng.mu.Lock()
			defer r.eng.mu.Unlock()
			return len(r.eng.rekeyed) == 1 && r.eng.rekeyed[0] == tc.want
		})
	}
}

// ESP from the peer under an SPI we do not know means the peer holds SAs
// we lost (our restart after kill -9); it will not initiate, so the side
// with the higher address initiates at once, without the head start.
func TestInitiateOnStaleESPWithoutHeadStart(t *testing.T) {
	r := newRig(t)
	tt := geneveTunnel(1)
	lower := netip.MustParseAddr("198.51.100.0")
	tt.RemoteIP = lower.String() // we are the higher address
	setAddrs(&tt)
	if err := r.b.Ensure(ctx, tt); err != nil {
		t.Fatal(err)
	}
	r.dev.in <- espFrame(lower, local, 0x0badcafe)
	waitUntil(t, "unknown SPI counted", func() bool { return r.b.Hook().Stale(lower) == 1 })
	r.eng.setStatus(ike.PeerStatus{Name: "ovn-b-0-1", Known: true, State: ike.SADown})
	r.b.initiateLate()
	r.eng.mu.Lock()
	n := len(r.eng.initiated)
	r.eng.mu.Unlock()
	if n != 1 {
		t.Fatalf("initiated %d times on the peer's ESP under an unknown SPI, want 1 at once", n)
	}
}

// espFrame is an ESP packet from src to dst under spi (sequence number 1,
// a few bytes of ciphertext).
func espFrame(src, dst netip.Addr, spi uint32) []byte {
	b := ipv4Frame(src, dst, 50, 8+40)
	binary.BigEndian.PutUint32(b[14+20:], spi)
	binary.BigEndian.PutUint32(b[14+24:], 1)
	return b
}
