package esphook

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/esp"
)

// The benchmarks drive the hook through a real ovsbridge.Loop over a port
// that hands out the same batch of 64 frames b.N times and discards what
// is written, so allocs/op covers the loop and the hook per batch:
//
//	go test -run '^$' -bench . -benchmem ./internal/datapath/esphook/
//
// Outbound seals Geneve frames. RoundTrip seals them with esp directly in
// the port (the peer's part) and opens them with the hook: Inbound's cost
// is RoundTrip minus the seal.

const benchBatch = 64

var errBenchDone = errors.New("bench done")

type benchDev struct {
	left  int
	batch [][]byte
	// seal, if set, rewrites each frame before handing it out (the peer's
	// outbound SA).
	seal func(dst []byte, plain []byte) int
}

func (d *benchDev) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	if d.left == 0 {
		return 0, errBenchDone
	}
	d.left--
	for i, f := range d.batch {
		if d.seal != nil {
			sizes[i] = d.seal(bufs[i], f)
		} else {
			sizes[i] = copy(bufs[i], f)
		}
	}
	return len(d.batch), nil
}

func (d *benchDev) WriteBatch(frames [][]byte) (int, error) { return len(frames), nil }
func (d *benchDev) Close() error                            { return nil }

// outboundRig is a hook sealing Geneve frames of size bytes behind a loop
// on a benchDev.
func outboundRig(tb testing.TB, size int) (*Hook, *ovsbridge.Loop, *benchDev) {
	tb.Helper()
	h := New(Config{})
	ps := policies(addrB, ovsbridge.EncapNone)
	if err := h.SetPolicies(addrA, ps); err != nil {
		tb.Fatal(err)
	}
	if err := h.InstallStatic(addrB, StaticSA{InSPI: 0x2002, OutSPI: 0x1001, InKey: key(2), OutKey: key(1)}); err != nil {
		tb.Fatal(err)
	}
	dev := &benchDev{}
	for range benchBatch {
		dev.batch = append(dev.batch, frame(addrA, addrB, protoUDP, 6081, size))
	}
	return h, newBenchLoop(tb, h, ps, dev), dev
}

// inboundRig is a hook opening frames that the port seals on the fly
// with the peer's outbound SA.
func inboundRig(tb testing.TB, size int) (*Hook, *ovsbridge.Loop, *benchDev) {
	tb.Helper()
	h := New(Config{})
	ps := policies(addrA, ovsbridge.EncapNone)
	if err := h.SetPolicies(addrB, ps); err != nil {
		tb.Fatal(err)
	}
	if err := h.InstallStatic(addrA, StaticSA{InSPI: 0x1001, OutSPI: 0x2002, InKey: key(1), OutKey: key(2)}); err != nil {
		tb.Fatal(err)
	}
	k, _ := esp.NewKey(key(1))
	peerOut, err := esp.NewSA(esp.Config{SPI: 0x1001, Dir: esp.Outbound, Mode: esp.Transport, Key: k})
	if err != nil {
		tb.Fatal(err)
	}
	th := peerOut.TransportHeadroom()
	dev := &benchDev{seal: func(dst, plain []byte) int {
		// ESP frame: Ethernet header, then the sealed IP packet.
		copy(dst[th:], plain)
		out, err := peerOut.SealTransport4(dst[14:], dst[th+14:th+len(plain)])
		if err != nil {
			panic(err)
		}
		copy(dst[:14], plain[:14])
		return 14 + len(out)
	}}
	for range benchBatch {
		dev.batch = append(dev.batch, frame(addrA, addrB, protoUDP, 6081, size))
	}
	return h, newBenchLoop(tb, h, ps, dev), dev
}

func newBenchLoop(tb testing.TB, h *Hook, ps []ovsbridge.Policy, dev *benchDev) *ovsbridge.Loop {
	tb.Helper()
	l, err := ovsbridge.NewLoop(ovsbridge.LoopConfig{Device: dev, Hook: h, Batch: benchBatch, MaxFrame: 9000})
	if err != nil {
		tb.Fatal(err)
	}
	h.SetReleaser(l)
	l.SetPeers(ps)
	return l
}

func runBench(b *testing.B, rig func(testing.TB, int) (*Hook, *ovsbridge.Loop, *benchDev), done func(Stats) uint64) {
	for _, size := range []int{64, 1400} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			h, l, dev := rig(b, size)
			dev.left = b.N
			b.SetBytes(int64(benchBatch * len(dev.batch[0])))
			b.ReportAllocs()
			b.ResetTimer()
			if err := l.Run(context.Background()); !errors.Is(err, errBenchDone) {
				b.Fatal(err)
			}
			b.StopTimer()
			if n := done(h.Stats()); n != uint64(b.N*benchBatch) {
				b.Fatalf("%d of %d frames processed (%+v)", n, b.N*benchBatch, h.Stats())
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/frame")
		})
	}
}

func BenchmarkOutbound(b *testing.B) {
	runBench(b, outboundRig, func(s Stats) uint64 { return s.Sealed })
}

func BenchmarkRoundTrip(b *testing.B) {
	runBench(b, inboundRig, func(s Stats) uint64 { return s.Opened })
}

// TestZeroAllocs pins the zero-allocation property: 2000 batches of 64
// frames through loop and hook, outbound and inbound, allocate nothing
// beyond a constant start-up.
func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items; allocation counts mean nothing under -race")
	}
	const batches = 2000
	for _, tc := range []struct {
		name string
		rig  func(testing.TB, int) (*Hook, *ovsbridge.Loop, *benchDev)
	}{{"outbound", outboundRig}, {"inbound", inboundRig}} {
		t.Run(tc.name, func(t *testing.T) {
			_, l, dev := tc.rig(t, 1400)
			dev.left = 10 // warm up the pools
			l.Run(context.Background())
			dev.left = batches
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			l.Run(context.Background())
			runtime.ReadMemStats(&after)
			// Run's start-up (goroutine, channel) and a sync.Pool refill
			// after a GC are constant; one allocation per batch would be
			// 2000, per frame 128000.
			if n := after.Mallocs - before.Mallocs; n > 64 {
				t.Errorf("%d allocations for %d batches of %d frames, want only a constant start-up (<= 64)", n, batches, benchBatch)
			}
		})
	}
}
