// Package reconcile drives one Backend from the desired tunnels: it ensures
// every CONFIGURED tunnel at its current version, removes what is no longer
// wanted, retries failures with per-tunnel back-off and re-checks everything
// on a fixed interval (15 s, as ovs-monitor-ipsec's RECONCILIATION_INTERVAL).
// It keeps the health of every tunnel so that unixctl can say why a tunnel
// is not up. It never writes to OVSDB.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// DefaultInterval is ovs-monitor-ipsec's reconciliation interval.
const DefaultInterval = 15 * time.Second

// Options tune a Reconciler. Zero values take the defaults.
type Options struct {
	// Interval between full re-checks (default 15 s).
	Interval time.Duration
	// MinBackoff and MaxBackoff bound the per-tunnel retry delay after a
	// failed Ensure (defaults 1 s and 60 s).
	MinBackoff, MaxBackoff time.Duration
	// Clock drives the pass interval and back-off (default clock.Real).
	Clock clock.Clock
	// CallTimeout bounds every backend call (default 30 s).
	CallTimeout time.Duration
}

func (o *Options) fill() {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Minute
	}
	o.Clock = clock.Or(o.Clock)
	if o.CallTimeout <= 0 {
		o.CallTimeout = 30 * time.Second
	}
}

// Reconciler owns the desired-versus-actual loop for one backend.
type Reconciler struct {
	be   backend.Backend
	log  *slog.Logger
	opts Options
	kick chan struct{}

	mu       sync.Mutex
	desired  map[string]tunnel.Tunnel // every tracked tunnel, INVALID included
	order    []string                 // tunnel names, sorted
	health   map[string]*health
	backErr  error // last error from backend.Status/Loaded
	guardErr error // last error installing the guard (backend.Guard)
	allUp    bool  // last pass had every configured tunnel up
	forceAll bool  // refresh requested: re-ensure everything once
	primed   bool  // SetDesired was called: passes may act
}

// health is what the reconciler knows about one tunnel's protection.
type health struct {
	applied   int           // version last ensured successfully, 0 if none
	appliedT  tunnel.Tunnel // the tunnel as last ensured successfully
	failures  int           // consecutive Ensure failures
	nextTry   time.Time     // earliest next Ensure after a failure
	lastErr   error         // last Ensure error
	warning   error         // last Ensure's PartialError, if any
	lastTry   time.Time     // time of the last Ensure call
	status    backend.TunnelStatus
	hasStatus bool
	wasUp     bool
	// guardErr says why the backend cannot drop this tunnel's packets
	// (backend.Guard refused it); nil when it can or is not asked to.
	guardErr error
}

// New returns a Reconciler for be.
func New(be backend.Backend, log *slog.Logger, opts Options) *Reconciler {
	opts.fill()
	return &Reconciler{
		be:      be,
		log:     log,
		opts:    opts,
		kick:    make(chan struct{}, 1),
		desired: map[string]tunnel.Tunnel{},
		health:  map[string]*health{},
	}
}

// SetDesired replaces the desired tunnel set (CONFIGURED and INVALID alike;
// only CONFIGURED ones are given to the backend) and wakes the loop.
func (r *Reconciler) SetDesired(tunnels []tunnel.Tunnel) {
	r.mu.Lock()
	r.desired = make(map[string]tunnel.Tunnel, len(tunnels))
	r.order = r.order[:0]
	for _, t := range tunnels {
		if t.State == tunnel.StateRemoved {
			continue
		}
		r.desired[t.Name] = t
		r.order = append(r.order, t.Name)
	}
	slices.Sort(r.order)
	r.primed = true
	r.mu.Unlock()
	r.wake()
}

// Refresh forces every configured tunnel to be ensured again on the next
// pass, whatever its health, and wakes the loop (unixctl "refresh").
func (r *Reconciler) Refresh() {
	r.mu.Lock()
	r.forceAll = true
	for _, h := range r.health {
		h.failures = 0
		h.nextTry = time.Time{}
	}
	r.mu.Unlock()
	r.wake()
}

func (r *Reconciler) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run loops until ctx ends: a pass on every wake-up and every Interval.
func (r *Reconciler) Run(ctx context.Context) error {
	t := r.opts.Clock.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		r.Pass(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.kick:
		case <-t.C():
		}
	}
}

// Pass runs one reconciliation pass. Exported for tests, which drive the
// reconciler with a fake clock instead of waiting for the ticker.
//
// Before the first SetDesired a pass does nothing: the backend keeps what
// it protects (after a restart, br-phy's rules of the previous run) rather
// than being told that nothing is wanted.
func (r *Reconciler) Pass(ctx context.Context) {
	now := r.opts.Clock.Now()

	// One view of the desired set for the whole pass.
	r.mu.Lock()
	if !r.primed {
		r.mu.Unlock()
		return
	}
	order := slices.Clone(r.order)
	desired := maps.Clone(r.desired)
	r.mu.Unlock()

	// Fail closed first: before anything about any tunnel can fail, every
	// tunnel that requires IPsec is guarded.
	r.guard(ctx, order, desired)

	statuses, serr := r.callStatus(ctx)
	loaded, lerr := r.callLoaded(ctx)

	r.mu.Lock()
	r.backErr = errors.Join(serr, lerr)
	force := r.forceAll
	r.forceAll = false
	type job struct {
		t      tunnel.Tunnel
		reason string
	}
	var ensure []job
	want := map[string]bool{}
	for _, name := range order {
		t := desired[name]
		h := r.healthOf(name)
		if st, ok := statuses[name]; ok {
			h.status, h.hasStatus = st, true
		} else {
			h.hasStatus = false
			h.status = backend.TunnelStatus{}
		}
		if t.State != tunnel.StateConfigured {
			// INVALID: its SAs, if any, are removed; with a backend.Guard
			// its packets stay blocked.
			continue
		}
		want[name] = true
		if serr != nil && h.isApplied(t) && !force {
			// The backend cannot tell us anything; do not hammer it with
			// Ensure calls for tunnels we already applied.
			if !now.Before(h.nextTry) {
				ensure = append(ensure, job{t, "backend unreachable"})
			}
			continue
		}
		switch {
		case force:
			ensure = append(ensure, job{t, "refresh"})
		case !h.isApplied(t):
			if now.Before(h.nextTry) {
				continue
			}
			ensure = append(ensure, job{t, "new"})
		case !h.hasStatus || h.status.Phase == backend.PhaseNotLoaded:
			if now.Before(h.nextTry) {
				continue
			}
			ensure = append(ensure, job{t, "not loaded"})
		case h.status.Phase == backend.PhaseDown:
			// Give a connection that went down one interval before bringing
			// it up again, as upstream's reconciliation does.
			if now.Sub(h.lastTry) >= r.opts.Interval && !now.Before(h.nextTry) {
				ensure = append(ensure, job{t, "down"})
			}
		}
	}
	var remove []string
	for name, h := range r.health {
		if !want[name] && h.applied != 0 {
			remove = append(remove, name)
		}
	}
	for _, name := range loaded {
		if !want[name] && !slices.Contains(remove, name) {
			remove = append(remove, name)
		}
	}
	slices.Sort(remove)
	r.mu.Unlock()

	for _, name := range remove {
		r.remove(ctx, name)
	}
	for _, j := range ensure {
		r.ensure(ctx, j.t, j.reason, now)
	}
	r.summarise(ctx)
}

// isApplied reports whether t, as it is now, is what the backend was last
// given. Versions alone are not enough: a tunnel removed and added again
// under the same name starts again at version 1 with another configuration.
func (h *health) isApplied(t tunnel.Tunnel) bool {
	return h.applied != 0 && h.applied == t.Version && h.appliedT.SameConfig(t)
}

func (r *Reconciler) healthOf(name string) *health {
	h := r.health[name]
	if h == nil {
		h = &health{}
		r.health[name] = h
	}
	return h
}

func (r *Reconciler) callStatus(ctx context.Context) (map[string]backend.TunnelStatus, error) {
	cctx, cancel := context.WithTimeout(ctx, r.opts.CallTimeout)
	defer cancel()
	st, err := r.be.Status(cctx)
	if err != nil {
		return nil, fmt.Errorf("%s backend status: %w", r.be.Name(), err)
	}
	return st, nil
}

func (r *Reconciler) callLoaded(ctx context.Context) ([]string, error) {
	cctx, cancel := context.WithTimeout(ctx, r.opts.CallTimeout)
	defer cancel()
	names, err := r.be.Loaded(cctx)
	if err != nil {
		return nil, fmt.Errorf("%s backend loaded connections: %w", r.be.Name(), err)
	}
	return names, nil
}

func (r *Reconciler) ensure(ctx context.Context, t tunnel.Tunnel, why string, now time.Time) {
	conns := t.Conns()
	switch why {
	case "new":
		for _, c := range conns {
			r.log.Info("Starting ipsec connection " + c)
		}
	case "down":
		for _, c := range conns {
			r.log.Info("Bringing up ipsec connection " + c)
		}
	case "not loaded", "backend unreachable":
		for _, c := range conns {
			r.log.Info("Adding ipsec connection " + c)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, r.opts.CallTimeout)
	err := r.be.Ensure(cctx, t)
	cancel()

	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.healthOf(t.Name)
	h.lastTry = now
	h.warning = nil
	if backend.IsPartial(err) {
		r.log.Warn("Tunnel configured with warnings", "tunnel", t.Name, "version", t.Version, "warning", err)
		h.warning = err
		err = nil
	}
	if err != nil {
		h.failures++
		h.lastErr = err
		h.nextTry = now.Add(r.backoff(h.failures))
		r.log.Warn("Failed to configure tunnel",
			"tunnel", t.Name, "version", t.Version, "attempt", h.failures,
			"retry_in", h.nextTry.Sub(now).String(), "err", err)
		return
	}
	if h.applied != 0 && h.applied != t.Version {
		old := t
		old.Version = h.applied
		for _, c := range old.Conns() {
			r.log.Info(c + " is outdated, removing")
		}
	}
	h.applied = t.Version
	h.appliedT = t
	h.failures = 0
	h.lastErr = nil
	h.nextTry = time.Time{}
}

// guard gives a backend.Guard every tunnel that requires IPsec: every
// tracked tunnel, CONFIGURED or INVALID (the table tracks only tunnels with
// IPsec options, or all of them where IPsec is required), except those
// without a remote_ip, which OVS does not create. Backends that cannot
// guard are left alone (strongSwan: an INVALID tunnel is removed, as
// ovs-monitor-ipsec does).
func (r *Reconciler) guard(ctx context.Context, order []string, desired map[string]tunnel.Tunnel) {
	g, ok := r.be.(backend.Guard)
	if !ok {
		return
	}
	ts := make([]tunnel.Tunnel, 0, len(order))
	for _, name := range order {
		if t := desired[name]; t.RemoteIP != "" {
			ts = append(ts, t)
		}
	}

	cctx, cancel := context.WithTimeout(ctx, r.opts.CallTimeout)
	refused, err := g.Guard(cctx, ts)
	cancel()

	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil && r.guardErr == nil {
		r.log.Error("Failed to install the drop rules of the tunnels that require IPsec; retrying on the next pass", "tunnels", len(ts), "err", err)
	}
	r.guardErr = err
	for _, t := range ts {
		h := r.healthOf(t.Name)
		gerr := refused[t.Name]
		if gerr != nil && (h.guardErr == nil || h.guardErr.Error() != gerr.Error()) {
			r.log.Error("Tunnel "+t.Name+" requires IPsec but its packets cannot be dropped", "err", gerr)
		}
		h.guardErr = gerr
	}
}

func (r *Reconciler) remove(ctx context.Context, name string) {
	cctx, cancel := context.WithTimeout(ctx, r.opts.CallTimeout)
	err := r.be.Remove(cctx, name)
	cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		h := r.healthOf(name)
		h.lastErr = err
		r.log.Warn("Failed to remove tunnel", "tunnel", name, "err", err)
		return
	}
	r.log.Info("Removed ipsec connections of tunnel " + name)
	if _, ok := r.desired[name]; ok {
		// Still tracked (INVALID): keep what the guard said of it.
		h := r.healthOf(name)
		h.applied, h.appliedT, h.lastErr, h.warning = 0, tunnel.Tunnel{}, nil, nil
		return
	}
	delete(r.health, name)
}

// backoff is MinBackoff doubled per consecutive failure, capped.
func (r *Reconciler) backoff(failures int) time.Duration {
	d := r.opts.MinBackoff
	for i := 1; i < failures && d < r.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, r.opts.MaxBackoff)
}

// summarise refreshes statuses after the pass and logs transitions with the
// lines upstream tooling greps for.
func (r *Reconciler) summarise(ctx context.Context) {
	statuses, err := r.callStatus(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.backErr = err
		r.allUp = false
		return
	}
	configured, up := 0, 0
	for _, name := range r.order {
		t := r.desired[name]
		h := r.healthOf(name)
		st, ok := statuses[name]
		h.status, h.hasStatus = st, ok
		if t.State != tunnel.StateConfigured {
			continue
		}
		configured++
		isUp := ok && st.Phase == backend.PhaseUp && st.Version == t.Version
		if isUp {
			up++
		} else if h.wasUp {
			for _, c := range t.Conns() {
				r.log.Info(fmt.Sprintf("Connection %s went down, bringing it up", c),
					"reason", st.Reason)
			}
		}
		h.wasUp = isUp
	}
	all := configured > 0 && up == configured
	if all && !r.allUp {
		r.log.Info(fmt.Sprintf("Connections for all(%d) configured tunnels are Up.", configured))
	}
	r.allUp = all
}
