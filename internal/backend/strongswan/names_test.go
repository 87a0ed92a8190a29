package strongswan

import (
	"strconv"
	"testing"

	"github.com/ovnsec/ovnsec/internal/tunnel"
)

func TestParseConnName(t *testing.T) {
	tests := []struct {
		name string
		want ParsedName
		ok   bool
	}{
		{"gnv0-in-1", ParsedName{"gnv0", DirIn, 1}, true},
		{"gnv0-out-12", ParsedName{"gnv0", DirOut, 12}, true},
		{"gre0-3", ParsedName{"gre0", DirBoth, 3}, true},
		// Upstream's greedy regex read this as interface "ovn-424242-in".
		{"ovn-424242-in-1", ParsedName{"ovn-424242", DirIn, 1}, true},
		{"ovn-424242-0-1", ParsedName{"ovn-424242-0", DirBoth, 1}, true},
		{"ovn-424242-0-out-7", ParsedName{"ovn-424242-0", DirOut, 7}, true},
		{"in-1", ParsedName{"in", DirBoth, 1}, true},
		{"-in-1", ParsedName{"-in", DirBoth, 1}, true},
		{"gnv0-01", ParsedName{}, false},
		{"gnv0-0", ParsedName{}, false},
		{"gnv0-", ParsedName{}, false},
		{"gnv0", ParsedName{}, false},
		{"-1", ParsedName{}, false},
		{"gnv0-+1", ParsedName{}, false},
		{"gnv0-1x", ParsedName{}, false},
		{"gnv0-1234567890", ParsedName{}, false},
		{"", ParsedName{}, false},
		{"prevent_unencrypted_geneve", ParsedName{}, false},
	}
	for _, tc := range tests {
		got, ok := ParseConnName(tc.name)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseConnName(%q) = %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBelongsTo(t *testing.T) {
	tests := []struct {
		name, iface string
		want        ParsedName
		ok          bool
	}{
		{"gnv0-in-1", "gnv0", ParsedName{"gnv0", DirIn, 1}, true},
		{"gnv0-out-2", "gnv0", ParsedName{"gnv0", DirOut, 2}, true},
		{"gnv0-3", "gnv0", ParsedName{"gnv0", DirBoth, 3}, true},
		// An interface whose name ends in "-in" is matched exactly.
		{"x-in-1", "x-in", ParsedName{"x-in", DirBoth, 1}, true},
		{"x-in-1", "x", ParsedName{"x", DirIn, 1}, true},
		{"ovn-424242-in-1", "ovn-424242", ParsedName{"ovn-424242", DirIn, 1}, true},
		{"gnv0-1-1", "gnv0", ParsedName{}, false},
		{"gnv01-1", "gnv0", ParsedName{}, false},
		{"gnv0-in-", "gnv0", ParsedName{}, false},
		{"gnv0-1", "", ParsedName{}, false},
		{"gnv0", "gnv0", ParsedName{}, false},
	}
	for _, tc := range tests {
		got, ok := BelongsTo(tc.name, tc.iface)
		if ok != tc.ok || got != tc.want {
			t.Errorf("BelongsTo(%q, %q) = %+v, %v; want %+v, %v", tc.name, tc.iface, got, ok, tc.want, tc.ok)
		}
	}
}

func TestChildNamesAndIKEName(t *testing.T) {
	tests := []struct {
		typ  tunnel.Type
		want []ConnName
	}{
		{tunnel.TypeGeneve, []ConnName{"ovn-ch2-0-in-4", "ovn-ch2-0-out-4"}},
		{tunnel.TypeVXLAN, []ConnName{"ovn-ch2-0-in-4", "ovn-ch2-0-out-4"}},
		{tunnel.TypeGRE, []ConnName{"ovn-ch2-0-4"}},
	}
	for _, tc := range tests {
		got := childNames(tunnel.Tunnel{Name: "ovn-ch2-0", Version: 4, Type: tc.typ})
		if len(got) != len(tc.want) {
			t.Fatalf("%s: childNames = %v, want %v", tc.typ, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: childNames = %v, want %v", tc.typ, got, tc.want)
			}
		}
	}
	if got := ikeConnName("ovn-ch2-0", 4); got != "ovn-ch2-0-4" {
		t.Errorf("ikeConnName = %q", got)
	}
}

func FuzzParseConnName(f *testing.F) {
	for _, s := range []string{"gnv0-in-1", "ovn-424242-in-1", "gre0-3", "a--1", "x-out-999999999", "-in-1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p, ok := ParseConnName(name)
		if !ok {
			return
		}
		if p.Iface == "" || p.Version <= 0 {
			t.Fatalf("ParseConnName(%q) = %+v: empty interface or bad version", name, p)
		}
		// The parse must round-trip exactly.
		re := p.Iface
		if p.Dir != DirBoth {
			re += "-" + string(p.Dir)
		}
		re += "-" + strconv.Itoa(p.Version)
		if re != name {
			t.Fatalf("ParseConnName(%q) = %+v does not round-trip (%q)", name, p, re)
		}
		b, ok := BelongsTo(name, p.Iface)
		if !ok || b != p {
			t.Fatalf("BelongsTo(%q, %q) = %+v, %v; ParseConnName gave %+v", name, p.Iface, b, ok, p)
		}
	})
}
