// Per-peer plaintext drop counters: rules of several peers summed by
// address, and the source address read from dump-flows matches.

package ovsbridge

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

func TestPlaintextDropsByPeer(t *testing.T) {
	f := &fakeOVS{ports: map[string]PortInfo{"nic0": {OFPort: "1"}}}
	a := testAttachment(t, f, nil)
	gnv := Policy{PeerIP: netip.MustParseAddr("198.51.100.2"), Proto: ProtoGeneve}
	gre := Policy{PeerIP: netip.MustParseAddr("198.51.100.3"), Proto: ProtoGRE}
	if err := a.SetPolicies(context.Background(), []Policy{gnv, gre}); err != nil {
		t.Fatal(err)
	}
	got, err := a.PlaintextDropsByPeer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The fake reports 5 packets per flow: geneve has two drop-plaintext
	// flows (the tunnel port and later fragments), GRE one.
	want := map[netip.Addr]uint64{gnv.PeerIP: 10, gre.PeerIP: 5}
	if len(got) != len(want) || got[gnv.PeerIP] != 10 || got[gre.PeerIP] != 5 {
		t.Errorf("PlaintextDropsByPeer = %v, want %v", got, want)
	}
	if last := f.calls[len(f.calls)-1]; !strings.Contains(last, "cookie=0xab05/0xffffffffffffffff") {
		t.Errorf("PlaintextDropsByPeer selector: %s", last)
	}
	total, err := a.PlaintextDrops(context.Background())
	if err != nil || total != 15 {
		t.Errorf("PlaintextDrops = %d, %v; want the sum 15", total, err)
	}

	f.down = true
	if _, err := a.PlaintextDropsByPeer(context.Background()); err == nil {
		t.Error("no error with ovs-ofctl failing")
	}
}

func TestSourceAddr(t *testing.T) {
	for _, tc := range []struct {
		match string
		want  string // "" = none
	}{
		{"udp,in_port=1,nw_src=198.51.100.2,tp_dst=6081", "198.51.100.2"},
		{"ip,in_port=1,nw_src=198.51.100.2,nw_proto=47", "198.51.100.2"},
		{"udp,in_port=1,nw_src=198.51.100.2,nw_frag=later", "198.51.100.2"},
		{"udp6,in_port=1,ipv6_src=2001:db8::2,tp_dst=6081", "2001:db8::2"},
		{"ip,nw_src=198.51.100.2/32", "198.51.100.2"},
		{"ip,nw_src=198.51.100.0/24", ""},
		{"ip,nw_dst=198.51.100.2", ""},
		{"ip,nw_src=2001:db8::2", ""},
		{"ipv6,ipv6_src=198.51.100.2", ""},
		{"ip,nw_src=198.51.100.2,nw_src=198.51.100.3", ""},
		{"ip,nw_src=", ""},
		{"", ""},
		{"ipv6,ipv6_src=fe80::1%eth0", ""},
	} {
		a, ok := FlowStat{Match: tc.match}.SourceAddr()
		got := ""
		if ok {
			got = a.String()
		}
		if got != tc.want {
			t.Errorf("SourceAddr(%q) = %q, %v; want %q", tc.match, got, ok, tc.want)
		}
	}
}

// FuzzSourceAddr: any match text (as ovs-ofctl prints it, or garbage)
// yields no address or one address that the text names after a source
// field, never a panic.
func FuzzSourceAddr(f *testing.F) {
	f.Fuzz(func(t *testing.T, match string) {
		a, ok := FlowStat{Match: match}.SourceAddr()
		if !ok {
			if a.IsValid() {
				t.Fatalf("SourceAddr(%q) = %v without ok", match, a)
			}
			return
		}
		if !a.IsValid() || a.Zone() != "" {
			t.Fatalf("SourceAddr(%q) = %v", match, a)
		}
		if !strings.Contains(match, "_src=") {
			t.Fatalf("SourceAddr(%q) = %v from a match without a source field", match, a)
		}
	})
}
