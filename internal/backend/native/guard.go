// Guard stage: every tunnel that requires IPsec has its tunnel packets
// steered and dropped on br-phy, whether or not anything else about it
// could be configured. The guard is installed before the tunnel is planned
// and stays whatever Ensure fails at; SAs, once installed, are what lets
// packets through. A guarded tunnel without SAs behaves like a protected
// peer whose IKE SA is not up yet: its outbound tunnel packets reach the
// engine and are dropped, its inbound plaintext is dropped by OVS.

package native

import (
	"context"
	"fmt"
	"net/netip"
	"sort"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// guardEntry is one guarded tunnel.
type guardEntry struct {
	t      tunnel.Tunnel
	policy ovsbridge.Policy
	// byEnsure: the guard came from Ensure, not from Guard; Remove lifts it
	// (a user that never calls Guard still gets fail-closed Ensure calls).
	byEnsure bool
}

// guardPolicy is the br-phy policy that blocks t's packets: its tunnel
// protocol and port to and from its remote address, in protected mode.
// Any address family works: IPv6 peers are dropped by br-phy's rules and
// by the engine, which protects IPv4 peers only.
func guardPolicy(t tunnel.Tunnel) (ovsbridge.Policy, error) {
	if !t.Remote.IsValid() {
		return ovsbridge.Policy{}, fmt.Errorf("tunnel %s: remote_ip %q is not an IP address, so ovnsec cannot tell where its packets go and cannot drop them: with IPsec options set, use a remote_ip address (flow-based tunnels cannot be protected)", t.Name, t.RemoteIP)
	}
	p := tunnelPolicy(t, t.Remote)
	if err := p.Validate(); err != nil {
		return ovsbridge.Policy{}, fmt.Errorf("tunnel %s: cannot drop its packets: %w", t.Name, err)
	}
	return p, nil
}

// tunnelPolicy is the protected br-phy policy of t's packets to and from
// remote. t.DstPort is the port ovs-vswitchd uses, 0 included.
func tunnelPolicy(t tunnel.Tunnel, remote netip.Addr) ovsbridge.Policy {
	return ovsbridge.Policy{PeerIP: remote, Proto: ovsbridge.Proto(t.Type), DstPort: t.DstPort, ExactPort: true, Mode: ovsbridge.ModeProtected}
}

// Guard implements backend.Guard.
func (b *Backend) Guard(ctx context.Context, ts []tunnel.Tunnel) (map[string]error, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errClosed
	}
	var refused map[string]error
	next := make(map[string]guardEntry, len(ts))
	for _, t := range ts {
		p, err := guardPolicy(t)
		if err != nil {
			if refused == nil {
				refused = map[string]error{}
			}
			refused[t.Name] = err
			continue
		}
		next[t.Name] = guardEntry{t: t, policy: p}
	}
	for name := range next {
		if _, ok := b.guarded[name]; !ok {
			b.log.Info("tunnel guarded: its packets are dropped unless SAs protect them", "tunnel", name, "remote", next[name].policy.PeerIP)
		}
	}
	b.guarded = next
	return refused, b.applyPoliciesLocked(ctx)
}

// guardLocked guards t (from Ensure) unless Guard already does; it reports
// an error when t cannot be guarded.
func (b *Backend) guardLocked(t tunnel.Tunnel) error {
	p, err := guardPolicy(t)
	if err != nil {
		return err
	}
	if b.guarded == nil {
		b.guarded = map[string]guardEntry{}
	}
	g, ok := b.guarded[t.Name]
	b.guarded[t.Name] = guardEntry{t: t, policy: p, byEnsure: !ok || g.byEnsure}
	return nil
}

// enginePoliciesLocked returns the policies of the tunnels the engine
// protects (IPv4, one per remote), sorted: what the hook and the packet
// loop accept frames for.
func (b *Backend) enginePoliciesLocked() []ovsbridge.Policy {
	ps := make([]ovsbridge.Policy, 0, len(b.tunnels))
	for _, st := range b.tunnels {
		ps = append(ps, st.plan.policy)
	}
	sortPolicies(ps)
	return ps
}

// bridgePoliciesLocked returns the engine's policies plus those of guarded
// tunnels they do not cover: what br-phy steers and drops.
func (b *Backend) bridgePoliciesLocked(engine []ovsbridge.Policy) []ovsbridge.Policy {
	ps := append(make([]ovsbridge.Policy, 0, len(engine)+len(b.guarded)), engine...)
	for _, g := range b.guarded {
		covered := false
		for _, p := range ps {
			if p.PeerIP == g.policy.PeerIP && p.Proto == g.policy.Proto && p.Port() == g.policy.Port() {
				covered = true
				break
			}
		}
		if !covered {
			ps = append(ps, g.policy)
		}
	}
	sortPolicies(ps)
	return ps
}

// sortPolicies orders policies totally, so that an unchanged set compares
// equal (applyPoliciesLocked skips installing it again).
func sortPolicies(ps []ovsbridge.Policy) {
	sort.Slice(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if c := a.PeerIP.Compare(b.PeerIP); c != 0 {
			return c < 0
		}
		if a.Proto != b.Proto {
			return a.Proto < b.Proto
		}
		if a.DstPort != b.DstPort {
			return a.DstPort < b.DstPort
		}
		if a.ExactPort != b.ExactPort {
			return !a.ExactPort
		}
		if a.Encap != b.Encap {
			return a.Encap < b.Encap
		}
		if a.EncapPort != b.EncapPort {
			return a.EncapPort < b.EncapPort
		}
		return a.Mode < b.Mode
	})
}

// guardedStatusLocked reports guarded tunnels the engine does not protect.
func (b *Backend) guardedStatusLocked(out map[string]backend.TunnelStatus) {
	for name, g := range b.guarded {
		if _, ok := b.tunnels[name]; ok {
			continue
		}
		why := "the tunnel is not configured"
		if g.t.State == tunnel.StateInvalid {
			why = "the configuration is invalid"
		}
		out[name] = backend.TunnelStatus{
			Name: name, Version: g.t.Version, Phase: backend.PhaseDown, Blocked: true,
			Reason: fmt.Sprintf("blocked: %s, so tunnel packets to and from %s are dropped, never sent in clear", why, g.policy.PeerIP),
		}
	}
}
