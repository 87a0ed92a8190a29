package esp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

func ip6Packet(nh byte, src, dst string, payload []byte) []byte {
	p := make([]byte, 40+len(payload))
	binary.BigEndian.PutUint32(p[0:4], 6<<28|0x12<<20|0xabcde)
	binary.BigEndian.PutUint16(p[4:6], uint16(len(payload)))
	p[6] = nh
	p[7] = 61
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(p[8:24], s[:])
	copy(p[24:40], d[:])
	copy(p[40:], payload)
	return p
}

func TestTransport6RoundTrip(t *testing.T) {
	for _, inPlace := range []bool{true, false} {
		for _, n := range []int{0, 3, 1400} {
			out, in := pair(t, Config{Mode: Transport})
			orig := ip6Packet(ProtoUDP, "2001:db8::1", "2001:db8::2", geneve(n))
			buf := make([]byte, len(orig)+Headroom+MaxTailroom)
			pkt := append([]byte{}, orig...)
			if inPlace {
				pkt = buf[Headroom : Headroom+len(orig)]
				copy(pkt, orig)
			}
			sealed, err := out.SealTransport6(buf, pkt)
			if err != nil {
				t.Fatal(err)
			}
			if sealed[6] != ProtoESP || int(binary.BigEndian.Uint16(sealed[4:6])) != len(sealed)-40 ||
				!bytes.Equal(sealed[:4], orig[:4]) || !bytes.Equal(sealed[7:40], orig[7:40]) {
				t.Fatalf("outer header %x", sealed[:40])
			}
			if len(sealed) != 40+SealedLen(len(orig)-40) {
				t.Fatalf("sealed length %d", len(sealed))
			}
			tb := NewTable(nil)
			if err := tb.AddInbound(in); err != nil {
				t.Fatal(err)
			}
			got, sa, err := tb.OpenIP(sealed)
			if err != nil || sa != in || !bytes.Equal(got, orig) {
				t.Fatalf("len %d: %v\n got %x\nwant %x", n, err, got, orig)
			}
		}
	}
}

func TestTransport6Errors(t *testing.T) {
	out, in := pair(t, Config{Mode: Transport})
	good := ip6Packet(ProtoUDP, "2001:db8::1", "2001:db8::2", geneve(10))
	for _, tc := range []struct {
		name string
		pkt  []byte
		err  error
	}{
		{"hop-by-hop", ip6Packet(0, "2001:db8::1", "2001:db8::2", geneve(10)), ErrIPv6Unsupported},
		{"fragment header", ip6Packet(44, "2001:db8::1", "2001:db8::2", geneve(10)), ErrIPv6Unsupported},
		{"already esp", ip6Packet(ProtoESP, "2001:db8::1", "2001:db8::2", geneve(10)), ErrIPv6Unsupported},
		{"truncated", good[:len(good)-1], ErrNotIPv6},
		{"ipv4", ip4Packet(ProtoUDP, "1.1.1.1", "2.2.2.2", geneve(10), 0), ErrNotIPv6},
	} {
		if _, err := out.SealTransport6(make([]byte, 200), tc.pkt); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
	uout, _ := pair(t, Config{Mode: Transport, Encap: Encap{EncapUDP, 4500, 4500}})
	if _, err := uout.SealTransport6(make([]byte, 200), good); !errors.Is(err, ErrIPv6Unsupported) {
		t.Errorf("UDP encapsulation over IPv6: %v", err)
	}
	if _, err := in.OpenTransport6(good); !errors.Is(err, ErrNotESP) {
		t.Errorf("open plaintext: %v", err)
	}
	tb := NewTable(nil)
	for _, p := range [][]byte{good, ip6Packet(ProtoESP, "::1", "::2", []byte{1, 2, 3}), good[:30]} {
		if _, _, err := tb.OpenIPv6(p); err == nil {
			t.Errorf("OpenIPv6(%x) accepted", p)
		}
	}
	if s := tb.Stats(); s.Malformed != 3 {
		t.Errorf("table stats %+v", s)
	}
}

func TestTunnel6RoundTrip(t *testing.T) {
	inner4 := ip4Packet(6, "172.16.0.1", "172.16.0.2", payloadOf(100), 0)
	inner6 := ip6Packet(17, "fd00::1", "fd00::2", payloadOf(77))
	o := Outer6{Src: netip.MustParseAddr("2001:db8::a"), Dst: netip.MustParseAddr("2001:db8::b"), TrafficClass: 0x20, FlowLabel: 0x12345}
	for _, inner := range [][]byte{inner4, inner6} {
		out, in := pair(t, Config{Mode: Tunnel})
		buf := make([]byte, TunnelHeadroom6()+len(inner)+MaxTailroom)
		src := buf[TunnelHeadroom6() : TunnelHeadroom6()+len(inner)]
		copy(src, inner)
		sealed, err := out.SealTunnel6(buf, src, o)
		if err != nil {
			t.Fatal(err)
		}
		if sealed[0]>>4 != 6 || sealed[6] != ProtoESP || sealed[7] != 64 || binary.BigEndian.Uint32(sealed[0:4])&0xfffff != 0x12345 ||
			netip.AddrFrom16([16]byte(sealed[8:24])) != o.Src || netip.AddrFrom16([16]byte(sealed[24:40])) != o.Dst {
			t.Fatalf("outer header %x", sealed[:40])
		}
		got, err := in.OpenTunnel6(sealed)
		if err != nil || !bytes.Equal(got, inner) {
			t.Fatalf("round trip: %v", err)
		}
	}
	out, _ := pair(t, Config{Mode: Tunnel})
	v4o := Outer6{Src: netip.MustParseAddr("1.2.3.4"), Dst: o.Dst}
	if _, err := out.SealTunnel6(make([]byte, 300), inner4, v4o); !errors.Is(err, ErrPolicy) {
		t.Errorf("IPv4 outer address: %v", err)
	}
	tout, _ := pair(t, Config{Mode: Transport})
	if _, err := tout.SealTunnel6(make([]byte, 300), inner4, o); !errors.Is(err, ErrPolicy) {
		t.Errorf("transport SA: %v", err)
	}
}
