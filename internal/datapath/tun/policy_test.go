package tun

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ovnsec/ovnsec/internal/esp"
)

func TestPolicyRoute(t *testing.T) {
	p1, p2, p3 := netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.12"), netip.MustParseAddr("192.0.2.13")
	pol, err := newPolicy([]Peer{
		{Addr: p1, Remote: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}},
		{Addr: p2, Remote: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
		{Addr: p3, Remote: []netip.Prefix{netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("2001:db8:1::/48")}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dst  string
		want int
	}{
		{"10.9.9.9", 0},
		{"10.1.9.9", 1},
		{"10.1.2.3", 2},
		{"10.1.2.4", 1},
		{"11.0.0.1", -1},
		{"2001:db8::1", 0},
		{"2001:db8:1::1", 2},
		{"2001:db9::1", -1},
		{"::ffff:10.1.2.3", -1}, // mapped addresses are not IPv4 here
	} {
		if got := pol.route(netip.MustParseAddr(tc.dst)); got != tc.want {
			t.Errorf("route(%s) = %d, want %d", tc.dst, got, tc.want)
		}
	}
	for _, tc := range []struct {
		peer int
		src  string
		want bool
	}{
		{0, "10.200.0.1", true},
		{0, "10.1.2.3", true}, // inside 10/8 too: the SA's own selectors decide
		{1, "10.2.0.1", false},
		{2, "10.1.2.3", true},
		{2, "10.1.2.4", false},
		{2, "2001:db8:1::5", true},
	} {
		if got := pol.allowed(tc.peer, netip.MustParseAddr(tc.src)); got != tc.want {
			t.Errorf("allowed(%d, %s) = %v, want %v", tc.peer, tc.src, got, tc.want)
		}
	}
}

func TestPolicyInvalid(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.11")
	pfx := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name  string
		peers []Peer
		want  string
	}{
		{"ipv6 underlay", []Peer{{Addr: netip.MustParseAddr("2001:db8::1"), Remote: pfx}}, "IPv4"},
		{"no address", []Peer{{Remote: pfx}}, "IPv4"},
		{"duplicate peer", []Peer{{Addr: a, Remote: pfx}, {Addr: a, Remote: []netip.Prefix{netip.MustParsePrefix("11.0.0.0/8")}}}, "twice"},
		{"no subnets", []Peer{{Addr: a}}, "no remote subnets"},
		{"invalid subnet", []Peer{{Addr: a, Remote: []netip.Prefix{{}}}}, "invalid"},
		{"overlap", []Peer{{Addr: a, Remote: pfx}, {Addr: netip.MustParseAddr("192.0.2.12"), Remote: []netip.Prefix{netip.MustParsePrefix("10.1.2.3/8")}}}, "already belongs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newPolicy(tc.peers, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestPolicyBindingsSurviveRebuild(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.12")
	peers := []Peer{
		{Addr: a, Remote: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		{Addr: b, Remote: []netip.Prefix{netip.MustParsePrefix("11.0.0.0/8")}},
	}
	bind := map[esp.SPI]netip.Addr{0x100: a, 0x200: b, 0x300: netip.MustParseAddr("192.0.2.99")}
	pol, err := newPolicy(peers, bind)
	if err != nil {
		t.Fatal(err)
	}
	if len(pol.bySPI) != 2 || pol.peers[pol.bySPI[0x100]].Addr != a || pol.peers[pol.bySPI[0x200]].Addr != b {
		t.Fatalf("bindings %v", pol.bySPI)
	}
	// Drop peer a and reorder: b's binding follows b.
	pol2, err := newPolicy(peers[1:], bind)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pol2.bySPI[0x100]; ok || pol2.peers[pol2.bySPI[0x200]].Addr != b {
		t.Fatalf("bindings after rebuild %v", pol2.bySPI)
	}
}

func TestInnerAddrs(t *testing.T) {
	v4 := ip4(innerA, innerB, 60)
	v6 := ip6(netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"), 80)
	for _, tc := range []struct {
		name     string
		pkt      []byte
		ok       bool
		src, dst string
		n        int
	}{
		{"ipv4", v4, true, "203.0.113.1", "203.0.113.2", 60},
		{"ipv4 trailing bytes", append(append([]byte(nil), v4...), 0, 0, 0), true, "203.0.113.1", "203.0.113.2", 60},
		{"ipv4 truncated", v4[:40], false, "", "", 0},
		{"ipv4 short header", v4[:19], false, "", "", 0},
		{"ipv4 bad ihl", func() []byte { p := append([]byte(nil), v4...); p[0] = 0x44; return p }(), false, "", "", 0},
		{"ipv6", v6, true, "2001:db8::1", "2001:db8::2", 80},
		{"ipv6 truncated", v6[:60], false, "", "", 0},
		{"empty", nil, false, "", "", 0},
		{"version 5", []byte{0x50, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false, "", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, dst, n, ok := innerAddrs(tc.pkt)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if ok && (src.String() != tc.src || dst.String() != tc.dst || n != tc.n) {
				t.Fatalf("got %v %v %d, want %s %s %d", src, dst, n, tc.src, tc.dst, tc.n)
			}
		})
	}
}
