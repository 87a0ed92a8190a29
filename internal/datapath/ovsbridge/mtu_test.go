package ovsbridge

import (
	"net/netip"
	"strings"
	"testing"
)

func TestOverlayMTU(t *testing.T) {
	v4 := netip.MustParseAddr("198.51.100.2")
	v6 := netip.MustParseAddr("2001:db8::2")
	tests := []struct {
		name     string
		underlay int
		p        Policy
		opts     int
		want     int
	}{
		// 1500 - (20 IP + 8 UDP + 8 Geneve + 14 Ethernet) - (8+8+3+2+16 ESP)
		{"geneve v4 esp", 1500, Policy{PeerIP: v4, Proto: ProtoGeneve}, 0, 1413},
		{"geneve v4 esp OVN option", 1500, Policy{PeerIP: v4, Proto: ProtoGeneve}, OVNGeneveOpt, 1405},
		{"geneve v4 udp4500", 1500, Policy{PeerIP: v4, Proto: ProtoGeneve, Encap: EncapUDP4500}, 0, 1405},
		{"geneve v6 esp", 1500, Policy{PeerIP: v6, Proto: ProtoGeneve}, 0, 1393},
		{"vxlan v4 esp", 1500, Policy{PeerIP: v4, Proto: ProtoVXLAN}, 0, 1413},
		// 1500 - (20 + 16 GRE worst case + 14) - 37
		{"gre v4 esp", 1500, Policy{PeerIP: v4, Proto: ProtoGRE}, 0, 1413},
		{"jumbo", 9000, Policy{PeerIP: v4, Proto: ProtoGeneve, Encap: EncapUDP4500}, OVNGeneveOpt, 8897},
		{"bench mode counts ESP too", 1500, Policy{PeerIP: v4, Proto: ProtoGeneve, Mode: ModeBenchPassthrough}, 0, 1413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := OverlayMTU(tc.underlay, tc.p, tc.opts)
			if err != nil || got != tc.want {
				t.Errorf("OverlayMTU(%d) = %d, %v; want %d", tc.underlay, got, err, tc.want)
			}
		})
	}
}

func TestOverlayMTUErrors(t *testing.T) {
	p := Policy{PeerIP: netip.MustParseAddr("198.51.100.2"), Proto: ProtoGeneve}
	tests := []struct {
		underlay, opts int
		want           string
	}{
		{600, 0, "raise the underlay"},
		{1500, 3, "multiple of 4"},
		{1500, -4, "multiple of 4"},
		{1500, 256, "multiple of 4"},
	}
	for _, tc := range tests {
		if _, err := OverlayMTU(tc.underlay, p, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("OverlayMTU(%d, opts %d) error = %v, want %q", tc.underlay, tc.opts, err, tc.want)
		}
	}
}

func TestESPOverhead(t *testing.T) {
	if got := ESPOverhead(EncapNone); got != 37 {
		t.Errorf("ESPOverhead(none) = %d, want 37", got)
	}
	if got := ESPOverhead(EncapUDP4500); got != 45 {
		t.Errorf("ESPOverhead(udp4500) = %d, want 45", got)
	}
}
