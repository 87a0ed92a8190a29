// Feed loop: every database snapshot, and every change of what is known of
// OVN's SB_Global ipsec, becomes the desired tunnels. One goroutine owns the
// tunnel table and the IPsec policy, so snapshots and Southbound values are
// applied one at a time, in the order they arrive, and a change of the
// requirement re-evaluates the last snapshot at once.

package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/ovnsec/ovnsec/internal/creds"
	"github.com/ovnsec/ovnsec/internal/ovnsb"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// feeder is the feed loop's wiring.
type feeder struct {
	table  *tunnel.Table
	policy *ovnsb.Policy
	// setRemote gives the Southbound follower its remote; nil when
	// SB_Global ipsec is not followed.
	setRemote func(string)
	// desired receives every result of the table (reconcile.SetDesired).
	desired func([]tunnel.Tunnel)
	// noDrop: the backend cannot drop a tunnel's packets (strongSwan).
	noDrop bool
	log    *slog.Logger

	req     ovnsb.Decision // the requirement last given to the table
	decided bool
}

// run applies snapshots (snaps), Southbound values (sbs, nil when not
// following) and re-evaluates the last snapshot on every tick, so that
// certificates replaced on disk and certificate expiry are noticed without
// a database change. Nothing is decided before the first snapshot: the
// policy needs ovn-remote and the tunnel ports.
func (f *feeder) run(ctx context.Context, snaps <-chan tunnel.Snapshot, sbs <-chan ovnsb.State, tick <-chan time.Time, changed <-chan creds.Change) error {
	var last tunnel.Snapshot
	have := false
	var sb ovnsb.State
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case snap, ok := <-snaps:
			if !ok {
				snaps = nil
				continue
			}
			last, have = snap, true
			if f.setRemote != nil {
				f.setRemote(f.policy.Remote(snap.ExternalIDs))
			}
		case st, ok := <-sbs:
			if !ok {
				sbs = nil
				continue
			}
			sb = st
			if !have {
				continue
			}
			if f.decided && f.policy.Decide(sb, last) == f.req {
				continue // e.g. another failed connection attempt: nothing to redo
			}
		case <-tick:
			if !have {
				continue
			}
		case <-changed:
			// A credential file changed: its problems (expiry, key match,
			// CN) are evaluated again at once, not at the next tick.
			if !have {
				continue
			}
		}
		f.require(f.policy.Decide(sb, last))
		tunnels, events := f.table.Update(last)
		tunnel.Log(ctx, f.log, events)
		f.desired(tunnels)
	}
}

// require gives d to the table and logs it, if it differs from the last
// Decision.
func (f *feeder) require(d ovnsb.Decision) {
	if f.decided && d == f.req {
		return
	}
	first := !f.decided
	f.decided, f.req = true, d
	f.table.Require(tunnel.Requirement{On: d.Require, Cause: d.Cause, NoDrop: f.noDrop})
	if first && (d.Basis == ovnsb.BasisForced || !d.Following && !d.Require) {
		return // --require-ipsec is named at start-up; not following says nothing
	}
	f.log.Info(d.String(), "basis", basisName(d.Basis))
}

func basisName(b ovnsb.Basis) string {
	switch b {
	case ovnsb.BasisForced:
		return "--require-ipsec"
	case ovnsb.BasisSB:
		return "sb_global"
	case ovnsb.BasisLastKnown:
		return "sb_global_last_known"
	case ovnsb.BasisInferred:
		return "ovn_tunnel_options"
	}
	return "none"
}
