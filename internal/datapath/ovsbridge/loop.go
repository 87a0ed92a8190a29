// Packet loop stage: reads batches of frames that OVS steered to the engine
// port, classifies each by address (to a peer = outbound, from a peer =
// inbound), hands them to the Hook, and writes the frames it passes back to
// the port, or, with a Wire, the outbound ones straight to the NIC after
// checking they are ESP (or ESP-in-UDP from our 4500 to the peer's NAT-T
// port) to their peer. Buffers are preallocated; the
// steady-state path neither allocates nor locks (the peer set is an
// atomically swapped immutable map, counters are atomics added once per
// batch).

package ovsbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/ovnsec/ovnsec/internal/datapath/drop"
)

// Device is the engine port as the loop sees it. TAP and PacketPort
// implement it.
type Device interface {
	// ReadBatch blocks until at least one frame is available, then reads
	// up to len(bufs) frames, frame i into bufs[i], its length into
	// sizes[i]. It returns the number of frames read.
	ReadBatch(bufs [][]byte, sizes []int) (int, error)
	// WriteBatch writes each frame as one packet and returns how many were
	// written before the first error.
	WriteBatch(frames [][]byte) (int, error)
	Close() error
}

// Writer is where the loop writes outbound frames when it has a Wire.
type Writer interface {
	WriteBatch(frames [][]byte) (int, error)
}

// LoopConfig configures a Loop. Zero values take the defaults.
type LoopConfig struct {
	Device Device
	Hook   Hook
	// Wire, when set, takes the outbound frames the hook passes instead
	// of Device: they go straight onto the NIC (OpenWire), sparing
	// ovs-vswitchd a second pass per packet. The loop then does what OVS's
	// rules do for frames coming back from the engine port, and a little
	// more: only ESP addressed to the frame's peer is sent, as IP protocol
	// 50 or, for a peer with EncapUDP4500, as ESP-in-UDP from our port
	// 4500 to the peer's NAT-T port (Policy.NATTPort) with a non-zero SPI;
	// anything else is dropped and counted (drop.Leak). Bench passthrough
	// peers may be sent anything.
	Wire      Writer
	Batch     int // frames per read, default 64
	MaxFrame  int // largest frame accepted, default 9216+18 (jumbo MTU + Ethernet + VLAN)
	HoldSlots int // frames the hold queue can keep in total, default 256
	HoldPeer  int // frames one peer can keep, default 32
	Log       *slog.Logger
}

// Stats are the loop's counters since it was made.
type Stats struct {
	OutFrames, OutBytes uint64 // outbound frames read from the engine port
	InFrames, InBytes   uint64 // inbound frames read
	OutWritten          uint64 // outbound frames written (to the NIC via OVS, or to the Wire)
	InWritten           uint64 // inbound frames written back (to LOCAL via OVS)
	// Drops counts the frames the loop itself lost, by reason:
	// drop.Malformed (not parseable as IPv4/IPv6, or truncated),
	// drop.NoPeer (neither source nor destination is a peer, e.g.
	// flooded broadcast), drop.Leak (an outbound frame for the Wire that
	// is not ESP, or ESP-in-UDP to the peer's NAT-T port, to its peer),
	// drop.Device and drop.Send (writing to the engine port or to the
	// Wire failed), drop.NoSA (frames the hold queue refused or
	// discarded: Hold's Overflow, Oversize and Discarded).
	Drops drop.Counts
	// DropHook counts the frames the hook said drop (or gave an invalid
	// verdict); the hook counts them by reason in its own stats.
	DropHook uint64
	Released uint64 // held frames flushed through the hook again
	Hold     HoldStats
}

type counters struct {
	outFrames, outBytes, inFrames, inBytes atomic.Uint64
	outWritten, inWritten                  atomic.Uint64
	hookDrop                               atomic.Uint64
	released                               atomic.Uint64
	drops                                  drop.Counters
}

// Loop moves frames between the engine port and the hook.
type Loop struct {
	dev      Device
	wire     Writer
	hook     Hook
	log      *slog.Logger
	maxFrame int
	peers    atomic.Pointer[peerSet]
	hold     *Hold
	c        counters

	// read path, used by Run's goroutine only
	frames   []*Frame
	bufs     [][]byte
	sizes    []int
	outBatch []*Frame
	inBatch  []*Frame
	writes   [][]byte
	wires    [][]byte

	// release path, serialised by relMu
	relMu     sync.Mutex
	relFrames []*Frame
	relSlots  [][]byte
	relWrites [][]byte
	relBatch  []*Frame
}

// NewLoop preallocates the loop's buffers.
func NewLoop(cfg LoopConfig) (*Loop, error) {
	if cfg.Device == nil || cfg.Hook == nil {
		return nil, errors.New("packet loop: Device and Hook are required")
	}
	if p, ok := cfg.Wire.(*PacketPort); ok && p == nil {
		cfg.Wire = nil // a nil *PacketPort in the interface means no Wire
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = 9216 + ethHeader + vlanTag
	}
	if cfg.MaxFrame < ethHeader+ipv4Header {
		return nil, fmt.Errorf("packet loop: MaxFrame %d is smaller than an Ethernet+IPv4 header", cfg.MaxFrame)
	}
	if cfg.HoldSlots <= 0 {
		cfg.HoldSlots = 256
	}
	if cfg.HoldPeer <= 0 {
		cfg.HoldPeer = 32
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	l := &Loop{
		dev:      cfg.Device,
		wire:     cfg.Wire,
		hook:     cfg.Hook,
		log:      cfg.Log,
		maxFrame: cfg.MaxFrame,
		hold:     NewHold(cfg.HoldSlots, cfg.HoldPeer, cfg.MaxFrame),
		frames:   make([]*Frame, cfg.Batch),
		bufs:     make([][]byte, cfg.Batch),
		sizes:    make([]int, cfg.Batch),
		outBatch: make([]*Frame, 0, cfg.Batch),
		inBatch:  make([]*Frame, 0, cfg.Batch),
		writes:   make([][]byte, 0, cfg.Batch),
		wires:    make([][]byte, 0, cfg.Batch),

		relFrames: make([]*Frame, cfg.HoldPeer),
		relSlots:  make([][]byte, 0, cfg.HoldPeer),
		relWrites: make([][]byte, 0, cfg.HoldPeer),
		relBatch:  make([]*Frame, 0, cfg.HoldPeer),
	}
	// One extra byte per read area: a read that fills it was truncated.
	for i := range l.frames {
		l.frames[i] = newFrame(cfg.MaxFrame + 1)
		l.bufs[i] = l.frames[i].readArea(cfg.MaxFrame + 1)
	}
	for i := range l.relFrames {
		l.relFrames[i] = newFrame(cfg.MaxFrame)
	}
	empty := peerSet{}
	l.peers.Store(&empty)
	return l, nil
}

// SetPeers replaces the set of peers whose frames the loop accepts. Frames
// whose addresses match no peer are dropped and counted. Policies Rules
// would refuse (a peer in two modes, with two NAT-T ports, or with its
// NAT-T port equal to a tunnel port) leave that peer protected with plain
// ESP only; the problem is logged.
func (l *Loop) SetPeers(policies []Policy) {
	ps, err := mergePeers(policies)
	if err != nil {
		l.log.Warn("packet loop: conflicting policies; the peer gets plain ESP only", "err", err)
	}
	l.peers.Store(&ps)
}

// Hold returns the loop's queue for frames whose SA is not ready.
func (l *Loop) Hold() *Hold { return l.hold }

// Run reads and processes frames until ctx is done (it then closes the
// device and returns nil) or the device fails.
func (l *Loop) Run(ctx context.Context) error {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
			l.dev.Close()
		case <-stop:
		}
	}()
	for {
		n, err := l.dev.ReadBatch(l.bufs, l.sizes)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read engine port: %w", err)
		}
		l.process(n)
	}
}

// process handles frames[:n] just read.
func (l *Loop) process(n int) {
	peers := *l.peers.Load()
	l.outBatch, l.inBatch = l.outBatch[:0], l.inBatch[:0]
	var outB, inB, malformed, unknown uint64
	for i := 0; i < n; i++ {
		f, size := l.frames[i], l.sizes[i]
		if size < ethHeader || size > l.maxFrame { // runt, or truncated by the read
			malformed++
			continue
		}
		f.load(size)
		if !classify(f, peers) {
			if f.Info.L3 == 0 {
				malformed++
			} else {
				unknown++
			}
			continue
		}
		if f.Dir == Outbound {
			l.outBatch = append(l.outBatch, f)
			outB += uint64(size)
		} else {
			l.inBatch = append(l.inBatch, f)
			inB += uint64(size)
		}
	}
	l.c.outFrames.Add(uint64(len(l.outBatch)))
	l.c.outBytes.Add(outB)
	l.c.inFrames.Add(uint64(len(l.inBatch)))
	l.c.inBytes.Add(inB)
	l.c.drops.Add(drop.Malformed, malformed)
	l.c.drops.Add(drop.NoPeer, unknown)

	l.writes = l.writes[:0]
	if len(l.outBatch) > 0 {
		l.hook.Outbound(l.outBatch)
		if l.wire != nil {
			l.wires = l.collectWire(l.outBatch, l.wires[:0], peers)
			l.writeTo(l.wire, l.wires, len(l.wires), drop.Send)
		} else {
			l.writes = l.collect(l.outBatch, l.writes, true)
		}
	}
	nOut := len(l.writes)
	if len(l.inBatch) > 0 {
		l.hook.Inbound(l.inBatch)
		l.writes = l.collect(l.inBatch, l.writes, false)
	}
	if len(l.writes) > 0 {
		l.writeTo(l.dev, l.writes, nOut, drop.Device)
	}
}

// collectWire is collect for outbound frames bound for the Wire: a passed
// frame is sent only if it is what OVS's to-NIC rules would let out.
func (l *Loop) collectWire(batch []*Frame, writes [][]byte, peers peerSet) [][]byte {
	n0 := len(writes)
	writes = l.collect(batch, writes, true)
	kept := l.filterWire(writes[n0:], peers) // compacted in place
	return writes[:n0+len(kept)]
}

// filterWire keeps, in place, the frames wireAllowed lets out and counts
// the others as leaks.
func (l *Loop) filterWire(writes [][]byte, peers peerSet) [][]byte {
	kept := writes[:0]
	for _, b := range writes {
		if wireAllowed(b, peers) {
			kept = append(kept, b)
		}
	}
	l.c.drops.Add(drop.Leak, uint64(len(writes)-len(kept)))
	return kept
}

// wireAllowed reports whether frame b may go straight to the NIC: ESP to a
// protected peer (or, where the peer's policy has ESP-in-UDP, UDP from our
// port 4500 to exactly the peer's NAT-T port carrying ESP), or anything IP
// to a bench passthrough peer.
func wireAllowed(b []byte, peers peerSet) bool {
	in, err := ParseFrame(b)
	if err != nil {
		return false
	}
	pm, ok := peers[in.Dst]
	switch {
	case !ok:
		return false
	case pm.mode == ModeBenchPassthrough:
		return true
	case pm.mode != ModeProtected:
		return false
	case in.Proto == protoESP:
		return true
	case pm.encapPort != 0 && in.Proto == protoUDP && !in.Later &&
		in.SrcPort == natTraversalUDP && in.DstPort == pm.encapPort:
		return espInUDP(b, in)
	}
	return false
}

// espInUDP reports whether the UDP datagram of frame b (as ParseFrame read
// it into in) carries ESP (RFC 3948 section 2.2): at least an SPI and a
// sequence number, and the SPI is not zero (four zero bytes are the non-ESP
// marker in front of IKE; a lone 0xff byte is a NAT keepalive). The engine
// sends neither: both are the host's IKE daemon's, which goes through
// LOCAL.
func espInUDP(b []byte, in Info) bool {
	l4 := in.L3
	switch {
	case in.Dst.Is4() && in.L3 < len(b):
		l4 += int(b[in.L3]&0x0f) * 4
	case in.Dst.Is6():
		l4 += ipv6Header
	default:
		return false
	}
	end := in.L3 + in.L3Len
	spi := l4 + udpHeader
	if end > len(b) || spi+espSPISeq > end {
		return false
	}
	return b[spi]|b[spi+1]|b[spi+2]|b[spi+3] != 0
}

// classify parses f and sets its direction and peer; false means drop.
// A malformed frame leaves Info.L3 at 0.
func classify(f *Frame, peers peerSet) bool {
	in, err := ParseFrame(f.Bytes())
	if err != nil {
		f.Info = Info{}
		return false
	}
	f.Info = in
	if _, ok := peers[in.Dst]; ok {
		f.Dir, f.Peer = Outbound, in.Dst
		return true
	}
	if _, ok := peers[in.Src]; ok {
		f.Dir, f.Peer = Inbound, in.Src
		return true
	}
	return false
}

// collect appends the frames to write and handles Hold and Drop verdicts.
func (l *Loop) collect(batch []*Frame, writes [][]byte, outbound bool) [][]byte {
	var drops uint64
	for _, f := range batch {
		switch f.Verdict {
		case VerdictPass:
			writes = append(writes, f.Bytes())
		case VerdictHold:
			if outbound {
				l.hold.Put(f.Peer, f.Bytes()) // counts its own overflow
			} else {
				drops++
			}
		default:
			drops++
		}
	}
	l.c.hookDrop.Add(drops)
	return writes
}

// writeTo writes frames to w (the engine port or the Wire); the first nOut
// are outbound. A frame that fails is counted as a drop for fail
// (drop.Device for the engine port, drop.Send for the Wire) and skipped;
// the rest are still written.
func (l *Loop) writeTo(w Writer, frames [][]byte, nOut int, fail drop.Reason) {
	var out, in, failed uint64
	for i := 0; i < len(frames); {
		k, err := w.WriteBatch(frames[i:])
		k = max(0, min(k, len(frames)-i))
		for j := i; j < i+k; j++ {
			if j < nOut {
				out++
			} else {
				in++
			}
		}
		i += k
		switch {
		case err != nil:
			failed++
			i++ // skip the frame that failed
			l.log.Debug("write frames", "err", err)
		case k == 0:
			failed += uint64(len(frames) - i)
			i = len(frames)
		}
	}
	l.c.outWritten.Add(out)
	l.c.inWritten.Add(in)
	l.c.drops.Add(fail, failed)
}

// Release flushes the peer's held frames through the hook's Outbound
// again (its SA is ready now) and writes the ones it passes. It returns how
// many frames were written. Safe to call from any goroutine.
func (l *Loop) Release(peer netip.Addr) (int, error) {
	l.relMu.Lock()
	defer l.relMu.Unlock()
	slots := l.hold.Take(peer, l.relSlots[:0])
	defer l.hold.Return(slots)
	batch := l.relBatch[:0]
	for i, s := range slots {
		if i >= len(l.relFrames) {
			break // cannot happen: a peer holds at most HoldPeer frames
		}
		f := l.relFrames[i]
		copy(f.buf[Headroom:], s)
		f.load(len(s))
		in, err := ParseFrame(f.Bytes())
		if err != nil {
			continue
		}
		f.Info, f.Dir, f.Peer = in, Outbound, peer
		batch = append(batch, f)
	}
	if len(batch) == 0 {
		return 0, nil
	}
	l.c.released.Add(uint64(len(batch)))
	l.hook.Outbound(batch)
	writes := l.relWrites[:0]
	var drops uint64
	for _, f := range batch {
		switch f.Verdict {
		case VerdictPass:
			writes = append(writes, f.Bytes())
		case VerdictHold:
			l.hold.Put(peer, f.Bytes())
		default:
			drops++
		}
	}
	l.c.hookDrop.Add(drops)
	var w Writer = l.dev
	fail := drop.Device
	if l.wire != nil {
		w, fail = l.wire, drop.Send
		writes = l.filterWire(writes, *l.peers.Load())
	}
	if len(writes) == 0 {
		return 0, nil
	}
	n, err := w.WriteBatch(writes)
	l.c.outWritten.Add(uint64(n))
	if err != nil {
		l.c.drops.Add(fail, uint64(len(writes)-n))
		return n, fmt.Errorf("release held frames for %s: write: %w", peer, err)
	}
	return n, nil
}

// Discard drops the peer's held frames (its SA could not be set up).
func (l *Loop) Discard(peer netip.Addr) int { return l.hold.Discard(peer) }

// Stats returns a snapshot of the counters.
func (l *Loop) Stats() Stats {
	s := Stats{
		OutFrames:  l.c.outFrames.Load(),
		OutBytes:   l.c.outBytes.Load(),
		InFrames:   l.c.inFrames.Load(),
		InBytes:    l.c.inBytes.Load(),
		OutWritten: l.c.outWritten.Load(),
		InWritten:  l.c.inWritten.Load(),
		Drops:      l.c.drops.Load(),
		DropHook:   l.c.hookDrop.Load(),
		Released:   l.c.released.Load(),
		Hold:       l.hold.Stats(),
	}
	s.Drops[drop.NoSA] += s.Hold.Overflow + s.Hold.Oversize + s.Hold.Discarded
	return s
}
