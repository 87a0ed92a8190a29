// The Backend: its configuration, the state it keeps per tunnel, and its
// lifecycle (New, Close). Each pipeline stage has its file: the files
// (files.go), NSS (nss.go), pluto's connections (refresh.go), status
// (status.go) and the unixctl reports (report.go).

package libreswan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/creds"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// Defaults of ovs-monitor-ipsec's libreswan flags.
const (
	DefaultIPsec   = "/usr/sbin/ipsec"
	DefaultConf    = "/etc/ipsec.conf"
	DefaultSecrets = "/etc/ipsec.secrets"
	DefaultCtl     = "/run/pluto/pluto.ctl"
	// DefaultInterval is upstream's RECONCILIATION_INTERVAL.
	DefaultInterval = 15 * time.Second
)

// Config configures a Backend. Zero values take the defaults.
type Config struct {
	IPsec    string // the ipsec command (default /usr/sbin/ipsec)
	Conf     string // --ipsec-conf: the file ovnsecd owns and rewrites
	RootConf string // --root-ipsec-conf: what commands read (default Conf)
	Secrets  string // --ipsec-secrets
	// NSSDir is --ipsec-d (default /var/lib/ipsec/nss for libreswan 4
	// and later, /etc/ipsec.d before).
	NSSDir string
	Ctl    string // --ipsec-ctl: pluto's control socket
	// DefaultCrypto leaves ike=, esp= and ikev2= out
	// (--use-default-crypto).
	DefaultCrypto bool
	// Restart: at start, purge ovs_cert* from NSS, empty the files and
	// delete the connections the previous run configured (without
	// --no-restart-ike-daemon).
	Restart bool
	// CommandTimeout bounds every command (--command-timeout, 120 s).
	CommandTimeout time.Duration
	// Interval is the reconciliation interval (15 s).
	Interval time.Duration
	// PlutoLog is pluto's log file, followed for the reasons `ipsec
	// status` does not give ("" to not follow one).
	PlutoLog string
	// Creds reads certificates and keys (default: a store of its own).
	Creds creds.Source
	Clock clock.Clock
	// Runner runs the commands (default ExecRunner with CommandTimeout).
	Runner Runner
}

// Backend drives pluto. All methods are safe for concurrent use.
type Backend struct {
	cfg     Config
	log     *slog.Logger
	version Version
	layout  Layout
	nss     nssDB

	// ops serialises what changes pluto, the files or NSS.
	ops sync.Mutex

	mu      sync.Mutex
	tunnels map[string]*tunnelState
	// owned are the connection names this backend or a previous run wrote
	// into --ipsec-conf: the only conns it ever deletes, besides those of
	// the tunnels it holds.
	owned map[string]bool
	// mark is the ipsec_skb_mark whose drop conns are loaded ("" none);
	// markErr says why they are not.
	mark, markErr string
	// local is the NSS nickname of the local certificate imported;
	// caLoaded whether ovs_cert_cacert was.
	local    string
	caLoaded bool
	logs     *logBook
	closed   bool

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// tunnelState is what the backend keeps of a tunnel it protects.
type tunnelState struct {
	t       tunnel.Tunnel
	refused []string // options left out, each with why
	// added and started are upstream's not-active trackers: when a conn
	// was added (waiting for the peer) or started/brought up.
	added, started map[string]time.Time
	// lastErr is the last failure configuring the tunnel's conns.
	lastErr string
}

func newTunnelState(t tunnel.Tunnel) *tunnelState {
	return &tunnelState{t: t, added: map[string]time.Time{}, started: map[string]time.Time{}}
}

// New reads the libreswan version from `ipsec --version`, and with
// cfg.Restart removes what a previous run left. It starts the 15-second
// reconciliation.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Backend, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.IPsec == "" {
		cfg.IPsec = DefaultIPsec
	}
	if cfg.Conf == "" {
		cfg.Conf = DefaultConf
	}
	if cfg.RootConf == "" {
		cfg.RootConf = cfg.Conf
	}
	if cfg.Secrets == "" {
		cfg.Secrets = DefaultSecrets
	}
	if cfg.Ctl == "" {
		cfg.Ctl = DefaultCtl
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = DefaultCommandTimeout
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.Runner == nil {
		cfg.Runner = ExecRunner{Timeout: cfg.CommandTimeout}
	}
	var ownStore *creds.Store
	if cfg.Creds == nil {
		ownStore = creds.NewStore(creds.Options{Clock: cfg.Clock, Log: log})
		cfg.Creds = ownStore
	}

	argv := []string{cfg.IPsec, "--version"}
	r, err := cfg.Runner.Run(ctx, argv)
	if err != nil {
		return nil, fmt.Errorf("libreswan: run %s --version: %w (install libreswan, or point ovnsecd at its ipsec command)", cfg.IPsec, err)
	}
	if r.Code != 0 {
		return nil, fmt.Errorf("libreswan: %w", commandError("get Libreswan's version", argv, r))
	}
	v, err := ParseVersion(r.Stdout)
	if err != nil {
		return nil, fmt.Errorf("libreswan: %w", err)
	}
	if cfg.NSSDir == "" {
		cfg.NSSDir = v.DefaultNSSDir()
	}
	b := &Backend{
		cfg:     cfg,
		log:     log,
		version: v,
		layout:  Layout{DefaultConn: cfg.Conf == cfg.RootConf, DefaultCrypto: cfg.DefaultCrypto, Version: v},
		nss:     nssDB{dir: cfg.NSSDir, run: cfg.Runner, log: log},
		tunnels: map[string]*tunnelState{},
		owned:   map[string]bool{},
	}
	if cfg.PlutoLog != "" {
		b.logs = newLogBook(cfg.PlutoLog)
	}
	log.Info("using libreswan", "version", v.Full, "ipsec", cfg.IPsec, "conf", cfg.Conf, "root_conf", cfg.RootConf,
		"secrets", cfg.Secrets, "nss", b.nss.db(), "ctl", cfg.Ctl, "default_crypto", cfg.DefaultCrypto)
	// The conns a previous run wrote are ours to delete.
	if data, err := os.ReadFile(cfg.Conf); err == nil {
		for _, c := range confConns(string(data)) {
			b.owned[c] = true
		}
	}
	if cfg.Restart {
		b.restart(ctx)
	}
	lctx, cancel := context.WithCancel(context.Background())
	b.stop = cancel
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.loop(lctx)
	}()
	if ownStore != nil {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			_ = ownStore.Run(lctx)
		}()
	}
	return b, nil
}

// Name is the --ike-daemon value.
func (b *Backend) Name() string { return "libreswan" }

// Version is the libreswan release found at start.
func (b *Backend) Version() Version { return b.version }

var _ backend.Backend = (*Backend)(nil)

// restart is ovs-monitor-ipsec's start-up IKE daemon restart, without
// restarting pluto itself (it may serve others, and a restart flushes
// every SA): every ovs_cert* entry leaves NSS, the files are emptied and
// the conns the previous run wrote are deleted from pluto.
func (b *Backend) restart(ctx context.Context) {
	b.ops.Lock()
	defer b.ops.Unlock()
	for _, prefix := range []string{certKeyPrefix, certPrefix} {
		names, err := b.nss.list(ctx, prefix)
		if err != nil {
			b.log.Warn("cannot list the NSS database at start-up; stale certificates are replaced when used", "err", err)
			break
		}
		for _, n := range names {
			if err := b.nss.removeAll(ctx, n); err != nil {
				b.log.Warn("cannot remove a certificate from the NSS database", "nickname", n, "err", err)
			}
		}
	}
	if err := b.writeFiles(nil, ""); err != nil {
		b.log.Warn("cannot empty the libreswan configuration at start-up", "err", err)
	}
	if st, err := b.status(ctx); err == nil {
		for c := range st.Loaded {
			if b.owned[c] {
				b.deleteConn(ctx, c, "is left from an earlier run")
			}
		}
	}
	b.reread(ctx)
}

// Close stops the reconciliation. With cleanup it first deletes every conn
// it loaded, empties the files and removes its NSS entries; without, pluto
// keeps them (exit --no-cleanup, SIGTERM).
func (b *Backend) Close(ctx context.Context, cleanup bool) error {
	b.stop()
	b.wg.Wait()
	b.ops.Lock()
	defer b.ops.Unlock()
	b.mu.Lock()
	b.closed = true
	names := make([]string, 0, len(b.tunnels))
	for n := range b.tunnels {
		names = append(names, n)
	}
	b.mu.Unlock()
	if !cleanup {
		return nil
	}
	var errs []error
	for _, n := range names {
		if err := b.removeLocked(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	if st, err := b.status(ctx); err == nil {
		for c := range st.Loaded {
			if b.owned[c] || isShunt(c) {
				b.deleteConn(ctx, c, "is removed at exit")
			}
		}
	}
	for _, prefix := range []string{certKeyPrefix, certPrefix} {
		ns, err := b.nss.list(ctx, prefix)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, n := range ns {
			if err := b.nss.removeAll(ctx, n); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := b.writeFiles(nil, ""); err != nil {
		errs = append(errs, err)
	}
	b.reread(ctx)
	return errors.Join(errs...)
}
