package ovsbridge

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// testFrame builds an Ethernet frame with an IPv4 or IPv6 header (plus a
// UDP header when proto is UDP) and payload bytes.
func testFrame(src, dst netip.Addr, proto uint8, sport, dport uint16, payload int) []byte {
	l4 := make([]byte, 0, udpHeader+payload)
	if proto == protoUDP {
		l4 = binary.BigEndian.AppendUint16(l4, sport)
		l4 = binary.BigEndian.AppendUint16(l4, dport)
		l4 = binary.BigEndian.AppendUint16(l4, uint16(udpHeader+payload))
		l4 = append(l4, 0, 0)
	}
	l4 = append(l4, make([]byte, payload)...)
	f := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1}
	if src.Is4() {
		f = binary.BigEndian.AppendUint16(f, etherTypeIPv4)
		ip := make([]byte, ipv4Header)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(ipv4Header+len(l4)))
		ip[6] = 0x40 // DF
		ip[8] = 64
		ip[9] = proto
		s, d := src.As4(), dst.As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		f = append(f, ip...)
	} else {
		f = binary.BigEndian.AppendUint16(f, etherTypeIPv6)
		ip := make([]byte, ipv6Header)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(l4)))
		ip[6] = proto
		ip[7] = 64
		s, d := src.As16(), dst.As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
		f = append(f, ip...)
	}
	return append(f, l4...)
}

func TestParseFrame(t *testing.T) {
	a := netip.MustParseAddr("198.51.100.1")
	b := netip.MustParseAddr("198.51.100.2")
	a6 := netip.MustParseAddr("2001:db8::1")
	b6 := netip.MustParseAddr("2001:db8::2")
	geneve := testFrame(a, b, protoUDP, 40000, 6081, 100)
	vlan := append(append(append([]byte{}, geneve[:12]...), 0x81, 0x00, 0x00, 0x07), geneve[12:]...)
	frag := append([]byte{}, geneve...)
	binary.BigEndian.PutUint16(frag[ethHeader+6:], 0x0010) // offset 16*8, no MF
	first := append([]byte{}, geneve...)
	binary.BigEndian.PutUint16(first[ethHeader+6:], 0x2000) // MF, offset 0
	badVer := append([]byte{}, geneve...)
	badVer[ethHeader] = 0x65
	badIHL := append([]byte{}, geneve...)
	badIHL[ethHeader] = 0x44
	long := append([]byte{}, geneve...)
	binary.BigEndian.PutUint16(long[ethHeader+2:], 2000)
	arp := append([]byte{}, geneve...)
	binary.BigEndian.PutUint16(arp[12:], 0x0806)
	short6 := testFrame(a6, b6, protoUDP, 1, 2, 10)[:ethHeader+30]

	tests := []struct {
		name    string
		frame   []byte
		want    Info
		wantErr error
	}{
		{"geneve v4", geneve, Info{L3: 14, L3Len: 128, Src: a, Dst: b, Proto: protoUDP, SrcPort: 40000, DstPort: 6081}, nil},
		{"esp v4", testFrame(b, a, protoESP, 0, 0, 64), Info{L3: 14, L3Len: 84, Src: b, Dst: a, Proto: protoESP}, nil},
		{"vlan tagged", vlan, Info{L3: 18, L3Len: 128, Src: a, Dst: b, Proto: protoUDP, SrcPort: 40000, DstPort: 6081}, nil},
		{"first fragment keeps ports", first, Info{L3: 14, L3Len: 128, Src: a, Dst: b, Proto: protoUDP, Fragment: true, SrcPort: 40000, DstPort: 6081}, nil},
		{"later fragment has no ports", frag, Info{L3: 14, L3Len: 128, Src: a, Dst: b, Proto: protoUDP, Fragment: true, Later: true}, nil},
		{"udp v6", testFrame(a6, b6, protoUDP, 5, 4789, 20), Info{L3: 14, L3Len: 68, Src: a6, Dst: b6, Proto: protoUDP, SrcPort: 5, DstPort: 4789}, nil},
		{"trailing ethernet padding is fine", append(testFrame(b, a, protoESP, 0, 0, 0), 0, 0, 0, 0), Info{L3: 14, L3Len: 20, Src: b, Dst: a, Proto: protoESP}, nil},
		{"empty", nil, Info{}, ErrShortFrame},
		{"ethernet only", geneve[:14], Info{}, ErrShortFrame},
		{"truncated vlan", vlan[:15], Info{}, ErrShortFrame},
		{"arp", arp, Info{}, ErrNotIP},
		{"ip version mismatch", badVer, Info{}, ErrBadIPHeader},
		{"ihl too small", badIHL, Info{}, ErrBadIPHeader},
		{"length beyond frame", long, Info{}, ErrBadIPLength},
		{"short v6", short6, Info{}, ErrShortFrame},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFrame(tc.frame)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ParseFrame error = %v, want %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Errorf("ParseFrame =\n %+v\nwant\n %+v", got, tc.want)
			}
		})
	}
}

func TestParseFrameNoAlloc(t *testing.T) {
	f := testFrame(netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2"), protoUDP, 1, 6081, 1400)
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseFrame(f) }); n != 0 {
		t.Errorf("ParseFrame allocates %v times per frame", n)
	}
}

// FuzzParseFrame: ParseFrame must never panic and what it returns must be
// consistent with the frame it read.
func FuzzParseFrame(f *testing.F) {
	a := netip.MustParseAddr("198.51.100.1")
	b := netip.MustParseAddr("198.51.100.2")
	f.Add(testFrame(a, b, protoUDP, 40000, 6081, 40))
	f.Add(testFrame(b, a, protoESP, 0, 0, 40))
	f.Add(testFrame(netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"), protoUDP, 1, 4500, 8))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		in, err := ParseFrame(frame)
		if err != nil {
			return
		}
		if in.L3 < ethHeader || in.L3+in.L3Len > len(frame) {
			t.Fatalf("L3 %d + len %d outside a %d-byte frame", in.L3, in.L3Len, len(frame))
		}
		if !in.Src.IsValid() || !in.Dst.IsValid() || in.Src.Is4() != in.Dst.Is4() {
			t.Fatalf("addresses %v %v", in.Src, in.Dst)
		}
		if in.Later && (in.SrcPort != 0 || in.DstPort != 0) {
			t.Fatalf("later fragment with ports")
		}
	})
}
