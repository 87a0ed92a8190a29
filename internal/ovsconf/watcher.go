// Watch stage: keeps a libovsdb monitor on the local Open_vSwitch database
// alive across ovsdb-server restarts and publishes a tunnel.Snapshot whenever the
// columns that IPsec cares about change.

package ovsconf

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/tunnel"

	"github.com/go-logr/logr"
	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/ovnsec/ovnsec/internal/ovsconf/vswitchd"
)

// Defaults for the Options.
const (
	DefaultMinBackoff     = 100 * time.Millisecond
	DefaultMaxBackoff     = 5 * time.Second
	DefaultCoalesce       = 20 * time.Millisecond
	DefaultProbeInterval  = 5 * time.Second
	DefaultConnectTimeout = 5 * time.Second
)

// Option configures a Watcher.
type Option func(*Watcher)

// WithClock replaces the real clock (tests).
func WithClock(c clock.Clock) Option { return func(w *Watcher) { w.clock = c } }

// WithBackoff sets the first and the largest delay between reconnection
// attempts; the delay doubles after every failed attempt.
func WithBackoff(minDelay, maxDelay time.Duration) Option {
	return func(w *Watcher) { w.backoff = backoff{min: minDelay, max: maxDelay} }
}

// WithCoalesce sets how long the Watcher waits after the first change of a
// burst before it reads the cache and publishes one tunnel.Snapshot for the whole
// burst. Zero publishes as soon as the change is seen.
func WithCoalesce(d time.Duration) Option { return func(w *Watcher) { w.coalesce = d } }

// WithProbeInterval sets how often an idle connection is checked with an
// OVSDB echo; a probe that gets no answer within the interval drops the
// connection and starts a reconnect. Zero disables probing (a dead unix
// socket is still noticed at once; a silently dead TCP peer is not).
func WithProbeInterval(d time.Duration) Option { return func(w *Watcher) { w.probe = d } }

// WithConnectTimeout bounds one connection attempt (dial, schema check and
// initial monitor reply).
func WithConnectTimeout(d time.Duration) Option { return func(w *Watcher) { w.connectTimeout = d } }

// WithTLSConfig sets the TLS configuration used for ssl: remotes.
func WithTLSConfig(c *tls.Config) Option { return func(w *Watcher) { w.tls = c } }

// Watcher follows the Open_vSwitch database and publishes Snapshots.
//
// It monitors only Open_vSwitch:{other_config,external_ids} and
// Interface:{name,type,options,ofport,cfm_fault}. The monitor is column
// limited (client.WithTable with field pointers), so ovsdb-server neither
// sends the busy statistics/status columns nor wakes us up for them; every
// update that arrives is relevant. Rows are not filtered by condition:
// ovs-monitor-ipsec needs every tunnel type and the Open_vSwitch table has
// a single row.
//
// Each connection uses a fresh libovsdb client: the Watcher owns the
// reconnect loop (exponential back-off, DefaultMaxBackoff cap) instead of
// libovsdb's WithReconnect, so that it can publish a full snapshot after
// every reconnect, log each transition, and never die; a fresh client also
// starts from an empty cache, so rows deleted while disconnected cannot
// survive.
//
// libovsdb v0.8.1 quirks this code works around:
//   - With WithReconnect, a back-off that gives up makes libovsdb panic in
//     its own goroutine; hence the own loop.
//   - DisconnectNotify is an unbuffered channel written with a non-blocking
//     send, and Connected() is not cleared when the server closes the
//     connection. A notification that nobody is receiving at that instant
//     is lost, so a goroutine waits on it from before Connect.
//   - Cache() is nil until Connect succeeded, so the event handler is added
//     between Connect and Monitor.
//   - Cache event handlers run on libovsdb's event goroutine after the cache
//     was updated and must not block; ours only sets a flag. Events are
//     dropped when 65536 are queued, but then later queued events still
//     follow the change, so no change can go unnoticed.
//   - The model is validated against the server schema at connect: every
//     column in the generated structs must exist on the server. An
//     ovsdb-server with an older vswitch schema than the generated one
//     (8.3.1) is refused with a "validation error" that is logged and
//     retried.
//   - Remotes it cannot parse silently become libovsdb's default socket;
//     parseRemote rejects or normalises them first.
//   - libovsdb logs through logr; it is bridged to the slog logger, where
//     its V(n) levels become slog level -n (mostly below Debug).
//
// Snapshots of the two tables are read one after the other; a transaction
// that lands between the two reads can produce one torn snapshot, which is
// always followed by a corrected one because the change queues a cache event.
type Watcher struct {
	remote         string
	log            *slog.Logger
	clock          clock.Clock
	backoff        backoff
	coalesce       time.Duration
	probe          time.Duration
	connectTimeout time.Duration
	tls            *tls.Config

	updates   chan tunnel.Snapshot
	metrics   *clientMetrics
	started   atomic.Bool
	connected atomic.Bool
	current   atomic.Pointer[tunnel.Snapshot]

	// Owned by the Run goroutine.
	seq  uint64
	last *tunnel.Snapshot
}

// New returns a Watcher for remote (unix:PATH, tcp:HOST:PORT or
// ssl:HOST:PORT). It does not connect; call Run. A nil logger discards logs.
func New(remote string, logger *slog.Logger, opts ...Option) *Watcher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{
		remote:         remote,
		log:            logger,
		clock:          clock.Real{},
		backoff:        backoff{min: DefaultMinBackoff, max: DefaultMaxBackoff},
		coalesce:       DefaultCoalesce,
		probe:          DefaultProbeInterval,
		connectTimeout: DefaultConnectTimeout,
		updates:        make(chan tunnel.Snapshot, 1),
		metrics:        newClientMetrics(),
	}
	for _, o := range opts {
		o(w)
	}
	return w
}

// Updates delivers Snapshots. At most one is pending: when the consumer is
// slow, an unread tunnel.Snapshot is replaced by a newer one, so the consumer
// always receives the latest state (Seq then skips the replaced numbers).
// The channel is closed when Run returns.
func (w *Watcher) Updates() <-chan tunnel.Snapshot { return w.updates }

// Connected reports whether the monitor is established. It turns true just
// before the first snapshot of a connection is published and false once
// the loss of the connection is noticed.
func (w *Watcher) Connected() bool { return w.connected.Load() }

// Current returns the most recently published tunnel.Snapshot, if any. It stays
// available while disconnected (it is the last known state).
func (w *Watcher) Current() (tunnel.Snapshot, bool) {
	p := w.current.Load()
	if p == nil {
		return tunnel.Snapshot{}, false
	}
	return *p, true
}

// errLost reports that the server closed the connection.
var errLost = errors.New("connection closed by ovsdb-server")

// Run connects, monitors and publishes until ctx is cancelled, reconnecting
// with exponential back-off whenever the connection fails or drops. It
// returns ctx.Err() after cancellation, or an error at once if the remote is
// malformed or Run is called twice.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("ovsconf: Watcher.Run called more than once")
	}
	defer close(w.updates)
	endpoint, err := parseRemote(w.remote, w.tls != nil)
	if err != nil {
		return err
	}
	bo := w.backoff
	failures := 0
	for {
		established, err := w.session(ctx, endpoint)
		w.connected.Store(false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if established {
			// A session that got as far as a snapshot restarts the back-off.
			bo.reset()
			failures = 0
		} else {
			failures++
		}
		delay := bo.next()
		switch {
		case established:
			w.log.Warn("ovsdb connection lost, reconnecting", "remote", w.remote, "retry_in", delay, "err", err)
		default:
			// Log the first failure and then about once a minute at the
			// back-off cap; the rest at debug level.
			level := slog.LevelDebug
			if failures == 1 || failures%12 == 0 {
				level = slog.LevelWarn
			}
			w.log.Log(ctx, level, "ovsdb connect failed", "remote", w.remote, "attempt", failures, "retry_in", delay, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.after(delay):
		}
	}
}

// clientModel is the part of the Open_vSwitch schema the Watcher uses.
func clientModel() (model.ClientDBModel, error) {
	return model.NewClientDBModel(vswitchd.OpenvSwitchTable, map[string]model.Model{
		vswitchd.OpenvSwitchTable: &vswitchd.OpenvSwitch{},
		vswitchd.InterfaceTable:   &vswitchd.Interface{},
	})
}

// session runs one connection. established reports whether the monitor was
// set up (and a snapshot published); err says why the session ended.
func (w *Watcher) session(ctx context.Context, endpoint string) (established bool, err error) {
	dbModel, err := clientModel()
	if err != nil {
		return false, fmt.Errorf("build Open_vSwitch client model: %w", err)
	}
	lg := logr.FromSlogHandler(w.log.Handler()).WithValues("component", "libovsdb")
	// Each client's metrics go to a registry of their own (see Metrics);
	// deferred first, so that the session ends after the client closed.
	reg := w.metrics.newSession()
	defer w.metrics.endSession(reg)
	copts := []client.Option{client.WithEndpoint(endpoint), client.WithLogger(&lg), client.WithMetricsRegistry(reg)}
	if w.tls != nil {
		copts = append(copts, client.WithTLSConfig(w.tls))
	}
	cl, err := client.NewOVSDBClient(dbModel, copts...)
	if err != nil {
		return false, fmt.Errorf("create ovsdb client for %s: %w", w.remote, err)
	}

	// Wait for the disconnect notification from before Connect (see the
	// quirks in the Watcher doc).
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

	cctx, cancel := context.WithTimeout(ctx, w.connectTimeout)
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

	ovs := &vswitchd.OpenvSwitch{}
	iface := &vswitchd.Interface{}
	mon := cl.NewMonitor(
		client.WithTable(ovs, &ovs.OtherConfig, &ovs.ExternalIDs),
		client.WithTable(iface, &iface.Name, &iface.Type, &iface.Options, &iface.Ofport, &iface.CFMFault),
	)
	if _, err := cl.Monitor(cctx, mon); err != nil {
		return false, fmt.Errorf("monitor Open_vSwitch table columns: %w", err)
	}
	cancel()

	read := func() (tunnel.Snapshot, error) {
		ovsRows, ifaceRows := tc.Table(vswitchd.OpenvSwitchTable), tc.Table(vswitchd.InterfaceTable)
		if ovsRows == nil || ifaceRows == nil {
			return tunnel.Snapshot{}, errors.New("read cache: monitored table missing")
		}
		return snapshotFromRows(ovsRows.RowsShallow(), ifaceRows.RowsShallow()), nil
	}

	// The cache now holds the complete initial state: publish it even when
	// it equals the last snapshot, so that consumers resynchronise.
	s, err := read()
	if err != nil {
		return false, err
	}
	// Connected before publishing: a consumer holding this snapshot must
	// not see Connected() == false for a live connection.
	w.connected.Store(true)
	w.publish(s, true)
	w.log.Info("ovsdb monitor established", "remote", w.remote, "seq", w.seq, "interfaces", len(s.Interfaces))

	var probe <-chan time.Time
	if w.probe > 0 {
		probe = w.after(w.probe)
	}
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-lost:
			return true, errLost
		case <-probe:
			pctx, pcancel := context.WithTimeout(ctx, w.probe)
			err := cl.Echo(pctx)
			pcancel()
			if err != nil {
				return true, fmt.Errorf("no echo reply within %v (server hung?): %w", w.probe, err)
			}
			probe = w.after(w.probe)
		case <-dirty:
			if w.coalesce > 0 {
				select {
				case <-ctx.Done():
					return true, ctx.Err()
				case <-lost:
					return true, errLost
				case <-w.after(w.coalesce):
				}
				// Changes during the wait are part of this burst.
				select {
				case <-dirty:
				default:
				}
			}
			s, err := read()
			if err != nil {
				return true, err
			}
			w.publish(s, false)
		}
	}
}

// publish stamps s with the next Seq and hands it to the consumer, replacing
// an unread one. Unless force is set, a snapshot equal to the last one is
// dropped. Only the Run goroutine calls publish, so after draining the
// buffer the send cannot block.
func (w *Watcher) publish(s tunnel.Snapshot, force bool) {
	if !force && w.last != nil && sameContent(*w.last, s) {
		return
	}
	w.seq++
	s.Seq = w.seq
	w.last = &s
	w.current.Store(&s)
	select {
	case w.updates <- s:
		return
	default:
	}
	select {
	case old := <-w.updates:
		w.log.Debug("ovsdb snapshot replaced before it was read", "dropped_seq", old.Seq, "seq", s.Seq)
	default:
	}
	w.updates <- s
}

// backoff yields exponentially growing delays between min and max.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	switch {
	case b.min <= 0:
		b.cur = 0
	case b.cur == 0:
		b.cur = b.min
	default:
		b.cur *= 2
	}
	if b.max > 0 && b.cur > b.max {
		b.cur = b.max
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

// after delivers the time on the returned channel once d has passed on
// the watcher's clock.
func (w *Watcher) after(d time.Duration) <-chan time.Time {
	c := make(chan time.Time, 1)
	w.clock.AfterFunc(d, func() { c <- w.clock.Now() })
	return c
}
