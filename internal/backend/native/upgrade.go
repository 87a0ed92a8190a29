// Upgrade: the engine port's device, the NIC socket and the IKE sockets
// are handed to the next process as open files, so that nothing the
// kernel queues on them while the processes change over is lost. The new
// process holds its readers shut (the gate) until the SAs the old one
// saved are installed again: a packet read earlier would find no SA and
// be dropped; held, it waits in the socket and is read once it can be
// protected.

package native

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/ike"
)

// Sockets are the files the packet path and the IKE engine read and write.
type Sockets struct {
	// Engine is the engine port's device: the veth's packet socket or the
	// TAP.
	Engine *os.File
	// Wire is the NIC's transmit-only socket (Config.Direct); may be nil.
	Wire *os.File
	// IKE and NATT are the engine's UDP sockets (ports 500 and 4500).
	IKE, NATT *net.UDPConn
}

// Close closes every socket of s (ones not handed to a backend).
func (s Sockets) Close() {
	for _, f := range []*os.File{s.Engine, s.Wire} {
		if f != nil {
			f.Close()
		}
	}
	for _, c := range []*net.UDPConn{s.IKE, s.NATT} {
		if c != nil {
			c.Close()
		}
	}
}

// HandoverHold is how long a backend started on handed-over sockets holds
// its readers for SAs that are not taken up (a tunnel removed or changed
// meanwhile) before it reads anyway.
const HandoverHold = 2 * time.Second

// Sockets returns the backend's open sockets for the next process (which
// gets duplicates); they stay owned by b. The IKE sockets are nil when
// the engine was injected (tests).
func (b *Backend) Sockets() Sockets { return b.socks }

// Resume gives a backend started on handed-over sockets the SAs the
// previous process saved (nil: none could be read) and opens its readers
// once they are installed, or after HandoverHold. A backend started
// otherwise takes h up the same way (Config.Handover).
func (b *Backend) Resume(h *Handover) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.setHandoverLocked(h)
	b.openIfTakenLocked()
	if !b.gate.isOpen() {
		b.log.Info("holding the engine port until the saved SAs are installed", "tunnels", len(b.handover), "at_most", HandoverHold)
		b.cfg.Clock.AfterFunc(HandoverHold, func() {
			if !b.gate.isOpen() {
				b.log.Warn("saved SAs not taken up in time; reading the engine port anyway", "waited", HandoverHold)
				b.gate.open()
			}
		})
	}
}

// setHandoverLocked keeps h's SAs to be taken up by Ensure, unless they
// were saved for another underlay address.
func (b *Backend) setHandoverLocked(h *Handover) {
	if h == nil {
		return
	}
	if h.Local != b.cfg.Local.String() {
		h.zero()
		b.log.Warn("the previous ovnsecd served another underlay address; its SAs are negotiated again", "was", h.Local, "now", b.cfg.Local)
		return
	}
	b.handover = slices.Clone(h.Tunnels)
}

// openIfTakenLocked opens the gate once every saved SA is taken up or
// discarded and every restored Child SA installed.
func (b *Backend) openIfTakenLocked() {
	if len(b.handover) == 0 && len(b.resumes) == 0 && !b.gate.isOpen() {
		b.gate.open()
		b.log.Info("saved SAs installed; reading the engine port")
	}
}

// gate keeps readers waiting until it opens; an open gate costs one
// atomic load per read.
type gate struct {
	opened atomic.Bool
	ch     chan struct{}
	once   sync.Once
}

func newGate(open bool) *gate {
	g := &gate{ch: make(chan struct{})}
	if open {
		g.open()
	}
	return g
}

func (g *gate) open() {
	g.once.Do(func() {
		g.opened.Store(true)
		close(g.ch)
	})
}

func (g *gate) isOpen() bool { return g.opened.Load() }

// wait blocks until the gate opens (true) or done closes (false).
func (g *gate) wait(done <-chan struct{}) bool {
	if g.opened.Load() {
		return true
	}
	select {
	case <-g.ch:
		return true
	case <-done:
		return false
	}
}

// closeSignal is closed once by Close.
type closeSignal struct {
	ch   chan struct{}
	once sync.Once
}

func (c *closeSignal) close() { c.once.Do(func() { close(c.ch) }) }

// gatedDevice is the engine's device with its reads behind the gate;
// writes pass.
type gatedDevice struct {
	ovsbridge.Device
	g      *gate
	closed closeSignal
}

func (d *gatedDevice) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	if !d.g.wait(d.closed.ch) {
		return 0, net.ErrClosed
	}
	return d.Device.ReadBatch(bufs, sizes)
}

func (d *gatedDevice) Close() error {
	d.closed.close()
	return d.Device.Close()
}

// gatedConn is the IKE engine's transport with its reads behind the gate.
type gatedConn struct {
	ike.PacketConn
	g      *gate
	closed closeSignal
}

func (c *gatedConn) ReadFrom(p ike.Port, buf []byte) (int, netip.AddrPort, error) {
	if !c.g.wait(c.closed.ch) {
		return 0, netip.AddrPort{}, net.ErrClosed
	}
	return c.PacketConn.ReadFrom(p, buf)
}

func (c *gatedConn) Close() error {
	c.closed.close()
	return c.PacketConn.Close()
}

// errNoSockets: Config.Inherited lacks a file the configuration needs.
var errNoSockets = errors.New("the handed-over sockets lack the engine port or an IKE socket")
