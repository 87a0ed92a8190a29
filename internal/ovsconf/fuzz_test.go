// Fuzz targets: remote parsing (operator input that decides which socket is
// dialled) and the row → tunnel.Snapshot conversion (data from ovsdb-server).

package ovsconf

import (
	"slices"
	"strings"
	"testing"

	"github.com/ovnsec/ovnsec/internal/ovsconf/vswitchd"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

func FuzzParseRemote(f *testing.F) {
	for _, s := range []string{
		"unix:/run/openvswitch/db.sock", "unix:db.sock", "tcp:127.0.0.1:6640", "tcp:[::1]:6640",
		"ssl:[fe80::1%eth0]:6640", "unix:/a b/c", "tcp:h:p:q", "ptcp:6640", "unix:/%zz",
	} {
		f.Add(s, s[0] == 's')
	}
	f.Fuzz(func(t *testing.T, remote string, haveTLS bool) {
		ep, err := parseRemote(remote, haveTLS)
		if err != nil {
			if ep != "" {
				t.Fatalf("parseRemote(%q) = %q with error %v", remote, ep, err)
			}
			return
		}
		method, addr, _ := strings.Cut(ep, ":")
		switch method {
		case "unix":
			if !strings.HasPrefix(addr, "/") || len(addr) > maxUnixPath {
				t.Fatalf("parseRemote(%q) = %q: not a usable absolute socket path", remote, ep)
			}
		case "tcp":
		case "ssl":
			if !haveTLS {
				t.Fatalf("parseRemote(%q) accepted ssl without TLS", remote)
			}
		default:
			t.Fatalf("parseRemote(%q) = %q: unexpected method", remote, ep)
		}
		if again, err := parseRemote(ep, haveTLS); err != nil || again != ep {
			t.Fatalf("parseRemote not idempotent: %q -> %q -> %q, %v", remote, ep, again, err)
		}
	})
}

func FuzzBuildSnapshot(f *testing.F) {
	f.Add("ovn-c2-0", "br-int", "psk", "secret", -1, uint8(1))
	f.Add("b", "a", "", "", 0, uint8(0))
	f.Add("same", "same", "remote_ip", "10.0.0.1", 65279, uint8(2))
	f.Fuzz(func(t *testing.T, name1, name2, key, val string, ofport int, cfm uint8) {
		var fault *bool
		if cfm%3 != 0 {
			fault = ptr(cfm%3 == 1)
		}
		rows := []*vswitchd.Interface{
			{UUID: "u1", Name: name1, Options: map[string]string{key: val}, Ofport: ptr(ofport), CFMFault: fault},
			{UUID: "u2", Name: name2},
		}
		ovs := &vswitchd.OpenvSwitch{OtherConfig: map[string]string{key: val}}
		s := buildSnapshot(ovs, rows)
		if len(s.Interfaces) != 2 || !slices.IsSortedFunc(s.Interfaces, func(a, b tunnel.Interface) int {
			return strings.Compare(a.Name, b.Name)
		}) {
			t.Fatalf("interfaces not sorted: %+v", s.Interfaces)
		}
		if !sameContent(s, buildSnapshot(ovs, rows)) {
			t.Fatal("sameContent is not reflexive")
		}
		rows[0].Options[key] = val + "x"
		*rows[0].Ofport = ofport + 1
		ovs.OtherConfig[key] = val + "x"
		for _, i := range s.Interfaces {
			if i.UUID == "u1" && (i.Options[key] != val || *i.OFPort != ofport || !equalPtr(i.CFMFault, fault)) {
				t.Fatalf("snapshot aliases the rows: %+v", i)
			}
		}
		if s.OtherConfig[key] != val {
			t.Fatal("other_config aliases the row")
		}
	})
}
