// Attachment stage: puts the engine port on br-phy and keeps br-phy's table
// what Rules says it must be. It makes the persistent TAP, adds it to the
// bridge, sets fail_mode=secure (so that after an ovs-vswitchd restart
// nothing passes until the rules are back), installs the rules atomically,
// and re-installs them whenever a periodic check finds them missing or the
// engine port changed (ovs-vswitchd restarted, port re-added).

package ovsbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock"
)

// Config describes the attachment.
type Config struct {
	Bridge string // br-phy: netdev datapath, underlay IP on its LOCAL port
	NIC    string // br-phy's underlay port (a kernel interface)
	Engine string // name of the engine's port on br-phy, default "ovnsec0"
	// Port is the kind of engine port: PortTAP (default) or PortVeth (a
	// veth pair the engine reads in batches; open it with OpenEngine).
	Port   PortKind
	Cookie Cookie // default DefaultCookie
	// OVS reaches ovs-vswitchd and its database; OVS.Target defaults to
	// Bridge.
	OVS OVS
	// Netns is the network namespace of ovs-vswitchd and the NIC ("" = ours).
	Netns string
	// CheckInterval is how often Run verifies the table; default 2 s.
	CheckInterval time.Duration
	// Clock makes Run's ticker; default clock.Real.
	Clock clock.Clock
	// GeneveOptions is the Geneve option length counted in the overlay MTU
	// (OVNGeneveOpt under OVN, 0 otherwise).
	GeneveOptions int
	Log           *slog.Logger
}

// Attachment is the engine port on br-phy and the rules that steer to it.
type Attachment struct {
	cfg Config
	bc  BridgeConfig
	log *slog.Logger

	mu       sync.Mutex // serialises installs
	policies []Policy
	flows    []Flow
	engPort  string // engine ofport at the last install
	// inherited: the previous run's rules are kept until SetPolicies.
	inherited bool
	underlay  atomic.Int64

	installs atomic.Uint64
}

// Attach makes the engine port exist on br-phy and installs the table for
// no policies (NORMAL for everything, never flooding to the engine port).
func Attach(ctx context.Context, cfg Config) (*Attachment, error) {
	if cfg.Engine == "" {
		cfg.Engine = "ovnsec0"
	}
	if cfg.Cookie == 0 {
		cfg.Cookie = DefaultCookie
	}
	if cfg.OVS.Target == "" {
		cfg.OVS.Target = cfg.Bridge
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = 2 * time.Second
	}
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if !validPortName(cfg.Bridge) {
		return nil, fmt.Errorf("attach to bridge %q: not a valid bridge name", cfg.Bridge)
	}
	bc := BridgeConfig{NIC: cfg.NIC, Engine: cfg.Engine, Cookie: cfg.Cookie}
	if err := bc.Validate(); err != nil {
		return nil, fmt.Errorf("attach to %s: %w", cfg.Bridge, err)
	}
	a := &Attachment{cfg: cfg, bc: bc, log: cfg.Log.With("bridge", cfg.Bridge, "engine_port", cfg.Engine)}
	flows, err := Rules(bc, nil)
	if err != nil {
		return nil, err
	}
	a.flows = flows

	mtu, err := a.nicMTU(ctx)
	if err != nil {
		return nil, fmt.Errorf("attach to %s: %w", cfg.Bridge, err)
	}
	a.underlay.Store(int64(mtu))
	fresh, err := ensureEnginePort(cfg.Port, cfg.Engine, cfg.Netns, mtu)
	if err != nil {
		return nil, fmt.Errorf("attach to %s: %w", cfg.Bridge, err)
	}
	if err := a.ensurePort(ctx, fresh); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.protectsPeers(ctx) {
		// A previous ovnsecd left rules that protect peers. Replacing them
		// now with a table that protects none would send those peers'
		// tunnel packets in clear until the tunnels are configured again,
		// so keep them until the first SetPolicies (they steer to the
		// engine port, where nothing is sent without an SA: fail closed).
		a.inherited = true
		if err := a.cfg.OVS.SetNoFlood(ctx, a.cfg.Engine); err != nil {
			return nil, err
		}
		ports, err := a.cfg.OVS.Ports(ctx)
		if err != nil {
			return nil, err
		}
		a.engPort = ports[a.cfg.Engine].OFPort
		a.log.Info("keeping the br-phy rules of the previous run until the tunnels are configured again")
		return a, nil
	}
	if err := a.installLocked(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// ensureEnginePort makes the engine's device of the given kind exist,
// replacing one of the other kind. It reports whether the device is new
// (ovs-vswitchd then has to open it again).
func ensureEnginePort(kind PortKind, name, netnsPath string, mtu int) (bool, error) {
	before := linkType(name, netnsPath)
	switch kind {
	case PortTAP:
		if err := deleteIfVeth(name, netnsPath); err != nil {
			return false, err
		}
		return before != "tuntap", EnsureTAP(name, netnsPath, mtu)
	case PortVeth:
		return before != "veth", EnsureVeth(name, netnsPath, mtu)
	}
	return false, fmt.Errorf("engine port %s: unknown kind %v", name, kind)
}

// Port returns the kind of the engine port.
func (a *Attachment) Port() PortKind { return a.cfg.Port }

// protectsPeers reports whether br-phy already holds our rules dropping
// plaintext from at least one peer.
func (a *Attachment) protectsPeers(ctx context.Context) bool {
	got, err := a.cfg.OVS.DumpFlows(ctx, uint64(a.cfg.Cookie)|uint64(KindDropPlaintext), ^uint64(0))
	return err == nil && len(got) > 0
}

// nicMTU returns the underlay port's MTU: from the kernel interface, or,
// for a port that is not one (DPDK), from OVSDB's Interface mtu column.
func (a *Attachment) nicMTU(ctx context.Context) (int, error) {
	mtu, err := LinkMTU(a.cfg.NIC, a.cfg.Netns)
	if err == nil {
		return mtu, nil
	}
	out, verr := a.cfg.OVS.Vsctl(ctx, "get", "Interface", a.cfg.NIC, "mtu")
	if verr == nil {
		if m, perr := strconv.Atoi(strings.TrimSpace(out)); perr == nil && m > 0 {
			return m, nil
		}
	}
	return 0, fmt.Errorf("MTU of underlay port %s: %w (and OVSDB has none: %v)", a.cfg.NIC, err, verr)
}

// ensurePort adds the engine port to br-phy and sets fail_mode=secure in one
// transaction. Changing fail_mode makes ovs-vswitchd flush the table, so
// the caller installs the rules afterwards. With fresh (the device was just
// created) the port is first removed in a transaction of its own, so that
// ovs-vswitchd opens the new device: within one transaction it would keep
// its handle on the old, deleted one (it matches ports by name).
func (a *Attachment) ensurePort(ctx context.Context, fresh bool) error {
	if fresh {
		if _, err := a.cfg.OVS.Vsctl(ctx, "--if-exists", "del-port", a.cfg.Bridge, a.cfg.Engine); err != nil {
			return fmt.Errorf("remove the old engine port %s from %s: %w", a.cfg.Engine, a.cfg.Bridge, err)
		}
	}
	_, err := a.cfg.OVS.Vsctl(ctx,
		"--may-exist", "add-port", a.cfg.Bridge, a.cfg.Engine,
		"--", "set", "Bridge", a.cfg.Bridge, "fail_mode=secure")
	if err != nil {
		return fmt.Errorf("add engine port %s to %s: %w", a.cfg.Engine, a.cfg.Bridge, err)
	}
	return nil
}

// installLocked marks the engine port no-flood and replaces the table.
func (a *Attachment) installLocked(ctx context.Context) error {
	ports, err := a.cfg.OVS.Ports(ctx)
	if err != nil {
		return err
	}
	p, ok := ports[a.cfg.Engine]
	if !ok {
		return fmt.Errorf("engine port %s is not on %s in ovs-vswitchd (check `ovs-vsctl list-ports %s` and the vswitchd log)", a.cfg.Engine, a.cfg.Bridge, a.cfg.Bridge)
	}
	if _, ok := ports[a.cfg.NIC]; !ok {
		return fmt.Errorf("underlay port %s is not on %s: add it with `ovs-vsctl add-port %s %s`", a.cfg.NIC, a.cfg.Bridge, a.cfg.Bridge, a.cfg.NIC)
	}
	if err := a.cfg.OVS.SetNoFlood(ctx, a.cfg.Engine); err != nil {
		return err
	}
	if err := a.cfg.OVS.ReplaceFlows(ctx, a.flows); err != nil {
		return err
	}
	a.engPort = p.OFPort
	a.installs.Add(1)
	return nil
}

// SetPolicies computes the table for policies and installs it. On error
// the previous table stays installed.
func (a *Attachment) SetPolicies(ctx context.Context, policies []Policy) error {
	flows, err := Rules(a.bc, policies)
	if err != nil {
		return fmt.Errorf("rules for %s: %w", a.cfg.Bridge, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	old := a.flows
	a.flows = flows
	if err := a.installLocked(ctx); err != nil {
		a.flows = old
		return err
	}
	a.inherited = false
	a.policies = append(a.policies[:0:0], policies...)
	for _, p := range policies {
		if mtu, err := a.OverlayMTU(p); err != nil {
			a.log.Warn("overlay MTU", "peer", p.PeerIP, "proto", p.Proto, "err", err)
		} else {
			a.log.Info("policy installed", "peer", p.PeerIP, "proto", p.Proto, "port", p.Port(), "encap", p.Encap, "natt_port", p.NATTPort(), "mode", p.Mode, "overlay_mtu", mtu)
		}
	}
	return nil
}

// Check verifies that the engine port is on br-phy, still no-flood and on
// the same OpenFlow port, and that every rule is installed; otherwise it
// re-installs the table. It reports whether it did.
func (a *Attachment) Check(ctx context.Context) (bool, error) {
	if mtu, err := a.nicMTU(ctx); err == nil && int64(mtu) != a.underlay.Load() {
		a.log.Warn("underlay MTU changed; overlay MTUs change with it", "nic", a.cfg.NIC, "old", a.underlay.Load(), "new", mtu)
		a.underlay.Store(int64(mtu))
	}
	ports, err := a.cfg.OVS.Ports(ctx)
	if err != nil {
		return false, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	reason := ""
	p, ok := ports[a.cfg.Engine]
	switch {
	case !ok:
		reason = "engine port missing"
		if err := a.ensurePort(ctx, false); err != nil {
			return false, err
		}
	case p.OFPort != a.engPort:
		reason = "engine port number changed"
	case !p.NoFlood:
		reason = "engine port lost no-flood"
	default:
		// All flows, not only ours: ovnsec owns br-phy's table, and a
		// foreign flow could bypass the steering or the drops.
		if a.inherited && a.protectsPeers(ctx) {
			break // the previous run's rules stay until SetPolicies
		}
		got, err := a.cfg.OVS.DumpFlows(ctx, 0, 0)
		if err != nil {
			return false, err
		}
		reason = compareKinds(a.cfg.Cookie, a.flows, got)
	}
	if reason == "" {
		return false, nil
	}
	a.log.Warn("re-installing br-phy rules", "reason", reason)
	if err := a.installLocked(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// compareKinds returns why the installed flows differ from the wanted ones
// (a flow without our cookie, or a different number of flows of a kind),
// or "" when they agree. (Flow text is not compared:
// ovs-vswitchd prints matches normalised and with port numbers.)
func compareKinds(cookie Cookie, want []Flow, got []FlowStat) string {
	var w, g [256]int
	for _, f := range want {
		w[f.Kind]++
	}
	for _, f := range got {
		if f.Cookie&^kindMask != uint64(cookie) {
			return fmt.Sprintf("foreign flow (cookie %#x, priority %d, %s)", f.Cookie, f.Priority, f.Match)
		}
		g[f.Kind()]++
	}
	for k := range w {
		if w[k] != g[k] {
			return fmt.Sprintf("%d of %d %v rules installed (%d of %d in all)", g[k], w[k], Kind(k), len(got), len(want))
		}
	}
	return ""
}

// Run checks the table every CheckInterval until ctx is done. Failed checks
// are logged and retried at the next tick (while ovs-vswitchd is down,
// fail_mode=secure keeps br-phy closed).
func (a *Attachment) Run(ctx context.Context) error {
	t := a.cfg.Clock.NewTicker(a.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
			if _, err := a.Check(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("br-phy check failed; will retry", "err", err)
			}
		}
	}
}

// Installs returns how many times the table was installed.
func (a *Attachment) Installs() uint64 { return a.installs.Load() }

// Flows returns the table the attachment keeps installed.
func (a *Attachment) Flows() []Flow {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Flow(nil), a.flows...)
}

// UnderlayMTU returns the NIC's MTU as last seen.
func (a *Attachment) UnderlayMTU() int { return int(a.underlay.Load()) }

// OverlayMTU returns the overlay MTU for p on this underlay (see the
// package-level OverlayMTU for the formula).
func (a *Attachment) OverlayMTU(p Policy) (int, error) {
	return OverlayMTU(a.UnderlayMTU(), p, a.cfg.GeneveOptions)
}

// KindCounter is the sum of the counters of the flows of one kind.
type KindCounter struct {
	Flows, Packets, Bytes uint64
}

// Counters reads the packet counters of the installed rules, summed by kind.
func (a *Attachment) Counters(ctx context.Context) (map[Kind]KindCounter, error) {
	fs, err := a.cfg.OVS.DumpFlows(ctx, uint64(a.cfg.Cookie), ^uint64(kindMask))
	if err != nil {
		return nil, err
	}
	m := make(map[Kind]KindCounter)
	for _, f := range fs {
		c := m[f.Kind()]
		c.Flows++
		c.Packets += f.Packets
		c.Bytes += f.Bytes
		m[f.Kind()] = c
	}
	return m, nil
}

// PlaintextDrops returns how many plaintext tunnel packets from protected
// peers OVS has dropped since the drop rules were installed.
func (a *Attachment) PlaintextDrops(ctx context.Context) (uint64, error) {
	fs, err := a.cfg.OVS.DumpFlows(ctx, uint64(a.cfg.Cookie)|uint64(KindDropPlaintext), ^uint64(0))
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, f := range fs {
		n += f.Packets
	}
	return n, nil
}

// Detach removes the engine port and the persistent TAP and leaves br-phy
// with a NORMAL-only table. Protected peers are then unprotected: use it
// only for an explicit cleanup (exit with cleanup, tests).
func (a *Attachment) Detach(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	normal := []Flow{{Kind: KindNormal, Priority: prioNormal, Actions: "NORMAL", cookie: a.cfg.Cookie}}
	if err := a.cfg.OVS.ReplaceFlows(ctx, normal); err != nil {
		errs = append(errs, err)
	}
	if _, err := a.cfg.OVS.Vsctl(ctx, "--if-exists", "del-port", a.cfg.Bridge, a.cfg.Engine); err != nil {
		errs = append(errs, fmt.Errorf("remove engine port %s: %w", a.cfg.Engine, err))
	}
	del := DeleteTAP
	if a.cfg.Port == PortVeth {
		del = DeleteVeth
	}
	if err := del(a.cfg.Engine, a.cfg.Netns); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// CheckDirect reports whether the engine may write outbound frames straight
// onto the NIC (LoopConfig.Wire = OpenWire(NIC)) without changing what
// leaves it: the NIC port must be a single kernel interface (not a bond,
// not DPDK or another userspace type) with no VLAN tag, trunks or
// vlan_mode, all of which OVS would apply on output and the engine would
// not. A nil error means direct output is safe to enable.
func (a *Attachment) CheckDirect(ctx context.Context) error {
	nic := a.cfg.NIC
	out, err := a.cfg.OVS.Vsctl(ctx, "get", "Port", nic, "tag", "trunks", "vlan_mode", "interfaces",
		"--", "get", "Interface", nic, "type")
	if err != nil {
		return fmt.Errorf("direct output on %s: read its OVS port: %w", nic, err)
	}
	return checkDirectFields(nic, strings.Split(strings.TrimSpace(out), "\n"))
}

// checkDirectFields checks ovs-vsctl's answers for tag, trunks, vlan_mode,
// interfaces and the interface type, one per line.
func checkDirectFields(nic string, f []string) error {
	if len(f) != 5 {
		return fmt.Errorf("direct output on %s: unexpected ovs-vsctl output %q", nic, f)
	}
	for i, name := range []string{"tag", "trunks", "vlan_mode"} {
		if v := strings.TrimSpace(f[i]); v != "[]" {
			return fmt.Errorf("direct output on %s: the port has %s %s, which OVS applies on output; leave direct output off", nic, name, v)
		}
	}
	if strings.Contains(f[3], ",") {
		return fmt.Errorf("direct output on %s: the port is a bond (%s); leave direct output off", nic, strings.TrimSpace(f[3]))
	}
	switch t := strings.Trim(strings.TrimSpace(f[4]), `"`); t {
	case "", "system":
	default:
		return fmt.Errorf("direct output on %s: interface type %q is not a kernel interface; leave direct output off", nic, t)
	}
	return nil
}
