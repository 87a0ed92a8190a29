package ovsbridge

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ovnsec/ovnsec/internal/datapath/drop"
)

func TestWireAllowed(t *testing.T) {
	peerC := netip.MustParseAddr("198.51.100.4")
	peers := peerSet{
		peerA: {mode: ModeProtected},
		peerB: {mode: ModeProtected, encapPort: 4500},
		peerC: {mode: ModeBenchPassthrough},
	}
	later := testFrame(local, peerB, protoUDP, 4500, 4500, 40)
	later[14+6] = 0x00
	later[14+7] = 0x10 // fragment offset 16 (x8 bytes): no UDP header
	arp := testFrame(local, peerA, protoESP, 0, 0, 40)
	arp[12], arp[13] = 0x08, 0x06
	tests := []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"ESP to a protected peer", testFrame(local, peerA, protoESP, 0, 0, 60), true},
		{"plaintext Geneve to a protected peer", testFrame(local, peerA, protoUDP, 1000, 6081, 60), false},
		{"GRE to a protected peer", testFrame(local, peerA, protoGRE, 0, 0, 60), false},
		{"ESP-in-UDP 4500 to a peer without udp4500", espUDPFrame(local, peerA, 4500, 4500, 0x1001, 60), false},
		{"ESP-in-UDP 4500 to a peer with udp4500", espUDPFrame(local, peerB, 4500, 4500, 0x1001, 60), true},
		{"IKE (non-ESP marker) on 4500 to a peer with udp4500", espUDPFrame(local, peerB, 4500, 4500, 0, 60), false},
		{"later fragment to a udp4500 peer", later, false},
		{"plaintext to a passthrough peer", testFrame(local, peerC, protoUDP, 1000, 6081, 60), true},
		{"ESP to no peer", testFrame(local, other, protoESP, 0, 0, 60), false},
		{"not IP", arp, false},
		{"runt", arp[:10], false},
		{"IPv6 ESP to no peer", testFrame(netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"), protoESP, 0, 0, 60), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := wireAllowed(tc.frame, peers); got != tc.want {
				t.Errorf("wireAllowed = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestLoopWire checks that with a Wire, outbound frames the hook passes go
// to the wire only when they are ESP to a protected peer, and inbound ones
// still go back to the engine port.
func TestLoopWire(t *testing.T) {
	plainOut := testFrame(local, peerA, protoUDP, 1000, 6081, 50)
	espOut := testFrame(local, peerA, protoESP, 0, 0, 70) // classified outbound by address
	espIn := testFrame(peerA, local, protoESP, 0, 0, 70)
	tests := []struct {
		name               string
		mode               Mode
		batch              [][]byte
		wantWire, wantPort int
		wantLeak           uint64
	}{
		{"protected: ESP out to the wire, inbound to the port", ModeProtected, [][]byte{espOut, espIn, espOut}, 2, 1, 0},
		{"protected: plaintext out is a leak, never written", ModeProtected, [][]byte{plainOut, espIn}, 0, 1, 1},
		{"passthrough: plaintext out to the wire", ModeBenchPassthrough, [][]byte{plainOut, plainOut}, 2, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev, wire := newFakeDevice(), newFakeDevice()
			l, err := NewLoop(LoopConfig{Device: dev, Wire: wire, Hook: Passthrough{}})
			if err != nil {
				t.Fatal(err)
			}
			l.SetPeers([]Policy{{PeerIP: peerA, Proto: ProtoGeneve, Mode: tc.mode}})
			for i, f := range tc.batch {
				l.sizes[i] = copy(l.bufs[i], f)
			}
			l.process(len(tc.batch))
			s := l.Stats()
			if got := len(wire.writes()); got != tc.wantWire {
				t.Errorf("wire got %d frames, want %d", got, tc.wantWire)
			}
			if got := len(dev.writes()); got != tc.wantPort {
				t.Errorf("engine port got %d frames, want %d", got, tc.wantPort)
			}
			if s.Drops[drop.Leak] != tc.wantLeak || s.OutWritten != uint64(tc.wantWire) || s.InWritten != uint64(tc.wantPort) {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

func TestLoopWireRelease(t *testing.T) {
	espOut := testFrame(local, peerA, protoESP, 0, 0, 70)
	plainOut := testFrame(local, peerA, protoUDP, 1000, 6081, 50)
	dev, wire := newFakeDevice(), newFakeDevice()
	hook := &scriptHook{out: VerdictHold}
	l, err := NewLoop(LoopConfig{Device: dev, Wire: wire, Hook: hook})
	if err != nil {
		t.Fatal(err)
	}
	l.SetPeers([]Policy{{PeerIP: peerA, Proto: ProtoGeneve}})
	l.sizes[0] = copy(l.bufs[0], espOut)
	l.sizes[1] = copy(l.bufs[1], plainOut)
	l.process(2)
	hook.mu.Lock()
	hook.out = VerdictPass
	hook.mu.Unlock()
	n, err := l.Release(peerA)
	if err != nil || n != 1 {
		t.Fatalf("Release = %d, %v; want 1 (the ESP frame)", n, err)
	}
	if len(wire.writes()) != 1 || len(dev.writes()) != 0 || l.Stats().Drops[drop.Leak] != 1 {
		t.Errorf("wire %d, port %d, stats %+v", len(wire.writes()), len(dev.writes()), l.Stats())
	}
}

func TestLoopWireNoAlloc(t *testing.T) {
	out := testFrame(local, peerA, protoESP, 0, 0, 1400)
	in := testFrame(peerA, local, protoESP, 0, 0, 1400)
	l, err := NewLoop(LoopConfig{Device: nullDevice{}, Wire: nullDevice{}, Hook: Passthrough{}, Batch: 8})
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
		t.Errorf("process with a Wire allocates %v times per batch", allocs)
	}
	if s := l.Stats(); s.OutWritten == 0 || s.Drops[drop.Leak] != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestCheckDirectFields(t *testing.T) {
	tests := []struct {
		name string
		out  string
		ok   bool
	}{
		{"plain system port", "[]\n[]\n[]\n[5a1e0c2f-0000-4000-8000-000000000001]\n\"\"", true},
		{"explicit system type", "[]\n[]\n[]\n[5a1e0c2f-0000-4000-8000-000000000001]\nsystem", true},
		{"access VLAN tag", "100\n[]\n[]\n[5a1e0c2f-0000-4000-8000-000000000001]\n\"\"", false},
		{"trunks", "[]\n[100, 200]\n[]\n[5a1e0c2f-0000-4000-8000-000000000001]\n\"\"", false},
		{"vlan_mode", "[]\n[]\nnative-untagged\n[5a1e0c2f-0000-4000-8000-000000000001]\n\"\"", false},
		{"bond", "[]\n[]\n[]\n[5a1e0c2f-0000-4000-8000-000000000001, 5a1e0c2f-0000-4000-8000-000000000002]\n\"\"", false},
		{"dpdk", "[]\n[]\n[]\n[5a1e0c2f-0000-4000-8000-000000000001]\ndpdk", false},
		{"short output", "[]\n[]", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkDirectFields("eth0", strings.Split(tc.out, "\n"))
			if (err == nil) != tc.ok {
				t.Errorf("checkDirectFields = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestLoopNilPacketPortWireIsNoWire(t *testing.T) {
	var wire *PacketPort // e.g. direct output disabled
	dev := newFakeDevice()
	l, err := NewLoop(LoopConfig{Device: dev, Wire: wire, Hook: Passthrough{}})
	if err != nil {
		t.Fatal(err)
	}
	l.SetPeers([]Policy{{PeerIP: peerA, Mode: ModeBenchPassthrough}})
	l.sizes[0] = copy(l.bufs[0], testFrame(local, peerA, protoUDP, 1, 6081, 40))
	l.process(1)
	if len(dev.writes()) != 1 {
		t.Errorf("outbound frame not written to the engine port with a nil *PacketPort Wire")
	}
}

// TestLoopDropReasons: a failed write to the Wire is drop_send, one to the
// engine port drop_device, a plaintext frame for the Wire drop_leak, each
// counted once under drop's names.
func TestLoopDropReasons(t *testing.T) {
	espOut := testFrame(local, peerA, protoESP, 0, 0, 70)
	plainOut := testFrame(local, peerA, protoUDP, 1000, 6081, 50)
	espIn := testFrame(peerA, local, protoESP, 0, 0, 70)
	dev, wire := newFakeDevice(), newFakeDevice()
	dev.failNext, wire.failNext = 1, 1
	l, err := NewLoop(LoopConfig{Device: dev, Wire: wire, Hook: Passthrough{}})
	if err != nil {
		t.Fatal(err)
	}
	l.SetPeers([]Policy{{PeerIP: peerA, Proto: ProtoGeneve}})
	for i, f := range [][]byte{espOut, espOut, plainOut, espIn, espIn} {
		l.sizes[i] = copy(l.bufs[i], f)
	}
	l.process(5)
	s := l.Stats()
	want := drop.Counts{drop.Send: 1, drop.Device: 1, drop.Leak: 1}
	if s.Drops != want || s.OutWritten != 1 || s.InWritten != 1 {
		t.Errorf("stats %+v, want drops %v", s, want)
	}
	if m := s.Drops.Map(); m["drop_send"] != 1 || m["drop_device"] != 1 || m["drop_leak"] != 1 {
		t.Errorf("drops by name %v", m)
	}
}

// TestLoopDropsNoAlloc: the loop's own drops (malformed, no peer, leak)
// are counted without allocating.
func TestLoopDropsNoAlloc(t *testing.T) {
	frames := [][]byte{
		testFrame(local, peerA, protoUDP, 1000, 6081, 200),  // leak
		testFrame(local, other, protoESP, 0, 0, 200),        // no peer
		{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, // malformed
	}
	l, err := NewLoop(LoopConfig{Device: nullDevice{}, Wire: nullDevice{}, Hook: Passthrough{}, Batch: len(frames)})
	if err != nil {
		t.Fatal(err)
	}
	l.SetPeers([]Policy{{PeerIP: peerA}})
	allocs := testing.AllocsPerRun(200, func() {
		for i, f := range frames {
			l.sizes[i] = copy(l.bufs[i], f)
		}
		l.process(len(frames))
	})
	if allocs != 0 {
		t.Errorf("dropping allocates %v times per batch", allocs)
	}
	s := l.Stats()
	if n := s.Drops[drop.Leak]; n == 0 || s.Drops[drop.NoPeer] != n || s.Drops[drop.Malformed] != n || s.Drops.Total() != 3*n {
		t.Errorf("drops %v", s.Drops)
	}
}
