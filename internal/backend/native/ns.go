// North-south: host-level tunnel-mode IPsec to gateways outside the
// cluster, on the same IKE engine and the same NAT-T socket as the
// east-west tunnels (one host has one pair of UDP 500/4500 sockets). The
// packets go through one TUN device (internal/datapath/tun) whose routes
// live in a table of their own: every gateway and every passthrough subnet
// is excluded ahead of it, so a catch-all remote subnet never cuts the
// host off its gateway. ESP-in-UDP only (the datapath has no raw ESP):
// encapsulation is forced. A connection fails closed: while it is down its
// subnets still route into the device, where packets wait for an SA and
// are dropped, unless it asks for failureshunt=passthrough.

package native

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/ovnsec/ovnsec/internal/datapath/tun"
	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike"
)

const (
	// NSDevice is the north-south TUN device.
	NSDevice = "ovnsec-ns0"
	// NSTable is the routing table of the north-south routes; rule
	// priorities NSTable (lookup) and NSTable-1 (exclusions).
	NSTable = 20051
	// nsPeerPrefix starts the IKE peer names of north-south connections
	// (east-west peers are named after OVS interfaces).
	nsPeerPrefix = "ns:"
)

// NSPlan is what the backend does for one north-south connection.
type NSPlan struct {
	Name string
	// ID identifies the configuration: a plan with the same ID as the
	// running one is left alone (its SAs stay). Empty: always applied.
	ID string
	// Peer is the IKE peer: one tunnel-mode child named after the
	// connection, with the local and remote subnets as selectors. Its
	// Name is set by the backend; encapsulation is forced.
	Peer ike.Peer
	// Gateway is the remote end (the Peer's Remote); Remote the subnets
	// behind it, routed into the device.
	Gateway netip.Addr
	Remote  []netip.Prefix
	// Addrs are the local inner addresses the host's own packets leave
	// from (put on the device).
	Addrs []netip.Prefix
	// Passthrough are subnets that never go through any tunnel; a
	// connection of type passthrough has only these.
	Passthrough []netip.Prefix
	// FailOpen: while the connection is down its subnets are routed
	// normally (failureshunt=passthrough) instead of dropped.
	FailOpen bool
	// OnDemand: the first packet towards the subnets initiates.
	OnDemand bool
}

// passthroughOnly reports whether p is a passthrough connection.
func (p NSPlan) passthroughOnly() bool { return len(p.Remote) == 0 && len(p.Passthrough) > 0 }

// nsState is what the backend holds for one north-south connection.
type nsState struct {
	plan          NSPlan
	peer          string // IKE peer name
	up            bool   // an SA pair is installed
	lastEvent     string
	installErr    string
	established   time.Time
	inSPI, outSPI esp.SPI
	in, out       *esp.SA
}

// NSStatus is one north-south connection's state, as data.
type NSStatus struct {
	Name        string
	Gateway     netip.Addr
	Remote      []netip.Prefix
	Passthrough []netip.Prefix
	Up          bool
	// Reason says why it is not up ("" when up).
	Reason        string
	IKE           ike.PeerStatus
	InSPI, OutSPI esp.SPI
	In, Out       esp.Stats
	LastEvent     string
}

// SetNorthSouth makes the north-south connections exactly plans: new and
// changed ones configured, unchanged ones left alone (their SAs stay),
// missing ones removed (their SAs deleted at the gateway). The routes,
// exclusions and addresses are published once for the whole set, so a
// connection's subnets never route in clear while another is being
// configured. It returns one error per connection that could not be
// configured; the others are in place.
func (b *Backend) SetNorthSouth(plans []NSPlan) map[string]error {
	b.mu.Lock()
	defer b.mu.Unlock()
	errs := map[string]error{}
	if b.closed {
		for _, p := range plans {
			errs[p.Name] = errClosed
		}
		return errs
	}
	want := map[string]NSPlan{}
	gateways := map[netip.Addr]string{}
	for _, p := range plans {
		if err := p.check(); err != nil {
			errs[p.Name] = err
			continue
		}
		if !p.passthroughOnly() {
			if other, dup := gateways[p.Gateway]; dup {
				errs[p.Name] = fmt.Errorf("north-south connection %s: gateway %v is already used by connection %s; merge their subnets into one connection", p.Name, p.Gateway, other)
				continue
			}
			gateways[p.Gateway] = p.Name
		}
		want[p.Name] = p
	}
	if len(want) > 0 {
		if err := b.openNSLocked(); err != nil {
			for name := range want {
				errs[name] = err
			}
			return errs
		}
	}
	for name, st := range b.ns {
		if p, ok := want[name]; !ok || !sameNSPlan(st.plan, p) {
			b.dropNSLocked(st)
			delete(b.ns, name)
			if !ok {
				b.log.Info("north-south connection removed", "conn", name)
			}
		}
	}
	var added []*nsState
	for name, p := range want {
		if b.ns[name] != nil {
			continue // unchanged
		}
		st := &nsState{plan: p, peer: nsPeerPrefix + p.Name, lastEvent: "configured"}
		b.ns[name] = st
		added = append(added, st)
	}
	// Routes first (into the device: packets wait there for SAs), then
	// the IKE peers that bring the SAs.
	if err := b.publishNSLocked(); err != nil {
		b.log.Error("north-south routes", "err", err)
		for _, st := range added {
			errs[st.plan.Name] = fmt.Errorf("north-south connection %s: %w", st.plan.Name, err)
		}
	}
	for _, st := range added {
		p := st.plan
		if p.passthroughOnly() {
			st.lastEvent = "passthrough: routed outside every tunnel"
			b.log.Info("north-south passthrough configured", "conn", p.Name, "subnets", p.Passthrough)
			continue
		}
		peer := p.Peer
		peer.Name = st.peer
		peer.ForceEncap = true // the TUN datapath speaks ESP-in-UDP only
		if err := b.eng.AddPeer(peer); err != nil {
			st.installErr = err.Error()
			errs[p.Name] = fmt.Errorf("north-south connection %s: configure IKE peer: %w", p.Name, err)
			continue
		}
		b.nsByPeer[st.peer] = st
		b.log.Info("north-south connection configured", "conn", p.Name, "gateway", p.Gateway, "remote", p.Remote,
			"initiate", peer.Initiate, "on_demand", p.OnDemand, "fail_open", p.FailOpen)
	}
	if len(b.ns) == 0 {
		b.closeNSLocked(true)
	}
	return errs
}

// sameNSPlan reports whether two plans configure the same thing.
func sameNSPlan(a, b NSPlan) bool { return a.ID != "" && a.ID == b.ID }

// check refuses a plan the datapath cannot carry.
func (p NSPlan) check() error {
	if p.Name == "" {
		return errors.New("north-south connection without a name")
	}
	if p.passthroughOnly() {
		return nil
	}
	if !p.Gateway.Is4() {
		return fmt.Errorf("north-south connection %s: gateway %v: only an IPv4 underlay is supported (inner subnets may be IPv6)", p.Name, p.Gateway)
	}
	if len(p.Remote) == 0 {
		return fmt.Errorf("north-south connection %s: no remote subnet", p.Name)
	}
	return nil
}

// dropNSLocked removes st's IKE peer (telling the gateway) and SAs.
func (b *Backend) dropNSLocked(st *nsState) {
	if _, ok := b.nsByPeer[st.peer]; ok {
		delete(b.nsByPeer, st.peer)
		b.eng.RemovePeer(st.peer)
	}
	if a := b.nsAtt.Load(); a != nil && !st.plan.passthroughOnly() {
		a.RemoveSAs(st.plan.Gateway)
	}
	st.up, st.in, st.out = false, nil, nil
}

// openNSLocked opens the device on the engine's NAT-T socket once.
func (b *Backend) openNSLocked() error {
	if b.nsAtt.Load() != nil {
		return nil
	}
	if b.socks.NATT == nil {
		return errors.New("north-south connections need the IKE engine's own UDP sockets (this backend's engine was injected)")
	}
	a, err := tun.Open(tun.System{NetNS: b.cfg.Netns, Name: NSDevice, Shared: b.socks.NATT, Table: NSTable},
		tun.Config{Table: b.nsTable, OnNoSA: b.nsOnDemand, Clock: b.cfg.Clock, Logger: b.log})
	if err != nil {
		return fmt.Errorf("north-south datapath: %w", err)
	}
	b.nsAtt.Store(a)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		// A device closed on purpose (no connection left) ends Run
		// without error; anything else is logged. Connections then
		// stay down (dropped, never in clear) until ovnsecd restarts.
		if err := a.Run(b.life); err != nil {
			b.log.Error("north-south datapath stopped; north-south traffic is dropped until ovnsecd restarts", "err", err)
		}
	}()
	b.log.Info("north-south datapath open", "device", NSDevice, "table", NSTable)
	return nil
}

// closeNSLocked closes the device; withdraw removes its routes,
// blackholes and rules first (no connection left, or an exit with
// cleanup), else they stay and the subnets stay dropped until the next
// process takes over.
func (b *Backend) closeNSLocked(withdraw bool) {
	a := b.nsAtt.Load()
	if a == nil {
		return
	}
	if withdraw {
		if err := a.Withdraw(); err != nil {
			b.log.Warn("north-south: withdraw routes", "err", err)
		}
	}
	a.Close()
	b.nsAtt.Store(nil)
}

// publishNSLocked hands the datapath the peers, exclusions and addresses
// of every connection. A fail-open connection that is down routes
// normally; every other one routes into the device, up or not.
func (b *Backend) publishNSLocked() error {
	a := b.nsAtt.Load()
	if a == nil {
		return nil
	}
	var peers []tun.Peer
	var excl, addrs []netip.Prefix
	for _, st := range b.ns {
		p := st.plan
		excl = append(excl, p.Passthrough...)
		if p.passthroughOnly() {
			continue
		}
		excl = append(excl, netip.PrefixFrom(p.Gateway, p.Gateway.BitLen()))
		addrs = append(addrs, p.Addrs...)
		if p.FailOpen && !st.up {
			continue
		}
		peers = append(peers, tun.Peer{Addr: p.Gateway, Remote: p.Remote})
	}
	slices.SortFunc(peers, func(x, y tun.Peer) int { return x.Addr.Compare(y.Addr) })
	excl, addrs = uniquePrefixes(excl), uniquePrefixes(addrs)
	// Exclusions first: a new catch-all must never route before its
	// gateway is excluded.
	return errors.Join(a.SetExclusions(excl), a.SetAddrs(addrs), a.SetPeers(peers))
}

func uniquePrefixes(ps []netip.Prefix) []netip.Prefix {
	for i := range ps {
		ps[i] = ps[i].Masked()
	}
	slices.SortFunc(ps, func(x, y netip.Prefix) int {
		if c := x.Addr().Compare(y.Addr()); c != 0 {
			return c
		}
		return x.Bits() - y.Bits()
	})
	return slices.Compact(ps)
}

// nsOnDemand is the datapath's OnNoSA: a packet towards gateway found no
// SA. An on-demand connection initiates.
func (b *Backend) nsOnDemand(gateway netip.Addr) {
	go func() { // OnNoSA must not block
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, st := range b.ns {
			if st.plan.Gateway != gateway || !st.plan.OnDemand || b.closed {
				continue
			}
			if ps := b.eng.Status(st.peer); ps.Up() || ps.State == ike.SAConnecting {
				return
			}
			if err := b.eng.Initiate(st.peer); err != nil {
				b.log.Warn("north-south: initiate on demand", "conn", st.plan.Name, "err", err)
			}
		}
	}()
}

// deliverNS is the engine's OnESP: ESP-in-UDP that arrived on the NAT-T
// socket goes to the north-south datapath (east-west ESP never reaches the
// socket: br-phy steers it to the engine port).
func (b *Backend) deliverNS(d []byte, from netip.AddrPort) {
	if a := b.nsAtt.Load(); a != nil {
		a.DeliverESP(d, from)
	}
}

// handleNSChildLocked installs, rekeys and removes a north-south
// connection's tunnel-mode SAs.
func (b *Backend) handleNSChildLocked(st *nsState, ev ike.ChildEvent, c ike.ChildSA) error {
	a := b.nsAtt.Load()
	if a == nil {
		return errors.New("north-south datapath not open")
	}
	gw := st.plan.Gateway
	switch ev {
	case ike.ChildDeleted:
		if c.InSPI != st.inSPI {
			return nil // a replaced SA: the datapath retires it itself
		}
		a.RemoveSAs(gw)
		st.up, st.in, st.out = false, nil, nil
		st.lastEvent = "Child SA deleted"
		if st.plan.FailOpen {
			return b.publishNSLocked()
		}
		return nil
	case ike.ChildEstablished, ike.ChildRekeyed:
	default:
		return nil
	}
	if c.Mode != esp.Tunnel {
		return fmt.Errorf("child %s negotiated %v mode; north-south needs tunnel mode", c.Name, c.Mode)
	}
	if c.Encap.Type != esp.EncapUDP {
		return fmt.Errorf("child %s is not UDP-encapsulated; the north-south datapath sends ESP-in-UDP only", c.Name)
	}
	mk := func(spi esp.SPI, dir esp.Direction, key esp.Key) (*esp.SA, error) {
		return esp.NewSA(esp.Config{SPI: spi, Dir: dir, Mode: esp.Tunnel, Encap: c.Encap, Key: key, ESN: c.ESN, Clock: b.cfg.Clock})
	}
	in, err := mk(c.InSPI, esp.Inbound, c.InKey)
	if err != nil {
		return fmt.Errorf("child %s: %w", c.Name, err)
	}
	out, err := mk(c.OutSPI, esp.Outbound, c.OutKey)
	if err != nil {
		in.Close()
		return fmt.Errorf("child %s: %w", c.Name, err)
	}
	wasUp := st.up
	if st.plan.FailOpen && !wasUp {
		// Route into the device before the SAs go in.
		st.up = true
		if err := b.publishNSLocked(); err != nil {
			st.up = false
			return err
		}
	}
	if ev == ike.ChildRekeyed && wasUp && c.Replaces == st.inSPI {
		err = a.Rekey(gw, in, out, st.inSPI, b.cfg.RekeyGrace)
	} else {
		a.RemoveSAs(gw)
		err = a.Install(gw, in, out)
	}
	if err != nil {
		in.Close()
		out.Close()
		return fmt.Errorf("child %s: %w", c.Name, err)
	}
	st.up, st.in, st.out = true, in, out
	st.inSPI, st.outSPI = c.InSPI, c.OutSPI
	st.established = c.Established
	st.installErr = ""
	st.lastEvent = "Child SA " + ev.String()
	b.log.Info("north-south Child SA installed", "conn", st.plan.Name, "event", ev, "spi_in", fmt.Sprintf("%#08x", uint32(c.InSPI)),
		"spi_out", fmt.Sprintf("%#08x", uint32(c.OutSPI)), "encap", c.Encap, "local_ts", c.LocalTS, "remote_ts", c.RemoteTS)
	return nil
}

// NSStatus returns every north-south connection's state, by name.
func (b *Backend) NSStatus() []NSStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]NSStatus, 0, len(b.ns))
	for _, st := range b.ns {
		s := NSStatus{Name: st.plan.Name, Gateway: st.plan.Gateway, Remote: st.plan.Remote, Passthrough: st.plan.Passthrough,
			Up: st.up || st.plan.passthroughOnly(), LastEvent: st.lastEvent, InSPI: st.inSPI, OutSPI: st.outSPI}
		if !st.plan.passthroughOnly() {
			s.IKE = b.eng.Status(st.peer)
			if st.in != nil {
				s.In, s.Out = st.in.Stats(), st.out.Stats()
			}
		}
		switch {
		case s.Up:
		case st.installErr != "":
			s.Reason = st.installErr
		case s.IKE.Reason != "":
			s.Reason = s.IKE.Reason
		case st.plan.OnDemand:
			s.Reason = "waiting for traffic (auto=ondemand)"
		case !st.plan.Peer.Initiate:
			s.Reason = "waiting for the gateway to initiate (auto=add)"
		default:
			s.Reason = "IKE negotiation in progress"
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y NSStatus) int {
		if x.Name < y.Name {
			return -1
		}
		if x.Name > y.Name {
			return 1
		}
		return 0
	})
	return out
}
