// Package native implements backend.Backend with ovnsec's own IKEv2 engine
// (internal/ike) and ESP engine (internal/esp) attached to Open vSwitch's
// userspace datapath as a side-car port on br-phy (internal/datapath/
// ovsbridge with the internal/datapath/esphook hook).
//
// One Backend serves one underlay address: the engine's IKE sockets are
// bound to it and br-phy holds it. Per tunnel it configures an IKE peer
// named "<if>-<v>" whose Child SAs carry the upstream connection names
// ("<if>-in-<v>"/"<if>-out-<v>" with the tunnel port as selector, or
// "<if>-<v>" for GRE), in transport mode, and a protected br-phy policy for
// the remote address. Child SA events install, rekey (make-before-break)
// and delete the ESP SAs in the hook, which releases the frames held while
// no SA existed. The outbound SA towards a peer is the newest Child SA whose
// negotiated selectors cover our tunnel packets (the "-out-" child, or
// GRE's). The side with the lower address initiates at once; the other
// waits Config.PeerGrace before initiating itself, so that both ends do not
// create duplicate IKE SAs at the same moment.
//
// Limits: IPv4 underlays only; one tunnel per remote address (the ESP
// table and the IKE engine key peers by address); identities are sent as
// FQDN IDs (PSK tunnels use the addresses as FQDN strings), so PSK
// interoperability with strongSwan/Libreswan peers that expect IP-address
// IDs is not given.
//
// Close without cleanup leaves br-phy's steering and drop rules in place:
// with the engine gone, protected traffic is dropped, never sent in clear.
//
// Wiring, as ovnsecd does it for --ike-daemon=native:
//
//	b, err := native.New(ctx, native.Config{
//		Local:  underlayIP, // br-phy's address; the IKE engine binds 500/4500 on it
//		Bridge: "br-phy", NIC: "eth0", // Engine (its port) defaults to "ovnsec0"
//		GeneveOptions: ovsbridge.OVNGeneveOpt, // under OVN, for the overlay MTU
//	})
//	// then b is the reconciler's backend.Backend; b.Close(ctx, cleanup) on exit
package native

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/creds"
	"github.com/ovnsec/ovnsec/internal/datapath/esphook"
	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/datapath/tun"
	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike"
	"github.com/ovnsec/ovnsec/internal/nsenter"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// IKE is the part of *ike.Engine the backend uses.
type IKE interface {
	AddPeer(ike.Peer) error
	RemovePeer(name string)
	Status(name string) ike.PeerStatus
	Initiate(name string) error
	RekeyChild(peerName, child string) error
	UpdateCredentials(name string, a ike.Auth) error
	Suspend() []ike.SavedSA
	Restore(name string, s ike.SavedSA) error
	Run(ctx context.Context) error
}

// Attachment is the part of *ovsbridge.Attachment the backend uses.
type Attachment interface {
	SetPolicies(ctx context.Context, policies []ovsbridge.Policy) error
	Run(ctx context.Context) error
	Detach(ctx context.Context) error
	PlaintextDrops(ctx context.Context) (uint64, error)
	OverlayMTU(p ovsbridge.Policy) (int, error)
}

// Config configures the native backend.
type Config struct {
	// Local is the host's underlay address: br-phy's address and the
	// address the IKE engine binds to (ports 500 and 4500). IPv4.
	Local netip.Addr
	// Bridge is br-phy (netdev datapath, holds Local); NIC its underlay
	// port; Engine the engine port's name (default "ovnsec0").
	Bridge, NIC, Engine string
	// OVS reaches ovs-vswitchd and its database (defaults: ovs-vsctl's
	// default database, ovs-ofctl to Bridge).
	OVS ovsbridge.OVS
	// Netns is the network namespace of ovs-vswitchd and the NIC ("" =
	// ours); for tests.
	Netns string
	// GeneveOptions is the Geneve option length counted in the overlay MTU
	// (ovsbridge.OVNGeneveOpt under OVN).
	GeneveOptions int
	// Port is the kind of engine port: ovsbridge.PortTAP (one frame per
	// system call) or ovsbridge.PortVeth (a veth pair read and written in
	// batches).
	Port ovsbridge.PortKind
	// Direct sends outbound ESP from the engine straight onto the NIC
	// instead of back through br-phy, sparing ovs-vswitchd a second pass;
	// used only if Attachment.CheckDirect accepts the NIC's port (no VLAN
	// tag, bond or userspace interface), else the backend logs why and
	// goes through br-phy.
	Direct bool
	// PeerGrace is how long the side with the higher address waits for
	// the peer to bring the IKE SA up before it initiates itself; default
	// 3 s. The peer's first IKE_SA_INIT is dropped unanswered when it
	// arrives before we configured the tunnel, and its retransmissions
	// back off (0.5, 1.5, 3.5, 7.5 s), so a long grace delays tunnels that
	// are enabled everywhere at once (the mesh bench); a crossing
	// initiation is resolved by the IKE engine's nonce rule.
	PeerGrace time.Duration
	// Clock drives the sweeper, grace periods and SA lifetimes; default
	// clock.Real.
	Clock clock.Clock
	// Sweep is how often lifetimes, grace periods and late initiations are
	// checked; default 1 s. Negative: no sweeper (tests step it by hand).
	Sweep time.Duration
	// RekeyGrace is how long an inbound SA keeps accepting packets after
	// it was replaced by a rekey; default 10 s.
	RekeyGrace time.Duration
	// NewIKE makes the IKE engine; default ike.New. Tests inject a fake or
	// create the engine inside a namespace.
	NewIKE func(ike.Config) (IKE, error)
	// Handover holds the SAs the previous ovnsecd saved (Suspend): a
	// tunnel configured exactly as then takes them up instead of
	// negotiating.
	Handover *Handover
	// Inherited are the sockets the previous ovnsecd handed over (an
	// upgrade): used instead of opening new ones, and not read until
	// Resume has been given the SAs that process saved.
	Inherited *Sockets
	// Creds reads certificates and keys; default a creds.Store of the
	// backend's own (polled by the backend). A CredLoader that is also a
	// CredWatcher has its changes followed: new IKE SAs use renewed
	// certificates, established ones stay.
	Creds CredLoader
	Log   *slog.Logger
}

// Backend is the native IKE/ESP backend.
type Backend struct {
	cfg   Config
	log   *slog.Logger
	hook  *esphook.Hook
	table *esp.Table
	loop  *ovsbridge.Loop
	att   Attachment
	eng   IKE

	life context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
	// saEvents carries ESP lifetime events from the packet path (sequence
	// numbers running out) to the rekeyer; full means dropped, and the
	// event comes again from the next SA.
	saEvents chan esp.Event

	mu     sync.Mutex
	closed bool
	seq    int // Child SAs installed so far
	// broken is why a part (IKE engine, packet loop, watcher) stopped on
	// its own; nil while all run.
	broken  error
	tunnels map[string]*tunnelState // by tunnel (interface) name
	byPeer  map[string]*tunnelState // by IKE peer name
	// guarded are the tunnels whose packets br-phy drops unless SAs
	// protect them (backend.Guard), by tunnel name.
	guarded map[string]guardEntry
	// applied and appliedEngine are the br-phy and engine (hook, loop)
	// policy sets last installed in full; applied is nil before the first
	// and after a failed install.
	applied, appliedEngine []ovsbridge.Policy
	// closers are closed by Close once the parts have stopped (the
	// direct-to-NIC socket).
	closers []io.Closer
	// handover are the saved SAs not yet taken up; resumes where the ESP
	// SAs of restored Child SAs stand, by inbound SPI, until installed.
	handover []SavedTunnel
	resumes  map[esp.SPI]ESPResume
	// socks are the open sockets (Sockets); gate holds the readers of
	// inherited ones until Resume (open otherwise).
	socks Sockets
	gate  *gate
	// North-south (ns.go): connections by name and by IKE peer name, the
	// datapath (nil until the first connection) and its SAs.
	ns       map[string]*nsState
	nsByPeer map[string]*nsState
	nsAtt    atomic.Pointer[tun.Attachment]
	nsTable  *esp.Table
	// peerUses counts how often an IKE peer name was configured: a tunnel
	// deleted and added again under the same name and version would reuse
	// "<if>-<v>", and late events of the old IKE peer would be taken for
	// the new one's; later uses get a "#<n>" suffix.
	peerUses map[string]int
}

// tunnelState is what the backend holds for one tunnel.
type tunnelState struct {
	t        tunnel.Tunnel
	plan     *plan
	children map[esp.SPI]*childState // installed children by inbound SPI
	// lastEvent says what last happened to the tunnel's SAs (logs);
	// installErr why the last Child SA could not be installed ("" if it
	// could).
	lastEvent, installErr string
	// credErr says why renewed credentials were not applied ("" if they
	// were, or none changed).
	credErr string
	// lastInit is when the tunnel was configured or last initiated late.
	lastInit time.Time
	// demand is the hook's count of the peer's packets that found no SA,
	// as last seen by initiateLate; demandInit when that last made us
	// initiate.
	demand     uint64
	demandInit time.Time
	// stale is the hook's count of the peer's ESP under SPIs we do not
	// know, as last seen by initiateLate.
	stale uint64
}

// childState is one installed Child SA pair.
type childState struct {
	name          string
	inSPI, outSPI esp.SPI
	encap         esp.Encap
	in, out       *esp.SA
	keyBits       int
	established   time.Time
	seq           int  // install order, for the status line's {n}
	carries       bool // its outbound SA carries our tunnel packets
	// pendingOut: we answered the rekey that made this child, and its
	// outbound SA waits to replace the one of the child it replaces
	// (replaces) until the peer shows it can open it (promoteLocked).
	pendingOut bool
	replaces   esp.SPI
	localTS    []ike.TrafficSelector
	remoteTS   []ike.TrafficSelector
}

// New attaches the engine port to br-phy (no policies yet), opens it (and
// the NIC for direct output), starts the packet loop, the rule watcher,
// the IKE engine and the SA sweeper. They run until Close.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if cfg.Engine == "" {
		cfg.Engine = "ovnsec0"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	in := cfg.Inherited
	if in != nil && ((in.Engine == nil && cfg.Bridge != "") || in.IKE == nil || in.NATT == nil) {
		return nil, fmt.Errorf("native backend: %w", errNoSockets)
	}
	var (
		att *ovsbridge.Attachment
		dev ovsbridge.Device
		err error
	)
	if cfg.Bridge != "" {
		// The attachment makes the engine port exist; then it is opened.
		att, err = ovsbridge.Attach(ctx, ovsbridge.Config{
			Bridge: cfg.Bridge, NIC: cfg.NIC, Engine: cfg.Engine, OVS: cfg.OVS,
			Netns: cfg.Netns, GeneveOptions: cfg.GeneveOptions, Log: cfg.Log, Port: cfg.Port,
		})
		if err != nil {
			if in != nil {
				in.Close()
			}
			return nil, fmt.Errorf("native backend: %w", err)
		}
	}
	switch {
	case att == nil:
		dev = newIdleDevice()
	case in != nil:
		dev, err = ovsbridge.EngineFromFile(cfg.Port, cfg.Engine, in.Engine)
	default:
		dev, err = ovsbridge.OpenEngine(cfg.Port, cfg.Engine, cfg.Netns)
	}
	if err != nil {
		return nil, fmt.Errorf("native backend: %w", err)
	}
	var wire *ovsbridge.PacketPort
	switch {
	case !cfg.Direct || att == nil:
	case in != nil && in.Wire != nil:
		if wire, err = ovsbridge.WireFromFile(cfg.NIC, in.Wire); err != nil {
			cfg.Log.Warn("outbound ESP goes back through br-phy", "reason", err)
			wire = nil
		}
	default:
		if err := att.CheckDirect(ctx); err != nil {
			cfg.Log.Warn("outbound ESP goes back through br-phy", "reason", err)
		} else if wire, err = ovsbridge.OpenWire(cfg.NIC, cfg.Netns); err != nil {
			cfg.Log.Warn("outbound ESP goes back through br-phy", "reason", err)
			wire = nil
		}
	}
	var udp *ike.UDP
	if in != nil {
		udp, err = ike.NewUDP(in.IKE, in.NATT)
	} else if cfg.NewIKE == nil {
		err = nsenter.Do(cfg.Netns, func() (err error) {
			udp, err = ike.ListenUDP(cfg.Local.Unmap(), 0, 0)
			return err
		})
	}
	if err != nil {
		dev.Close()
		if wire != nil {
			wire.Close()
		}
		return nil, fmt.Errorf("native backend: start IKE engine on %s: %w", cfg.Local, err)
	}
	if att != nil {
		cfg.Log.Info("engine port attached", "bridge", cfg.Bridge, "port", cfg.Engine, "kind", cfg.Port, "direct_to_nic", wire != nil, "handed_over", in != nil)
	} else {
		cfg.Log.Info("no --bridge: OVS tunnels cannot be protected on this host; north-south connections only")
	}
	var w ovsbridge.Writer
	var socks Sockets
	if f, ok := dev.(interface{ File() *os.File }); ok {
		socks.Engine = f.File()
	}
	if wire != nil {
		w = wire
		socks.Wire = wire.File()
	}
	var conn ike.PacketConn
	if udp != nil {
		conn = udp
		socks.IKE, socks.NATT = udp.Sockets()
	}
	var a Attachment = bridgeless{}
	if att != nil {
		a = att
	}
	b, err := newBackend(cfg, a, dev, w, conn)
	if err != nil {
		dev.Close()
		if wire != nil {
			wire.Close()
		}
		if udp != nil {
			udp.Close()
		}
		return nil, err
	}
	b.socks = socks
	if wire != nil {
		b.closers = append(b.closers, wire)
	}
	return b, nil
}

// newBackend wires the parts; tests call it with fakes.
// conn is the IKE engine's transport (nil: Config.NewIKE opens its own).
// With Config.Inherited the device and conn are read only once Resume
// has the saved SAs installed.
func newBackend(cfg Config, att Attachment, dev ovsbridge.Device, wire ovsbridge.Writer, conn ike.PacketConn) (*Backend, error) {
	local := cfg.Local.Unmap()
	if !local.Is4() || local.IsUnspecified() {
		return nil, fmt.Errorf("native backend: local underlay address %v: need the unicast IPv4 address on %s", cfg.Local, cfg.Bridge)
	}
	cfg.Local = local
	if cfg.RekeyGrace <= 0 {
		cfg.RekeyGrace = 10 * time.Second
	}
	if cfg.PeerGrace <= 0 {
		cfg.PeerGrace = 3 * time.Second
	}
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.Sweep == 0 {
		cfg.Sweep = time.Second
	}
	var ownStore *creds.Store
	if cfg.Creds == nil {
		ownStore = creds.NewStore(creds.Options{Log: cfg.Log})
		cfg.Creds = ownStore
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.NewIKE == nil {
		cfg.NewIKE = func(c ike.Config) (IKE, error) { return ike.New(c) }
	}
	table := esp.NewTable(cfg.Clock)
	b := &Backend{
		cfg:      cfg,
		log:      cfg.Log.With("backend", "native"),
		table:    table,
		hook:     esphook.New(esphook.Config{Table: table, Log: cfg.Log}),
		att:      att,
		tunnels:  map[string]*tunnelState{},
		byPeer:   map[string]*tunnelState{},
		saEvents: make(chan esp.Event, 64),
	}
	b.guarded = map[string]guardEntry{}
	b.resumes = map[esp.SPI]ESPResume{}
	b.ns, b.nsByPeer = map[string]*nsState{}, map[string]*nsState{}
	b.nsTable = esp.NewTable(cfg.Clock)
	b.setHandoverLocked(cfg.Handover)
	b.gate = newGate(cfg.Inherited == nil)
	if !b.gate.isOpen() {
		dev = &gatedDevice{Device: dev, g: b.gate, closed: closeSignal{ch: make(chan struct{})}}
		if conn != nil {
			conn = &gatedConn{PacketConn: conn, g: b.gate, closed: closeSignal{ch: make(chan struct{})}}
		}
	}
	if err := b.hook.SetPolicies(local, nil); err != nil {
		return nil, err
	}
	loop, err := ovsbridge.NewLoop(ovsbridge.LoopConfig{Device: dev, Hook: b.hook, Wire: wire, Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("native backend: %w", err)
	}
	b.loop = loop
	b.hook.SetReleaser(loop)
	eng, err := cfg.NewIKE(ike.Config{Local: local, Conn: conn, Handler: ike.HandlerFunc(b.handleChildSA), OnESP: b.deliverNS, Logger: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("native backend: start IKE engine on %s: %w", local, err)
	}
	b.eng = eng
	b.life, b.stop = context.WithCancel(context.Background())
	b.goRun("packet loop", loop.Run)
	b.goRun("br-phy watcher", att.Run)
	b.goRun("IKE engine", eng.Run)
	if cfg.Sweep > 0 {
		b.goRun("SA sweeper", b.sweep)
	}
	b.goRun("SA rekeyer", b.rekeyer)
	if w, ok := cfg.Creds.(creds.Watcher); ok {
		changes, cancel := w.Subscribe()
		b.goRun("credentials follower", func(ctx context.Context) error {
			defer cancel()
			return b.followCreds(ctx, changes)
		})
	}
	if ownStore != nil {
		b.goRun("credentials poll", ownStore.Run)
	}
	return b, nil
}

// goRun runs one part until Close. A part that stops on its own breaks the
// backend: Status then reports every tunnel down with the cause.
func (b *Backend) goRun(what string, run func(context.Context) error) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		err := run(b.life)
		if b.life.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("returned")
		}
		err = fmt.Errorf("%s stopped: %w", what, err)
		b.log.Error("native backend broken; protected traffic is dropped (never sent in clear) until ovnsecd restarts", "err", err)
		b.mu.Lock()
		if b.broken == nil {
			b.broken = err
		}
		b.mu.Unlock()
	}()
}

// promoteAfter is how long the responder of a Child SA rekey keeps sending
// under the old SA when the initiator neither deleted the old child nor
// sent under the new one.
const promoteAfter = 2 * time.Second

// demandHeadStart is how long after configuring a tunnel the side with
// the higher address waits before packets that found no SA make it
// initiate.
const demandHeadStart = 1500 * time.Millisecond

// demandRetry is the shortest interval between two initiations caused by
// packets that found no SA.
const demandRetry = 2 * time.Second

// sweep applies SA lifetimes and ends grace periods once a second.
func (b *Backend) sweep(ctx context.Context) error {
	t := b.cfg.Clock.NewTicker(b.cfg.Sweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
			b.hook.Sweep()
			b.promotePending()
			b.initiateLate()
		}
	}
}

// notifySA is every ESP SA's lifetime callback. It runs on the packet path
// and never blocks.
func (b *Backend) notifySA(ev esp.Event) {
	select {
	case b.saEvents <- ev:
	default:
	}
}

// rekeyer asks the IKE engine to rekey the Child SA whose ESP SA reached
// a lifetime limit (its sequence numbers running out, under heavy
// traffic, before the engine's time-based rekey).
func (b *Backend) rekeyer(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-b.saEvents:
			b.onSAEvent(ev)
		}
	}
}

func (b *Backend) onSAEvent(ev esp.Event) {
	b.mu.Lock()
	var peer, child string
	for _, st := range b.tunnels {
		for _, c := range st.children {
			if (ev.Dir == esp.Outbound && c.outSPI == ev.SPI) || (ev.Dir == esp.Inbound && c.inSPI == ev.SPI) {
				peer, child = st.plan.peer.Name, c.name
			}
		}
	}
	b.mu.Unlock()
	if child == "" {
		return // already replaced or removed
	}
	b.log.Info("ESP SA reached a lifetime limit; rekeying", "peer", peer, "child", child, "spi", ev.SPI, "dir", ev.Dir, "event", ev.Kind, "limit", ev.Limit)
	if err := b.eng.RekeyChild(peer, child); err != nil {
		b.log.Warn("rekey Child SA", "peer", peer, "child", child, "err", err)
	}
}

// initiateLate initiates, from the side that waits for the peer, every
// tunnel that has not come up within the peer grace (and again every
// grace period while it stays down). Either side initiates at once, at
// most every demandRetry, when packets of a down tunnel found no SA since
// the last look: our traffic is waiting, or the peer still sends under SAs
// we lost (we restarted and it did not notice). Our IKE_AUTH carries
// INITIAL_CONTACT, so the peer then drops its stale SAs.
func (b *Backend) initiateLate() {
	now := b.cfg.Clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	for _, st := range b.tunnels {
		d, s := b.hook.Demand(st.plan.remote), b.hook.Stale(st.plan.remote)
		// The higher address leaves the lower one a head start even then:
		// both initiating at once makes duplicate IKE SAs (seen to leave a
		// tunnel without traffic in one CI run of the leak test). Not when
		// the peer sends ESP under SPIs we do not know: it holds SAs we
		// lost (our restart after kill -9) and, believing the tunnel up,
		// will not initiate, so waiting for it only prolongs the outage.
		stale := s != st.stale
		st.stale = s
		demanded := d != st.demand && now.Sub(st.demandInit) >= demandRetry &&
			(st.plan.peer.Initiate || stale || now.Sub(st.lastInit) >= demandHeadStart)
		late := !st.plan.peer.Initiate && now.Sub(st.lastInit) >= b.cfg.PeerGrace
		if !late && !demanded {
			continue
		}
		ps := b.eng.Status(st.plan.peer.Name)
		if ps.Up() || ps.State == ike.SAConnecting {
			st.demand = d // packets that found no SA while one exists or is coming: stragglers
			continue
		}
		why := "peer did not bring the tunnel up; initiating"
		if demanded {
			st.demand, st.demandInit = d, now
			why = "packets for a tunnel without SAs; initiating"
		}
		if late {
			st.lastInit = now
		}
		if err := b.eng.Initiate(st.plan.peer.Name); err != nil {
			b.log.Warn("initiate IKE SA", "tunnel", st.t.Name, "err", err)
		} else {
			b.log.Info(why, "tunnel", st.t.Name, "grace", b.cfg.PeerGrace)
		}
	}
}

// Name implements backend.Backend.
func (b *Backend) Name() string { return "native" }

// Hook returns the ESP hook (for status and metrics).
func (b *Backend) Hook() *esphook.Hook { return b.hook }

// Loop returns the packet loop (for status and metrics).
func (b *Backend) Loop() *ovsbridge.Loop { return b.loop }

// applyPoliciesLocked installs the current policies: hook and loop first
// (they must know a peer before OVS steers its frames to the engine), then
// br-phy. The engine gets the tunnels it protects; br-phy also the guarded
// ones, whose frames the engine then drops as coming from or going to no
// peer it knows.
//
// An unchanged set is not installed again: Guard and the Ensure calls of a
// reconcile pass would otherwise replace the same table once per tunnel
// (three ovs-ofctl runs each; 20 of them per chassis in a 20-node mesh). A
// lost table (ovs-vswitchd restart) is the attachment's watcher's job.
func (b *Backend) applyPoliciesLocked(ctx context.Context) error {
	engine := b.enginePoliciesLocked()
	bridge := b.bridgePoliciesLocked(engine)
	if b.appliedEngine == nil || !slices.Equal(engine, b.appliedEngine) {
		if err := b.hook.SetPolicies(b.cfg.Local, engine); err != nil {
			return err
		}
		b.loop.SetPeers(engine)
		b.appliedEngine = engine
	}
	if b.applied != nil && slices.Equal(bridge, b.applied) {
		return nil
	}
	b.applied = nil
	if err := b.att.SetPolicies(ctx, bridge); err != nil {
		return fmt.Errorf("native backend: install br-phy rules: %w", err)
	}
	b.applied = bridge
	return nil
}

// Ensure implements backend.Backend. It guards t first (backend.Guard),
// so that whatever fails after, t's packets are dropped rather than sent in
// clear; an existing configuration of t that cannot be replaced is dropped
// too, leaving t blocked, never protected under options it no longer has.
func (b *Backend) Ensure(ctx context.Context, t tunnel.Tunnel) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errClosed
	}
	if err := b.guardLocked(t); err != nil {
		if old, ok := b.tunnels[t.Name]; ok {
			b.dropLocked(old) // its SAs protect a remote t no longer names
			if aerr := b.applyPoliciesLocked(ctx); aerr != nil {
				err = fmt.Errorf("%w (and removing its previous configuration failed: %v)", err, aerr)
			}
		}
		b.log.Error("tunnel requires IPsec but its packets cannot be dropped; they may cross in clear", "tunnel", t.Name, "err", err)
		return err
	}
	if st, ok := b.tunnels[t.Name]; ok && st.t.SameConfig(t) {
		return unsupportedError(t.Name, st.plan.unsupported) // unchanged: leave established SAs alone
	}
	p, err := planTunnel(t, b.cfg.Local, b.cfg.Creds)
	if err == nil {
		for name, other := range b.tunnels {
			if name != t.Name && other.plan.remote == p.remote {
				err = fmt.Errorf("tunnel %s: remote %s is already protected by tunnel %s; the native backend supports one tunnel per remote address", t.Name, p.remote, name)
				break
			}
		}
	}
	if err != nil {
		return b.blockLocked(ctx, t, err)
	}
	if b.peerUses == nil {
		b.peerUses = map[string]int{}
	}
	if n := b.peerUses[p.peer.Name]; n > 0 {
		b.peerUses[p.peer.Name]++
		p.peer.Name = fmt.Sprintf("%s#%d", p.peer.Name, n+1)
	} else {
		b.peerUses[p.peer.Name] = 1
	}
	if old, ok := b.tunnels[t.Name]; ok {
		b.dropLocked(old)
	}
	st := &tunnelState{t: t, plan: p, children: map[esp.SPI]*childState{}, lastEvent: "configured", lastInit: b.cfg.Clock.Now()}
	b.tunnels[t.Name] = st
	b.byPeer[p.peer.Name] = st
	if err := b.applyPoliciesLocked(ctx); err != nil {
		b.dropLocked(st)
		return b.blockLocked(ctx, t, err)
	}
	saved, restore := b.takeSavedLocked(t)
	peer := p.peer
	if restore {
		peer.Initiate = false // take the saved SA up first
	}
	if err := b.eng.AddPeer(peer); err != nil {
		if restore {
			saved.SA.Zero()
		}
		b.dropLocked(st)
		return b.blockLocked(ctx, t, fmt.Errorf("native backend: configure IKE peer for %s: %w", t.Name, err))
	}
	if restore {
		if err := b.restoreLocked(st, saved); err != nil {
			b.log.Warn("the previous ovnsecd's SA cannot be taken up; negotiating", "tunnel", t.Name, "err", err)
			if p.peer.Initiate {
				if err := b.eng.Initiate(p.peer.Name); err != nil {
					b.log.Warn("initiate IKE SA", "tunnel", t.Name, "err", err)
				}
			}
		}
	}
	b.openIfTakenLocked()
	b.log.Info("tunnel configured", "tunnel", t.Name, "version", t.Version, "remote", p.remote, "type", t.Type, "force_encap", p.peer.ForceEncap)
	if mtu, err := b.att.OverlayMTU(p.policy); err == nil {
		b.log.Info("overlay MTU for tunnel", "tunnel", t.Name, "mtu", mtu)
	}
	return unsupportedError(t.Name, p.unsupported)
}

// blockLocked leaves t guarded and without SAs after Ensure failed with
// cause: a previous configuration of t is dropped (its SAs would protect
// the tunnel under options it no longer has) and the policies re-applied.
// It returns cause, and a failure to re-apply with it.
func (b *Backend) blockLocked(ctx context.Context, t tunnel.Tunnel, cause error) error {
	if old, ok := b.tunnels[t.Name]; ok {
		b.dropLocked(old)
	}
	b.log.Warn("tunnel blocked: it could not be configured, so its packets are dropped", "tunnel", t.Name, "version", t.Version, "err", cause)
	if err := b.applyPoliciesLocked(ctx); err != nil {
		return fmt.Errorf("%w (and installing the block failed: %v)", cause, err)
	}
	return cause
}

// dropLocked forgets a tunnel: its IKE peer (the engine tells the peer),
// its SAs and held frames. The caller re-applies the policies.
func (b *Backend) dropLocked(st *tunnelState) {
	b.eng.RemovePeer(st.plan.peer.Name)
	b.hook.RemovePeer(st.plan.remote)
	delete(b.byPeer, st.plan.peer.Name)
	delete(b.tunnels, st.t.Name)
}

// Remove implements backend.Backend. It drops the tunnel's IKE peer and
// SAs; a guard set by Guard stays (an INVALID tunnel is removed but still
// blocked), one set only by Ensure goes with them.
func (b *Backend) Remove(ctx context.Context, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errClosed
	}
	g, guarded := b.guarded[name]
	if guarded && g.byEnsure {
		delete(b.guarded, name)
	}
	st, ok := b.tunnels[name]
	if !ok && !(guarded && g.byEnsure) {
		return nil
	}
	if ok {
		b.dropLocked(st)
		b.log.Info("tunnel removed", "tunnel", name)
	}
	return b.applyPoliciesLocked(ctx)
}

// Loaded implements backend.Backend.
func (b *Backend) Loaded(ctx context.Context) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	names := make([]string, 0, len(b.tunnels))
	for n := range b.tunnels {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// Close implements backend.Backend. It stops the IKE engine (which deletes
// its IKE SAs, telling the peers), the packet loop and the watcher. With
// cleanup it also removes every SA and detaches from br-phy (NORMAL-only
// table, no engine port); without, br-phy keeps steering protected traffic
// to the dead engine port: it is dropped, never sent in clear.
func (b *Backend) Close(ctx context.Context, cleanup bool) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	for i := range b.handover {
		b.handover[i].SA.Zero()
	}
	b.handover = nil
	var errs []error
	if cleanup {
		for _, st := range b.tunnels {
			b.dropLocked(st)
		}
		for _, st := range b.ns {
			b.dropNSLocked(st)
		}
		// North-south subnets are routed normally again; without
		// cleanup their blackholes stay until the next ovnsecd.
		b.closeNSLocked(true)
	}
	b.mu.Unlock()
	b.stop()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("native backend: close: %w", ctx.Err()))
	}
	for _, c := range b.closers {
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("native backend: close: %w", err))
		}
	}
	if cleanup {
		if err := b.att.Detach(ctx); err != nil {
			errs = append(errs, fmt.Errorf("native backend: detach from %s: %w", b.cfg.Bridge, err))
		}
	}
	return errors.Join(errs...)
}

var (
	_ backend.Backend = (*Backend)(nil)
	_ backend.Guard   = (*Backend)(nil)
)
