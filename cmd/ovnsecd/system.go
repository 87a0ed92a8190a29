// System: the wiring of one ovnsecd process. Snapshots flow from the
// database watcher through the tunnel table into the reconciler, which
// drives the backend; the unixctl server reads the reconciler's view. OVN's
// SB_Global ipsec, read by the Southbound follower, decides whether the
// table requires IPsec on every tunnel port.

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/backend/native"
	"github.com/ovnsec/ovnsec/internal/backend/strongswan"
	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/creds"
	"github.com/ovnsec/ovnsec/internal/ovnsb"
	"github.com/ovnsec/ovnsec/internal/ovsconf"
	"github.com/ovnsec/ovnsec/internal/reconcile"
	"github.com/ovnsec/ovnsec/internal/tunnel"
	"github.com/ovnsec/ovnsec/internal/unixctl"
)

// compatName is the program name existing probes use with ovs-appctl -t.
const compatName = "ovs-monitor-ipsec"

type system struct {
	cfg     config
	log     *slog.Logger
	watcher *ovsconf.Watcher
	table   *tunnel.Table
	// policy decides whether the table requires IPsec; follower reads
	// SB_Global ipsec for it (nil when it is not to be followed).
	policy   *ovnsb.Policy
	follower *ovnsb.Follower
	// noDrop: the backend cannot drop a tunnel's packets (it is no
	// backend.Guard: strongSwan).
	noDrop bool
	shared
	rec  *reconcile.Reconciler
	be   backend.Backend
	ctl  *unixctl.Server
	pids []*unixctl.Pidfile
	// up hands this process over to a new one (nil: unavailable); hup
	// delivers SIGHUP, which asks for it.
	up  *upgrades
	hup <-chan os.Signal

	exitOnce sync.Once
	exitCh   chan exitRequest
	// upgradeMu lets one upgrade run at a time.
	upgradeMu sync.Mutex
}

// exitRequest is an "exit" command (cleanup removes every connection
// first) or the end of an upgrade (upgraded: a new ovnsecd is ready to
// take the SAs over).
type exitRequest struct{ cleanup, upgraded bool }

// newSystem builds the daemon. A process started by an upgrade builds its
// backend on the sockets handed over and opens its control sockets only
// once the old process has gone (takeOver).
func newSystem(ctx context.Context, c config, log *slog.Logger, up *upgrades) (*system, error) {
	spec, warnings, err := selectBackend(c)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	s := &system{cfg: c, log: log, exitCh: make(chan exitRequest, 1), up: up}
	s.shared = shared{clock: clock.Real{}}
	if up.child() {
		if s.shared.inherited, err = up.inherited(); err != nil {
			return nil, err
		}
	} else if s.shared.inherited, err = storedSockets(log); err != nil {
		log.Warn("the previous ovnsecd's sockets cannot be taken back; opening new ones", "err", err)
	} else {
		s.shared.stored = s.shared.inherited != nil
	}
	s.shared.creds = creds.NewStore(creds.Options{Clock: s.shared.clock, Log: log.With("stage", "creds")})
	be, err := spec.build(ctx, c, s.shared, log.With("backend", spec.name))
	if err != nil {
		return nil, err
	}
	s.be = be
	s.table = tunnel.NewTable(tunnel.FileCertReader{Store: s.creds}, s.clock)
	s.table.RequireIPsec(c.requireIPsec)
	_, guards := be.(backend.Guard)
	s.noDrop = !guards
	s.policy = ovnsb.NewPolicy(ovnsb.Config{Mode: c.followOVN, Force: c.requireIPsec, Remote: c.ovnSB})
	switch {
	case c.requireIPsec:
		if c.followOVN != ovnsb.FollowOff || c.ovnSB != "" {
			log.Info("--require-ipsec: IPsec is required on every tunnel port whatever OVN's SB_Global ipsec says; it is not followed")
		}
	case c.followOVN == ovnsb.FollowOff:
		log.Info("--follow-ovn-ipsec=false: OVN's SB_Global ipsec is not followed; a tunnel is protected once its IPsec options arrive")
	default:
		s.follower = ovnsb.New(log.With("stage", "ovnsb"), ovnsb.WithRunDir(c.rundir))
		s.follower.SetRemote(s.policy.Remote(nil))
		if s.noDrop {
			log.Info("following OVN's SB_Global ipsec with --ike-daemon=" + spec.name + " only affects tunnels/show: this backend cannot drop the packets of a tunnel without IPsec options")
		}
	}
	s.rec = reconcile.New(s.be, log, reconcile.Options{Clock: s.clock})
	s.watcher = ovsconf.New(c.database, log.With("stage", "ovsconf"))

	if err := os.MkdirAll(c.rundir, 0o755); err != nil {
		return nil, fmt.Errorf("create run directory %s: %w", c.rundir, err)
	}
	if up.child() {
		return s, nil // takeOver opens the control sockets
	}
	if err := s.openControl(); err != nil {
		s.closeControl()
		return nil, err
	}
	return s, nil
}

// takeOver, in a process started by an upgrade, lets the old one hand
// over: once it has exited, its saved SAs are given to the backend and the
// pidfile and control sockets opened under this process.
func (s *system) takeOver(ctx context.Context) error {
	werr := s.up.takeOver(ctx)
	if werr != nil {
		s.log.Error("upgrade: the old ovnsecd did not hand over; its SAs are negotiated again", "err", werr)
	}
	h, herr := native.ReadHandover(handoverPath(s.cfg))
	if herr != nil {
		s.log.Warn("upgrade: the old ovnsecd's SAs cannot be taken up; they are negotiated again", "err", herr)
	}
	if r, ok := s.be.(interface{ Resume(*native.Handover) }); ok {
		if h != nil {
			s.log.Info("upgrade: taking up the SAs the old ovnsecd saved", "tunnels", len(h.Tunnels))
		}
		r.Resume(h)
	}
	if err := s.openControl(); err != nil {
		s.closeControl()
		return err
	}
	s.log.Info("upgrade: this ovnsecd serves now", "pid", os.Getpid())
	return nil
}

// shared are the parts of the daemon every stage uses: one credentials
// store (the tunnel table and the backend read the same files once, and a
// renewed file reaches both) and one clock.
type shared struct {
	creds *creds.Store
	clock clock.Clock
	// inherited are the sockets an upgrade handed over, or a restart took
	// back from the service manager's store (stored); nil otherwise.
	inherited *native.Sockets
	stored    bool
	// enroll keeps the chassis certificate (--enroll; nil otherwise).
	enroll *enrollment
}

// newStrongswanBackend builds --ike-daemon=strongswan: charon over VICI.
func newStrongswanBackend(_ context.Context, c config, sh shared, log *slog.Logger) (backend.Backend, error) {
	return strongswan.New(strongswan.Config{ViciSocket: c.viciSocket, Creds: sh.creds, Clock: sh.clock}, log), nil
}

// newNativeBackend builds --ike-daemon=native: the engine on the bridge.
func newNativeBackend(ctx context.Context, c config, sh shared, log *slog.Logger) (backend.Backend, error) {
	local, err := underlayAddr(c)
	if err != nil {
		return nil, err
	}
	kind, err := native.ParsePortKind(c.portKind)
	if err != nil {
		return nil, fmt.Errorf("--engine-port-type: %w", err)
	}
	// SAs the previous ovnsecd saved (a restart): the file is removed
	// once read. In an upgrade the old process is still running; it saves
	// them when it exits (system.takeOver).
	var h *native.Handover
	if sh.inherited == nil || sh.stored {
		var herr error
		h, herr = native.ReadHandover(handoverPath(c))
		if herr != nil {
			log.Warn("the previous ovnsecd's SAs cannot be taken up; they are negotiated again", "err", herr)
		} else if h != nil {
			log.Info("taking up the SAs the previous ovnsecd saved", "tunnels", len(h.Tunnels))
		}
	}
	cfg := native.Config{
		Handover: h, Inherited: sh.inherited,
		Local: local, Bridge: c.bridge, NIC: c.nic, Engine: c.enginePort,
		GeneveOptions: c.geneveOpts, Port: kind, Direct: c.direct, Log: log,
		Creds: sh.creds, Clock: sh.clock,
	}
	if sh.stored {
		cfg.Handover = nil // given with Resume, once the backend holds the sockets
	}
	b, err := native.New(ctx, cfg)
	if err != nil && sh.stored {
		log.Warn("the stored sockets cannot be taken up; opening new ones", "err", err)
		sh.inherited.Close()
		cfg.Inherited, cfg.Handover = nil, h
		b, err = native.New(ctx, cfg)
	} else if err == nil && sh.stored {
		b.Resume(h)
	}
	if err != nil {
		return nil, fmt.Errorf("start the native backend on bridge %s (NIC %s): %w", c.bridge, c.nic, err)
	}
	return b, nil
}

// parseLocalIP reads --local-ip.
func parseLocalIP(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("--local-ip %q: want an IPv4 address", s)
	}
	return a, nil
}

// underlayAddr is --local-ip, or the first IPv4 address of the bridge's
// interface (br-phy holds the underlay address in the userspace datapath).
func underlayAddr(c config) (netip.Addr, error) {
	if c.localIP != "" {
		return parseLocalIP(c.localIP)
	}
	ifc, err := net.InterfaceByName(c.bridge)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("bridge interface %s: %w (is ovs-vswitchd running and the bridge created? or pass --local-ip)", c.bridge, err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("addresses of %s: %w", c.bridge, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
				return ip.Unmap(), nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("bridge %s has no IPv4 address: give it the underlay address or pass --local-ip", c.bridge)
}

// openControl writes the pidfiles and opens the unixctl sockets under
// "ovnsecd" and, in drop-in mode, "ovs-monitor-ipsec".
func (s *system) openControl() error {
	pid := os.Getpid()
	if s.cfg.pidfile != "" {
		p, err := unixctl.WritePidfile(s.cfg.pidfile)
		if err != nil {
			return fmt.Errorf("pidfile: %w", err)
		}
		s.pids = append(s.pids, p)
	}
	ctl, err := unixctl.Listen(unixctl.CtlPath(s.cfg.rundir, "ovnsecd", pid), s.log.With("stage", "unixctl"))
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	s.ctl = ctl
	if s.cfg.compatName {
		// ovs-appctl -t NAME reads <rundir>/NAME.pid and connects to
		// <rundir>/NAME.<pid>.ctl, so both are needed under the old name.
		p, err := unixctl.WritePidfile(unixctl.PidfilePath(s.cfg.rundir, compatName))
		if err != nil {
			return fmt.Errorf("compatibility pidfile (another ovs-monitor-ipsec running? use --compat-name=false): %w", err)
		}
		s.pids = append(s.pids, p)
		if err := ctl.AddListener(unixctl.CtlPath(s.cfg.rundir, compatName, pid)); err != nil {
			return fmt.Errorf("compatibility control socket: %w", err)
		}
	}
	ctl.SetVersion(fmt.Sprintf("ovnsecd (ovnsec) %s", version))
	s.registerCommands()
	return nil
}

func (s *system) closeControl() {
	if s.ctl != nil {
		s.ctl.Close()
	}
	for _, p := range s.pids {
		p.Remove()
	}
}

func (s *system) run(ctx context.Context) error {
	s.log.Info("ovnsecd starting", "version", version, "database", s.cfg.database,
		"ike_daemon", s.be.Name(), "rundir", s.cfg.rundir, "ctl", s.ctl.Paths())
	defer s.closeControl()

	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	start := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				s.log.Error(name+" stopped", "err", err)
			}
		}()
	}

	if !s.cfg.noRestart && !s.up.child() {
		// (An upgraded process keeps what the old one configured.)
		s.purgeBackend(runCtx)
	}
	s.startEnroll(start)
	start("unixctl", s.ctl.Serve)
	start("ovsconf", s.watcher.Run)
	if s.follower != nil {
		start("ovnsb", s.follower.Run)
	}
	// The reconciler does nothing before the first desired set (the
	// previous run's br-phy rules stay until the database has been read).
	start("reconcile", s.rec.Run)
	start("credentials", s.creds.Run)
	start("tunnels", s.feed)
	start("memory", func(ctx context.Context) error { return returnMemory(ctx, memoryCheckInterval, idleHeapLimit) })

	var cleanup, upgraded bool
wait:
	for {
		select {
		case <-ctx.Done():
			s.log.Info("ovnsecd received a termination signal; exiting without cleanup")
			break wait
		case <-s.hup:
			// Upgrade runs in the background: this loop keeps answering
			// termination and exit meanwhile.
			go s.upgrade() // logs its failure
		case req := <-s.exitCh:
			cleanup, upgraded = req.cleanup, req.upgraded
			if req.upgraded {
				s.log.Info("upgrade: the new ovnsecd is ready; handing the SAs over and exiting")
			} else {
				s.log.Info("ovnsecd exiting", "cleanup", cleanup)
			}
			break wait
		}
	}
	cancel()
	wg.Wait()

	closeCtx, closeCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer closeCancel()
	if sus, ok := s.be.(suspender); ok && !cleanup {
		if sb, ok := s.be.(interface{ Sockets() native.Sockets }); ok && !upgraded {
			// A restart under a service manager that keeps descriptors:
			// the sockets outlive this process (the upgraded one has
			// them already).
			if err := storeSockets(s.log, sb.Sockets()); err != nil {
				s.log.Warn("the sockets close with this process; packets until the next ovnsecd are dropped", "err", err)
			}
		}
		// Hand the SAs over to the next ovnsecd (a restart or an upgrade):
		// the peers see no new IKE SA and nothing is deleted.
		n, err := sus.Suspend(closeCtx, s.handoverPath())
		if err == nil {
			s.log.Info("established SAs saved for the next ovnsecd", "tunnels", n, "file", s.handoverPath())
			return nil
		}
		s.log.Warn("could not save the SAs for the next ovnsecd; it negotiates them again", "err", err)
	}
	if err := s.be.Close(closeCtx, cleanup); err != nil {
		return fmt.Errorf("close %s backend: %w", s.be.Name(), err)
	}
	return nil
}

// suspender is a backend that can hand its SAs to the next process
// (native.Backend.Suspend).
type suspender interface {
	Suspend(ctx context.Context, path string) (int, error)
}

// handoverPath is where a stopping ovnsecd leaves its SAs for the next.
func (s *system) handoverPath() string { return handoverPath(s.cfg) }

func handoverPath(c config) string { return filepath.Join(c.rundir, "ovnsecd.handover") }

// purgeBackend removes every connection the backend still holds from an
// earlier run, as ovs-monitor-ipsec's start-up IKE daemon restart does.
func (s *system) purgeBackend(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	names, err := s.be.Loaded(cctx)
	if err != nil {
		s.log.Warn("cannot list the IKE daemon's connections at start-up; leftovers are removed once it answers", "err", err)
		return
	}
	for _, n := range names {
		if err := s.be.Remove(cctx, n); err != nil {
			s.log.Warn("cannot remove a leftover connection", "tunnel", n, "err", err)
		}
	}
}

// feed runs the feed loop (feeder) on the watcher's snapshots, the
// Southbound follower's values and the reconciliation interval.
func (s *system) feed(ctx context.Context) error {
	tick := s.clock.NewTicker(reconcile.DefaultInterval)
	defer tick.Stop()
	changes, stop := s.creds.Subscribe()
	defer stop()
	f := &feeder{table: s.table, policy: s.policy, desired: s.rec.SetDesired, noDrop: s.noDrop, log: s.log}
	var sbs <-chan ovnsb.State
	if s.follower != nil {
		f.setRemote = s.follower.SetRemote
		sbs = s.follower.Updates()
	}
	return f.run(ctx, s.watcher.Updates(), sbs, tick.C(), changes)
}

func (s *system) requestExit(cleanup bool) {
	s.exitOnce.Do(func() { s.exitCh <- exitRequest{cleanup: cleanup} })
}

// upgrade hands this process over to a new one started from the binary's
// path; once that one is ready, this one exits (saving its SAs).
func (s *system) upgrade() error {
	s.upgradeMu.Lock()
	defer s.upgradeMu.Unlock()
	if err := s.up.upgrade(s.be); err != nil {
		s.log.Error("upgrade failed", "err", err)
		return err
	}
	s.exitOnce.Do(func() { s.exitCh <- exitRequest{upgraded: true} })
	return nil
}
