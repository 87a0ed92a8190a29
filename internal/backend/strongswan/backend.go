// The Backend: its configuration, the state it keeps per tunnel, and its
// lifecycle (New, Close). Connecting to charon is in session.go; each
// pipeline stage (ensure, initiate, remove, status, report) has its file.

package strongswan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/strongswan/govici/vici"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/creds"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// DefaultViciSocket is where charon listens by default.
const DefaultViciSocket = "unix:///var/run/charon.vici"

// Config configures a Backend. Zero values take the defaults.
type Config struct {
	// ViciSocket is charon's VICI socket, "unix:///path" or a plain path.
	ViciSocket string
	// Clock tells the time and runs the retry timers; defaults to
	// clock.Real{}.
	Clock clock.Clock
	// CallTimeout bounds one VICI command (default 10s).
	CallTimeout time.Duration
	// PeerGrace is how long an "-in-" child is left for the peer to
	// initiate before this side initiates it too (default 15s).
	PeerGrace time.Duration
	// RetryInterval is the minimum time between two initiations of the
	// same child (default 15s).
	RetryInterval time.Duration
	// LogRetry is the reconnect interval of the log stream (default 2s).
	LogRetry time.Duration
	// Creds reads certificates and private keys; defaults to a
	// creds.Store of the backend's own, polled by the backend. When it is
	// also a creds.Watcher (a *creds.Store is), files renewed under the same
	// path are loaded into charon for the tunnels that use them, without
	// touching their connections' SAs.
	Creds CredLoader
}

// Backend drives charon. All methods are safe for concurrent use.
type Backend struct {
	cfg    Config
	log    *slog.Logger
	socket string // as configured, for messages
	path   string // unix socket path

	mu      sync.Mutex
	sess    *vici.Session
	epoch   uint64 // bumps on every new session
	connErr error  // last connection failure
	tunnels map[string]*tunnelState
	creds   map[string]string // credential key -> fingerprint loaded in epoch
	keyIDs  map[string]bool   // private keys we loaded (charon key ids)
	closed  bool

	logs    *logBook
	life    context.Context // ends at Close
	stop    context.CancelFunc
	wg      sync.WaitGroup // the credentials follower and poll
	logOnce sync.Once
	logDone chan struct{}
}

// tunnelState is what the backend remembers about a tunnel it was asked to
// protect.
type tunnelState struct {
	t           tunnel.Tunnel
	ike         ConnName
	children    []childSpec
	connFP      string
	loadedAt    time.Time // when this version was (re)loaded into charon
	initiated   map[ConnName]time.Time
	unsupported []string

	// credPaths are the credential files the tunnel's material was read
	// from; mat is the material last loaded into charon (nil for PSK).
	credPaths []string
	mat       *credMaterial
	// credErr says why renewed credential files are not loaded (the
	// previous ones stay in use); empty when the files are.
	credErr string
}

// New returns a Backend; it does not connect until first used.
func New(cfg Config, logger *slog.Logger) *Backend {
	if cfg.ViciSocket == "" {
		cfg.ViciSocket = DefaultViciSocket
	}
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 10 * time.Second
	}
	if cfg.PeerGrace <= 0 {
		cfg.PeerGrace = 15 * time.Second
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 15 * time.Second
	}
	if cfg.LogRetry <= 0 {
		cfg.LogRetry = 2 * time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var ownStore *creds.Store
	if cfg.Creds == nil {
		ownStore = creds.NewStore(creds.Options{Clock: cfg.Clock, Log: logger.With("backend", "strongswan")})
		cfg.Creds = ownStore
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Backend{
		cfg:     cfg,
		log:     logger.With("backend", "strongswan"),
		socket:  cfg.ViciSocket,
		path:    socketPath(cfg.ViciSocket),
		tunnels: map[string]*tunnelState{},
		creds:   map[string]string{},
		keyIDs:  map[string]bool{},
		logs:    newLogBook(cfg.Clock),
		life:    ctx,
		stop:    cancel,
		logDone: make(chan struct{}),
	}
	if w, ok := cfg.Creds.(creds.Watcher); ok {
		changes, unsubscribe := w.Subscribe()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer unsubscribe()
			b.followCreds(ctx, changes)
		}()
	}
	if ownStore != nil {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			_ = ownStore.Run(ctx)
		}()
	}
	return b
}

// socketPath turns "unix:///run/x.vici" or "/run/x.vici" into a path.
// Other URI schemes are kept as given and fail at dial with a clear error.
func socketPath(uri string) string {
	if p, ok := strings.CutPrefix(uri, "unix://"); ok {
		return p
	}
	return uri
}

// Name is the --ike-daemon value.
func (b *Backend) Name() string { return "strongswan" }

var _ backend.Backend = (*Backend)(nil)

// Close releases the backend. With cleanup it first unloads every
// ovnsec connection, pre-shared key and private key from charon.
// Certificates loaded with load-cert stay cached in charon (VICI cannot
// unload single certificates); they are public data.
func (b *Backend) Close(ctx context.Context, cleanup bool) error {
	b.mu.Lock()
	var errs []error
	if cleanup && !b.closed {
		names := map[string]bool{}
		for n := range b.tunnels {
			names[n] = true
		}
		if conns, err := b.listConns(ctx); err == nil {
			for _, c := range conns {
				if iface, _, ok := ownedConn(c); ok {
					names[iface] = true
				}
			}
		} else {
			errs = append(errs, err)
		}
		for _, n := range sortedKeys(names) {
			if err := b.remove(ctx, n); err != nil {
				errs = append(errs, err)
			}
		}
		for _, id := range sortedKeys(b.keyIDs) {
			if _, err := b.call(ctx, "unload-key", msgOf("id", id)); err != nil {
				errs = append(errs, fmt.Errorf("unload private key %s: %w", id, err))
			}
		}
	}
	b.closed = true
	if b.sess != nil {
		_ = b.sess.Close()
		b.sess = nil
	}
	b.mu.Unlock()
	b.stop()
	b.logOnce.Do(func() { close(b.logDone) }) // never started: nothing to wait for
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		<-b.logDone
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	return errors.Join(errs...)
}
