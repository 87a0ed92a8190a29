// Package replay is the ESP anti-replay window: a sliding bitmap of recently
// accepted sequence numbers in the style of RFC 6479 (a ring of 64-bit
// blocks, so that sliding the window never shifts bits), with inference of
// the unsent high 32 bits of an extended sequence number (ESN) as described
// in RFC 4303 Appendix A2.
//
// A Window is not safe for concurrent use: the ESP receive path processes
// each security association on one goroutine at a time.
package replay

import (
	"fmt"
	"math"
	"math/bits"
)

// DefaultSize is the window size, in packets, used when none is given.
const DefaultSize = 1024

// MaxSize bounds the configurable window size (packets). It keeps the ring
// small (8 KiB) and the ESN inference of RFC 4303 Appendix A2 valid, which
// needs the window to be much smaller than 2^32.
const MaxSize = 1 << 16

const (
	blockBits = 64
	blockLog  = 6
	bitMask   = blockBits - 1
)

// Window remembers which sequence numbers at or below the highest accepted
// one have been seen. The zero Window is not usable; call New or Init.
type Window struct {
	ring []uint64 // len is a power of two, at least size/64 + 1 blocks
	mask uint64   // len(ring) - 1
	size uint64   // packets accepted behind top, including top
	top  uint64   // highest accepted sequence number; 0 means none yet
}

// New returns a window of size packets (DefaultSize if size is 0).
func New(size int) (*Window, error) {
	w := new(Window)
	if err := w.Init(size); err != nil {
		return nil, err
	}
	return w, nil
}

// Init (re)initialises w for size packets (DefaultSize if size is 0),
// forgetting everything seen. It allocates the ring once.
func (w *Window) Init(size int) error {
	if size == 0 {
		size = DefaultSize
	}
	if size < 0 || size > MaxSize {
		return fmt.Errorf("replay window size %d: must be between 1 and %d packets", size, MaxSize)
	}
	// One spare block so that the block holding the oldest in-window
	// sequence number is never the one being cleared for a new top.
	need := uint((size+bitMask)/blockBits + 1)
	n := uint64(1) << bits.Len(need-1)
	w.ring = make([]uint64, n)
	w.mask = n - 1
	w.size = uint64(size)
	w.top = 0
	return nil
}

// Reset forgets every sequence number seen, keeping the size. It does not
// allocate.
func (w *Window) Reset() {
	clear(w.ring)
	w.top = 0
}

// Resume makes the window continue a window whose highest accepted
// sequence number was top (a restored SA): everything up to top counts as
// seen, so no packet the previous window may have accepted is accepted
// again; packets after top are accepted as usual. It does not allocate.
func (w *Window) Resume(top uint64) {
	for i := range w.ring {
		w.ring[i] = ^uint64(0)
	}
	// In top's own block only the numbers up to top are seen; the blocks
	// after it are cleared as the window slides into them.
	w.ring[(top>>blockLog)&w.mask] = ^uint64(0) >> (bitMask - top&bitMask)
	w.top = top
}

// Size reports the window size in packets.
func (w *Window) Size() int { return int(w.size) }

// Top reports the highest sequence number accepted so far (0 if none).
func (w *Window) Top() uint64 { return w.top }

// Check reports whether seq would be accepted: it is not 0, not older than
// the window and not already seen. It does not change the window, so that
// the caller can verify the packet's integrity first and then call Update.
func (w *Window) Check(seq uint64) bool {
	if seq == 0 || w.ring == nil {
		return false
	}
	if seq > w.top {
		return true
	}
	if w.top-seq >= w.size {
		return false
	}
	return w.ring[(seq>>blockLog)&w.mask]&(1<<(seq&bitMask)) == 0
}

// Update records seq as seen, sliding the window forward when seq is the new
// highest. It reports false, changing nothing, when seq is not acceptable
// (the same rules as Check), so a duplicate that raced past Check is still
// caught. Its cost is bounded by the ring length, independent of the jump.
func (w *Window) Update(seq uint64) bool {
	if seq == 0 || w.ring == nil {
		return false
	}
	if seq > w.top {
		cur := w.top >> blockLog
		diff := (seq >> blockLog) - cur
		if diff > uint64(len(w.ring)) {
			diff = uint64(len(w.ring))
		}
		for i := uint64(1); i <= diff; i++ {
			w.ring[(cur+i)&w.mask] = 0
		}
		w.top = seq
	} else if w.top-seq >= w.size {
		return false
	}
	idx := (seq >> blockLog) & w.mask
	bit := uint64(1) << (seq & bitMask)
	if w.ring[idx]&bit != 0 {
		return false
	}
	w.ring[idx] |= bit
	return true
}

// Infer returns the full 64-bit sequence number of a packet that carried
// only its low 32 bits, as RFC 4303 Appendix A2.2 describes: the high 32
// bits are taken from the window's highest sequence number, or one more or
// one less when the low bits fall outside the window on one side. ok is
// false when the result would leave the 64-bit space or be 0; such a packet
// must be dropped.
func (w *Window) Infer(lo uint32) (seq uint64, ok bool) {
	th := uint32(w.top >> 32)
	tl := uint32(w.top)
	wsz := uint32(w.size)  // size <= MaxSize, fits
	bottom := tl - wsz + 1 // wraps in case B, as the RFC intends
	hi := th
	if tl >= wsz-1 {
		// Case A: the window lies within one 2^32 subspace. Anything
		// below it must belong to the next subspace.
		if lo < bottom {
			if th == math.MaxUint32 {
				return 0, false
			}
			hi = th + 1
		}
	} else if lo >= bottom && th > 0 {
		// Case B: the window spans two subspaces and lo lies in its
		// older part. With th == 0 there is no older subspace, so lo is
		// a jump forward within subspace 0.
		hi = th - 1
	}
	seq = uint64(hi)<<32 | uint64(lo)
	return seq, seq != 0
}
