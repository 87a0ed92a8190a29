// Block: INVALID tunnels that carry IPsec options still require IPsec, so
// their packets are steered and dropped like those of a protected peer that
// has no SA yet: outbound frames wait in the bounded hold queue and are
// dropped, inbound plaintext is dropped by OVS. No IKE peer is configured.
package native

import (
	"context"
	"fmt"
	"sort"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// blockedTunnel is an INVALID tunnel whose packets are dropped, or (with
// prepared) a tunnel about to be ensured whose packets are dropped until
// then.
type blockedTunnel struct {
	t        tunnel.Tunnel
	policy   ovsbridge.Policy
	prepared bool
}

// Prepare implements backend.Preparer: one br-phy install protects every
// tunnel about to be ensured, so none of them leaks plaintext while the
// others are configured one by one.
func (b *Backend) Prepare(ctx context.Context, ts []tunnel.Tunnel) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errClosed
	}
	added := 0
	for _, t := range ts {
		if _, ok := b.tunnels[t.Name]; ok {
			continue // already protected (its policy stays while it changes)
		}
		if _, ok := b.blocked[t.Name]; ok {
			continue
		}
		remote, ok := t.RemoteAddr()
		if !ok || !remote.Is4() {
			continue
		}
		p := ovsbridge.Policy{PeerIP: remote, Proto: ovsbridge.Proto(t.Type), DstPort: t.DstPort, Mode: ovsbridge.ModeProtected}
		if p.Validate() != nil {
			continue
		}
		if b.blocked == nil {
			b.blocked = map[string]blockedTunnel{}
		}
		b.blocked[t.Name] = blockedTunnel{t: t, policy: p, prepared: true}
		added++
	}
	if added == 0 {
		return nil
	}
	return b.applyPoliciesLocked(ctx)
}

// Block implements backend.Blocker.
func (b *Backend) Block(ctx context.Context, t tunnel.Tunnel) error {
	remote, ok := t.RemoteAddr()
	if !ok || !remote.Is4() {
		return fmt.Errorf("tunnel %s: cannot block remote_ip %q: the native backend needs an IPv4 address", t.Name, t.RemoteIP)
	}
	p := ovsbridge.Policy{PeerIP: remote, Proto: ovsbridge.Proto(t.Type), DstPort: t.DstPort, Mode: ovsbridge.ModeProtected}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("tunnel %s: %w", t.Name, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errClosed
	}
	if old, ok := b.tunnels[t.Name]; ok {
		b.dropLocked(old)
	}
	if b.blocked == nil {
		b.blocked = map[string]blockedTunnel{}
	}
	b.blocked[t.Name] = blockedTunnel{t: t, policy: p}
	if err := b.applyPoliciesLocked(ctx); err != nil {
		return err
	}
	b.log.Warn("tunnel blocked: its configuration is invalid, so its packets are dropped", "tunnel", t.Name, "remote", remote)
	return nil
}

// blockedPoliciesLocked adds the blocked tunnels' policies to ps, skipping
// peers a protected tunnel already covers.
func (b *Backend) blockedPoliciesLocked(ps []ovsbridge.Policy) []ovsbridge.Policy {
	for _, bt := range b.blocked {
		dup := false
		for _, p := range ps {
			if p.PeerIP == bt.policy.PeerIP && p.Proto == bt.policy.Proto {
				dup = true
				break
			}
		}
		if !dup {
			ps = append(ps, bt.policy)
		}
	}
	// A total order, so that an unchanged set compares equal
	// (applyPoliciesLocked skips installing it again).
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
		if a.Encap != b.Encap {
			return a.Encap < b.Encap
		}
		return a.Mode < b.Mode
	})
	return ps
}

// blockedStatusLocked reports blocked tunnels.
func (b *Backend) blockedStatusLocked(out map[string]backend.TunnelStatus) {
	for name, bt := range b.blocked {
		if bt.prepared {
			continue // not configured yet: the reconciler will ensure it
		}
		out[name] = backend.TunnelStatus{
			Name: name, Version: bt.t.Version, Phase: backend.PhaseDown,
			Reason: fmt.Sprintf("blocked: the configuration is invalid, so tunnel packets to and from %s are dropped, never sent in clear", bt.policy.PeerIP),
		}
	}
}
