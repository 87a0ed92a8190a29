// Counters stage: what the hook did with every frame, by outcome (drops by
// drop.Reason), counted per batch on the stack and added to shared atomics
// once per batch.

package esphook

import (
	"sync/atomic"

	"github.com/ovnsec/ovnsec/internal/datapath/drop"
)

// result is the outcome of one frame: one of the kinds below, or resDrop
// plus the drop.Reason (dropped).
type result uint8

const (
	resSealed result = iota // outbound: sealed and passed
	resOpened               // inbound: opened, inner policy ok, passed
	resHeld                 // outbound: no usable SA yet, held
	resIKE                  // inbound: IKE on 4500 (non-ESP marker), passed unchanged
	resDrop                 // resDrop + r: dropped for drop.Reason r
)

// dropped is the result of a frame dropped for r.
func dropped(r drop.Reason) result { return resDrop + result(r) }

// numResults is the number of results: the kinds and a drop per reason.
const numResults = int(resDrop) + int(drop.NumReasons)

// Keep every result inside a uint8.
var _ = [256 - numResults]struct{}{}

func (r result) String() string {
	switch r {
	case resSealed:
		return "sealed"
	case resOpened:
		return "opened"
	case resHeld:
		return "held"
	case resIKE:
		return "ike_passed"
	}
	return drop.Reason(r - resDrop).String()
}

// batchCounts is one batch's tally, on the stack, indexed by result.
type batchCounts [numResults]uint64

func (b *batchCounts) add(r result) { b[r]++ }

// drops is the batch's drop tally, a view of its tail.
func (b *batchCounts) drops() *drop.Counts { return (*drop.Counts)(b[resDrop:]) }

type counters struct {
	res   [resDrop]atomic.Uint64
	drops drop.Counters
}

func (c *counters) add(b *batchCounts) {
	for i, v := range b[:resDrop] {
		if v != 0 {
			c.res[i].Add(v)
		}
	}
	c.drops.AddCounts(b.drops())
}

// Stats are the hook's counters since it was made.
type Stats struct {
	Sealed    uint64 // outbound frames sealed
	Opened    uint64 // inbound frames opened and passed
	Held      uint64 // outbound frames held for want of an SA (each time)
	IKEPassed uint64 // IKE messages on UDP 4500 passed to the host
	// Drops counts dropped frames by drop.Reason name ("drop_auth", ...),
	// only reasons that occurred.
	Drops map[string]uint64
}

// Dropped returns the total of all drops.
func (s Stats) Dropped() uint64 {
	var n uint64
	for _, v := range s.Drops {
		n += v
	}
	return n
}

// Stats returns a snapshot of the counters.
func (h *Hook) Stats() Stats {
	return Stats{
		Sealed:    h.c.res[resSealed].Load(),
		Opened:    h.c.res[resOpened].Load(),
		Held:      h.c.res[resHeld].Load(),
		IKEPassed: h.c.res[resIKE].Load(),
		Drops:     h.c.drops.Load().Map(),
	}
}
