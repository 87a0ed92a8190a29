// Package esphook is the ESP stage of the OVS side-car attachment: an
// ovsbridge.Hook that protects the tunnel packets OVS steers to the engine
// port with ESP in transport mode (RFC 4303), keeping the outer addresses
// (ESP-in-UDP on port 4500, RFC 3948, when the SA says so), and opens the
// ESP packets that arrive from protected peers so that OVS pops the tunnel
// as usual.
//
// The hook owns the binding of SAs to peers: an inbound SA is accepted
// only from the peer it was installed for (ESP does not authenticate the IP
// header, so an SPI alone does not prove who sent a packet), and a
// decrypted packet must be a tunnel packet of one of the peer's policies
// from that peer to our underlay address. IPv4 only: frames of other
// families are dropped and counted.
//
// The packet path neither allocates nor locks: SAs and policies are read
// from atomically published immutable maps, counters are added once per
// batch.
package esphook

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovnsec/ovnsec/internal/datapath/drop"
	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/esp"
)

// Header sizes and protocol numbers used on the packet path.
const (
	ipv4MinHeader = 20
	udpHeader     = 8
	protoUDP      = 17
	protoGRE      = 47
	protoESP      = 50
	maxL2Header   = 14 + 2*4 // Ethernet with two VLAN tags (ovsbridge.ParseFrame's limit)
)

// Releaser flushes or discards the frames the hook asked to hold
// (ovsbridge.Loop implements it).
type Releaser interface {
	Release(peer netip.Addr) (int, error)
	Discard(peer netip.Addr) int
}

// peerPolicy is what one peer may send us inside ESP and what we may send
// it: the tunnel ports (UDP) and whether GRE is allowed.
type peerPolicy struct {
	local netip.Addr
	ports [4]uint16 // UDP tunnel destination ports; 0 = unused slot
	gre   bool
	// demand counts the peer's packets that found no SA: our outbound
	// frames held for want of an outbound SA, and ESP from the peer with
	// an SPI we do not know (the peer holds SAs we lost, e.g. after our
	// restart). Shared by every policy map that has the peer, so it
	// survives SetPolicies. stale counts the latter alone.
	demand, stale *atomic.Uint64
}

func (p *peerPolicy) allows(proto uint8, dstPort uint16) bool {
	switch proto {
	case protoGRE:
		return p.gre
	case protoUDP:
		if dstPort == 0 {
			return false
		}
		for _, q := range p.ports {
			if q == dstPort {
				return true
			}
		}
	}
	return false
}

// Hook implements ovsbridge.Hook with ESP.
type Hook struct {
	table *esp.Table
	log   *slog.Logger

	policies atomic.Pointer[map[netip.Addr]*peerPolicy]
	bind     atomic.Pointer[map[esp.SPI]netip.Addr] // inbound SPI -> peer

	mu       sync.Mutex // serialises control-plane changes
	releaser Releaser   // under mu

	c counters
}

// Config configures a Hook.
type Config struct {
	// Table holds the SAs; nil makes a new one with the system clock.
	Table *esp.Table
	Log   *slog.Logger
}

// New returns a hook with no policies and no SAs: every frame is dropped
// (outbound frames of a peer with a policy but no SA are held) until
// SetPolicies and SA installation.
func New(cfg Config) *Hook {
	if cfg.Table == nil {
		cfg.Table = esp.NewTable(nil)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	h := &Hook{table: cfg.Table, log: cfg.Log}
	pol := map[netip.Addr]*peerPolicy{}
	h.policies.Store(&pol)
	b := map[esp.SPI]netip.Addr{}
	h.bind.Store(&b)
	return h
}

// Table returns the SA table the hook uses.
func (h *Hook) Table() *esp.Table { return h.table }

// SetReleaser tells the hook whom to ask to flush held frames when an
// outbound SA is installed (the packet loop, made after the hook).
func (h *Hook) SetReleaser(r Releaser) {
	h.mu.Lock()
	h.releaser = r
	h.mu.Unlock()
}

// SetPolicies replaces the protected peers. local is this host's underlay
// address (the destination of every tunnel packet a peer may send us);
// only IPv4 is supported. Policies in ModeBenchPassthrough are refused:
// this hook always encrypts.
func (h *Hook) SetPolicies(local netip.Addr, policies []ovsbridge.Policy) error {
	local = local.Unmap()
	if !local.Is4() || local.IsUnspecified() {
		return fmt.Errorf("esp hook: local underlay address %v: need a unicast IPv4 address", local)
	}
	old := *h.policies.Load()
	m := make(map[netip.Addr]*peerPolicy, len(policies))
	for _, p := range policies {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("esp hook: %w", err)
		}
		peer := p.PeerIP.Unmap()
		if !peer.Is4() {
			return fmt.Errorf("esp hook: peer %v: only IPv4 underlays are supported", peer)
		}
		if p.Mode != ovsbridge.ModeProtected {
			return fmt.Errorf("esp hook: peer %v: policy mode %v; the ESP hook needs protected policies", peer, p.Mode)
		}
		pp := m[peer]
		if pp == nil {
			pp = &peerPolicy{local: local}
			if o := old[peer]; o != nil {
				pp.demand, pp.stale = o.demand, o.stale
			} else {
				pp.demand, pp.stale = new(atomic.Uint64), new(atomic.Uint64)
			}
			m[peer] = pp
		}
		if p.Proto == ovsbridge.ProtoGRE {
			pp.gre = true
			continue
		}
		if err := pp.addPort(p.Port()); err != nil {
			return fmt.Errorf("esp hook: peer %v: %w", peer, err)
		}
	}
	h.policies.Store(&m)
	return nil
}

// Demand returns how many packets of peer have found no SA so far: our
// frames held for want of an outbound SA and ESP from the peer under an
// SPI we do not know. A count that grows while no IKE SA is being set up
// means the peer needs one now (the IKE side initiates on it rather than
// waiting); 0 for a peer without a policy.
func (h *Hook) Demand(peer netip.Addr) uint64 {
	if p := (*h.policies.Load())[peer.Unmap()]; p != nil {
		return p.demand.Load()
	}
	return 0
}

// Stale returns how many ESP packets of peer came under an SPI we do not
// know: the peer holds SAs we lost (after our restart) and, believing the
// tunnel up, will not set up new ones itself.
func (h *Hook) Stale(peer netip.Addr) uint64 {
	if p := (*h.policies.Load())[peer.Unmap()]; p != nil {
		return p.stale.Load()
	}
	return 0
}

func (p *peerPolicy) addPort(port uint16) error {
	for i, q := range p.ports {
		if q == port {
			return nil
		}
		if q == 0 {
			p.ports[i] = port
			return nil
		}
	}
	return fmt.Errorf("more than %d UDP tunnel ports to one peer", len(p.ports))
}

// AddInbound installs an inbound transport-mode SA that only peer may use.
func (h *Hook) AddInbound(peer netip.Addr, sa *esp.SA) error {
	peer = peer.Unmap()
	if err := checkSA(peer, sa, esp.Inbound); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.table.AddInbound(sa); err != nil {
		return err
	}
	h.bindLocked(sa.SPI(), peer)
	return nil
}

// SetOutbound makes sa the outbound SA towards peer, closes the one it
// replaces and flushes the frames held for peer through it.
func (h *Hook) SetOutbound(peer netip.Addr, sa *esp.SA) error {
	peer = peer.Unmap()
	if err := checkSA(peer, sa, esp.Outbound); err != nil {
		return err
	}
	h.mu.Lock()
	old, err := h.table.SetOutbound(peer, sa)
	r := h.releaser
	h.mu.Unlock()
	if err != nil {
		return err
	}
	if old != nil && old != sa {
		old.Close()
	}
	return release(r, peer)
}

// Rekey replaces the SA pair with peer make-before-break (esp.Table.Rekey):
// the new inbound SA accepts at once, the outbound switches atomically and
// the old inbound SA oldIn is removed after its grace period by Sweep.
func (h *Hook) Rekey(peer netip.Addr, newIn, newOut *esp.SA, oldIn esp.SPI, grace time.Duration) error {
	peer = peer.Unmap()
	if err := checkSA(peer, newIn, esp.Inbound); err != nil {
		return err
	}
	if err := checkSA(peer, newOut, esp.Outbound); err != nil {
		return err
	}
	h.mu.Lock()
	if oldIn != 0 {
		if p, ok := (*h.bind.Load())[oldIn]; ok && p != peer {
			h.mu.Unlock()
			return fmt.Errorf("esp hook: rekey %v: old inbound SA %v belongs to peer %v", peer, oldIn, p)
		}
	}
	if err := h.table.Rekey(peer, newIn, newOut, oldIn, grace); err != nil {
		h.mu.Unlock()
		return err
	}
	h.bindLocked(newIn.SPI(), peer)
	r := h.releaser
	h.mu.Unlock()
	return release(r, peer)
}

// RemoveInbound removes (and closes) one inbound SA.
func (h *Hook) RemoveInbound(spi esp.SPI) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	ok := h.table.RemoveInbound(spi)
	h.unbindLocked(func(s esp.SPI, _ netip.Addr) bool { return s == spi })
	return ok
}

// Retire keeps the inbound SA spi accepting packets for grace, after which
// Sweep removes it (the peer switched to a new SA).
func (h *Hook) Retire(spi esp.SPI, grace time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.table.Retire(spi, grace)
}

// RemoveOutbound removes (and closes) the outbound SA towards peer; later
// frames to it are held until a new one is set.
func (h *Hook) RemoveOutbound(peer netip.Addr) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.table.RemoveOutbound(peer.Unmap())
}

// RemovePeer removes every SA of peer and discards the frames held for it.
// Its policy stays: later frames to it are held, frames from it dropped.
func (h *Hook) RemovePeer(peer netip.Addr) {
	peer = peer.Unmap()
	h.mu.Lock()
	h.table.RemoveOutbound(peer)
	for spi, p := range *h.bind.Load() {
		if p == peer {
			h.table.RemoveInbound(spi)
		}
	}
	h.unbindLocked(func(_ esp.SPI, p netip.Addr) bool { return p == peer })
	r := h.releaser
	h.mu.Unlock()
	if r != nil {
		r.Discard(peer)
	}
}

// Discard drops the frames held for peer (its IKE negotiation failed).
func (h *Hook) Discard(peer netip.Addr) int {
	h.mu.Lock()
	r := h.releaser
	h.mu.Unlock()
	if r == nil {
		return 0
	}
	return r.Discard(peer.Unmap())
}

// Sweep applies SA time lifetimes and removes retired inbound SAs whose
// grace period ended (esp.Table.Sweep); call it about once a second.
func (h *Hook) Sweep() []esp.SPI {
	h.mu.Lock()
	defer h.mu.Unlock()
	removed := h.table.Sweep()
	if len(removed) > 0 {
		gone := make(map[esp.SPI]bool, len(removed))
		for _, s := range removed {
			gone[s] = true
		}
		h.unbindLocked(func(s esp.SPI, _ netip.Addr) bool { return gone[s] })
	}
	return removed
}

// PeerOf returns the peer an inbound SPI is bound to.
func (h *Hook) PeerOf(spi esp.SPI) (netip.Addr, bool) {
	p, ok := (*h.bind.Load())[spi]
	return p, ok
}

func (h *Hook) bindLocked(spi esp.SPI, peer netip.Addr) {
	old := *h.bind.Load()
	m := make(map[esp.SPI]netip.Addr, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[spi] = peer
	h.bind.Store(&m)
}

func (h *Hook) unbindLocked(drop func(esp.SPI, netip.Addr) bool) {
	old := *h.bind.Load()
	m := make(map[esp.SPI]netip.Addr, len(old))
	for k, v := range old {
		if !drop(k, v) {
			m[k] = v
		}
	}
	h.bind.Store(&m)
}

func checkSA(peer netip.Addr, sa *esp.SA, dir esp.Direction) error {
	if !peer.Is4() {
		return fmt.Errorf("esp hook: peer %v: only IPv4 underlays are supported", peer)
	}
	if sa == nil {
		return fmt.Errorf("esp hook: nil %v SA for peer %v", dir, peer)
	}
	if sa.Dir() != dir {
		return fmt.Errorf("esp hook: %v for peer %v: want an %v SA", sa, peer, dir)
	}
	if sa.Mode() != esp.Transport {
		return fmt.Errorf("esp hook: %v for peer %v: the OVS attachment uses transport mode", sa, peer)
	}
	return nil
}

func release(r Releaser, peer netip.Addr) error {
	if r == nil {
		return nil
	}
	if _, err := r.Release(peer); err != nil {
		return fmt.Errorf("esp hook: %w", err)
	}
	return nil
}

// Outbound seals each tunnel packet to a protected peer in place. A frame
// whose peer has no usable outbound SA is held (unchanged) for Release.
func (h *Hook) Outbound(frames []*ovsbridge.Frame) {
	pols := *h.policies.Load()
	var n batchCounts
	for _, f := range frames {
		f.Verdict = ovsbridge.VerdictDrop
		r := h.outbound(f, pols)
		n.add(r)
		switch r {
		case resSealed:
			f.Verdict = ovsbridge.VerdictPass
		case resHeld:
			f.Verdict = ovsbridge.VerdictHold
		}
	}
	h.c.add(&n)
}

func (h *Hook) outbound(f *ovsbridge.Frame, pols map[netip.Addr]*peerPolicy) result {
	in := &f.Info
	if !f.Peer.Is4() || !in.Dst.Is4() || in.L3 > maxL2Header {
		return dropped(drop.NotIPv4)
	}
	pol := pols[f.Peer]
	if pol == nil {
		return dropped(drop.NoPolicy)
	}
	if in.Src != pol.local || !pol.allows(in.Proto, in.DstPort) {
		return dropped(drop.Policy)
	}
	if in.Fragment {
		return dropped(drop.Fragment)
	}
	sa := h.table.Outbound(f.Peer)
	if sa == nil {
		pol.demand.Add(1)
		return resHeld
	}
	buf := f.Buffer()
	off := f.Offset()
	th := sa.TransportHeadroom()
	if off < th || off+in.L3+in.L3Len > len(buf) {
		return dropped(drop.Malformed) // cannot happen with ovsbridge's Headroom
	}
	ipStart := off + in.L3
	// Move the Ethernet header to its new place first: the sealed packet
	// will start th bytes before the IP header and cover the old one.
	copy(buf[off-th:ipStart-th], buf[off:ipStart])
	out, err := sa.SealTransport4(buf[ipStart-th:], buf[ipStart:ipStart+in.L3Len])
	if err != nil {
		if errors.Is(err, esp.ErrExpired) || errors.Is(err, esp.ErrSeqOverflow) {
			pol.demand.Add(1)
			return resHeld // the frame is unchanged; a rekey installs a new SA
		}
		return dropped(drop.FromESP(err))
	}
	if !f.SetBounds(off-th, in.L3+len(out)) {
		return dropped(drop.TooBig)
	}
	return resSealed
}

// Inbound opens each ESP packet from a protected peer in place and checks
// that what it carried is a tunnel packet from that peer to us. IKE
// messages on port 4500 (non-ESP marker) pass unchanged to the host's IKE
// socket: OpenFlow cannot tell them from ESP-in-UDP, so the rules steer
// both here.
func (h *Hook) Inbound(frames []*ovsbridge.Frame) {
	pols := *h.policies.Load()
	bind := *h.bind.Load()
	var n batchCounts
	for _, f := range frames {
		f.Verdict = ovsbridge.VerdictDrop
		r := h.inbound(f, pols, bind)
		n.add(r)
		if r == resOpened || r == resIKE {
			f.Verdict = ovsbridge.VerdictPass
		}
	}
	h.c.add(&n)
}

func (h *Hook) inbound(f *ovsbridge.Frame, pols map[netip.Addr]*peerPolicy, bind map[esp.SPI]netip.Addr) result {
	in := &f.Info
	if !f.Peer.Is4() || !in.Src.Is4() || in.L3 > maxL2Header {
		return dropped(drop.NotIPv4)
	}
	pol := pols[f.Peer]
	if pol == nil {
		return dropped(drop.NoPolicy)
	}
	if in.Dst != pol.local {
		return dropped(drop.Policy)
	}
	b := f.Bytes()
	if in.L3+in.L3Len > len(b) || in.L3Len < ipv4MinHeader {
		return dropped(drop.Malformed)
	}
	ip := b[in.L3 : in.L3+in.L3Len]
	ihl := int(ip[0]&0x0f) * 4
	if ihl < ipv4MinHeader || ihl > len(ip) {
		return dropped(drop.Malformed)
	}
	espOff := ihl
	switch in.Proto {
	case protoESP:
	case protoUDP:
		if in.DstPort != esp.NATTPort || len(ip) < ihl+udpHeader {
			return dropped(drop.Policy)
		}
		if in.Fragment {
			return dropped(drop.Fragment)
		}
		switch esp.Classify4500(ip[ihl+udpHeader:]) {
		case esp.KindIKE:
			return resIKE
		case esp.KindKeepalive:
			return dropped(drop.Keepalive)
		case esp.KindESP:
		default:
			return dropped(drop.Malformed)
		}
		espOff += udpHeader
	default:
		return dropped(drop.Policy)
	}
	if in.Fragment {
		return dropped(drop.Fragment)
	}
	if len(ip) < espOff+esp.HeaderLen {
		return dropped(drop.Malformed)
	}
	spi := esp.SPI(binary.BigEndian.Uint32(ip[espOff:]))
	sa := h.table.Inbound(spi)
	if sa == nil {
		h.table.CountNoSA()
		pol.demand.Add(1)
		pol.stale.Add(1)
		return dropped(drop.NoSA)
	}
	if owner, ok := bind[spi]; !ok || owner != f.Peer {
		sa.CountPolicyDrop()
		return dropped(drop.WrongPeer)
	}
	out, err := sa.OpenTransport4(ip)
	if err != nil {
		return dropped(drop.FromESP(err))
	}
	// The decrypted packet keeps the outer header: same addresses, the
	// protocol now the one ESP carried.
	proto := out[9]
	var dport uint16
	if proto == protoUDP {
		ohl := int(out[0]&0x0f) * 4
		if len(out) < ohl+udpHeader {
			sa.CountPolicyDrop()
			return dropped(drop.InnerPolicy)
		}
		dport = binary.BigEndian.Uint16(out[ohl+2:])
	}
	if !pol.allows(proto, dport) {
		sa.CountPolicyDrop()
		return dropped(drop.InnerPolicy)
	}
	shift := cap(ip) - cap(out) // how far the IP header moved forward
	off := f.Offset()
	copy(f.Buffer()[off+shift:off+shift+in.L3], f.Buffer()[off:off+in.L3])
	if !f.SetBounds(off+shift, in.L3+len(out)) {
		return dropped(drop.Malformed)
	}
	return resOpened
}

var _ ovsbridge.Hook = (*Hook)(nil)
