package replay

import (
	"math"
	"math/rand/v2"
	"testing"
)

func mustNew(t testing.TB, size int) *Window {
	t.Helper()
	w, err := New(size)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestNewSizes(t *testing.T) {
	for _, tc := range []struct {
		size     int
		wantSize int
		wantErr  bool
	}{
		{0, DefaultSize, false},
		{1, 1, false},
		{64, 64, false},
		{65, 65, false},
		{1024, 1024, false},
		{MaxSize, MaxSize, false},
		{-1, 0, true},
		{MaxSize + 1, 0, true},
	} {
		w, err := New(tc.size)
		if (err != nil) != tc.wantErr {
			t.Errorf("New(%d) err = %v, want error %v", tc.size, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if w.Size() != tc.wantSize {
			t.Errorf("New(%d).Size() = %d, want %d", tc.size, w.Size(), tc.wantSize)
		}
		if blocks := len(w.ring); blocks&(blocks-1) != 0 || (blocks-1)*64 < tc.wantSize {
			t.Errorf("New(%d): %d ring blocks cannot hold the window", tc.size, blocks)
		}
	}
}

func TestZeroWindowRejects(t *testing.T) {
	var w Window
	if w.Check(1) || w.Update(1) {
		t.Fatal("uninitialised window accepted a sequence number")
	}
}

// step is one packet arrival: seq, whether Check and Update accept it.
type step struct {
	seq  uint64
	want bool
}

func TestWindowEdges(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		steps []step
	}{
		{"zero never valid", 64, []step{{0, false}, {1, true}, {0, false}}},
		{"in order", 64, []step{{1, true}, {2, true}, {3, true}, {4, true}}},
		{"duplicate", 64, []step{{1, true}, {2, true}, {2, false}, {1, false}}},
		{"reordered inside window", 64, []step{{5, true}, {3, true}, {4, true}, {1, true}, {2, true}, {3, false}}},
		{"oldest edge of window", 64, []step{{100, true}, {37, true}, {36, false}}},
		{"far past", 1024, []step{{5000, true}, {3977, true}, {3976, false}, {1, false}}},
		{"jump beyond ring clears old bits", 64, []step{{10, true}, {10 + 64*100, true}, {10 + 64*100 - 1, true}, {10, false}}},
		{"jump by exactly one block", 64, []step{{63, true}, {127, true}, {64, true}, {64, false}, {63, false}}},
		{"window of one", 1, []step{{1, true}, {1, false}, {3, true}, {2, false}, {4, true}}},
		{"odd size 100", 100, []step{{200, true}, {101, true}, {100, false}}},
		{"64-bit space", 64, []step{{math.MaxUint64 - 1, true}, {math.MaxUint64, true}, {math.MaxUint64, false}, {math.MaxUint64 - 63, true}, {math.MaxUint64 - 64, false}}},
		{"across 2^32", 64, []step{{math.MaxUint32, true}, {1 << 32, true}, {1<<32 + 1, true}, {math.MaxUint32, false}, {math.MaxUint32 - 1, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := mustNew(t, tc.size)
			for i, s := range tc.steps {
				if got := w.Check(s.seq); got != s.want {
					t.Fatalf("step %d: Check(%d) = %v, want %v", i, s.seq, got, s.want)
				}
				if got := w.Update(s.seq); got != s.want {
					t.Fatalf("step %d: Update(%d) = %v, want %v", i, s.seq, got, s.want)
				}
				if w.Check(s.seq) {
					t.Fatalf("step %d: Check(%d) still true after Update", i, s.seq)
				}
			}
		})
	}
}

func TestCheckDoesNotChangeState(t *testing.T) {
	w := mustNew(t, 64)
	w.Update(10)
	for range 3 {
		if !w.Check(1000) {
			t.Fatal("Check(1000) = false")
		}
	}
	if w.Top() != 10 || !w.Check(9) {
		t.Fatalf("Check moved the window: top %d", w.Top())
	}
}

// TestAgainstModel compares the window with a plain set over random traffic.
func TestAgainstModel(t *testing.T) {
	for _, size := range []int{1, 63, 64, 65, 200, 1024} {
		rng := rand.New(rand.NewPCG(uint64(size), 7))
		w := mustNew(t, size)
		seen := map[uint64]bool{}
		var top uint64
		for i := range 200000 {
			var seq uint64
			switch rng.IntN(10) {
			case 0: // big jump
				seq = top + uint64(rng.IntN(5000))
			case 1, 2: // old or duplicate
				seq = top - uint64(rng.IntN(size*2+1))
			default:
				seq = top + uint64(rng.IntN(8)) - 3
			}
			if seq > 1<<40 { // wrapped below zero
				seq = uint64(rng.IntN(3))
			}
			want := seq != 0 && !seen[seq] && (seq > top || top-seq < uint64(size))
			if got := w.Check(seq); got != want {
				t.Fatalf("size %d step %d: Check(%d) = %v, want %v (top %d)", size, i, seq, got, want, top)
			}
			accept := rng.IntN(8) != 0 // sometimes the ICV "fails": no Update
			if accept {
				if got := w.Update(seq); got != want {
					t.Fatalf("size %d step %d: Update(%d) = %v, want %v", size, i, seq, got, want)
				}
				if want {
					seen[seq] = true
					top = max(top, seq)
				}
			}
		}
	}
}

func TestInfer(t *testing.T) {
	const W = 64
	for _, tc := range []struct {
		name   string
		top    uint64 // 0: fresh window
		lo     uint32
		want   uint64
		wantOK bool
	}{
		{"fresh", 0, 1, 1, true},
		{"fresh zero", 0, 0, 0, false},
		{"fresh, large lo stays in subspace 0", 0, math.MaxUint32 - 2, math.MaxUint32 - 2, true},
		{"case A in window", 1000, 990, 990, true},
		{"case A ahead", 1000, 2000, 2000, true},
		{"case A below window is next subspace", 1000, 10, 1<<32 | 10, true},
		{"case A at bottom edge", 1000, 1000 - W + 1, 1000 - W + 1, true},
		{"case A end of subspace wraps to next", math.MaxUint32, 0, 1 << 32, true},
		{"case A after wrap", math.MaxUint32, 5, 1<<32 | 5, true},
		{"case B low part", 3<<32 | 10, 5, 3<<32 | 5, true},
		{"case B older subspace", 3<<32 | 10, math.MaxUint32 - 20, 2<<32 | (math.MaxUint32 - 20), true},
		{"case B ahead", 3<<32 | 10, 1000, 3<<32 | 1000, true},
		{"case B low zero is valid with ESN", 3<<32 | 10, 0, 3 << 32, true},
		{"64-bit space exhausted", math.MaxUint32<<32 | 1000, 10, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := mustNew(t, W)
			if tc.top != 0 && !w.Update(tc.top) {
				t.Fatalf("Update(%d) = false", tc.top)
			}
			got, ok := w.Infer(tc.lo)
			if ok != tc.wantOK || (ok && got != tc.want) {
				t.Fatalf("Infer(%#x) with top %#x = %#x, %v; want %#x, %v", tc.lo, tc.top, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

// TestESNSequenceWrap drives a window through the 2^32 boundary with only
// the low bits, as an ESN receiver sees them.
func TestESNSequenceWrap(t *testing.T) {
	w := mustNew(t, 128)
	start := uint64(math.MaxUint32 - 300)
	w.Update(start)
	for seq := start + 1; seq < start+600; seq++ {
		// Deliver pairs out of order.
		for _, s := range []uint64{seq ^ 1} {
			if s <= start {
				continue
			}
			full, ok := w.Infer(uint32(s))
			if !ok || full != s {
				t.Fatalf("Infer(%#x) = %#x, %v; want %#x (top %#x)", uint32(s), full, ok, s, w.Top())
			}
			if w.Check(full) {
				w.Update(full)
			}
		}
	}
	if w.Top() < 1<<32 {
		t.Fatalf("top %#x did not cross 2^32", w.Top())
	}
	// An old packet from before the wrap is a replay, not a new subspace.
	old := start + 250
	full, _ := w.Infer(uint32(old))
	if w.Check(full) && full == old {
		t.Fatalf("old sequence %#x accepted", old)
	}
}

func TestReset(t *testing.T) {
	w := mustNew(t, 128)
	w.Update(500)
	w.Update(450)
	w.Reset()
	if w.Top() != 0 || !w.Check(450) || !w.Check(1) || w.Size() != 128 {
		t.Fatalf("Reset kept state: top %d", w.Top())
	}
	if a := testing.AllocsPerRun(100, w.Reset); a != 0 {
		t.Fatalf("Reset allocates %v", a)
	}
}

func TestNoAllocs(t *testing.T) {
	w := mustNew(t, 1024)
	var seq uint64
	allocs := testing.AllocsPerRun(1000, func() {
		seq += 3
		s, _ := w.Infer(uint32(seq))
		if w.Check(s) {
			w.Update(s)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet", allocs)
	}
}

func BenchmarkInOrder(b *testing.B) {
	w := mustNew(b, 1024)
	b.ReportAllocs()
	for i := range b.N {
		s := uint64(i + 1)
		if w.Check(s) {
			w.Update(s)
		}
	}
}

// Resume: everything up to top is seen, everything after it is new, at
// any position in a block.
func TestResume(t *testing.T) {
	for _, top := range []uint64{0, 1, 63, 64, 65, 1000, 1<<32 + 5} {
		w, err := New(128)
		if err != nil {
			t.Fatal(err)
		}
		w.Resume(top)
		for seq := top; seq > 0 && seq+200 > top; seq-- {
			if w.Check(seq) {
				t.Fatalf("top %d: %d accepted after Resume", top, seq)
			}
		}
		for _, seq := range []uint64{top + 1, top + 2, top + 64, top + 300} {
			if !w.Check(seq) || !w.Update(seq) {
				t.Fatalf("top %d: %d refused after Resume", top, seq)
			}
		}
	}
}
