// Package ovnsb follows OVN's Southbound SB_Global ipsec column, read-only,
// so that ovnsecd knows that IPsec is switched on for the whole OVN
// deployment as soon as ovn-controller does, not only once ovn-controller
// has written IPsec options into each tunnel port; and Policy turns what is
// known of it into whether IPsec is required on every tunnel port.
//
// The Follower monitors exactly one column (SB_Global:ipsec) of a remote
// database: it never reads or writes anything else of the Southbound DB.
package ovnsb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock"

	"github.com/go-logr/logr"
	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/ovnsec/ovnsec/internal/ovnsb/sbdb"
)

// Value is what is known of SB_Global.ipsec.
type Value int8

const (
	// Unknown: no Southbound remote, not connected (yet or any more), or
	// no SB_Global row (ovn-northd has not run).
	Unknown Value = iota
	// Off: SB_Global ipsec=false.
	Off
	// On: SB_Global ipsec=true.
	On
)

func (v Value) String() string {
	switch v {
	case Off:
		return "false"
	case On:
		return "true"
	}
	return "unknown"
}

// State is one report of the Follower.
type State struct {
	Value Value
	// Remote is the endpoint the value was read from, or the configured
	// remote while Unknown ("" when none is configured).
	Remote string
	// Why says why the value is Unknown ("" when it is known).
	Why string
}

// Defaults for the Options.
const (
	DefaultMinBackoff     = 100 * time.Millisecond
	DefaultMaxBackoff     = 8 * time.Second
	DefaultProbeInterval  = 5 * time.Second
	DefaultConnectTimeout = 5 * time.Second
)

// Option configures a Follower.
type Option func(*Follower)

// WithClock replaces the real clock (tests).
func WithClock(c clock.Clock) Option { return func(f *Follower) { f.clock = c } }

// WithBackoff sets the first and the largest delay between connection
// attempts; the delay doubles after every round of failed attempts.
func WithBackoff(minDelay, maxDelay time.Duration) Option {
	return func(f *Follower) { f.minBackoff, f.maxBackoff = minDelay, maxDelay }
}

// WithProbeInterval sets how often an idle connection is checked with an
// OVSDB echo (ovn-controller's ovn-remote-probe-interval is 5 s too); zero
// disables probing.
func WithProbeInterval(d time.Duration) Option { return func(f *Follower) { f.probe = d } }

// WithConnectTimeout bounds one connection attempt (dial, schema, monitor).
func WithConnectTimeout(d time.Duration) Option { return func(f *Follower) { f.connectTimeout = d } }

// WithRunDir sets the directory a relative unix: remote is resolved in.
func WithRunDir(dir string) Option { return func(f *Follower) { f.rundir = dir } }

// Follower keeps a monitor of SB_Global:ipsec on the current Southbound
// remote and reports every change of what is known of it.
//
// The remote is given with SetRemote and may change at any time (ovnsecd
// passes Open_vSwitch external_ids:ovn-remote from every snapshot); a new
// remote ends the current connection. With several remotes (a clustered
// Southbound), they are tried in turn, as ovn-controller does, any member
// will do (the value is read, never written), and a lost connection moves
// on to the next one.
//
// ssl: remotes are not supported yet: they are skipped with an error in
// State.Why, so the value stays Unknown unless a tcp: or unix: remote is
// also listed (see Policy for what Unknown means).
//
// libovsdb v0.8.1 is driven the way internal/ovsconf's Watcher drives it,
// for the same reasons: one fresh client per connection and an own
// reconnect loop, a goroutine waiting on DisconnectNotify from before
// Connect, the cache event handler added between Connect and Monitor, and a
// monitor limited to the one column (client.WithTable with a field
// pointer). Only SB_Global is in the client model, so only its columns are
// checked against the server's schema.
type Follower struct {
	log            *slog.Logger
	clock          clock.Clock
	minBackoff     time.Duration
	maxBackoff     time.Duration
	probe          time.Duration
	connectTimeout time.Duration
	rundir         string

	started atomic.Bool
	updates chan State
	kick    chan struct{}

	mu     sync.Mutex
	remote string // latest SetRemote value

	// Owned by the Run goroutine.
	last      State
	published bool
}

// New returns a Follower without a remote. It does not connect; call Run.
// A nil logger discards logs.
func New(logger *slog.Logger, opts ...Option) *Follower {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &Follower{
		log:            logger,
		clock:          clock.Real{},
		minBackoff:     DefaultMinBackoff,
		maxBackoff:     DefaultMaxBackoff,
		probe:          DefaultProbeInterval,
		connectTimeout: DefaultConnectTimeout,
		rundir:         "/var/run/openvswitch",
		updates:        make(chan State, 1),
		kick:           make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(f)
	}
	return f
}

// SetRemote sets the Southbound remote (an ovn-remote value; "" for none).
// It never blocks; setting the current remote again does nothing.
func (f *Follower) SetRemote(remote string) {
	f.mu.Lock()
	changed := remote != f.remote
	f.remote = remote
	f.mu.Unlock()
	if changed {
		select {
		case f.kick <- struct{}{}:
		default:
		}
	}
}

func (f *Follower) currentRemote() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.remote
}

// Updates delivers a State whenever it changes; the first one once Run
// starts. At most one is pending: an unread State is replaced by a newer
// one, so the reader always gets the latest. Closed when Run returns.
func (f *Follower) Updates() <-chan State { return f.updates }

// errRemoteChanged ends a session whose remote was replaced.
var errRemoteChanged = errors.New("southbound remote changed")

// errLost reports that the server closed the connection.
var errLost = errors.New("connection closed by the server")

// Run follows the remote until ctx ends, then returns ctx.Err(). It returns
// an error at once only when called twice.
func (f *Follower) Run(ctx context.Context) error {
	if !f.started.CompareAndSwap(false, true) {
		return errors.New("ovnsb: Follower.Run called more than once")
	}
	defer close(f.updates)
	for {
		// A change from now on kicks again; one before was read here.
		select {
		case <-f.kick:
		default:
		}
		remote := f.currentRemote()
		if remote == "" {
			f.publish(State{Why: "no OVN Southbound remote (Open_vSwitch external_ids:ovn-remote is not set)"})
			if !f.waitKick(ctx, nil) {
				return ctx.Err()
			}
			continue
		}
		if err := f.follow(ctx, remote); errors.Is(err, errRemoteChanged) {
			f.log.Info("OVN Southbound remote changed", "remote", f.currentRemote())
			continue
		}
		return ctx.Err()
	}
}

// waitKick waits for a remote change (true), the timer (true), or the end
// of ctx (false).
func (f *Follower) waitKick(ctx context.Context, timer <-chan time.Time) bool {
	select {
	case <-ctx.Done():
		return false
	case <-f.kick:
		return true
	case <-timer:
		return true
	}
}

// follow connects to remote's endpoints in turn until ctx ends (ctx.Err())
// or the remote changes (errRemoteChanged).
func (f *Follower) follow(ctx context.Context, remote string) error {
	eps, perr := parseRemotes(remote, f.rundir)
	var usable []Endpoint
	var skipped []string
	for _, ep := range eps {
		if ep.Method == "ssl" {
			skipped = append(skipped, ep.Dial)
			continue
		}
		usable = append(usable, ep)
	}
	var problems []string
	if perr != nil {
		problems = append(problems, perr.Error())
	}
	if len(skipped) > 0 {
		problems = append(problems, fmt.Sprintf("ssl: Southbound remotes are not supported by ovnsecd yet (%v); give it a tcp: or unix: remote with --ovn-sb, or use --require-ipsec", skipped))
	}
	if len(problems) > 0 {
		f.log.Warn("OVN Southbound remote not fully usable", "remote", remote, "problems", problems)
	}
	if len(usable) == 0 {
		why := "no usable OVN Southbound remote in " + fmt.Sprintf("%q", remote)
		if len(problems) > 0 {
			why += ": " + problems[0]
		}
		f.publish(State{Remote: remote, Why: why})
		if !f.waitKick(ctx, nil) {
			return ctx.Err()
		}
		return errRemoteChanged
	}

	delay := time.Duration(0)
	failures := 0
	for i := 0; ; i = (i + 1) % len(usable) {
		ep := usable[i]
		established, err := f.session(ctx, remote, ep)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, errRemoteChanged):
			return err
		}
		if established {
			delay, failures = 0, 0
			f.log.Warn("OVN Southbound connection lost; SB_Global ipsec is unknown until it is back", "remote", ep.Dial, "err", err)
		} else {
			failures++
			level := slog.LevelDebug
			if failures == 1 || failures%(12*len(usable)) == 0 {
				level = slog.LevelWarn
			}
			f.log.Log(ctx, level, "OVN Southbound connect failed", "remote", ep.Dial, "attempt", failures, "err", err)
		}
		f.publish(State{Remote: remote, Why: fmt.Sprintf("not connected to the OVN Southbound database (%s: %v)", ep.Dial, err)})
		// Every endpoint is tried once per round; only then back off.
		if i == len(usable)-1 || established {
			delay = f.nextDelay(delay)
			if !f.waitKick(ctx, f.after(delay)) {
				return ctx.Err()
			}
			if f.currentRemote() != remote {
				return errRemoteChanged
			}
		}
	}
}

// nextDelay doubles d between the minimum and the maximum back-off.
func (f *Follower) nextDelay(d time.Duration) time.Duration {
	switch {
	case f.minBackoff <= 0:
		return 0
	case d == 0:
		d = f.minBackoff
	default:
		d *= 2
	}
	if f.maxBackoff > 0 && d > f.maxBackoff {
		d = f.maxBackoff
	}
	return d
}

// sbGlobalModel is the part of OVN_Southbound the Follower uses.
func sbGlobalModel() (model.ClientDBModel, error) {
	return model.NewClientDBModel("OVN_Southbound", map[string]model.Model{
		sbdb.SBGlobalTable: &sbdb.SBGlobal{},
	})
}

// session runs one connection to ep, one of remote's endpoints, until it
// fails or remote is replaced. established reports whether the monitor was
// set up (and a value published); err says why it ended.
func (f *Follower) session(ctx context.Context, remote string, ep Endpoint) (established bool, err error) {
	dbModel, err := sbGlobalModel()
	if err != nil {
		return false, fmt.Errorf("build OVN_Southbound client model: %w", err)
	}
	lg := logr.FromSlogHandler(f.log.Handler()).WithValues("component", "libovsdb")
	cl, err := client.NewOVSDBClient(dbModel, client.WithEndpoint(ep.Dial), client.WithLogger(&lg))
	if err != nil {
		return false, fmt.Errorf("create ovsdb client for %s: %w", ep.Dial, err)
	}
	lost := make(chan struct{})
	done := make(chan struct{})
	go func() {
		select {
		case <-cl.DisconnectNotify():
			close(lost)
		case <-done:
		}
	}()
	defer func() {
		cl.Close()
		close(done)
	}()

	cctx, cancel := context.WithTimeout(ctx, f.connectTimeout)
	defer cancel()
	if err := cl.Connect(cctx); err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	tc := cl.Cache()
	if tc == nil {
		return false, errors.New("connect: libovsdb returned no cache")
	}
	dirty := make(chan struct{}, 1)
	mark := func() {
		select {
		case dirty <- struct{}{}:
		default:
		}
	}
	tc.AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc:    func(string, model.Model) { mark() },
		UpdateFunc: func(string, model.Model, model.Model) { mark() },
		DeleteFunc: func(string, model.Model) { mark() },
	})
	g := &sbdb.SBGlobal{}
	if _, err := cl.Monitor(cctx, cl.NewMonitor(client.WithTable(g, &g.Ipsec))); err != nil {
		return false, fmt.Errorf("monitor SB_Global ipsec: %w", err)
	}
	cancel()

	read := func() State {
		rows := tc.Table(sbdb.SBGlobalTable)
		if rows == nil {
			return State{Remote: ep.Dial, Why: "SB_Global is not in the monitor's cache"}
		}
		return valueOf(rows.RowsShallow(), ep.Dial)
	}
	s := read()
	f.log.Info("OVN Southbound monitor established", "remote", ep.Dial, "sb_global_ipsec", s.Value)
	f.publish(s)

	var probe <-chan time.Time
	if f.probe > 0 {
		probe = f.after(f.probe)
	}
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-lost:
			return true, errLost
		case <-f.kick:
			if f.currentRemote() != remote {
				return true, errRemoteChanged
			}
		case <-probe:
			pctx, pcancel := context.WithTimeout(ctx, f.probe)
			err := cl.Echo(pctx)
			pcancel()
			if err != nil {
				return true, fmt.Errorf("no echo reply within %v (server hung or unreachable?): %w", f.probe, err)
			}
			probe = f.after(f.probe)
		case <-dirty:
			f.publish(read())
		}
	}
}

// valueOf reads SB_Global's ipsec from the cached rows. The schema allows
// one row; should there be more, any row with ipsec=true makes it On (fail
// closed). No row (ovn-northd has not run yet) is Unknown.
func valueOf(rows map[string]model.Model, remote string) State {
	n := 0
	v := Off
	for _, m := range rows {
		r, ok := m.(*sbdb.SBGlobal)
		if !ok || r == nil {
			continue
		}
		n++
		if r.Ipsec {
			v = On
		}
	}
	if n == 0 {
		return State{Remote: remote, Why: "SB_Global has no row (has ovn-northd run?)"}
	}
	return State{Value: v, Remote: remote}
}

// publish hands s to the reader unless it equals the last State, replacing
// an unread one. Only the Run goroutine calls it.
func (f *Follower) publish(s State) {
	if f.published && s == f.last {
		return
	}
	if !f.published || s.Value != f.last.Value {
		f.log.Info("OVN SB_Global ipsec", "value", s.Value, "remote", s.Remote, "why", s.Why)
	}
	f.last, f.published = s, true
	select {
	case f.updates <- s:
		return
	default:
	}
	select {
	case <-f.updates:
	default:
	}
	f.updates <- s
}

// after delivers the time on the returned channel once d has passed on
// the follower's clock.
func (f *Follower) after(d time.Duration) <-chan time.Time {
	c := make(chan time.Time, 1)
	f.clock.AfterFunc(d, func() { c <- f.clock.Now() })
	return c
}
