// Metrics stage: what the native backend knows beyond the typed status,
// read at scrape time: the IKE engine's counters, the drops of the ESP
// hook and of the frame loop, and br-phy's plaintext drops by peer. The
// counters are atomics the packet path keeps anyway; reading them costs it
// nothing. The plaintext drops are one ovs-ofctl dump-flows.

package native

import (
	"context"
	"net/netip"

	"github.com/ovnsec/ovnsec/internal/datapath/drop"
	"github.com/ovnsec/ovnsec/internal/ike"
)

// Metrics is one reading of the backend's counters. Every counter only
// grows while the backend runs, except PlaintextDrops, which are OVS's
// flow counters (they restart with ovs-vswitchd, or when a peer's rules
// are removed and installed again).
type Metrics struct {
	// IKE are the engine's counters; HasIKE is false when the engine keeps
	// none (a test double).
	IKE    ike.StatsSnapshot
	HasIKE bool
	// HookDrops are the frames the ESP hook dropped, by reason, over all
	// peers; LoopDrops those the frame loop itself lost.
	HookDrops, LoopDrops drop.Counts
	// PlaintextDrops are the plaintext tunnel packets br-phy dropped from
	// each protected peer, by the peer's address; nil, with PlaintextErr
	// saying why, when they could not be read.
	PlaintextDrops map[netip.Addr]uint64
	PlaintextErr   error
}

// ikeStats is the part of *ike.Engine that counts.
type ikeStats interface{ Stats() ike.StatsSnapshot }

// plaintextByPeer is the part of *ovsbridge.Attachment that reads the
// drop-plaintext rules' counters by peer.
type plaintextByPeer interface {
	PlaintextDropsByPeer(ctx context.Context) (map[netip.Addr]uint64, error)
}

// errNoPlaintextByPeer: the attachment cannot count drops by peer.
type errNoPlaintextByPeer struct{}

func (errNoPlaintextByPeer) Error() string {
	return "the br-phy attachment does not count plaintext drops by peer"
}

// Metrics reads the counters now. ctx bounds the ovs-ofctl call.
func (b *Backend) Metrics(ctx context.Context) Metrics {
	var m Metrics
	if s, ok := b.eng.(ikeStats); ok {
		m.IKE, m.HasIKE = s.Stats(), true
	}
	m.HookDrops = dropCounts(b.hook.Stats().Drops)
	m.LoopDrops = b.loop.Stats().Drops
	if p, ok := b.att.(plaintextByPeer); ok {
		m.PlaintextDrops, m.PlaintextErr = p.PlaintextDropsByPeer(ctx)
	} else {
		m.PlaintextErr = errNoPlaintextByPeer{}
	}
	return m
}

// dropCounts turns drops by reason name (the hook's Stats) back into
// counts by reason. Names that are no reason cannot occur (the hook names
// its drops with drop.Reason.String); they are left out.
func dropCounts(byName map[string]uint64) drop.Counts {
	var c drop.Counts
	for name, n := range byName {
		var r drop.Reason
		if r.UnmarshalText([]byte(name)) == nil {
			c[r] += n
		}
	}
	return c
}
