// queue.go: the hold queue: outbound packets that found no SA for their
// peer wait here (a few fixed slots, the oldest dropped when full) until
// Install or Rekey puts an SA in place, then leave first. The first packet
// a peer queues also asks the IKE engine for SAs (Config.OnNoSA).

package tun

import (
	"net/netip"
	"sync"

	"github.com/ovnsec/ovnsec/internal/datapath/drop"
	"github.com/ovnsec/ovnsec/internal/esp"
)

// Hold queue sizes.
const (
	// DefaultHoldPackets is the queue length when Config.HoldPackets is 0.
	DefaultHoldPackets = 64
	// holdMaxPacket is the largest packet held; bigger ones are dropped.
	holdMaxPacket = 2048
)

type held struct {
	peer netip.Addr
	n    int // packet length
}

// holdQueue is a FIFO of packets in fixed slots. The transmit goroutine
// enqueues (only for packets without an SA, so the lock is off the normal
// packet path); the control plane drains.
type holdQueue struct {
	mu    sync.Mutex
	slots [][]byte // esp.Headroom + holdMaxPacket + esp.MaxTailroom each
	ent   []held   // ring, parallel to slots
	head  int
	count int
	msgs  []Message // drain output
}

func newHoldQueue(n int) *holdQueue {
	q := &holdQueue{slots: make([][]byte, n), ent: make([]held, n), msgs: make([]Message, n)}
	for i := range q.slots {
		q.slots[i] = make([]byte, esp.Headroom+holdMaxPacket+esp.MaxTailroom)
	}
	return q
}

// put copies pkt for peer into the queue. It reports whether the packet
// was held, whether an older packet was dropped to make room, and whether
// peer had nothing queued before (time to ask for SAs).
func (q *holdQueue) put(peer netip.Addr, pkt []byte) (ok, evicted, first bool) {
	if len(pkt) > holdMaxPacket || len(q.slots) == 0 {
		return false, false, false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	first = true
	for i := range q.count {
		if q.ent[(q.head+i)%len(q.ent)].peer == peer {
			first = false
			break
		}
	}
	if q.count == len(q.slots) {
		q.head = (q.head + 1) % len(q.slots)
		q.count--
		evicted = true
	}
	i := (q.head + q.count) % len(q.slots)
	copy(q.slots[i][esp.Headroom:], pkt)
	q.ent[i] = held{peer: peer, n: len(pkt)}
	q.count++
	return true, evicted, first
}

// len returns the number of packets held.
func (q *holdQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.count
}

// drainLocked removes peer's packets, oldest first, and passes them to f
// with the buffer each lives in (payload at esp.Headroom); the other
// peers' packets keep their order. The slots stay valid until q.mu is
// released.
func (q *holdQueue) drainLocked(peer netip.Addr, f func(buf, pkt []byte)) {
	keep := 0
	for i := range q.count {
		src := (q.head + i) % len(q.slots)
		e := q.ent[src]
		if e.peer == peer {
			f(q.slots[src], q.slots[src][esp.Headroom:esp.Headroom+e.n])
			continue
		}
		dst := (q.head + keep) % len(q.slots)
		if dst != src {
			q.slots[dst], q.slots[src] = q.slots[src], q.slots[dst]
			q.ent[dst] = e
		}
		keep++
	}
	q.count = keep
}

// release seals and sends the packets held for peer with its outbound SA.
// The control plane calls it once the SA is in the table, and the transmit
// goroutine if the SA appeared while it was holding a packet. Lock order:
// the queue, then sendMu.
func (a *Attachment) release(peer netip.Addr) {
	q := a.hold
	if q == nil {
		return
	}
	sa := a.table.Outbound(peer)
	if sa == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var c counts
	k := 0
	q.drainLocked(peer, func(buf, pkt []byte) {
		out, err := sealOne(sa, buf, pkt)
		if err != nil {
			c.drops[drop.FromESP(err)]++
			return
		}
		q.msgs[k] = Message{Buf: out, Addr: netip.AddrPortFrom(peer, sa.Encap().DstPort)}
		k++
		c.packets++
		c.bytes += uint64(len(pkt))
	})
	if k > 0 {
		// Still under q.mu: the slots must not be refilled before the
		// kernel has copied them.
		a.sendMu.Lock()
		sent, _ := a.conn.WriteBatch(q.msgs[:k])
		a.sendMu.Unlock()
		c.drops[drop.Send] += uint64(k - sent)
	}
	a.txc.add(&c)
}

// sealOne seals one inner packet lying at buf[esp.Headroom:] in place.
func sealOne(sa *esp.SA, buf, pkt []byte) ([]byte, error) {
	enc := sa.Encap()
	if sa.Mode() != esp.Tunnel || enc.Type != esp.EncapUDP {
		sa.CountPolicyDrop()
		return nil, esp.ErrPolicy
	}
	nh := byte(esp.ProtoIPv4)
	if pkt[0]>>4 == 6 {
		nh = esp.ProtoIPv6
	}
	return sa.Seal(buf, pkt, nh)
}
