// Refresh: ovs-monitor-ipsec's libreswan reconciliation, per interface
// and every 15 seconds. Conns pluto holds but no tunnel wants are deleted
// ("is outdated"); a desired conn not loaded is added (the "-in-" half,
// which the peer initiates: fewer crossing initiations, e998d4558) or
// started (the "-out-" half and gre); a conn loaded but not active (no
// Child SA) is brought up once it has waited a whole interval since it
// was added, deleted ("is defunct") once it has waited one since it was
// started or brought up, and brought up at once if it was active before.
// Nothing is touched sooner: a conn just added is never reconciled early
// (6fc522174).

package libreswan

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
)

// loop runs refreshAll every interval until ctx ends.
func (b *Backend) loop(ctx context.Context) {
	t := b.cfg.Clock.NewTicker(b.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			b.ops.Lock()
			b.refreshAll(ctx)
			b.ops.Unlock()
		}
	}
}

// refreshAll reconciles every tunnel held and every owned conn pluto
// holds. ops held.
func (b *Backend) refreshAll(ctx context.Context) {
	if len(b.tracked()) == 0 {
		b.mu.Lock()
		owned := len(b.owned)
		b.mu.Unlock()
		if owned == 0 {
			return
		}
	}
	ps, err := b.status(ctx)
	if err != nil {
		b.log.Warn("reconciliation skipped", "err", err)
		return
	}
	for _, name := range b.names(ps) {
		if err := b.refreshName(ctx, name, ps); err != nil {
			b.mu.Lock()
			if st := b.tunnels[name]; st != nil {
				st.lastErr = err.Error()
			}
			b.mu.Unlock()
		}
	}
	mark, _ := b.desiredMark()
	b.syncShunts(ctx, mark, ps)
}

// names are the interfaces to reconcile: those held, and those of the
// owned conns pluto holds (leftovers of an earlier version or run).
func (b *Backend) names(ps plutoStatus) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	set := map[string]bool{}
	for n := range b.tunnels {
		set[n] = true
	}
	for c := range ps.Loaded {
		if !b.owned[c] || isShunt(c) {
			continue
		}
		if b.ownerLocked(c) != "" {
			continue // a tracked tunnel's; already in the set
		}
		if p, ok := parseConn(c); ok {
			set[p.Iface] = true
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ownerLocked is the tracked tunnel conn belongs to ("" none). mu held.
func (b *Backend) ownerLocked(conn string) string {
	for n := range b.tunnels {
		if _, ok := belongsTo(conn, n); ok {
			return n
		}
	}
	return ""
}

// connsOf lists the conns pluto holds (loaded or active) that belong to
// interface name: any version of a tunnel held, or owned ones.
func (b *Backend) connsOf(name string, ps plutoStatus) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	set := map[string]bool{}
	for _, m := range []map[string]bool{ps.Loaded, activeSet(ps)} {
		for c := range m {
			if _, ok := belongsTo(c, name); !ok {
				continue
			}
			// Another tracked interface's name may extend this one
			// ("a" and "a-in"): the longest owner wins.
			if o := b.ownerLocked(c); o != "" && o != name && len(o) > len(name) {
				continue
			}
			set[c] = true
		}
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

func activeSet(ps plutoStatus) map[string]bool {
	m := make(map[string]bool, len(ps.Active))
	for c := range ps.Active {
		m[c] = true
	}
	return m
}

// refreshName reconciles the conns of one interface (upstream's per-name
// refresh). ops held.
func (b *Backend) refreshName(ctx context.Context, name string, ps plutoStatus) error {
	now := b.cfg.Clock.Now()
	b.mu.Lock()
	st := b.tunnels[name]
	var desired []string
	if st != nil {
		desired = st.t.Conns()
		for c := range ps.Active {
			delete(st.added, c)
			delete(st.started, c)
		}
	}
	b.mu.Unlock()

	var errs []error
	mine := b.connsOf(name, ps)
	for _, c := range mine {
		if !slices.Contains(desired, c) {
			if err := b.deleteConn(ctx, c, "is outdated"); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, c := range desired {
		loaded, active := ps.Loaded[c], ps.Active[c] != ""
		b.mu.Lock()
		added, wasAdded := st.added[c]
		started, wasStarted := st.started[c]
		b.mu.Unlock()
		switch {
		case active:
		case loaded && wasStarted:
			if now.Sub(started) >= b.cfg.Interval {
				if err := b.deleteConn(ctx, c, "is defunct"); err != nil {
					errs = append(errs, err)
				}
			}
		case loaded && wasAdded:
			if now.Sub(added) >= b.cfg.Interval {
				b.log.Debug("Bringing up ipsec connection " + c)
				errs = append(errs, b.connAction(ctx, c, "up"))
			}
		case loaded:
			b.log.Debug("Connection " + c + " went down, bringing it up")
			errs = append(errs, b.connAction(ctx, c, "up"))
		case strings.HasSuffix(strings.TrimRight(c, "0123456789"), "-in-"):
			b.log.Debug("Adding ipsec connection " + c)
			errs = append(errs, b.connAction(ctx, c, "add"))
		default:
			b.log.Debug("Starting ipsec connection " + c)
			errs = append(errs, b.connAction(ctx, c, "start"))
		}
	}
	return errors.Join(errs...)
}
