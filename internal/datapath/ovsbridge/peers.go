// Peer stage: what the policies of each peer add up to (one mode, at most
// one ESP-in-UDP port), checked by Rules and published to the packet loop
// as an immutable per-peer table, so that the loop's per-frame checks are
// one map lookup.

package ovsbridge

import (
	"fmt"
	"net/netip"
)

// peerSet maps a peer address to how it is protected; it is never
// modified once published.
type peerSet map[netip.Addr]peerMode

type peerMode struct {
	mode Mode
	// encapPort is the peer's NAT-T port: the engine may send it UDP from
	// our 4500 to this port (ESP-in-UDP). 0: the peer has no ESP-in-UDP.
	encapPort uint16
}

// mergePeers groups the (individually valid) policies by peer. The policies
// of one peer must agree on the mode and, among those with EncapUDP4500,
// on the NAT-T port, and that port must not be one of the peer's tunnel
// ports. On disagreement it returns an error naming the first peer at
// fault together with a set in which every such peer is ModeProtected
// with no ESP-in-UDP (fail closed: plain ESP only).
func mergePeers(policies []Policy) (peerSet, error) {
	ps := make(peerSet, len(policies))
	var bad map[netip.Addr]bool
	var first error
	fail := func(peer netip.Addr, err error) {
		if bad == nil {
			bad = map[netip.Addr]bool{}
		}
		bad[peer] = true
		if first == nil {
			first = err
		}
	}
	for _, p := range policies {
		peer := p.peer()
		pm, seen := ps[peer]
		switch {
		case !seen:
			pm.mode = p.Mode
		case pm.mode != p.Mode:
			fail(peer, fmt.Errorf("peer %s has policies in modes %v and %v: one peer must have one mode", peer, pm.mode, p.Mode))
		}
		if port := p.NATTPort(); port != 0 {
			if pm.encapPort != 0 && pm.encapPort != port {
				fail(peer, fmt.Errorf("peer %s has policies with ESP-in-UDP ports %d and %d: one peer has one NAT-T port", peer, pm.encapPort, port))
			}
			if pm.encapPort == 0 {
				pm.encapPort = port
			}
		}
		ps[peer] = pm
	}
	for _, p := range policies {
		peer := p.peer()
		if pm := ps[peer]; p.Proto != ProtoGRE && pm.encapPort != 0 && pm.encapPort == p.Port() {
			fail(peer, fmt.Errorf("peer %s: ESP-in-UDP port %d is also the peer's %s tunnel port: ESP-in-UDP and plaintext tunnel packets would look alike", peer, pm.encapPort, p.Proto))
		}
	}
	for peer := range bad {
		ps[peer] = peerMode{mode: ModeProtected}
	}
	return ps, first
}
