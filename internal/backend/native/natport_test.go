package native

import (
	"strings"
	"testing"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// natChild is child with ESP-in-UDP from our 4500 to the peer's port.
func natChild(t *testing.T, name string, in, out esp.SPI, seed byte, port uint16) ike.ChildSA {
	t.Helper()
	c := child(t, "ovn-b-0-1", name, in, out, seed)
	c.Encap = esp.Encap{Type: esp.EncapUDP, SrcPort: esp.NATTPort, DstPort: port}
	c.EncapRemoteNAT = port != esp.NATTPort
	return c
}

func onePolicy(t *testing.T, r *rig) ovsbridge.Policy {
	t.Helper()
	ps := r.att.get()
	if len(ps) != 1 {
		t.Fatalf("policies %+v, want one", ps)
	}
	return ps[0]
}

// TestNATPortFollowsChildSAs: a NAT detected by IKE (not forced) switches
// the policy to ESP-in-UDP towards the port in the Child SA; a later Child
// SA that carries our traffic with another port (the NAT's mapping
// changed) moves it, and one that does not carry it leaves it alone.
func TestNATPortFollowsChildSAs(t *testing.T) {
	r := newRig(t)
	if err := r.b.Ensure(ctx, geneveTunnel(1)); err != nil {
		t.Fatal(err)
	}
	if p := onePolicy(t, r); p.Encap != ovsbridge.EncapNone || p.NATTPort() != 0 {
		t.Fatalf("policy before any Child SA: %+v", p)
	}
	h := r.eng.handler
	// The -in- child comes first: the switch to ESP-in-UDP takes its port.
	h.HandleChildSA(ike.ChildEstablished, natChild(t, "ovn-b-0-in-1", 0xc0000001, 0xd0000001, 1, 44500))
	if p := onePolicy(t, r); p.Encap != ovsbridge.EncapUDP4500 || p.NATTPort() != 44500 {
		t.Fatalf("policy after the first NAT-T child: %+v", p)
	}
	sets := r.att.sets
	h.HandleChildSA(ike.ChildEstablished, natChild(t, "ovn-b-0-out-1", 0xc0000002, 0xd0000002, 3, 44500))
	if r.att.sets != sets {
		t.Errorf("same port re-installed the rules (%d -> %d)", sets, r.att.sets)
	}
	if o := r.b.Hook().Table().Outbound(remote); o == nil || o.Encap().DstPort != 44500 {
		t.Fatalf("outbound SA %v", o)
	}
	// The NAT's mapping changed: the rekeyed -out- child has the new port.
	c := natChild(t, "ovn-b-0-out-1", 0xc0000003, 0xd0000003, 5, 40001)
	c.Initiator, c.Replaces = true, 0xc0000002
	h.HandleChildSA(ike.ChildRekeyed, c)
	if p := onePolicy(t, r); p.NATTPort() != 40001 || r.att.sets != sets+1 {
		t.Errorf("after the mapping changed: policy %+v, %d installs (want %d)", p, r.att.sets, sets+1)
	}
	if o := r.b.Hook().Table().Outbound(remote); o == nil || o.Encap().DstPort != 40001 {
		t.Errorf("outbound SA after the rekey %v", o)
	}
	// A rekeyed -in- child (it does not send) does not move the port.
	ci := natChild(t, "ovn-b-0-in-1", 0xc0000004, 0xd0000004, 7, 40002)
	ci.Initiator, ci.Replaces = true, 0xc0000001
	h.HandleChildSA(ike.ChildRekeyed, ci)
	if p := onePolicy(t, r); p.NATTPort() != 40001 {
		t.Errorf("the -in- child moved the port: %+v", p)
	}
}

// TestNATPortForcedWithoutNAT: forced encapsulation without a NAT keeps
// port 4500 and the policy it started with (no re-install).
func TestNATPortForcedWithoutNAT(t *testing.T) {
	r := newRig(t)
	tt := geneveTunnel(1)
	tt.CustomOptions = []tunnel.Option{{Key: "encapsulation", Value: "yes"}}
	if err := r.b.Ensure(ctx, tt); err != nil {
		t.Fatal(err)
	}
	before, sets := onePolicy(t, r), r.att.sets
	r.eng.handler.HandleChildSA(ike.ChildEstablished, natChild(t, "ovn-b-0-out-1", 0xc0000002, 0xd0000002, 3, esp.NATTPort))
	if p := onePolicy(t, r); p != before || p.NATTPort() != esp.NATTPort || r.att.sets != sets {
		t.Errorf("policy %+v (was %+v), installs %d -> %d", p, before, sets, r.att.sets)
	}
	if r.b.Hook().Table().Outbound(remote) == nil {
		t.Error("Child SA not installed")
	}
}

// TestNATPortOnTunnelPortRefused: a NAT-T port equal to the tunnel port
// cannot be told from plaintext by the rules: the Child SA is refused, the
// old policy stays, the tunnel says why, and other tunnels still apply.
func TestNATPortOnTunnelPortRefused(t *testing.T) {
	r := newRig(t)
	if err := r.b.Ensure(ctx, geneveTunnel(1)); err != nil {
		t.Fatal(err)
	}
	before := onePolicy(t, r)
	r.eng.setStatus(ike.PeerStatus{Name: "ovn-b-0-1", Known: true, State: ike.SAEstablished})
	r.eng.handler.HandleChildSA(ike.ChildEstablished, natChild(t, "ovn-b-0-out-1", 0xc0000002, 0xd0000002, 3, 6081))
	if p := onePolicy(t, r); p != before {
		t.Errorf("policy changed to %+v", p)
	}
	tbl := r.b.Hook().Table()
	if tbl.Outbound(remote) != nil || tbl.Inbound(0xc0000002) != nil {
		t.Error("the refused Child SA was installed")
	}
	st, _ := r.b.Status(ctx)
	if s := st["ovn-b-0"]; s.Phase != backend.PhaseDown || !strings.Contains(s.Reason, "tunnel port") {
		t.Errorf("status %+v", s)
	}
	other := geneveTunnel(1)
	other.Name, other.RemoteIP = "ovn-c-0", "198.51.100.3"
	setAddrs(&other)
	if err := r.b.Ensure(ctx, other); err != nil {
		t.Fatalf("another tunnel after the refused port: %v", err)
	}
	if ps := r.att.get(); len(ps) != 2 {
		t.Errorf("policies %+v", ps)
	}
}

// A rekey we answer keeps sending under the old SA for a while: the rules
// keep the old SA's port until the new SA takes over, then follow it.
func TestNATPortWaitsForTheAnsweredRekey(t *testing.T) {
	r := newRig(t)
	if err := r.b.Ensure(ctx, geneveTunnel(1)); err != nil {
		t.Fatal(err)
	}
	h := r.eng.handler
	h.HandleChildSA(ike.ChildEstablished, natChild(t, "ovn-b-0-out-1", 0xc0000002, 0xd0000002, 3, 44500))
	c := natChild(t, "ovn-b-0-out-1", 0xc0000003, 0xd0000003, 5, 40001)
	c.Initiator, c.Replaces = false, 0xc0000002
	h.HandleChildSA(ike.ChildRekeyed, c)
	if p := onePolicy(t, r); p.NATTPort() != 44500 {
		t.Fatalf("the rules moved to the new port while the old SA still sends: %+v", p)
	}
	if o := r.b.Hook().Table().Outbound(remote); o == nil || o.Encap().DstPort != 44500 {
		t.Fatalf("outbound SA %v, want the old one still", o)
	}
	r.advance(promoteAfter)
	r.b.promotePending()
	if p := onePolicy(t, r); p.NATTPort() != 40001 {
		t.Errorf("after the new SA took over: %+v", p)
	}
	if o := r.b.Hook().Table().Outbound(remote); o == nil || o.Encap().DstPort != 40001 {
		t.Errorf("outbound SA after promotion %v", o)
	}
}
