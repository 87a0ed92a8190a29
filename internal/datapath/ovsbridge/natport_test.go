package ovsbridge

import (
	"encoding/binary"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/ovnsec/ovnsec/internal/datapath/drop"
)

// espUDPFrame is testFrame for ESP-in-UDP: UDP from sport to dport whose
// payload starts with spi (0 is the non-ESP marker of IKE) and a sequence
// number, followed by payload-8 more bytes.
func espUDPFrame(src, dst netip.Addr, sport, dport uint16, spi uint32, payload int) []byte {
	f := testFrame(src, dst, protoUDP, sport, dport, payload)
	l4 := ethHeader + ipv4Header + udpHeader
	if src.Is6() {
		l4 = ethHeader + ipv6Header + udpHeader
	}
	binary.BigEndian.PutUint32(f[l4:], spi)
	binary.BigEndian.PutUint32(f[l4+4:], 1)
	return f
}

// natPolicy is for a peer behind a NAT that mapped its port 4500 to 44500.
var natPolicy = Policy{PeerIP: peerA, Proto: ProtoGeneve, Encap: EncapUDP4500, EncapPort: 44500}

// natFrames are outbound frames to the NATed peer and whether the leak
// filter must let each out.
func natFrames() []struct {
	name  string
	frame []byte
	want  bool
} {
	keepalive := testFrame(local, peerA, protoUDP, 4500, 44500, 1)
	keepalive[len(keepalive)-1] = 0xff
	short := testFrame(local, peerA, protoUDP, 4500, 44500, 4) // an SPI and no sequence number
	binary.BigEndian.PutUint32(short[len(short)-4:], 0x1001)
	later := espUDPFrame(local, peerA, 4500, 44500, 0x1001, 60)
	binary.BigEndian.PutUint16(later[ethHeader+6:], 0x0010) // a later fragment: no UDP header
	return []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"ESP-in-UDP from 4500 to the mapped port", espUDPFrame(local, peerA, 4500, 44500, 0x1001, 100), true},
		{"plain ESP", testFrame(local, peerA, protoESP, 0, 0, 100), true},
		{"ESP-in-UDP to 4500 instead of the mapped port", espUDPFrame(local, peerA, 4500, 4500, 0x1001, 100), false},
		{"ESP-in-UDP to another port", espUDPFrame(local, peerA, 4500, 44501, 0x1001, 100), false},
		{"UDP to the mapped port from another source port", espUDPFrame(local, peerA, 51000, 44500, 0x1001, 100), false},
		{"IKE (non-ESP marker) to the mapped port", espUDPFrame(local, peerA, 4500, 44500, 0, 100), false},
		{"NAT keepalive to the mapped port", keepalive, false},
		{"ESP header cut short", short, false},
		{"later fragment to the mapped port", later, false},
		{"plaintext Geneve to the peer", testFrame(local, peerA, protoUDP, 51000, 6081, 100), false},
		{"plaintext Geneve from 4500", testFrame(local, peerA, protoUDP, 4500, 6081, 100), false},
	}
}

func TestWireAllowedNATPort(t *testing.T) {
	peers, err := mergePeers([]Policy{natPolicy, {PeerIP: peerB, Proto: ProtoGeneve, Encap: EncapUDP4500}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range natFrames() {
		t.Run(tc.name, func(t *testing.T) {
			if got := wireAllowed(tc.frame, peers); got != tc.want {
				t.Errorf("wireAllowed = %v, want %v", got, tc.want)
			}
		})
	}
	// The mapped port belongs to peerA only; peerB keeps 4500.
	if wireAllowed(espUDPFrame(local, peerB, 4500, 44500, 0x1001, 100), peers) {
		t.Error("ESP-in-UDP to peerA's mapped port allowed towards peerB")
	}
	if !wireAllowed(espUDPFrame(local, peerB, 4500, 4500, 0x1001, 100), peers) {
		t.Error("ESP-in-UDP to 4500 refused towards peerB (no NAT)")
	}
	v6 := netip.MustParseAddr("2001:db8::2")
	p6, err := mergePeers([]Policy{{PeerIP: v6, Proto: ProtoGeneve, Encap: EncapUDP4500, EncapPort: 44500}})
	if err != nil {
		t.Fatal(err)
	}
	l6 := netip.MustParseAddr("2001:db8::1")
	if !wireAllowed(espUDPFrame(l6, v6, 4500, 44500, 0x1001, 100), p6) || wireAllowed(espUDPFrame(l6, v6, 4500, 44500, 0, 100), p6) {
		t.Error("IPv6 ESP-in-UDP to the mapped port: wrong verdicts")
	}
}

// TestLoopWireNATPort runs the frames through a loop with a Wire: the
// allowed ones reach the wire, the others are dropped and counted as leaks.
func TestLoopWireNATPort(t *testing.T) {
	for _, tc := range natFrames() {
		t.Run(tc.name, func(t *testing.T) {
			dev, wire := newFakeDevice(), newFakeDevice()
			l, err := NewLoop(LoopConfig{Device: dev, Wire: wire, Hook: Passthrough{}})
			if err != nil {
				t.Fatal(err)
			}
			l.SetPeers([]Policy{natPolicy})
			l.sizes[0] = copy(l.bufs[0], tc.frame)
			l.process(1)
			s := l.Stats()
			want, leak := 0, uint64(1)
			if tc.want {
				want, leak = 1, 0
			}
			if got := len(wire.writes()); got != want || s.Drops[drop.Leak] != leak || len(dev.writes()) != 0 {
				t.Errorf("wire got %d frames (want %d), leaks %d (want %d), engine port %d", got, want, s.Drops[drop.Leak], leak, len(dev.writes()))
			}
		})
	}
}

// TestLoopWireNATPortChange: a new NAT mapping (SetPeers with another
// port) moves the allowance; the old port is a leak from then on.
func TestLoopWireNATPortChange(t *testing.T) {
	dev, wire := newFakeDevice(), newFakeDevice()
	l, err := NewLoop(LoopConfig{Device: dev, Wire: wire, Hook: Passthrough{}})
	if err != nil {
		t.Fatal(err)
	}
	send := func(port uint16) {
		l.sizes[0] = copy(l.bufs[0], espUDPFrame(local, peerA, 4500, port, 0x1001, 100))
		l.process(1)
	}
	l.SetPeers([]Policy{natPolicy})
	send(44500)
	moved := natPolicy
	moved.EncapPort = 40001
	l.SetPeers([]Policy{moved})
	send(44500)
	send(40001)
	if got, s := len(wire.writes()), l.Stats(); got != 2 || s.Drops[drop.Leak] != 1 {
		t.Errorf("wire got %d frames (want 2), leaks %d (want 1)", got, s.Drops[drop.Leak])
	}
}

// TestLoopSetPeersConflictFailsClosed: policies Rules refuses leave the
// peer with plain ESP only in the loop.
func TestLoopSetPeersConflictFailsClosed(t *testing.T) {
	l, err := NewLoop(LoopConfig{Device: newFakeDevice(), Hook: Passthrough{}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range [][]Policy{
		{natPolicy, {PeerIP: peerA, Proto: ProtoVXLAN, Encap: EncapUDP4500, EncapPort: 40001}},
		{{PeerIP: peerA, Proto: ProtoGeneve, Encap: EncapUDP4500, EncapPort: 4789}, {PeerIP: peerA, Proto: ProtoVXLAN}},
		{natPolicy, {PeerIP: peerA, Proto: ProtoVXLAN, Mode: ModeBenchPassthrough}},
	} {
		if _, err := Rules(testBridge, ps); err == nil {
			t.Errorf("Rules accepted %+v", ps)
		}
		l.SetPeers(ps)
		if pm := (*l.peers.Load())[peerA]; pm != (peerMode{mode: ModeProtected}) {
			t.Errorf("SetPeers(%+v): peer entry %+v, want protected without ESP-in-UDP", ps, pm)
		}
	}
}

func TestWireAllowedNATPortNoAlloc(t *testing.T) {
	peers, _ := mergePeers([]Policy{natPolicy})
	f := espUDPFrame(local, peerA, 4500, 44500, 0x1001, 1400)
	if n := testing.AllocsPerRun(100, func() { _ = wireAllowed(f, peers) }); n != 0 {
		t.Errorf("wireAllowed allocates %v times per frame", n)
	}
}

// FuzzWireAllowed: the leak filter must never panic, and whatever it lets
// out towards a protected peer is ESP, or UDP from 4500 to exactly the
// peer's NAT-T port with a non-zero SPI: never a plaintext tunnel packet.
func FuzzWireAllowed(f *testing.F) {
	f.Add(espUDPFrame(local, peerA, 4500, 44500, 0x1001, 40))
	f.Add(espUDPFrame(local, peerA, 4500, 44500, 0, 40))
	f.Add(espUDPFrame(local, peerB, 4500, 4500, 0x1001, 40))
	f.Add(testFrame(local, peerA, protoUDP, 4500, 6081, 40))
	f.Add(testFrame(local, peerA, protoESP, 0, 0, 40))
	f.Add(espUDPFrame(netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"), 4500, 44500, 7, 16))
	peers, err := mergePeers([]Policy{
		natPolicy,
		{PeerIP: peerB, Proto: ProtoVXLAN, Encap: EncapUDP4500},
		{PeerIP: netip.MustParseAddr("2001:db8::2"), Proto: ProtoGeneve, Encap: EncapUDP4500, EncapPort: 44500},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if !wireAllowed(frame, peers) {
			return
		}
		in, err := ParseFrame(frame)
		if err != nil {
			t.Fatalf("allowed a frame ParseFrame refuses: %v", err)
		}
		pm, ok := peers[in.Dst]
		if !ok {
			t.Fatalf("allowed a frame to %v, not a peer", in.Dst)
		}
		switch in.Proto {
		case protoESP:
		case protoUDP:
			if in.Later || in.SrcPort != 4500 || in.DstPort != pm.encapPort || in.DstPort == 6081 || in.DstPort == 4789 {
				t.Fatalf("allowed UDP %d -> %d (later fragment %v) to %v, NAT-T port %d", in.SrcPort, in.DstPort, in.Later, in.Dst, pm.encapPort)
			}
		default:
			t.Fatalf("allowed protocol %d to %v", in.Proto, in.Dst)
		}
	})
}
