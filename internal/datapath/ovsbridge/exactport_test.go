package ovsbridge

import (
	"net/netip"
	"strings"
	"testing"
)

// A UDP tunnel whose dst_port ovs-vswitchd reads as 0 sends to UDP port 0:
// with ExactPort its packets are steered and dropped on port 0, not on the
// IANA port.
func TestExactPortZero(t *testing.T) {
	peer := netip.MustParseAddr("192.0.2.2")
	p := Policy{PeerIP: peer, Proto: ProtoGeneve, DstPort: 0, ExactPort: true, Mode: ModeProtected}
	if p.Port() != 0 {
		t.Fatalf("Port() = %d, want 0", p.Port())
	}
	if (Policy{PeerIP: peer, Proto: ProtoGeneve}).Port() != ianaGenevePort {
		t.Fatal("DstPort 0 without ExactPort is no longer the IANA port")
	}
	flows, err := Rules(testBridge, []Policy{p})
	if err != nil {
		t.Fatal(err)
	}
	var steer, drop bool
	for _, f := range flows {
		if !strings.Contains(f.Match, "tp_dst=0") {
			continue
		}
		steer = steer || (f.Kind == KindSteerOut && strings.Contains(f.Match, "in_port=LOCAL"))
		drop = drop || (f.Kind == KindDropPlaintext && f.Actions == "drop")
	}
	if !steer || !drop {
		t.Fatalf("no steer-out/drop on UDP port 0 (steer %v drop %v):\n%+v", steer, drop, flows)
	}
	for _, f := range flows {
		if strings.Contains(f.Match, "tp_dst=6081") {
			t.Errorf("flow on the IANA port for a port-0 tunnel: %+v", f)
		}
	}
}
