package tun

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ovnsec/ovnsec/internal/esp"
)

func TestTunnelMTU(t *testing.T) {
	for _, under := range []int{576, 1280, 1500, 1501, 1502, 1503, 9000} {
		m := TunnelMTU(under)
		if 28+esp.SealedLen(m) > under {
			t.Errorf("underlay %d: tunnel MTU %d makes %d-byte datagrams", under, m, 28+esp.SealedLen(m))
		}
		if 28+esp.SealedLen(m+1) <= under {
			t.Errorf("underlay %d: tunnel MTU %d is not the largest", under, m)
		}
	}
	if m := TunnelMTU(1500); m != 1438 {
		t.Errorf("TunnelMTU(1500) = %d, want 1438", m)
	}
}

func TestOpenInvalid(t *testing.T) {
	good := System{Name: "tunt9", Addr: netip.MustParsePrefix("203.0.113.9/32")}
	for _, tc := range []struct {
		name string
		mod  func(*System)
		want string
	}{
		{"no name", func(s *System) { s.Name = "" }, "device name"},
		{"long name", func(s *System) { s.Name = "tunt-0123456789ab" }, "device name"},
		{"slash", func(s *System) { s.Name = "tu/nt" }, "device name"},
		{"no address", func(s *System) { s.Addr = netip.Prefix{} }, "address"},
		{"tiny MTU", func(s *System) { s.MTU = 100 }, "MTU"},
		{"tiny underlay", func(s *System) { s.UnderlayMTU = 300 }, "MTU"},
		{"missing netns", func(s *System) { s.NetNS = "tunt-does-not-exist" }, "netns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			tc.mod(&s)
			_, err := Open(s, Config{Table: esp.NewTable(nil)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}
