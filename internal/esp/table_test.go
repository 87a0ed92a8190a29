package esp

import (
	"errors"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
)

func newSA(t testing.TB, spi SPI, dir Direction, clk clock.Clock) *SA {
	t.Helper()
	sa, err := NewSA(Config{SPI: spi, Dir: dir, Mode: Transport, Key: mustKey(t, testKey256), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return sa
}

func TestTableBasics(t *testing.T) {
	tb := NewTable(nil)
	peer := netip.MustParseAddr("192.0.2.2")
	in := newSA(t, 0x100, Inbound, nil)
	out := newSA(t, 0x100, Outbound, nil)
	if err := tb.AddInbound(in); err != nil {
		t.Fatal(err)
	}
	if err := tb.AddInbound(newSA(t, 0x100, Inbound, nil)); err == nil {
		t.Fatal("duplicate SPI accepted")
	}
	if err := tb.AddInbound(out); err == nil {
		t.Fatal("outbound SA accepted as inbound")
	}
	if _, err := tb.SetOutbound(peer, in); err == nil {
		t.Fatal("inbound SA accepted as outbound")
	}
	if old, err := tb.SetOutbound(peer, out); err != nil || old != nil {
		t.Fatalf("SetOutbound: %v, old %v", err, old)
	}
	if tb.Inbound(0x100) != in || tb.Outbound(peer) != out || tb.Inbound(0x101) != nil {
		t.Fatal("lookup mismatch")
	}

	pkt, err := tb.Outbound(peer).Seal(make([]byte, 64), []byte("hi"), 17)
	if err != nil {
		t.Fatal(err)
	}
	if pl, _, sa, err := tb.Open(nil, append([]byte{}, pkt...)); err != nil || sa != in || string(pl) != "hi" {
		t.Fatalf("table Open: %v %q", err, pl)
	}
	pkt[3] ^= 1 // other SPI
	if _, _, _, err := tb.Open(nil, pkt); !errors.Is(err, ErrNoSA) {
		t.Fatalf("unknown SPI: %v", err)
	}
	if _, _, _, err := tb.Open(nil, pkt[:5]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("short: %v", err)
	}
	if s := tb.Stats(); s.NoSA != 1 || s.Malformed != 1 || s.Inbound != 1 || s.Outbound != 1 {
		t.Fatalf("table stats %+v", s)
	}
	if n := len(tb.SAStats()); n != 2 {
		t.Fatalf("%d SA stats", n)
	}
	if !tb.RemoveInbound(0x100) || tb.RemoveInbound(0x100) || in.Usable() {
		t.Fatal("RemoveInbound")
	}
	if !tb.RemoveOutbound(peer) || tb.RemoveOutbound(peer) || out.Usable() {
		t.Fatal("RemoveOutbound")
	}
}

// TestRekeyMakeBeforeBreak walks a rekey with an injected clock: the new
// inbound SA accepts before the switch, the old one until its grace period
// ends, and outbound switches atomically.
func TestRekeyMakeBeforeBreak(t *testing.T) {
	clk := clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	tb := NewTable(clk)
	peer := netip.MustParseAddr("192.0.2.7")
	oldIn, oldOut := newSA(t, 0x1, Inbound, clk), newSA(t, 0x1, Outbound, clk)
	newIn, newOut := newSA(t, 0x2, Inbound, clk), newSA(t, 0x2, Outbound, clk)
	if err := tb.AddInbound(oldIn); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.SetOutbound(peer, oldOut); err != nil {
		t.Fatal(err)
	}
	// Peer-side senders for both generations.
	peerOld, peerNew := newSA(t, 0x1, Outbound, clk), newSA(t, 0x2, Outbound, clk)
	send := func(s *SA) []byte {
		p, err := s.Seal(make([]byte, 64), []byte("data"), 17)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	inflightOld := send(peerOld)

	if err := tb.Rekey(peer, newIn, newOut, 0x1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if tb.Outbound(peer) != newOut || oldOut.Usable() {
		t.Fatal("outbound not switched or old outbound still usable")
	}
	if _, err := oldOut.Seal(make([]byte, 64), nil, 17); !errors.Is(err, ErrExpired) {
		t.Fatalf("old outbound Seal: %v", err)
	}
	// Both generations accepted during the grace period.
	for _, p := range [][]byte{send(peerNew), inflightOld, send(peerOld)} {
		if _, _, _, err := tb.Open(nil, p); err != nil {
			t.Fatalf("during grace: %v", err)
		}
	}
	clk.Advance(29 * time.Second)
	if got := tb.Sweep(); len(got) != 0 || tb.Inbound(0x1) == nil {
		t.Fatalf("removed before the grace period ended: %v", got)
	}
	if s := tb.Stats(); s.Retiring != 1 || s.Inbound != 2 {
		t.Fatalf("stats %+v", s)
	}
	clk.Advance(time.Second)
	if got := tb.Sweep(); !slices.Equal(got, []SPI{0x1}) {
		t.Fatalf("Sweep removed %v", got)
	}
	if tb.Inbound(0x1) != nil || oldIn.Usable() {
		t.Fatal("old inbound SA still installed or usable")
	}
	if _, _, _, err := tb.Open(nil, send(peerOld)); !errors.Is(err, ErrNoSA) {
		t.Fatalf("old SPI after grace: %v", err)
	}
	if _, _, _, err := tb.Open(nil, send(peerNew)); err != nil {
		t.Fatalf("new SA after grace: %v", err)
	}
	if s := tb.Stats(); s.Retiring != 0 || s.Inbound != 1 {
		t.Fatalf("stats %+v", s)
	}
	// A rekey with an SPI already in use fails and changes nothing.
	if err := tb.Rekey(peer, newSA(t, 0x2, Inbound, clk), newSA(t, 0x3, Outbound, clk), 0x2, time.Second); err == nil {
		t.Fatal("rekey with duplicate SPI accepted")
	}
	if tb.Outbound(peer) != newOut {
		t.Fatal("failed rekey switched outbound")
	}
	if err := tb.Rekey(peer, newSA(t, 0x4, Inbound, clk), newSA(t, 0x4, Outbound, clk), 0x1, time.Second); err == nil || tb.Inbound(0x4) != nil {
		t.Fatalf("rekey retiring an unknown SPI: %v", err)
	}
	if err := tb.Retire(0x99, time.Second); err == nil {
		t.Fatal("retire of unknown SPI accepted")
	}
}

func TestSweepTimeLifetimes(t *testing.T) {
	clk := clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	tb := NewTable(clk)
	var ev events
	sa, err := NewSA(Config{SPI: 9, Dir: Inbound, Mode: Transport, Key: mustKey(t, testKey128), Clock: clk,
		Notify: ev.notify, Lifetime: Lifetime{SoftTime: time.Minute, HardTime: 2 * time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.AddInbound(sa); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	tb.Sweep()
	clk.Advance(time.Minute)
	tb.Sweep()
	tb.Sweep()
	evs := ev.list()
	if len(evs) != 2 || evs[0].Kind != SoftExpired || evs[1].Kind != HardExpired || sa.Usable() {
		t.Fatalf("events %v", evs)
	}
}

// TestTableConcurrentRekey runs lookups and packets while the control plane
// rekeys; run with -race.
func TestTableConcurrentRekey(t *testing.T) {
	clk := clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	tb := NewTable(clk)
	peer := netip.MustParseAddr("198.51.100.1")
	if _, err := tb.SetOutbound(peer, newSA(t, 1, Outbound, clk)); err != nil {
		t.Fatal(err)
	}
	if err := tb.AddInbound(newSA(t, 1, Inbound, clk)); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var sealed atomic.Uint64
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 128)
			for !stop.Load() {
				if sa := tb.Outbound(peer); sa != nil {
					if _, err := sa.Seal(buf, buf[Headroom:Headroom+40], 17); err == nil {
						sealed.Add(1)
					} else if !errors.Is(err, ErrExpired) {
						t.Error(err)
						return
					}
				}
				_ = tb.Inbound(SPI(sealed.Load()%50 + 1))
			}
		}()
	}
	for i := SPI(2); i < 50; i++ {
		if err := tb.Rekey(peer, newSA(t, i, Inbound, clk), newSA(t, i, Outbound, clk), i-1, time.Second); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
		tb.Sweep()
		_ = tb.SAStats()
	}
	stop.Store(true)
	wg.Wait()
	if s := tb.Stats(); s.Outbound != 1 || s.Inbound > 2 {
		t.Fatalf("stats %+v", s)
	}
}
