// Accumulators: counters that stay monotonic although their sources
// restart at zero (Child SAs replaced by rekeys, OVS flow counters).

package metrics

import "github.com/ovnsec/ovnsec/internal/backend"

// saKey identifies one Child SA pair of a tunnel.
type saKey struct{ name, in, out string }

// saCount is what one Child SA (or a sum of them) counted.
type saCount struct {
	packetsIn, bytesIn, packetsOut, bytesOut uint64
	drops                                    map[string]uint64 // by drop reason name
}

func countOf(c backend.ChildSAStatus) saCount {
	s := saCount{packetsIn: c.PacketsIn, bytesIn: c.BytesIn, packetsOut: c.PacketsOut, bytesOut: c.BytesOut}
	for k, v := range c.Drops {
		if v == 0 {
			continue
		}
		if s.drops == nil {
			s.drops = map[string]uint64{}
		}
		s.drops[childDropReason(k)] += v
	}
	return s
}

// covers reports whether every counter of s is at least prev's: s can be
// a later reading of the same SA.
func (s saCount) covers(prev saCount) bool {
	if s.packetsIn < prev.packetsIn || s.bytesIn < prev.bytesIn || s.packetsOut < prev.packetsOut || s.bytesOut < prev.bytesOut {
		return false
	}
	for k, v := range prev.drops {
		if s.drops[k] < v {
			return false
		}
	}
	return true
}

func (s *saCount) add(o saCount) {
	s.packetsIn += o.packetsIn
	s.bytesIn += o.bytesIn
	s.packetsOut += o.packetsOut
	s.bytesOut += o.bytesOut
	for k, v := range o.drops {
		if s.drops == nil {
			s.drops = map[string]uint64{}
		}
		s.drops[k] += v
	}
}

// sub takes o away again; only ever what add put in.
func (s *saCount) sub(o saCount) {
	s.packetsIn -= o.packetsIn
	s.bytesIn -= o.bytesIn
	s.packetsOut -= o.packetsOut
	s.bytesOut -= o.bytesOut
	for k, v := range o.drops {
		s.drops[k] -= v
	}
}

func (s saCount) clone() saCount {
	c := s
	c.drops = nil
	c.add(saCount{drops: s.drops})
	return c
}

// goneMemory is how many retired SAs a tunnel remembers, so that an SA
// missing from one reading (a status read that failed half-way) and back
// in the next is not counted twice.
const goneMemory = 8

// tunnelESP is one tunnel's ESP counters across its SAs.
type tunnelESP struct {
	retired saCount // last readings of the SAs that are gone
	live    map[saKey]saCount
	gone    []goneSA // the most recently retired, oldest first
}

type goneSA struct {
	key saKey
	saCount
}

func newTunnelESP() *tunnelESP { return &tunnelESP{live: map[saKey]saCount{}} }

// update takes a reading of the tunnel's current Child SAs.
func (t *tunnelESP) update(children []backend.ChildSAStatus) {
	seen := make(map[saKey]bool, len(children))
	for _, c := range children {
		k := saKey{c.Name, c.InSPI, c.OutSPI}
		if seen[k] {
			continue // listed twice: count once
		}
		seen[k] = true
		cur := countOf(c)
		if prev, ok := t.live[k]; ok {
			if !cur.covers(prev) {
				// Counters went backwards under the same SPIs: another SA.
				t.retired.add(prev)
			}
		} else if g, ok := t.takeGone(k); ok && cur.covers(g) {
			t.retired.sub(g) // back again: it was counted as retired
		}
		t.live[k] = cur
	}
	for k, prev := range t.live {
		if !seen[k] {
			t.retired.add(prev)
			t.gone = append(t.gone, goneSA{k, prev})
			if len(t.gone) > goneMemory {
				t.gone = t.gone[1:]
			}
			delete(t.live, k)
		}
	}
}

// takeGone removes k from the retired SAs remembered and returns its last
// reading.
func (t *tunnelESP) takeGone(k saKey) (saCount, bool) {
	for i, g := range t.gone {
		if g.key == k {
			t.gone = append(t.gone[:i], t.gone[i+1:]...)
			return g.saCount, true
		}
	}
	return saCount{}, false
}

// total is what the tunnel's SAs counted, current and gone.
func (t *tunnelESP) total() saCount {
	s := t.retired.clone()
	for _, c := range t.live {
		s.add(c)
	}
	return s
}

// monotonic keeps a counter that its source may restart (OVS flow
// counters after an ovs-vswitchd restart) from going backwards.
type monotonic struct{ base, last uint64 }

// observe takes a reading and returns the monotonic value.
func (m *monotonic) observe(v uint64) uint64 {
	if v < m.last {
		m.base += m.last
	}
	m.last = v
	return m.base + v
}
