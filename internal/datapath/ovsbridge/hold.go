// Hold stage: a small bounded queue for outbound frames of peers whose SA is
// not ready yet (IKE still negotiating). Memory is preallocated and bounded;
// a frame that does not fit is dropped and counted, never queued without
// limit. The lock is taken only for held frames, never on the steady-state
// packet path.

package ovsbridge

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// Hold queues frames per peer until Take, or discards them with Discard.
type Hold struct {
	mu       sync.Mutex
	perPeer  int
	slotSize int
	free     [][]byte // unused slots, each of capacity slotSize
	q        map[netip.Addr][][]byte

	held      atomic.Uint64 // frames accepted
	overflow  atomic.Uint64 // frames dropped because a queue or the pool was full
	oversize  atomic.Uint64 // frames dropped because they exceed a slot
	discarded atomic.Uint64 // frames dropped by Discard
}

// NewHold preallocates slots buffers of slotSize bytes; one peer may hold at
// most perPeer of them.
func NewHold(slots, perPeer, slotSize int) *Hold {
	h := &Hold{perPeer: perPeer, slotSize: slotSize, q: make(map[netip.Addr][][]byte)}
	if slots <= 0 || perPeer <= 0 || slotSize <= 0 {
		h.perPeer = 0
		return h
	}
	mem := make([]byte, slots*slotSize)
	h.free = make([][]byte, slots)
	for i := range h.free {
		h.free[i] = mem[i*slotSize : i*slotSize : (i+1)*slotSize]
	}
	return h
}

// Put copies frame into the peer's queue. It returns false, counting the
// drop, when the frame is larger than a slot, the peer's queue is full or
// the pool is empty (tail drop: the oldest frames keep their place).
func (h *Hold) Put(peer netip.Addr, frame []byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(frame) > h.slotSize {
		h.oversize.Add(1)
		return false
	}
	q := h.q[peer]
	if len(q) >= h.perPeer || len(h.free) == 0 {
		h.overflow.Add(1)
		return false
	}
	s := h.free[len(h.free)-1]
	h.free = h.free[:len(h.free)-1]
	s = append(s[:0], frame...)
	if q == nil {
		q = make([][]byte, 0, h.perPeer)
	}
	h.q[peer] = append(q, s)
	h.held.Add(1)
	return true
}

// Take removes the peer's queued frames and appends them, oldest first, to
// dst. The caller owns them until it hands them back with Return.
func (h *Hold) Take(peer netip.Addr, dst [][]byte) [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	q := h.q[peer]
	dst = append(dst, q...)
	delete(h.q, peer)
	return dst
}

// Return gives slots obtained from Take back to the pool.
func (h *Hold) Return(bufs [][]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, b := range bufs {
		h.free = append(h.free, b[:0])
	}
}

// Discard drops the peer's queued frames (the SA failed) and returns how
// many there were.
func (h *Hold) Discard(peer netip.Addr) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	q := h.q[peer]
	for _, b := range q {
		h.free = append(h.free, b[:0])
	}
	delete(h.q, peer)
	h.discarded.Add(uint64(len(q)))
	return len(q)
}

// Len returns how many frames the peer has queued.
func (h *Hold) Len(peer netip.Addr) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.q[peer])
}

// HoldStats are the Hold counters.
type HoldStats struct {
	Held, Overflow, Oversize, Discarded uint64
}

// Stats returns the counters.
func (h *Hold) Stats() HoldStats {
	return HoldStats{
		Held:      h.held.Load(),
		Overflow:  h.overflow.Load(),
		Oversize:  h.oversize.Load(),
		Discarded: h.discarded.Load(),
	}
}
