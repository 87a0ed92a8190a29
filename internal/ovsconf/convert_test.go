// Tests for the row → tunnel.Snapshot conversion and snapshot comparison.

package ovsconf

import (
	"reflect"
	"testing"

	"github.com/ovnsec/ovnsec/internal/tunnel"

	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/ovnsec/ovnsec/internal/ovsconf/vswitchd"
)

func ptr[T any](v T) *T { return &v }

func TestBuildSnapshot(t *testing.T) {
	tests := []struct {
		name   string
		ovs    *vswitchd.OpenvSwitch
		ifaces []*vswitchd.Interface
		want   tunnel.Snapshot
	}{
		{
			name: "uninitialised database",
			want: tunnel.Snapshot{OtherConfig: map[string]string{}, ExternalIDs: map[string]string{}, Interfaces: []tunnel.Interface{}},
		},
		{
			name: "open_vswitch maps, nil maps become empty",
			ovs: &vswitchd.OpenvSwitch{
				UUID:        "u-ovs",
				OtherConfig: map[string]string{"certificate": "/c.pem", "private_key": "/k.pem"},
				ExternalIDs: nil,
				Statistics:  map[string]string{"cpu": "2"},
			},
			want: tunnel.Snapshot{
				OtherConfig: map[string]string{"certificate": "/c.pem", "private_key": "/k.pem"},
				ExternalIDs: map[string]string{},
				Interfaces:  []tunnel.Interface{},
			},
		},
		{
			name: "ofport empty, -1 and set; cfm_fault empty, true, false; sorted by name",
			ovs:  &vswitchd.OpenvSwitch{ExternalIDs: map[string]string{"system-id": "ch1"}},
			ifaces: []*vswitchd.Interface{
				{UUID: "u3", Name: "ovn-c3-0", Type: "geneve", Ofport: ptr(7), CFMFault: ptr(false),
					Options: map[string]string{"remote_ip": "10.0.0.3"}},
				{UUID: "u1", Name: "br-int", Type: "internal"},
				{UUID: "u2", Name: "ovn-c2-0", Type: "geneve", Ofport: ptr(-1), CFMFault: ptr(true),
					Options: map[string]string{"remote_ip": "10.0.0.2", "psk": "s"}},
				nil,
			},
			want: tunnel.Snapshot{
				OtherConfig: map[string]string{},
				ExternalIDs: map[string]string{"system-id": "ch1"},
				Interfaces: []tunnel.Interface{
					{UUID: "u1", Name: "br-int", Type: "internal", Options: map[string]string{}},
					{UUID: "u2", Name: "ovn-c2-0", Type: "geneve", OFPort: ptr(-1), CFMFault: ptr(true),
						Options: map[string]string{"remote_ip": "10.0.0.2", "psk": "s"}},
					{UUID: "u3", Name: "ovn-c3-0", Type: "geneve", OFPort: ptr(7), CFMFault: ptr(false),
						Options: map[string]string{"remote_ip": "10.0.0.3"}},
				},
			},
		},
		{
			name: "equal names ordered by uuid",
			ifaces: []*vswitchd.Interface{
				{UUID: "b", Name: "x"},
				{UUID: "a", Name: "x"},
			},
			want: tunnel.Snapshot{
				OtherConfig: map[string]string{},
				ExternalIDs: map[string]string{},
				Interfaces: []tunnel.Interface{
					{UUID: "a", Name: "x", Options: map[string]string{}},
					{UUID: "b", Name: "x", Options: map[string]string{}},
				},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := buildSnapshot(tc.ovs, tc.ifaces)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("buildSnapshot:\n got %+v\nwant %+v", got, tc.want)
			}
			if !sameContent(got, tc.want) {
				t.Fatalf("sameContent(got, want) = false for deep-equal snapshots")
			}
		})
	}
}

// TestBuildSnapshotCopies checks that nothing in a tunnel.Snapshot aliases the
// cache rows, in either direction.
func TestBuildSnapshotCopies(t *testing.T) {
	ovs := &vswitchd.OpenvSwitch{
		OtherConfig: map[string]string{"ca_cert": "/ca.pem"},
		ExternalIDs: map[string]string{"system-id": "ch1"},
	}
	row := &vswitchd.Interface{
		UUID: "u1", Name: "gnv0", Type: "geneve",
		Options: map[string]string{"psk": "one"}, Ofport: ptr(3), CFMFault: ptr(false),
	}
	s := buildSnapshot(ovs, []*vswitchd.Interface{row})

	// The cache changes: the snapshot must not.
	ovs.OtherConfig["ca_cert"] = "/other.pem"
	ovs.ExternalIDs["new"] = "x"
	row.Options["psk"] = "two"
	*row.Ofport = 9
	*row.CFMFault = true
	if s.OtherConfig["ca_cert"] != "/ca.pem" || len(s.ExternalIDs) != 1 {
		t.Errorf("Open_vSwitch maps alias the cache: %v %v", s.OtherConfig, s.ExternalIDs)
	}
	i := s.Interfaces[0]
	if i.Options["psk"] != "one" || *i.OFPort != 3 || *i.CFMFault {
		t.Errorf("interface aliases the cache: options=%v ofport=%d cfm_fault=%v", i.Options, *i.OFPort, *i.CFMFault)
	}

	// A misbehaving consumer writes to the snapshot: the cache must not change.
	s.OtherConfig["ca_cert"] = "/evil.pem"
	i.Options["psk"] = "evil"
	*i.OFPort = 1
	if ovs.OtherConfig["ca_cert"] != "/other.pem" || row.Options["psk"] != "two" || *row.Ofport != 9 {
		t.Errorf("snapshot aliases the cache rows")
	}
}

func TestSnapshotFromRows(t *testing.T) {
	ovsRows := map[string]model.Model{
		"b": &vswitchd.OpenvSwitch{UUID: "b", ExternalIDs: map[string]string{"row": "b"}},
		"a": &vswitchd.OpenvSwitch{UUID: "a", ExternalIDs: map[string]string{"row": "a"}},
		"x": &vswitchd.Interface{UUID: "x"}, // wrong type: ignored
	}
	ifaceRows := map[string]model.Model{
		"2": &vswitchd.Interface{UUID: "2", Name: "z"},
		"1": &vswitchd.Interface{UUID: "1", Name: "a"},
		"3": &vswitchd.OpenvSwitch{UUID: "3"},  // wrong type: ignored
		"4": (*vswitchd.Interface)(nil),        // nil row: ignored
		"5": &vswitchd.Bridge{Name: "bridge0"}, // wrong type: ignored
	}
	s := snapshotFromRows(ovsRows, ifaceRows)
	if s.ExternalIDs["row"] != "a" {
		t.Errorf("picked Open_vSwitch row %q, want the smallest UUID %q", s.ExternalIDs["row"], "a")
	}
	if len(s.Interfaces) != 2 || s.Interfaces[0].Name != "a" || s.Interfaces[1].Name != "z" {
		t.Errorf("interfaces = %+v, want a, z", s.Interfaces)
	}

	empty := snapshotFromRows(nil, nil)
	if empty.OtherConfig == nil || empty.ExternalIDs == nil || empty.Interfaces == nil || len(empty.Interfaces) != 0 {
		t.Errorf("empty tables: got %+v, want empty non-nil maps and slice", empty)
	}
}

func TestSameContent(t *testing.T) {
	base := func() tunnel.Snapshot {
		return tunnel.Snapshot{
			Seq:         1,
			OtherConfig: map[string]string{"k": "v"},
			ExternalIDs: map[string]string{"system-id": "ch1"},
			Interfaces: []tunnel.Interface{{
				UUID: "u", Name: "gnv0", Type: "geneve",
				Options: map[string]string{"psk": "p"}, OFPort: ptr(1), CFMFault: ptr(false),
			}},
		}
	}
	tests := []struct {
		name   string
		change func(a, b *tunnel.Snapshot)
		same   bool
	}{
		{"identical", func(a, b *tunnel.Snapshot) {}, true},
		{"seq ignored", func(a, b *tunnel.Snapshot) { b.Seq = 99 }, true},
		{"nil options equal empty options", func(a, b *tunnel.Snapshot) {
			a.Interfaces[0].Options, b.Interfaces[0].Options = map[string]string{}, nil
		}, true},
		{"other_config value", func(a, b *tunnel.Snapshot) { b.OtherConfig["k"] = "w" }, false},
		{"external_ids key", func(a, b *tunnel.Snapshot) { b.ExternalIDs["x"] = "" }, false},
		{"interface added", func(a, b *tunnel.Snapshot) { b.Interfaces = append(b.Interfaces, tunnel.Interface{Name: "b"}) }, false},
		{"interface removed", func(a, b *tunnel.Snapshot) { b.Interfaces = nil }, false},
		{"uuid", func(a, b *tunnel.Snapshot) { b.Interfaces[0].UUID = "v" }, false},
		{"name", func(a, b *tunnel.Snapshot) { b.Interfaces[0].Name = "gnv1" }, false},
		{"type", func(a, b *tunnel.Snapshot) { b.Interfaces[0].Type = "vxlan" }, false},
		{"option value", func(a, b *tunnel.Snapshot) { b.Interfaces[0].Options["psk"] = "q" }, false},
		{"options cleared", func(a, b *tunnel.Snapshot) { b.Interfaces[0].Options = nil }, false},
		{"ofport value", func(a, b *tunnel.Snapshot) { *b.Interfaces[0].OFPort = -1 }, false},
		{"ofport cleared", func(a, b *tunnel.Snapshot) { b.Interfaces[0].OFPort = nil }, false},
		{"ofport same value new pointer", func(a, b *tunnel.Snapshot) { b.Interfaces[0].OFPort = ptr(1) }, true},
		{"cfm_fault value", func(a, b *tunnel.Snapshot) { *b.Interfaces[0].CFMFault = true }, false},
		{"cfm_fault cleared", func(a, b *tunnel.Snapshot) { b.Interfaces[0].CFMFault = nil }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := base(), base()
			tc.change(&a, &b)
			if got := sameContent(a, b); got != tc.same {
				t.Errorf("sameContent = %v, want %v", got, tc.same)
			}
			if got := sameContent(b, a); got != tc.same {
				t.Errorf("sameContent (reversed) = %v, want %v", got, tc.same)
			}
		})
	}
}
