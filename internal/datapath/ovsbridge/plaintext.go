// Plaintext drops by peer: the packet counters of the drop-plaintext rules,
// summed per peer address, for metrics (ovnsec_plaintext_dropped_total).

package ovsbridge

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
)

// PlaintextDropsByPeer returns how many plaintext tunnel packets OVS has
// dropped from each protected peer since its drop rules were installed,
// by the peer's address. The counters are OVS's: they restart when
// ovs-vswitchd restarts or a peer's rules are removed and added again.
func (a *Attachment) PlaintextDropsByPeer(ctx context.Context) (map[netip.Addr]uint64, error) {
	fs, err := a.cfg.OVS.DumpFlows(ctx, uint64(a.cfg.Cookie)|uint64(KindDropPlaintext), ^uint64(0))
	if err != nil {
		return nil, err
	}
	m := make(map[netip.Addr]uint64)
	for _, f := range fs {
		peer, ok := f.SourceAddr()
		if !ok {
			return nil, fmt.Errorf("drop-plaintext rule of %s matches no single source address: %q", a.cfg.Bridge, f.Match)
		}
		m[peer] += f.Packets
	}
	return m, nil
}

// SourceAddr returns the single source address the flow matches
// (nw_src=A or ipv6_src=A, without a mask other than a full one); false
// when it matches none or a prefix.
func (s FlowStat) SourceAddr() (netip.Addr, bool) {
	var found netip.Addr
	for _, field := range strings.Split(s.Match, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(field), "=")
		if !ok || (k != "nw_src" && k != "ipv6_src") {
			continue
		}
		if found.IsValid() {
			return netip.Addr{}, false // two source matches: not one peer
		}
		if p, err := netip.ParsePrefix(v); err == nil {
			if p.Bits() != p.Addr().BitLen() {
				return netip.Addr{}, false
			}
			v = p.Addr().String()
		}
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" || (k == "nw_src") != a.Is4() {
			return netip.Addr{}, false
		}
		found = a
	}
	return found, found.IsValid()
}
