// Package tun attaches tunnel-mode ESP SAs to a TUN device: packets the
// kernel routes into the device towards a peer's subnets are sealed and
// sent to the peer as ESP-in-UDP (RFC 3948, port 4500); ESP received on the
// underlay socket is opened, checked against the peer's subnets and written
// back into the device. IKE messages arriving on port 4500 are handed to an
// optional callback.
//
// Both directions work in batches: one device read returns many packets
// (wireguard-go's tun splits TSO super-packets and GRO-coalesces on write),
// one sendmmsg/recvmmsg moves many datagrams (runs of equal-sized datagrams
// to one peer leave as one UDP GSO send and arrive GRO-coalesced where the
// kernel supports it), and the packets are sealed in place and opened into
// buffers allocated once (about 24 MiB per attachment: 64 KiB per batch
// slot, because the device hands over and coalesces 64 KiB packets). The
// packet path takes no lock and allocates nothing.
//
// Only ESP-in-UDP over an IPv4 underlay is sent and received (the kernel
// here has no ESP; raw IP protocol 50 is not implemented). Outbound packets
// without an SA wait in a small hold queue (oldest dropped and counted when
// full) until Install or Rekey, and Config.OnNoSA asks IKE for SAs.
package tun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/esp"
)

// Device is the TUN side of an attachment. golang.zx2c4.com/wireguard/tun's
// Device satisfies it.
type Device interface {
	// Read reads one or more packets into bufs[i][offset:], setting
	// sizes[i], and returns how many it read.
	Read(bufs [][]byte, sizes []int, offset int) (int, error)
	// Write writes the packets bufs[i][offset:]. It may reorder, extend
	// and swap the slices in bufs (GRO coalescing), never their backing
	// arrays beyond their capacity.
	Write(bufs [][]byte, offset int) (int, error)
	// BatchSize is the most packets one Read returns.
	BatchSize() int
	Close() error
}

// Message is one underlay datagram.
type Message struct {
	// Buf is the buffer to fill (ReadBatch, its full length) or the
	// datagram to send (WriteBatch).
	Buf []byte
	// N is the length received (ReadBatch).
	N int
	// Seg, if not 0, says Buf[:N] holds several datagrams of Seg bytes
	// each, the last one possibly shorter (UDP GRO, ReadBatch).
	Seg int
	// Addr is the sender (ReadBatch) or the destination (WriteBatch).
	Addr netip.AddrPort
}

// Conn is the underlay side of an attachment: batched UDP on one socket.
type Conn interface {
	// ReadBatch receives at least one message, blocking until one
	// arrives, and returns how many it received; a message may hold
	// several datagrams (Message.Seg).
	ReadBatch(msgs []Message) (int, error)
	// WriteBatch sends every message, skipping (not retrying) ones the
	// kernel refuses, and returns how many were sent and the first error.
	WriteBatch(msgs []Message) (int, error)
	Close() error
}

// Routes keeps the kernel routes for the peers' subnets pointing into the
// device. Set receives the complete list each time the peers change.
type Routes interface {
	Set(prefixes []netip.Prefix) error
}

// Config is an attachment's parts.
type Config struct {
	Device Device
	Conn   Conn
	// Table holds the SAs. Install and Rekey go through the attachment so
	// that it knows which peer each inbound SA belongs to; an inbound SA
	// added to the table directly is not bound and its packets are dropped
	// (policy).
	Table *esp.Table
	Peers []Peer
	// Routes, if set, is told the peers' subnets (New and SetPeers).
	Routes Routes
	// OnIKE receives IKE messages from port 4500 (the non-ESP marker
	// removed) on the receive goroutine. It must not block and must copy
	// msg to keep it. Nil drops them (counted as IKE).
	OnIKE func(msg []byte, from netip.AddrPort)
	// OnNoSA is told the peer of an outbound packet that found no SA
	// (once per wait: when the peer's first packet is held), on the
	// transmit goroutine, so that IKE can set SAs up. It must not block.
	OnNoSA func(peer netip.Addr)
	// HoldPackets is how many outbound packets without an SA (up to 2 KiB
	// each) wait for Install or Rekey, oldest dropped first; 0 means
	// DefaultHoldPackets, negative means none (drop at once).
	HoldPackets int
	// BatchSize is the most datagrams per underlay receive; 0 means 128.
	BatchSize int
	// SweepInterval is how often Run sweeps the table (retired SAs, time
	// lifetimes); 0 means one second.
	SweepInterval time.Duration
	// Clock makes the sweep's ticker; default clock.Real.
	Clock  clock.Clock
	Logger *slog.Logger
}

// Attachment runs the data path between a Device and a Conn.
type Attachment struct {
	dev    Device
	conn   Conn
	table  *esp.Table
	routes Routes
	onIKE  func([]byte, netip.AddrPort)
	onNoSA func(netip.Addr)
	log    *slog.Logger
	sweep  time.Duration
	clock  clock.Clock

	pol  atomic.Pointer[policy]
	mu   sync.Mutex             // serialises policy and SA changes
	bind map[esp.SPI]netip.Addr // inbound SPI -> peer; under mu

	tx *txState
	rx *rxState
	// deliver is DeliverESP's state: one datagram at a time, handed over
	// by the owner of a shared socket.
	deliver *rxState
	hold    *holdQueue // nil: no hold queue
	sendMu  sync.Mutex // one WriteBatch at a time: transmit goroutine and release

	txc, rxc dirCounters

	closeOnce sync.Once
	closed    atomic.Bool // set before the device and socket are closed
}

// Buffer layout. Outbound packets are read at txOffset so that Seal finds
// its headroom in front of them and seals in place. Inbound ESP is received
// into receive buffers and opened into a packet buffer at rxOffset, where
// the device write starts (it needs 10 bytes in front for the virtio
// header).
const (
	txOffset = esp.Headroom
	rxOffset = esp.Headroom
	// maxPacket is the largest IP packet: the device may hand over, and
	// GRO-coalesce on write, up to 64 KiB.
	maxPacket = 65535
	bufSize   = esp.Headroom + maxPacket + esp.MaxTailroom
)

// DefaultBatchSize is the underlay batch size when Config.BatchSize is 0.
const DefaultBatchSize = 128

// New checks cfg and returns an attachment ready to Run.
func New(cfg Config) (*Attachment, error) {
	if cfg.Device == nil || cfg.Conn == nil || cfg.Table == nil {
		return nil, errors.New("tun attachment: Device, Conn and Table are required")
	}
	a := &Attachment{
		dev:    cfg.Device,
		conn:   cfg.Conn,
		table:  cfg.Table,
		routes: cfg.Routes,
		onIKE:  cfg.OnIKE,
		onNoSA: cfg.OnNoSA,
		log:    cfg.Logger,
		sweep:  cfg.SweepInterval,
		clock:  clock.Or(cfg.Clock),
		bind:   map[esp.SPI]netip.Addr{},
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.sweep <= 0 {
		a.sweep = time.Second
	}
	pol, err := newPolicy(cfg.Peers, nil)
	if err != nil {
		return nil, fmt.Errorf("tun attachment: %w", err)
	}
	if err := a.setRoutes(pol); err != nil {
		return nil, err
	}
	a.pol.Store(pol)
	batch := cfg.BatchSize
	if batch <= 0 {
		batch = DefaultBatchSize
	}
	a.tx = newTxState(max(cfg.Device.BatchSize(), 1))
	if _, shared := cfg.Conn.(*SharedConn); shared {
		// The socket's owner reads; ReadBatch only waits for Close.
		a.rx = newRxState(1)
		a.deliver = a.rx
	} else {
		a.rx = newRxState(batch)
	}
	switch {
	case cfg.HoldPackets == 0:
		a.hold = newHoldQueue(DefaultHoldPackets)
	case cfg.HoldPackets > 0:
		a.hold = newHoldQueue(cfg.HoldPackets)
	}
	return a, nil
}

func (a *Attachment) setRoutes(p *policy) error {
	if a.routes == nil {
		return nil
	}
	var all []netip.Prefix
	for _, peer := range p.peers {
		all = append(all, peer.Remote...)
	}
	if err := a.routes.Set(all); err != nil {
		return fmt.Errorf("tun attachment: routes for %v: %w", all, err)
	}
	return nil
}

// SetPeers replaces the peer list (and the routes). SAs stay installed and
// bound to their peer's address: the SAs of a peer that is no longer listed
// carry no traffic (no route, inbound dropped as policy) until it is listed
// again or RemoveSAs removes them.
func (a *Attachment) SetPeers(peers []Peer) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	pol, err := newPolicy(peers, a.bind)
	if err != nil {
		return fmt.Errorf("tun attachment: %w", err)
	}
	if err := a.setRoutes(pol); err != nil {
		return err
	}
	a.pol.Store(pol)
	return nil
}

// SetExclusions makes the destinations that bypass the attachment's
// routing table exactly prefixes: the tunnels' own gateways and
// passthrough subnets, so that a catch-all remote subnet cannot capture
// them. It needs routes kept in a table of their own (System.Table).
func (a *Attachment) SetExclusions(prefixes []netip.Prefix) error {
	r, ok := a.routes.(interface{ SetExclusions([]netip.Prefix) error })
	if !ok {
		return errors.New("tun attachment: exclusions need the attachment's own routes (Open with System.Table)")
	}
	if err := r.SetExclusions(prefixes); err != nil {
		return fmt.Errorf("tun attachment: %w", err)
	}
	return nil
}

// SetAddrs makes the device's addresses exactly prefixes: the local inner
// addresses the host's own packets into the tunnels leave from.
func (a *Attachment) SetAddrs(prefixes []netip.Prefix) error {
	r, ok := a.routes.(interface{ SetAddrs([]netip.Prefix) error })
	if !ok {
		return errors.New("tun attachment: addresses need the attachment's own device (Open)")
	}
	if err := r.SetAddrs(prefixes); err != nil {
		return fmt.Errorf("tun attachment: %w", err)
	}
	return nil
}

// Withdraw removes the attachment's routes, and with a table of its own
// the blackholes and rules that outlive the device: the peers' subnets
// are routed normally again. For a removed configuration or an exit with
// cleanup; a plain Close keeps them, so traffic stays dropped until the
// next process takes over.
func (a *Attachment) Withdraw() error {
	r, ok := a.routes.(interface{ Withdraw() error })
	if !ok {
		return nil
	}
	if err := r.Withdraw(); err != nil {
		return fmt.Errorf("tun attachment: withdraw: %w", err)
	}
	return nil
}

// Peers returns the current peer list.
func (a *Attachment) Peers() []Peer {
	p := a.pol.Load()
	out := make([]Peer, len(p.peers))
	for i, peer := range p.peers {
		out[i] = Peer{Addr: peer.Addr, Remote: append([]netip.Prefix(nil), peer.Remote...)}
	}
	return out
}

func checkPair(peer netip.Addr, in, out *esp.SA) error {
	if in == nil || in.Dir() != esp.Inbound || in.Mode() != esp.Tunnel {
		return fmt.Errorf("SAs for %v: %v is not an inbound tunnel-mode SA", peer, in)
	}
	if out == nil || out.Dir() != esp.Outbound || out.Mode() != esp.Tunnel {
		return fmt.Errorf("SAs for %v: %v is not an outbound tunnel-mode SA", peer, out)
	}
	if out.Encap().Type != esp.EncapUDP {
		return fmt.Errorf("SAs for %v: outbound %v must use UDP encapsulation (this attachment sends ESP-in-UDP)", peer, out)
	}
	return nil
}

// bindLocked binds spi to peer and publishes the policy.
func (a *Attachment) bindLocked(peer netip.Addr, spi esp.SPI) error {
	a.bind[spi] = peer
	return a.publishLocked()
}

// unbindLocked forgets the bindings of spis and publishes the policy.
func (a *Attachment) unbindLocked(spis []esp.SPI) {
	if len(spis) == 0 {
		return
	}
	for _, spi := range spis {
		delete(a.bind, spi)
	}
	a.publishLocked()
}

// publishLocked rebuilds the policy from the peers and bindings.
func (a *Attachment) publishLocked() error {
	pol, err := newPolicy(a.pol.Load().peers, a.bind)
	if err != nil {
		return err // cannot happen: the peers were valid when published
	}
	a.pol.Store(pol)
	return nil
}

func (a *Attachment) knownLocked(peer netip.Addr) bool {
	for _, p := range a.pol.Load().peers {
		if p.Addr == peer {
			return true
		}
	}
	return false
}

// Install installs a first SA pair with peer: in is added to the table and
// bound to the peer, out becomes the outbound SA towards it (a previous
// outbound SA is closed).
func (a *Attachment) Install(peer netip.Addr, in, out *esp.SA) error {
	if err := checkPair(peer, in, out); err != nil {
		return fmt.Errorf("tun attachment: install %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.knownLocked(peer) {
		return fmt.Errorf("tun attachment: install SAs for %v: not a configured peer; SetPeers first", peer)
	}
	// Bind before the SA is in the table, so that its first packets
	// are not dropped as unbound.
	if a.table.Inbound(in.SPI()) != nil {
		return fmt.Errorf("tun attachment: install SAs for %v: inbound SPI %v already installed; pick another SPI", peer, in.SPI())
	}
	if err := a.bindLocked(peer, in.SPI()); err != nil {
		return fmt.Errorf("tun attachment: %w", err)
	}
	if err := a.table.AddInbound(in); err != nil {
		a.unbindLocked([]esp.SPI{in.SPI()})
		return fmt.Errorf("tun attachment: %w", err)
	}
	old, err := a.table.SetOutbound(peer, out)
	if err != nil {
		return fmt.Errorf("tun attachment: %w", err)
	}
	if old != nil && old != out {
		old.Close()
	}
	a.release(peer)
	return nil
}

// Rekey replaces the SA pair with peer make-before-break (esp.Table.Rekey)
// and binds the new inbound SA to the peer. The old inbound SA oldIn stays
// bound until the table retires it after grace.
func (a *Attachment) Rekey(peer netip.Addr, newIn, newOut *esp.SA, oldIn esp.SPI, grace time.Duration) error {
	if err := checkPair(peer, newIn, newOut); err != nil {
		return fmt.Errorf("tun attachment: rekey %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.knownLocked(peer) {
		return fmt.Errorf("tun attachment: rekey %v: not a configured peer", peer)
	}
	// Bind first: a packet on the new SA may arrive as soon as it is in
	// the table. If the SPI is taken, the table refuses the rekey and the
	// existing binding must stay.
	if a.table.Inbound(newIn.SPI()) != nil {
		return fmt.Errorf("tun attachment: rekey %v: inbound SPI %v already installed; pick another SPI", peer, newIn.SPI())
	}
	if err := a.bindLocked(peer, newIn.SPI()); err != nil {
		return fmt.Errorf("tun attachment: %w", err)
	}
	if err := a.table.Rekey(peer, newIn, newOut, oldIn, grace); err != nil {
		a.unbindLocked([]esp.SPI{newIn.SPI()})
		return fmt.Errorf("tun attachment: %w", err)
	}
	a.release(peer)
	return nil
}

// RemoveSAs removes and closes every SA of peer: the outbound one and the
// inbound ones bound to it. It reports how many it removed.
func (a *Attachment) RemoveSAs(peer netip.Addr) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	if a.table.RemoveOutbound(peer) {
		n++
	}
	var gone []esp.SPI
	for spi, p := range a.bind {
		if p == peer {
			if a.table.RemoveInbound(spi) {
				n++
			}
			gone = append(gone, spi)
		}
	}
	a.unbindLocked(gone)
	return n
}

// Sweep runs the table's sweep (retired SAs, time lifetimes) and forgets
// the bindings of removed SAs. Run calls it every SweepInterval.
func (a *Attachment) Sweep() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.unbindLocked(a.table.Sweep())
}

// Stats returns a snapshot of the attachment's counters.
func (a *Attachment) Stats() Stats {
	return Stats{
		TxPackets:  a.txc.packets.Load(),
		TxBytes:    a.txc.bytes.Load(),
		TxBatches:  a.txc.batches.Load(),
		RxPackets:  a.rxc.packets.Load(),
		RxBytes:    a.rxc.bytes.Load(),
		RxBatches:  a.rxc.batches.Load(),
		IKE:        a.rxc.ike.Load(),
		Held:       a.txc.held.Load(),
		Keepalives: a.rxc.keepalives.Load(),
		TxDrops:    a.txc.drops.Load(),
		RxDrops:    a.rxc.drops.Load(),
	}
}

// Run moves packets until ctx is done or the device or socket fails, then
// closes both. It returns nil after ctx ends.
func (a *Attachment) Run(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- a.runTx() }()
	go func() { errc <- a.runRx() }()
	tick := a.clock.NewTicker(a.sweep)
	defer tick.Stop()
	done := ctx.Done()
	var err error
	for running := 2; running > 0; {
		select {
		case <-done:
			done = nil
			a.close()
		case e := <-errc:
			running--
			if err == nil && e != nil && !a.closed.Load() {
				err = e
			}
			a.close() // one side failed or stopped: stop the other
		case <-tick.C():
			a.Sweep()
		}
	}
	return err
}

// Close stops Run's loops by closing the device and the socket.
func (a *Attachment) Close() error {
	return a.close()
}

func (a *Attachment) close() error {
	var err error
	a.closeOnce.Do(func() {
		a.closed.Store(true)
		err = errors.Join(a.dev.Close(), a.conn.Close())
	})
	return err
}
