// NAT-T port stage: which UDP port of the peer our ESP-in-UDP goes to. A
// NAT in front of the peer maps the peer's port 4500 to another one; the
// IKE engine puts the port it learned (NAT detection, and where the peer's
// IKE messages come from) into every Child SA (Encap.DstPort), and a later
// Child SA tells a new port when the NAT's mapping changed. The br-phy
// rules and the packet loop let exactly that port out, so the tunnel's
// policy follows it.

package native

import (
	"fmt"

	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike"
)

// followEncapLocked switches st's policy to ESP-in-UDP when c is ESP-in-UDP
// (forced, or because IKE detected a NAT) and points it at c's NAT-T port,
// then re-applies the policies if that changed anything. The port follows
// the children that carry our outbound traffic (their SA is the one that
// sends); another child sets it only when it is the first ESP-in-UDP
// child. If the new policy cannot be installed (for example a port equal
// to the tunnel port, which the rules refuse), the old one is put back and
// the error returned: the child is then not installed, so nothing is sent
// to a port the rules do not allow, and other tunnels are not held up by
// this one's policy.
func (b *Backend) followEncapLocked(st *tunnelState, c ike.ChildSA) error {
	if c.Encap.Type != esp.EncapUDP {
		return nil
	}
	old := st.plan.policy
	p := old
	if p.Encap != ovsbridge.EncapUDP4500 || st.plan.carries(c) {
		p.EncapPort = encapPort(c.Encap.DstPort)
	}
	p.Encap = ovsbridge.EncapUDP4500
	if p == old {
		return nil
	}
	if err := p.Validate(); err != nil {
		return err
	}
	st.plan.policy = p
	if err := b.applyPoliciesLocked(b.life); err != nil {
		st.plan.policy = old
		if rerr := b.applyPoliciesLocked(b.life); rerr != nil {
			b.log.Warn("restore the policies after a failed ESP-in-UDP switch", "tunnel", st.t.Name, "err", rerr)
		}
		return err
	}
	was := "plain ESP"
	if old.Encap == ovsbridge.EncapUDP4500 {
		was = fmt.Sprintf("ESP-in-UDP to port %d", old.NATTPort())
	}
	b.log.Info("ESP-in-UDP towards the peer's NAT-T port", "tunnel", st.t.Name, "peer", p.PeerIP,
		"port", p.NATTPort(), "was", was, "nat_remote", c.EncapRemoteNAT, "child", c.Name)
	return nil
}

// portFollowsLocked points st's policy at ch's NAT-T port before ch's
// outbound SA starts sending (a rekey promoted, or the child that carried
// outbound traffic deleted): the rules must let its port out first. A
// failure is logged; frames to a port the rules refuse are dropped, never
// sent elsewhere.
func (b *Backend) portFollowsLocked(st *tunnelState, ch *childState) {
	c := ike.ChildSA{Name: ch.name, Encap: ch.encap, LocalTS: ch.localTS, RemoteTS: ch.remoteTS}
	if err := b.followEncapLocked(st, c); err != nil {
		b.log.Warn("the rules cannot follow the child's NAT-T port; its ESP-in-UDP is dropped", "tunnel", st.t.Name, "child", ch.name, "err", err)
	}
}

// encapPort is the Policy.EncapPort for a Child SA's destination port:
// 4500 is the default (0), so that a peer without a NAT keeps the policy a
// forced encapsulation starts with.
func encapPort(dst uint16) uint16 {
	if dst == esp.NATTPort {
		return 0
	}
	return dst
}
