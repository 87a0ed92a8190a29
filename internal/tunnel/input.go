// Input: the tunnel stage's own view of the local Open_vSwitch database,
// which internal/ovsconf converts every database update into. It carries
// exactly what ovs-monitor-ipsec reads (Open_vSwitch other_config and
// external_ids; Interface name, type, options, ofport, cfm_fault) as plain
// values, so that nothing after the watcher depends on OVSDB types.

package tunnel

// Snapshot is one consistent view of the database. Values are never mutated
// after a Snapshot is published; consumers must treat the maps as read-only.
type Snapshot struct {
	// Seq increases by one for every published snapshot.
	Seq uint64
	// OtherConfig is Open_vSwitch:other_config (certificate, private_key,
	// ca_cert, ipsec_skb_mark, ...).
	OtherConfig map[string]string
	// ExternalIDs is Open_vSwitch:external_ids (system-id, ovn-encap-ip, ...).
	ExternalIDs map[string]string
	// Interfaces holds every Interface row, sorted by Name.
	Interfaces []Interface
}

// Interface is the part of an Interface row that IPsec cares about.
type Interface struct {
	UUID    string
	Name    string
	Type    string
	Options map[string]string
	// OFPort is nil when the column is empty; -1 means OVS failed to add it.
	OFPort *int
	// CFMFault is nil when CFM is not configured on the interface.
	CFMFault *bool
}
