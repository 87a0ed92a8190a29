// Requirement: whether IPsec is required on every gre, geneve and vxlan
// interface of the host, and who requires it. ovnsecd --require-ipsec
// requires it for the life of the process; following OVN's SB_Global ipsec
// turns it on and off while the table is in use, so a change must reach the
// tunnels already tracked without waiting for a database change.

package tunnel

import "strings"

// requiredPrefix starts every reason Requirement gives a tunnel; no reason
// of ovs-monitor-ipsec's starts with it.
const requiredPrefix = ": IPsec is required on this host ("

// Requirement says whether IPsec is required on every tunnel interface and
// why; Table.Require applies it.
type Requirement struct {
	// On makes every gre, geneve and vxlan interface a tunnel, INVALID
	// until it has psk, remote_cert or remote_name.
	On bool
	// Cause names who requires IPsec, in the reason of such a tunnel:
	// "ovnsecd --require-ipsec", "OVN SB_Global ipsec=true", ...
	Cause string
	// NoDrop says that the backend cannot drop such a tunnel's packets
	// (strongSwan); the reason then says that they still cross in clear.
	NoDrop bool
}

// reason is the INVALID reason of a tunnel without IPsec options under r.
// For ovnsecd --require-ipsec it is exactly reasonRequired.
func (r Requirement) reason() string {
	s := requiredPrefix + r.Cause + ") but none of 'psk', 'remote_cert', 'remote_name' is set; "
	if r.NoDrop {
		return s + "this IPsec backend cannot drop its packets, so they still cross in plaintext until one is"
	}
	return s + "its tunnel packets are dropped until one is"
}

// requireState is the Table's requirement: whether it is on and the reason
// it gives a tunnel without IPsec options.
type requireState struct {
	on     bool
	reason string
}

// Require sets whether IPsec is required on every tunnel interface (see
// RequireIPsec) and the cause its tunnels' reasons name. It may be called
// between Updates (not concurrently with one): the next Update adds the
// interfaces without IPsec options as INVALID tunnels when r.On, and
// reports them REMOVED when not; call Update with the last snapshot to
// apply it at once. A new cause replaces the reason of the tunnels already
// INVALID for want of IPsec options at once, without a version change.
func (t *Table) Require(r Requirement) {
	t.require = requireState{on: r.On, reason: r.reason()}
	if !r.On {
		return
	}
	for _, e := range t.tunnels {
		if e.state == StateInvalid && strings.HasPrefix(e.reason, requiredPrefix) {
			e.reason = t.require.reason
		}
	}
}

// Required reports whether IPsec is required on every tunnel interface.
func (t *Table) Required() bool { return t.require.on }
