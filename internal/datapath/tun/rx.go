// rx.go: the inbound direction: receive a batch of datagrams on port 4500
// (several per message with UDP GRO), tell ESP from IKE, open each ESP
// packet into its own packet buffer, check the inner packet against the
// policy of the peer its SA belongs to and write the packets into the
// device in batches.

package tun

import (
	"fmt"
	"net/netip"

	"github.com/ovnsec/ovnsec/internal/datapath/drop"
	"github.com/ovnsec/ovnsec/internal/esp"
)

// rxState is the inbound goroutine's buffers, allocated once.
type rxState struct {
	rbufs [][]byte  // receive buffers, one per message
	msgs  []Message // receive descriptors over rbufs
	pbufs [][]byte  // inner packet buffers, written to the device
	wbufs [][]byte  // device write views over pbufs, rebuilt every flush
	k     int       // packets waiting in wbufs
	c     counts
}

func newRxState(batch int) *rxState {
	r := &rxState{
		rbufs: make([][]byte, batch),
		msgs:  make([]Message, batch),
		pbufs: make([][]byte, batch),
		wbufs: make([][]byte, batch),
	}
	for i := range r.rbufs {
		r.rbufs[i] = make([]byte, maxPacket)
		r.msgs[i].Buf = r.rbufs[i]
		// Big enough for the device to GRO-coalesce into (up to 64 KiB).
		r.pbufs[i] = make([]byte, bufSize)
	}
	return r
}

func (a *Attachment) runRx() error {
	for {
		if err := a.rxStep(); err != nil {
			if a.closed.Load() {
				return nil
			}
			return fmt.Errorf("tun attachment: receive from underlay: %w", err)
		}
	}
}

// rxStep moves one underlay receive's worth of packets to the device and
// returns the receive's error.
func (a *Attachment) rxStep() error {
	r := a.rx
	n, err := a.conn.ReadBatch(r.msgs)
	if n > 0 {
		a.openBatch(r, n)
		a.rxc.add(&r.c)
		a.rxc.batches.Add(1)
	}
	return err
}

// openBatch opens the n messages received into r.msgs and writes the
// inner packets to the device whenever the packet buffers are full and at
// the end. IKE messages go to the callback. Drops and totals are tallied
// in r.c (reset first).
func (a *Attachment) openBatch(r *rxState, n int) {
	r.c.reset()
	pol := a.pol.Load()
	for i := range n {
		m := &r.msgs[i]
		b := r.rbufs[i][:m.N]
		seg := m.Seg
		if seg <= 0 || seg > len(b) {
			seg = len(b)
		}
		if len(b) == 0 {
			r.c.drops[drop.Malformed]++
			continue
		}
		for off := 0; off < len(b); off += seg {
			a.openOne(r, pol, m, b[off:min(off+seg, len(b))])
			if r.k == len(r.wbufs) {
				a.flushRx(r)
			}
		}
	}
	if r.k > 0 {
		a.flushRx(r)
	}
}

// openOne handles one datagram d from m.Addr.
func (a *Attachment) openOne(r *rxState, pol *policy, m *Message, d []byte) {
	switch esp.Classify4500(d) {
	case esp.KindESP:
	case esp.KindIKE:
		r.c.ike++
		if a.onIKE != nil {
			a.onIKE(d[4:], m.Addr)
		}
		return
	case esp.KindKeepalive:
		r.c.keepalives++
		return
	default:
		r.c.drops[drop.Malformed]++
		return
	}
	buf := r.pbufs[r.k]
	pt, nh, sa, err := a.table.Open(buf[rxOffset:rxOffset], d)
	if err != nil {
		r.c.drops[drop.FromESP(err)]++
		return
	}
	// pt starts at buf[rxOffset].
	if sa.Mode() != esp.Tunnel {
		sa.CountPolicyDrop()
		r.c.drops[drop.Policy]++
		return
	}
	if nh != esp.ProtoIPv4 && nh != esp.ProtoIPv6 {
		sa.CountPolicyDrop()
		r.c.drops[drop.InnerPolicy]++
		return
	}
	src, _, plen, ok := innerAddrs(pt)
	if !ok || (pt[0]>>4 == 4) != (nh == esp.ProtoIPv4) {
		r.c.drops[drop.Malformed]++
		return
	}
	p, bound := pol.bySPI[sa.SPI()]
	if !bound {
		sa.CountPolicyDrop()
		r.c.drops[drop.WrongPeer]++
		return
	}
	if !pol.allowed(p, src) {
		sa.CountPolicyDrop()
		r.c.drops[drop.InnerPolicy]++
		return
	}
	// Trim TFC padding (RFC 4303 §2.7) after the inner packet.
	r.wbufs[r.k] = buf[:rxOffset+plen]
	r.k++
	r.c.packets++
	r.c.bytes += uint64(plen)
}

// flushRx writes the waiting inner packets to the device.
func (a *Attachment) flushRx(r *rxState) {
	k := r.k
	r.k = 0
	if _, err := a.dev.Write(r.wbufs[:k], rxOffset); err != nil && !a.closed.Load() {
		// The device reports one joined error for the batch, not
		// which packets failed.
		r.c.drops[drop.Device]++
		a.log.Debug("tun attachment: device write failed", "packets", k, "err", err)
	}
}

// DeliverESP opens one ESP-in-UDP datagram d from a peer that the owner of
// a shared socket (SharedConn) received, and writes the inner packet to
// the device. Calls must come one at a time (the owner's receive loop);
// d is not kept. It takes no lock and allocates nothing.
func (a *Attachment) DeliverESP(d []byte, from netip.AddrPort) {
	if a.closed.Load() {
		return
	}
	r := a.deliver
	if r == nil {
		return // not on a shared socket: the attachment reads its own
	}
	r.c.reset()
	r.msgs[0].Addr = from
	a.openOne(r, a.pol.Load(), &r.msgs[0], d)
	if r.k > 0 {
		a.flushRx(r)
	}
	a.rxc.add(&r.c)
}
