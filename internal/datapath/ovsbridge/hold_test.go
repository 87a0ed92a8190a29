package ovsbridge

import (
	"bytes"
	"log/slog"
	"net/netip"
	"testing"
)

func TestHold(t *testing.T) {
	a := netip.MustParseAddr("198.51.100.2")
	b := netip.MustParseAddr("198.51.100.3")
	type op struct {
		do    string // put, take, discard
		peer  netip.Addr
		frame byte // frame content (size 10 of this byte), 0 for a 30-byte frame
		want  int  // put: 1 ok / 0 dropped; take/discard: count
	}
	tests := []struct {
		name      string
		slots     int
		perPeer   int
		ops       []op
		wantStats HoldStats
	}{
		{
			name: "per-peer limit tail-drops", slots: 8, perPeer: 2,
			ops:       []op{{"put", a, 1, 1}, {"put", a, 2, 1}, {"put", a, 3, 0}, {"put", b, 4, 1}, {"take", a, 0, 2}, {"take", b, 0, 1}},
			wantStats: HoldStats{Held: 3, Overflow: 1},
		},
		{
			name: "pool limit across peers", slots: 2, perPeer: 4,
			ops:       []op{{"put", a, 1, 1}, {"put", b, 2, 1}, {"put", b, 3, 0}, {"discard", a, 0, 1}, {"put", b, 3, 1}, {"take", b, 0, 2}},
			wantStats: HoldStats{Held: 3, Overflow: 1, Discarded: 1},
		},
		{
			name: "oversize frame", slots: 2, perPeer: 2,
			ops:       []op{{"put", a, 0, 0}, {"take", a, 0, 0}},
			wantStats: HoldStats{Oversize: 1},
		},
		{
			name: "disabled hold drops everything", slots: 0, perPeer: 0,
			ops:       []op{{"put", a, 1, 0}},
			wantStats: HoldStats{Overflow: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHold(tc.slots, tc.perPeer, 20)
			for i, o := range tc.ops {
				switch o.do {
				case "put":
					f := bytes.Repeat([]byte{o.frame}, 10)
					if o.frame == 0 {
						f = make([]byte, 30)
					}
					ok := h.Put(o.peer, f)
					if ok != (o.want == 1) {
						t.Fatalf("op %d: Put = %v", i, ok)
					}
				case "take":
					got := h.Take(o.peer, nil)
					if len(got) != o.want {
						t.Fatalf("op %d: Take returned %d frames, want %d", i, len(got), o.want)
					}
					for j := 1; j < len(got); j++ {
						if got[j][0] < got[j-1][0] {
							t.Errorf("op %d: frames out of order", i)
						}
					}
					h.Return(got)
				case "discard":
					if got := h.Discard(o.peer); got != o.want {
						t.Fatalf("op %d: Discard = %d, want %d", i, got, o.want)
					}
				}
			}
			if got := h.Stats(); got != tc.wantStats {
				t.Errorf("stats %+v, want %+v", got, tc.wantStats)
			}
		})
	}
}

func TestHoldCopiesFrame(t *testing.T) {
	h := NewHold(1, 1, 16)
	a := netip.MustParseAddr("198.51.100.2")
	f := []byte{1, 2, 3}
	h.Put(a, f)
	f[0] = 9
	got := h.Take(a, nil)
	if len(got) != 1 || got[0][0] != 1 {
		t.Errorf("held frame changed with the caller's buffer: %v", got)
	}
}

// Jumbo-capable holds keep most slots small: ordinary frames take small
// slots, larger ones the few big slots (slots/16, at least one), and each
// slot goes back to its own pool.
func TestHoldSizeClasses(t *testing.T) {
	a := netip.MustParseAddr("198.51.100.2")
	h := NewHold(32, 64, 9000)
	if len(h.free) != 32 || len(h.freeBig) != 2 || cap(h.free[0]) != smallSlot || cap(h.freeBig[0]) != 9000 {
		t.Fatalf("pools: %d small of %d, %d big of %d", len(h.free), cap(h.free[0]), len(h.freeBig), cap(h.freeBig[0]))
	}
	jumbo := make([]byte, 8000)
	for i := range 3 {
		if ok := h.Put(a, jumbo); ok != (i < 2) {
			t.Fatalf("jumbo frame %d: Put = %v", i, ok)
		}
	}
	if !h.Put(a, make([]byte, smallSlot)) || !h.Put(a, make([]byte, 100)) {
		t.Fatal("ordinary frames refused while big slots are full")
	}
	if s := h.Stats(); s.Overflow != 1 || s.Oversize != 0 {
		t.Errorf("stats %+v: want the third jumbo frame as the one overflow", s)
	}
	got := h.Take(a, nil)
	if len(got) != 4 || len(got[0]) != 8000 || len(got[3]) != 100 {
		t.Fatalf("took %d frames", len(got))
	}
	h.Return(got)
	if len(h.free) != 32 || len(h.freeBig) != 2 {
		t.Errorf("after Return: %d small, %d big slots free; want 32 and 2", len(h.free), len(h.freeBig))
	}
	if h.Put(a, make([]byte, 9001)) {
		t.Error("a frame above slotSize was held")
	}
	// Without jumbo frames there is one pool.
	if h := NewHold(4, 4, 1600); len(h.freeBig) != 0 || cap(h.free[0]) != 1600 {
		t.Errorf("small-only hold: %d big slots, small of %d", len(h.freeBig), cap(h.free[0]))
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
