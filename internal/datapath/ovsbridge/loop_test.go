package ovsbridge

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/datapath/drop"
)

// fakeDevice hands out queued read batches and records writes.
type fakeDevice struct {
	reads    chan [][]byte
	closed   chan struct{}
	once     sync.Once
	mu       sync.Mutex
	written  [][]byte
	failNext int // fail this many writes (one frame each)
}

func newFakeDevice() *fakeDevice {
	return &fakeDevice{reads: make(chan [][]byte, 16), closed: make(chan struct{})}
}

func (d *fakeDevice) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	select {
	case batch := <-d.reads:
		n := 0
		for _, f := range batch {
			if n == len(bufs) {
				break
			}
			sizes[n] = copy(bufs[n], f)
			n++
		}
		return n, nil
	case <-d.closed:
		return 0, errors.New("closed")
	}
}

func (d *fakeDevice) WriteBatch(frames [][]byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, f := range frames {
		if d.failNext > 0 {
			d.failNext--
			return i, errors.New("write failed")
		}
		d.written = append(d.written, append([]byte(nil), f...))
	}
	return len(frames), nil
}

func (d *fakeDevice) Close() error {
	d.once.Do(func() { close(d.closed) })
	return nil
}

func (d *fakeDevice) writes() [][]byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([][]byte(nil), d.written...)
}

// scriptHook gives verdicts by direction and records what it saw.
type scriptHook struct {
	mu       sync.Mutex
	out, in  Verdict
	seenOut  int
	seenIn   int
	rewrite  bool // outbound: append 4 bytes 0xee using the tailroom
	outPeers []netip.Addr
}

func (h *scriptHook) Outbound(fs []*Frame) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range fs {
		h.seenOut++
		h.outPeers = append(h.outPeers, f.Peer)
		if f.Dir != Outbound {
			panic("outbound hook got " + f.Dir.String())
		}
		f.Verdict = h.out
		if h.rewrite {
			buf := f.Buffer()
			end := f.Offset() + len(f.Bytes())
			copy(buf[end:], []byte{0xee, 0xee, 0xee, 0xee})
			if !f.SetBounds(f.Offset(), len(f.Bytes())+4) {
				panic("SetBounds refused tailroom")
			}
		}
	}
}

func (h *scriptHook) Inbound(fs []*Frame) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range fs {
		h.seenIn++
		if f.Dir != Inbound {
			panic("inbound hook got " + f.Dir.String())
		}
		f.Verdict = h.in
	}
}

var (
	local = netip.MustParseAddr("198.51.100.1")
	peerA = netip.MustParseAddr("198.51.100.2")
	peerB = netip.MustParseAddr("198.51.100.3")
	other = netip.MustParseAddr("198.51.100.9")
)

// runBatch feeds one batch through a fresh loop and returns loop, device
// and hook after processing.
func runBatch(t *testing.T, hook Hook, cfg LoopConfig, batch [][]byte) (*Loop, *fakeDevice) {
	t.Helper()
	dev := newFakeDevice()
	cfg.Device, cfg.Hook = dev, hook
	l, err := NewLoop(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l.SetPeers([]Policy{{PeerIP: peerA, Proto: ProtoGeneve}, {PeerIP: peerB, Proto: ProtoGeneve}})
	n := 0
	for i, f := range batch {
		n += copy(l.bufs[i], f)
		l.sizes[i] = len(f)
	}
	l.process(len(batch))
	return l, dev
}

func TestLoopClassifyAndVerdicts(t *testing.T) {
	out := testFrame(local, peerA, protoUDP, 1000, 6081, 50)
	in := testFrame(peerB, local, protoESP, 0, 0, 60)
	unknown := testFrame(local, other, protoUDP, 1000, 6081, 50)
	arp := append([]byte{}, out...)
	arp[12], arp[13] = 0x08, 0x06
	tests := []struct {
		name      string
		hook      *scriptHook
		batch     [][]byte
		want      Stats
		wantWrite [][]byte
	}{
		{
			name:      "passthrough both directions",
			hook:      &scriptHook{out: VerdictPass, in: VerdictPass},
			batch:     [][]byte{out, in},
			want:      Stats{OutFrames: 1, OutBytes: uint64(len(out)), InFrames: 1, InBytes: uint64(len(in)), OutWritten: 1, InWritten: 1},
			wantWrite: [][]byte{out, in},
		},
		{
			name:  "drop verdict is counted",
			hook:  &scriptHook{out: VerdictDrop, in: VerdictDrop},
			batch: [][]byte{out, in},
			want:  Stats{OutFrames: 1, OutBytes: uint64(len(out)), InFrames: 1, InBytes: uint64(len(in)), DropHook: 2},
		},
		{
			name:  "unknown peer and non-IP never reach the hook",
			hook:  &scriptHook{out: VerdictPass, in: VerdictPass},
			batch: [][]byte{unknown, arp, out[:20]},
			want:  Stats{Drops: drop.Counts{drop.NoPeer: 1, drop.Malformed: 2}},
		},
		{
			name:  "hold outbound, inbound hold is a drop",
			hook:  &scriptHook{out: VerdictHold, in: VerdictHold},
			batch: [][]byte{out, out, in},
			want: Stats{OutFrames: 2, OutBytes: 2 * uint64(len(out)), InFrames: 1, InBytes: uint64(len(in)), DropHook: 1,
				Hold: HoldStats{Held: 2}},
		},
		{
			name:      "in-place growth into tailroom is written",
			hook:      &scriptHook{out: VerdictPass, in: VerdictPass, rewrite: true},
			batch:     [][]byte{out},
			want:      Stats{OutFrames: 1, OutBytes: uint64(len(out)), OutWritten: 1},
			wantWrite: [][]byte{append(append([]byte{}, out...), 0xee, 0xee, 0xee, 0xee)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, dev := runBatch(t, tc.hook, LoopConfig{}, tc.batch)
			if got := l.Stats(); got != tc.want {
				t.Errorf("stats:\n got %+v\nwant %+v", got, tc.want)
			}
			w := dev.writes()
			if len(w) != len(tc.wantWrite) {
				t.Fatalf("wrote %d frames, want %d", len(w), len(tc.wantWrite))
			}
			for i := range w {
				if !bytes.Equal(w[i], tc.wantWrite[i]) {
					t.Errorf("frame %d written differs", i)
				}
			}
		})
	}
}

func TestLoopTruncatedFrameDropped(t *testing.T) {
	big := testFrame(local, peerA, protoUDP, 1, 6081, 200)
	l, dev := runBatch(t, &scriptHook{out: VerdictPass}, LoopConfig{MaxFrame: 100}, nil)
	n := copy(l.bufs[0], big)
	l.sizes[0] = n // the read filled the whole area: truncated
	l.process(1)
	if s := l.Stats(); s.Drops[drop.Malformed] != 1 || s.OutFrames != 0 || len(dev.writes()) != 0 {
		t.Errorf("truncated frame: stats %+v, %d writes", s, len(dev.writes()))
	}
}

func TestLoopWriteErrorSkipsOneFrame(t *testing.T) {
	out := testFrame(local, peerA, protoUDP, 1000, 6081, 50)
	dev := newFakeDevice()
	dev.failNext = 1
	l, err := NewLoop(LoopConfig{Device: dev, Hook: Passthrough{}})
	if err != nil {
		t.Fatal(err)
	}
	l.SetPeers([]Policy{{PeerIP: peerA}})
	for i := 0; i < 3; i++ {
		l.sizes[i] = copy(l.bufs[i], out)
	}
	l.process(3)
	s := l.Stats()
	if s.Drops[drop.Device] != 1 || s.Drops.Total() != 1 || s.OutWritten != 2 || len(dev.writes()) != 2 {
		t.Errorf("drops %v, written %d (%d on device), want one drop_device and 2", s.Drops, s.OutWritten, len(dev.writes()))
	}
}

func TestLoopReleaseAndDiscard(t *testing.T) {
	out := testFrame(local, peerA, protoUDP, 1000, 6081, 50)
	outB := testFrame(local, peerB, protoUDP, 1000, 6081, 50)
	hook := &scriptHook{out: VerdictHold, in: VerdictPass}
	l, dev := runBatch(t, hook, LoopConfig{HoldPeer: 2, HoldSlots: 8}, [][]byte{out, out, out, outB})
	if s := l.Stats().Hold; s.Held != 3 || s.Overflow != 1 {
		t.Fatalf("hold stats %+v, want 3 held, 1 overflow (per-peer limit 2)", s)
	}
	hook.mu.Lock()
	hook.out = VerdictPass
	hook.mu.Unlock()
	n, err := l.Release(peerA)
	if err != nil || n != 2 {
		t.Fatalf("Release(peerA) = %d, %v; want 2", n, err)
	}
	if len(dev.writes()) != 2 || l.Hold().Len(peerA) != 0 {
		t.Errorf("after release: %d writes, %d still held", len(dev.writes()), l.Hold().Len(peerA))
	}
	if got := l.Discard(peerB); got != 1 {
		t.Errorf("Discard(peerB) = %d, want 1", got)
	}
	if n, _ := l.Release(peerB); n != 0 {
		t.Errorf("Release after Discard wrote %d frames", n)
	}
	s := l.Stats()
	// The overflow and the discarded frame are lost for want of an SA.
	if s.Released != 2 || s.OutWritten != 2 || s.Hold.Discarded != 1 || s.Drops[drop.NoSA] != 2 || s.Drops.Total() != 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestLoopRunStopsOnCancel(t *testing.T) {
	dev := newFakeDevice()
	l, err := NewLoop(LoopConfig{Device: dev, Hook: Passthrough{}})
	if err != nil {
		t.Fatal(err)
	}
	l.SetPeers([]Policy{{PeerIP: peerA}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	dev.reads <- [][]byte{testFrame(local, peerA, protoUDP, 1, 6081, 10)}
	deadline := time.Now().Add(5 * time.Second)
	for len(dev.writes()) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if len(dev.writes()) != 1 {
		t.Errorf("wrote %d frames, want 1", len(dev.writes()))
	}
}

func TestLoopRunReportsDeviceError(t *testing.T) {
	dev := newFakeDevice()
	l, _ := NewLoop(LoopConfig{Device: dev, Hook: Passthrough{}})
	dev.Close()
	if err := l.Run(context.Background()); err == nil {
		t.Error("Run on a failed device returned nil")
	}
}

func TestLoopProcessNoAlloc(t *testing.T) {
	out := testFrame(local, peerA, protoUDP, 1000, 6081, 1400)
	in := testFrame(peerA, local, protoESP, 0, 0, 1400)
	dev := &nullDevice{}
	l, err := NewLoop(LoopConfig{Device: dev, Hook: Passthrough{}, Batch: 8})
	if err != nil {
		t.Fatal(err)
	}
	l.SetPeers([]Policy{{PeerIP: peerA}})
	for i := 0; i < 8; i++ {
		f := out
		if i%2 == 1 {
			f = in
		}
		l.sizes[i] = copy(l.bufs[i], f)
	}
	allocs := testing.AllocsPerRun(200, func() {
		for i := 0; i < 8; i++ {
			l.sizes[i] = len(out)
		}
		l.process(8)
	})
	if allocs != 0 {
		t.Errorf("process allocates %v times per batch", allocs)
	}
}

type nullDevice struct{}

func (nullDevice) ReadBatch([][]byte, []int) (int, error) { return 0, errors.New("none") }
func (nullDevice) WriteBatch(fs [][]byte) (int, error)    { return len(fs), nil }
func (nullDevice) Close() error                           { return nil }

func TestFrameSetBounds(t *testing.T) {
	f := newFrame(100)
	f.load(60)
	tests := []struct {
		off, n int
		ok     bool
	}{
		{Headroom - 16, 76, true},
		{0, len(f.buf), true},
		{-1, 60, false},
		{0, 13, false},
		{10, len(f.buf), false},
		{len(f.buf) + 1, 14, false},
	}
	for _, tc := range tests {
		g := newFrame(100)
		g.load(60)
		if got := g.SetBounds(tc.off, tc.n); got != tc.ok {
			t.Errorf("SetBounds(%d,%d) = %v, want %v", tc.off, tc.n, got, tc.ok)
		}
		if !tc.ok && (g.off != Headroom || g.n != 60) {
			t.Errorf("refused SetBounds(%d,%d) changed the frame", tc.off, tc.n)
		}
	}
}

func BenchmarkLoopPassthrough(b *testing.B) {
	out := testFrame(local, peerA, protoUDP, 1000, 6081, 1400)
	l, _ := NewLoop(LoopConfig{Device: nullDevice{}, Hook: Passthrough{}, Batch: 64})
	l.SetPeers([]Policy{{PeerIP: peerA}})
	for i := range l.bufs {
		copy(l.bufs[i], out)
	}
	b.SetBytes(int64(64 * len(out)))
	b.ReportAllocs()
	for b.Loop() {
		for i := range l.sizes {
			l.sizes[i] = len(out)
		}
		l.process(64)
	}
}

// FuzzLoopProcess feeds one arbitrary frame through the loop: it must not
// panic, must account for the frame exactly once, and may write back only a
// frame it classified.
func FuzzLoopProcess(f *testing.F) {
	f.Add(testFrame(local, peerA, protoUDP, 1000, 6081, 50))
	f.Add(testFrame(peerA, local, protoESP, 0, 0, 60))
	f.Add(testFrame(local, other, protoUDP, 1000, 4789, 10))
	f.Add([]byte{1, 2, 3})
	dev := &countingDevice{}
	l, err := NewLoop(LoopConfig{Device: dev, Hook: Passthrough{}, Batch: 1, MaxFrame: 2048})
	if err != nil {
		f.Fatal(err)
	}
	l.SetPeers([]Policy{{PeerIP: peerA}, {PeerIP: netip.MustParseAddr("2001:db8::2")}})
	f.Fuzz(func(t *testing.T, frame []byte) {
		before, w0 := l.Stats(), dev.n
		l.sizes[0] = copy(l.bufs[0], frame)
		if len(frame) > len(l.bufs[0]) {
			l.sizes[0] = len(l.bufs[0])
		}
		l.process(1)
		s := l.Stats()
		seen := (s.OutFrames - before.OutFrames) + (s.InFrames - before.InFrames) +
			(s.Drops[drop.Malformed] - before.Drops[drop.Malformed]) + (s.Drops[drop.NoPeer] - before.Drops[drop.NoPeer])
		if seen != 1 {
			t.Fatalf("frame accounted %d times: %+v -> %+v", seen, before, s)
		}
		written := dev.n - w0
		classified := (s.OutFrames - before.OutFrames) + (s.InFrames - before.InFrames)
		if written != classified {
			t.Fatalf("wrote %d frames for %d classified", written, classified)
		}
	})
}

type countingDevice struct{ n uint64 }

func (d *countingDevice) ReadBatch([][]byte, []int) (int, error) { return 0, errors.New("none") }
func (d *countingDevice) WriteBatch(fs [][]byte) (int, error) {
	d.n += uint64(len(fs))
	return len(fs), nil
}
func (d *countingDevice) Close() error { return nil }
