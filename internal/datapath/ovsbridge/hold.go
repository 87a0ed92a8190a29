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
	slotSize int      // the largest frame it takes
	small    int      // capacity of a small slot (<= slotSize)
	free     [][]byte // unused small slots
	freeBig  [][]byte // unused slots of slotSize, for frames above small
	q        map[netip.Addr][][]byte

	held      atomic.Uint64 // frames accepted
	overflow  atomic.Uint64 // frames dropped because a queue or the pool was full
	oversize  atomic.Uint64 // frames dropped because they exceed a slot
	discarded atomic.Uint64 // frames dropped by Discard
}

// smallSlot is the slot size for ordinary frames (MTU 1500 plus
// encapsulation); jumbo frames take one of the fewer big slots.
const smallSlot = 2048

// NewHold preallocates slots buffers for frames of up to smallSlot bytes
// and, when slotSize is larger, slots/16 (at least one) of slotSize for
// larger frames; one peer may hold at most perPeer frames. Sizing most
// slots for ordinary frames keeps the pool small: a burst of flooded
// multicast while SAs come up fills it, and every byte of it then counts
// in the resident memory.
func NewHold(slots, perPeer, slotSize int) *Hold {
	h := &Hold{perPeer: perPeer, slotSize: slotSize, q: make(map[netip.Addr][][]byte)}
	if slots <= 0 || perPeer <= 0 || slotSize <= 0 {
		h.perPeer = 0
		return h
	}
	h.small = min(slotSize, smallSlot)
	h.free = carve(slots, h.small)
	if slotSize > h.small {
		h.freeBig = carve(max(1, slots/16), slotSize)
	}
	return h
}

// carve cuts one allocation into n empty slots of capacity size.
func carve(n, size int) [][]byte {
	mem := make([]byte, n*size)
	s := make([][]byte, n)
	for i := range s {
		s[i] = mem[i*size : i*size : (i+1)*size]
	}
	return s
}

// put returns slot b to its pool.
func (h *Hold) put(b []byte) {
	if cap(b) == h.small {
		h.free = append(h.free, b[:0])
	} else {
		h.freeBig = append(h.freeBig, b[:0])
	}
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
	pool := &h.free
	if len(frame) > h.small {
		pool = &h.freeBig
	}
	if len(q) >= h.perPeer || len(*pool) == 0 {
		h.overflow.Add(1)
		return false
	}
	s := (*pool)[len(*pool)-1]
	*pool = (*pool)[:len(*pool)-1]
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
		h.put(b)
	}
}

// Discard drops the peer's queued frames (the SA failed) and returns how
// many there were.
func (h *Hold) Discard(peer netip.Addr) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	q := h.q[peer]
	for _, b := range q {
		h.put(b)
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
