// Conversion stage: turns libovsdb model rows (read-only views into the
// client cache) into a tunnel.Snapshot that owns every byte it points to.

package ovsconf

import (
	"maps"
	"slices"
	"strings"

	"github.com/ovnsec/ovnsec/internal/tunnel"

	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/ovnsec/ovnsec/internal/ovsconf/vswitchd"
)

// buildSnapshot converts cache rows into a tunnel.Snapshot (Seq left zero). ovs is
// the Open_vSwitch row, or nil when the database has not been initialised
// yet (a fresh conf.db before `ovs-vsctl init`). Nothing in the result
// aliases the inputs: maps and pointers are copied, so the cache may change
// underneath without touching a published tunnel.Snapshot.
func buildSnapshot(ovs *vswitchd.OpenvSwitch, ifaces []*vswitchd.Interface) tunnel.Snapshot {
	s := tunnel.Snapshot{
		OtherConfig: map[string]string{},
		ExternalIDs: map[string]string{},
		Interfaces:  make([]tunnel.Interface, 0, len(ifaces)),
	}
	if ovs != nil {
		s.OtherConfig = copyMap(ovs.OtherConfig)
		s.ExternalIDs = copyMap(ovs.ExternalIDs)
	}
	for _, r := range ifaces {
		if r == nil {
			continue
		}
		s.Interfaces = append(s.Interfaces, tunnel.Interface{
			UUID:     r.UUID,
			Name:     r.Name,
			Type:     r.Type,
			Options:  copyMap(r.Options),
			OFPort:   copyPtr(r.Ofport),
			CFMFault: copyPtr(r.CFMFault),
		})
	}
	// tunnel.Interface names are unique in the schema (index "name"); UUID breaks
	// ties anyway so that the order is total even for a corrupt cache.
	slices.SortFunc(s.Interfaces, func(a, b tunnel.Interface) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.UUID, b.UUID)
	})
	return s
}

// snapshotFromRows adapts the untyped row maps of libovsdb's RowCache to
// buildSnapshot. Rows of an unexpected type are ignored (they cannot occur
// with the model registered by this package). When the Open_vSwitch table
// holds more than one row (the schema allows at most one) the row with the
// smallest UUID is used so that the choice is stable.
func snapshotFromRows(ovsRows, ifaceRows map[string]model.Model) tunnel.Snapshot {
	var ovs *vswitchd.OpenvSwitch
	for _, m := range ovsRows {
		r, ok := m.(*vswitchd.OpenvSwitch)
		if !ok || r == nil {
			continue
		}
		if ovs == nil || r.UUID < ovs.UUID {
			ovs = r
		}
	}
	ifaces := make([]*vswitchd.Interface, 0, len(ifaceRows))
	for _, m := range ifaceRows {
		if r, ok := m.(*vswitchd.Interface); ok && r != nil {
			ifaces = append(ifaces, r)
		}
	}
	return buildSnapshot(ovs, ifaces)
}

// sameContent reports whether a and b describe the same database state,
// ignoring Seq. It treats a nil map like an empty one.
func sameContent(a, b tunnel.Snapshot) bool {
	if !maps.Equal(a.OtherConfig, b.OtherConfig) || !maps.Equal(a.ExternalIDs, b.ExternalIDs) {
		return false
	}
	return slices.EqualFunc(a.Interfaces, b.Interfaces, func(x, y tunnel.Interface) bool {
		return x.UUID == y.UUID && x.Name == y.Name && x.Type == y.Type &&
			maps.Equal(x.Options, y.Options) &&
			equalPtr(x.OFPort, y.OFPort) && equalPtr(x.CFMFault, y.CFMFault)
	})
}

// copyMap returns a copy of m; the copy is never nil.
func copyMap(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	maps.Copy(c, m)
	return c
}

func copyPtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
