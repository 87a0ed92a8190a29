// table.go: the SA table: lock-free lookups on the packet path (inbound by
// SPI, outbound by peer), copy-on-write updates from the control plane and
// make-before-break rekeying with a grace period for the old inbound SA.

package esp

import (
	"encoding/binary"
	"fmt"
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock"
)

// Table holds the installed SAs. Lookups (Inbound, Outbound, Open) take no
// lock and never allocate; changes copy the affected map under a mutex and
// publish it atomically, so they are for the control plane, not per packet.
type Table struct {
	clock clock.Clock

	in  atomic.Pointer[map[SPI]*SA]
	out atomic.Pointer[map[netip.Addr]*SA]

	mu       sync.Mutex        // serialises writers
	retiring map[SPI]time.Time // inbound SPI -> removal time; under mu

	noSA      atomic.Uint64
	malformed atomic.Uint64
}

// TableStats counts drops that happen before an SA is known.
type TableStats struct {
	NoSA      uint64 // unknown SPI
	Malformed uint64 // too short to carry an SPI
	Inbound   int    // installed inbound SAs
	Outbound  int    // installed outbound SAs
	Retiring  int    // inbound SAs waiting for their grace period to end
}

// NewTable returns an empty table using clock for grace periods and time
// lifetimes (nil: the system clock).
func NewTable(clk clock.Clock) *Table {
	t := &Table{clock: clock.Or(clk), retiring: map[SPI]time.Time{}}
	t.in.Store(&map[SPI]*SA{})
	t.out.Store(&map[netip.Addr]*SA{})
	return t
}

// Inbound returns the inbound SA for spi, or nil.
func (t *Table) Inbound(spi SPI) *SA { return (*t.in.Load())[spi] }

// Outbound returns the outbound SA towards peer, or nil.
func (t *Table) Outbound(peer netip.Addr) *SA { return (*t.out.Load())[peer] }

// Open looks up the inbound SA by the packet's SPI and opens the packet
// (see SA.Open). An unknown SPI is counted in TableStats.NoSA.
func (t *Table) Open(dst, packet []byte) (payload []byte, nextHeader byte, sa *SA, err error) {
	if len(packet) < HeaderLen {
		t.malformed.Add(1)
		return nil, 0, nil, ErrTruncated
	}
	sa = t.Inbound(SPI(binary.BigEndian.Uint32(packet[0:4])))
	if sa == nil {
		t.noSA.Add(1)
		return nil, 0, nil, ErrNoSA
	}
	payload, nextHeader, err = sa.Open(dst, packet)
	return payload, nextHeader, sa, err
}

// CountNoSA counts a packet the caller dropped for lack of an SA (for
// example an outbound packet with no SA and no queue room).
func (t *Table) CountNoSA() { t.noSA.Add(1) }

// AddInbound installs an inbound SA. Its SPI must be free.
func (t *Table) AddInbound(sa *SA) error {
	if sa == nil || sa.dir != Inbound {
		return fmt.Errorf("add inbound SA: %v is not an inbound SA", sa)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.in.Load()
	if _, dup := old[sa.spi]; dup {
		return fmt.Errorf("add inbound SA %v: SPI already installed; remove it first or pick another SPI", sa.spi)
	}
	m := maps.Clone(old)
	m[sa.spi] = sa
	t.in.Store(&m)
	return nil
}

// RemoveInbound removes and closes the inbound SA spi. It reports whether
// it was installed.
func (t *Table) RemoveInbound(spi SPI) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.removeInboundLocked(spi)
}

func (t *Table) removeInboundLocked(spi SPI) bool {
	old := *t.in.Load()
	sa, ok := old[spi]
	if !ok {
		return false
	}
	m := maps.Clone(old)
	delete(m, spi)
	t.in.Store(&m)
	delete(t.retiring, spi)
	sa.Close()
	return true
}

// SetOutbound atomically makes sa the outbound SA towards peer and returns
// the SA it replaced (nil if none), which stays usable until the caller
// closes it. Packets sealed after SetOutbound returns use sa.
func (t *Table) SetOutbound(peer netip.Addr, sa *SA) (old *SA, err error) {
	if sa == nil || sa.dir != Outbound {
		return nil, fmt.Errorf("set outbound SA for %v: %v is not an outbound SA", peer, sa)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := *t.out.Load()
	m := maps.Clone(cur)
	m[peer] = sa
	t.out.Store(&m)
	return cur[peer], nil
}

// RemoveOutbound removes and closes the outbound SA towards peer.
func (t *Table) RemoveOutbound(peer netip.Addr) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := *t.out.Load()
	sa, ok := cur[peer]
	if !ok {
		return false
	}
	m := maps.Clone(cur)
	delete(m, peer)
	t.out.Store(&m)
	sa.Close()
	return true
}

// Retire schedules the inbound SA spi for removal after grace, during which
// it still accepts packets sent before the peer switched.
func (t *Table) Retire(spi SPI, grace time.Duration) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := (*t.in.Load())[spi]; !ok {
		return fmt.Errorf("retire inbound SA %v: not installed", spi)
	}
	t.retiring[spi] = t.clock.Now().Add(grace)
	return nil
}

// Rekey replaces the SA pair with peer make-before-break, as one change:
// it installs newIn (so both old and new inbound SAs accept), switches the
// outbound SA towards peer to newOut atomically and closes the old outbound
// SA, and retires the old inbound SA oldIn (0: none) after grace; Sweep
// removes it then. On error nothing is changed. Call it once the peer has
// installed its new inbound SA (the CREATE_CHILD_SA exchange completed); a
// caller that needs the steps apart uses AddInbound, SetOutbound and
// Retire.
func (t *Table) Rekey(peer netip.Addr, newIn, newOut *SA, oldIn SPI, grace time.Duration) error {
	if newIn == nil || newIn.dir != Inbound {
		return fmt.Errorf("rekey %v: %v is not an inbound SA", peer, newIn)
	}
	if newOut == nil || newOut.dir != Outbound {
		return fmt.Errorf("rekey %v: %v is not an outbound SA", peer, newOut)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	in := *t.in.Load()
	if _, dup := in[newIn.spi]; dup {
		return fmt.Errorf("rekey %v: inbound SPI %v already installed; pick another SPI", peer, newIn.spi)
	}
	if _, ok := in[oldIn]; oldIn != 0 && !ok {
		return fmt.Errorf("rekey %v: old inbound SA %v not installed", peer, oldIn)
	}
	m := maps.Clone(in)
	m[newIn.spi] = newIn
	t.in.Store(&m) // make...

	out := *t.out.Load()
	mo := maps.Clone(out)
	mo[peer] = newOut
	t.out.Store(&mo) // ...before break
	if old := out[peer]; old != nil && old != newOut {
		old.Close()
	}
	if oldIn != 0 {
		t.retiring[oldIn] = t.clock.Now().Add(grace)
	}
	return nil
}

// Sweep removes the retired inbound SAs whose grace period has ended and
// applies time lifetimes to every SA. It returns the SPIs removed. The
// owner calls it periodically (every second or so).
func (t *Table) Sweep() []SPI {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var removed []SPI
	for spi, at := range t.retiring {
		if !now.Before(at) {
			t.removeInboundLocked(spi)
			removed = append(removed, spi)
		}
	}
	for _, sa := range *t.in.Load() {
		sa.CheckTime(now)
	}
	for _, sa := range *t.out.Load() {
		sa.CheckTime(now)
	}
	return removed
}

// Stats returns the table's own counters and sizes.
func (t *Table) Stats() TableStats {
	t.mu.Lock()
	retiring := len(t.retiring)
	t.mu.Unlock()
	return TableStats{
		NoSA:      t.noSA.Load(),
		Malformed: t.malformed.Load(),
		Inbound:   len(*t.in.Load()),
		Outbound:  len(*t.out.Load()),
		Retiring:  retiring,
	}
}

// SAStats returns a snapshot of every installed SA's counters.
func (t *Table) SAStats() []Stats {
	in, out := *t.in.Load(), *t.out.Load()
	s := make([]Stats, 0, len(in)+len(out))
	for _, sa := range in {
		s = append(s, sa.Stats())
	}
	for _, sa := range out {
		s = append(s, sa.Stats())
	}
	return s
}
