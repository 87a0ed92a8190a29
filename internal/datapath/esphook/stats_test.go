package esphook

import (
	"context"
	"runtime"
	"testing"

	"github.com/ovnsec/ovnsec/internal/datapath/drop"
	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/esp"
)

// TestDropNames: the hook names its drops with drop's names and nothing
// else, so tunnels/show and metrics see one label set for every path.
func TestDropNames(t *testing.T) {
	seen := map[string]bool{}
	for r := range result(numResults) {
		seen[r.String()] = true
	}
	if len(seen) != numResults {
		t.Fatalf("%d distinct result names for %d results", len(seen), numResults)
	}
	for _, r := range drop.All() {
		if got := dropped(r).String(); got != r.String() {
			t.Errorf("dropped(%v) is named %q", r, got)
		}
	}
	var b batchCounts
	for _, r := range drop.All() {
		b.add(dropped(r))
	}
	b.add(resSealed)
	h := &Hook{}
	h.c.add(&b)
	s := h.Stats()
	if s.Sealed != 1 || len(s.Drops) != int(drop.NumReasons) || s.Dropped() != uint64(drop.NumReasons) {
		t.Fatalf("stats %+v", s)
	}
	for _, r := range drop.All() {
		if s.Drops[r.String()] != 1 {
			t.Errorf("Drops[%q] = %d, want 1", r, s.Drops[r.String()])
		}
	}
}

// TestZeroAllocsDrops extends TestZeroAllocs to the drop path: batches of
// replayed and forged ESP frames go through the loop and the hook, the
// errors are mapped with drop.FromESP and counted, and nothing allocates
// beyond Run's constant start-up.
func TestZeroAllocsDrops(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items; allocation counts mean nothing under -race")
	}
	h := New(Config{})
	ps := policies(addrA, ovsbridge.EncapNone)
	if err := h.SetPolicies(addrB, ps); err != nil {
		t.Fatal(err)
	}
	if err := h.InstallStatic(addrA, StaticSA{InSPI: 0x1001, OutSPI: 0x2002, InKey: key(1), OutKey: key(2)}); err != nil {
		t.Fatal(err)
	}
	k, _ := esp.NewKey(key(1))
	peerOut, err := esp.NewSA(esp.Config{SPI: 0x1001, Dir: esp.Outbound, Mode: esp.Transport, Key: k})
	if err != nil {
		t.Fatal(err)
	}
	th := peerOut.TransportHeadroom()
	dev := &benchDev{}
	for i := range benchBatch {
		plain := frame(addrA, addrB, protoUDP, 6081, 200)
		buf := make([]byte, len(plain)+th+64)
		copy(buf[th:], plain)
		out, err := peerOut.SealTransport4(buf[14:], buf[th+14:th+len(plain)])
		if err != nil {
			t.Fatal(err)
		}
		copy(buf[:14], plain[:14])
		f := buf[:14+len(out)]
		if i%2 == 1 {
			f[len(f)-1] ^= 0x80 // forged ICV
		}
		dev.batch = append(dev.batch, f)
	}
	l := newBenchLoop(t, h, ps, dev)
	dev.left = 10 // the first batch opens the genuine frames; warm up
	l.Run(context.Background())
	const batches = 2000
	dev.left = batches
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l.Run(context.Background())
	runtime.ReadMemStats(&after)
	if n := after.Mallocs - before.Mallocs; n > 64 {
		t.Errorf("%d allocations for %d batches of %d dropped frames, want only a constant start-up (<= 64)", n, batches, benchBatch)
	}
	s := h.Stats()
	half := uint64(benchBatch / 2)
	if s.Opened != half || s.Drops["drop_replay"] != (10+batches-1)*half || s.Drops["drop_auth"] != (10+batches)*half {
		t.Errorf("stats %+v", s)
	}
}
