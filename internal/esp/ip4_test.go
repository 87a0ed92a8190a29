package esp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// ip4Packet builds an IPv4 packet with the given protocol and payload.
func ip4Packet(proto byte, src, dst string, payload []byte, options int) []byte {
	ihl := 20 + options
	p := make([]byte, ihl+len(payload))
	p[0] = 0x40 | byte(ihl/4)
	p[1] = 0x10
	binary.BigEndian.PutUint16(p[2:4], uint16(len(p)))
	binary.BigEndian.PutUint16(p[4:6], 0x1234)
	p[6] = 0x40 // DF
	p[8] = 63
	p[9] = proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(p[12:16], s[:])
	copy(p[16:20], d[:])
	for i := 20; i < ihl; i++ {
		p[i] = 1 // NOP options
	}
	binary.BigEndian.PutUint16(p[10:12], ipv4Checksum(p[:ihl]))
	copy(p[ihl:], payload)
	return p
}

// geneve is a stand-in tunnel-protocol packet: UDP to 6081 and a body.
func geneve(n int) []byte {
	b := payloadOf(n + 8)
	binary.BigEndian.PutUint16(b[0:2], 50000)
	binary.BigEndian.PutUint16(b[2:4], 6081)
	binary.BigEndian.PutUint16(b[4:6], uint16(n+8))
	b[6], b[7] = 0, 0
	return b
}

func checkIPv4(t *testing.T, p []byte, proto byte) int {
	t.Helper()
	ihl, total, ok := ipv4(p)
	if !ok || total != len(p) {
		t.Fatalf("bad IPv4 header: %x", p[:min(len(p), 24)])
	}
	if ipv4Checksum(p[:ihl]) != 0 {
		t.Fatalf("IPv4 header checksum wrong: %x", p[:ihl])
	}
	if p[9] != proto {
		t.Fatalf("protocol %d, want %d", p[9], proto)
	}
	return ihl
}

func TestTransport4RoundTrip(t *testing.T) {
	for _, enc := range []Encap{{}, {EncapUDP, 4500, 4500}, {EncapUDP, 4500, 31000}} {
		for _, opts := range []int{0, 8} {
			for _, inPlace := range []bool{true, false} {
				for _, n := range []int{0, 1, 64, 1400} {
					out, in := pair(t, Config{Mode: Transport, Encap: enc})
					orig := ip4Packet(ProtoUDP, "192.0.2.1", "192.0.2.2", geneve(n), opts)
					buf := make([]byte, len(orig)+out.TransportHeadroom()+MaxTailroom)
					var pkt []byte
					if inPlace {
						pkt = buf[out.TransportHeadroom() : out.TransportHeadroom()+len(orig)]
						copy(pkt, orig)
					} else {
						pkt = append([]byte{}, orig...)
					}
					sealed, err := out.SealTransport4(buf, pkt)
					if err != nil {
						t.Fatalf("encap %v opts %d len %d: %v", enc, opts, n, err)
					}
					wantProto := byte(ProtoESP)
					if enc.Type == EncapUDP {
						wantProto = ProtoUDP
					}
					ihl := checkIPv4(t, sealed, wantProto)
					if !bytes.Equal(sealed[12:ihl], orig[12:ihl]) || sealed[8] != orig[8] || sealed[1] != orig[1] {
						t.Fatal("transport mode changed addresses, options, TTL or TOS")
					}
					esp := sealed[ihl:]
					if enc.Type == EncapUDP {
						u := sealed[ihl : ihl+8]
						if binary.BigEndian.Uint16(u[0:2]) != enc.SrcPort || binary.BigEndian.Uint16(u[2:4]) != enc.DstPort ||
							int(binary.BigEndian.Uint16(u[4:6])) != len(sealed)-ihl || u[6]|u[7] != 0 {
							t.Fatalf("UDP header %x", u)
						}
						esp = sealed[ihl+8:]
					}
					if len(esp) != SealedLen(len(orig)-ihl) {
						t.Fatalf("ESP length %d, want %d", len(esp), SealedLen(len(orig)-ihl))
					}
					if enc.DstPort != NATTPort && enc.Type == EncapUDP {
						// The receiver only knows 4500 (RFC 3948); check
						// the SA refuses other encapsulations then.
						if _, err := in.OpenTransport4(sealed); !errors.Is(err, ErrNotESP) {
							t.Fatalf("UDP to port %d: %v", enc.DstPort, err)
						}
						continue
					}
					got, err := in.OpenTransport4(sealed)
					if err != nil {
						t.Fatalf("open: %v", err)
					}
					if !bytes.Equal(got, orig) {
						t.Fatalf("round trip:\n got %x\nwant %x", got, orig)
					}
				}
			}
		}
	}
}

func TestTransport4Errors(t *testing.T) {
	out, in := pair(t, Config{Mode: Transport})
	good := ip4Packet(ProtoUDP, "10.0.0.1", "10.0.0.2", geneve(20), 0)
	frag := append([]byte{}, good...)
	frag[6] = 0x20 // MF
	binary.BigEndian.PutUint16(frag[10:12], 0)
	binary.BigEndian.PutUint16(frag[10:12], ipv4Checksum(frag[:20]))
	badLen := append([]byte{}, good...)
	binary.BigEndian.PutUint16(badLen[2:4], uint16(len(good)+1))
	v6 := append([]byte{}, good...)
	v6[0] = 0x60
	for _, tc := range []struct {
		name string
		pkt  []byte
		err  error
	}{
		{"fragment", frag, ErrFragment},
		{"length beyond buffer", badLen, ErrNotIPv4},
		{"not IPv4", v6, ErrNotIPv4},
		{"short", good[:19], ErrNotIPv4},
	} {
		if _, err := out.SealTransport4(make([]byte, 200), tc.pkt); !errors.Is(err, tc.err) {
			t.Errorf("seal %s: %v, want %v", tc.name, err, tc.err)
		}
	}
	if _, err := out.SealTransport4(make([]byte, 40), good); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("short buffer: %v", err)
	}
	// Ethernet padding after the IP packet is ignored.
	sealed, err := out.SealTransport4(make([]byte, 200), append(append([]byte{}, good...), 0, 0, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := in.OpenTransport4(append(append([]byte{}, sealed...), 0, 0)); err != nil || !bytes.Equal(got, good) {
		t.Fatalf("padded frame: %v", err)
	}
	// A failed Seal leaves the packet untouched (the caller may retry).
	buf := make([]byte, 200)
	pkt := buf[Headroom : Headroom+len(good)]
	copy(pkt, good)
	out.Close()
	if _, err := out.SealTransport4(buf, pkt); !errors.Is(err, ErrExpired) || !bytes.Equal(pkt, good) {
		t.Fatalf("failed seal: %v, packet changed %v", err, !bytes.Equal(pkt, good))
	}

	tout, tin := pair(t, Config{Mode: Tunnel})
	if _, err := tout.SealTransport4(make([]byte, 200), good); !errors.Is(err, ErrPolicy) {
		t.Errorf("tunnel SA in transport helper: %v", err)
	}
	if _, err := tin.OpenTransport4(sealed); !errors.Is(err, ErrPolicy) || tin.Stats().DropPolicy != 1 {
		t.Errorf("tunnel SA opening transport: %v", err)
	}
	// Encapsulation must match the SA.
	uout, _ := pair(t, Config{Mode: Transport, Encap: Encap{EncapUDP, 4500, 4500}})
	usealed, err := uout.SealTransport4(make([]byte, 200), good)
	if err != nil {
		t.Fatal(err)
	}
	_, in2 := pair(t, Config{Mode: Transport})
	if _, err := in2.OpenTransport4(usealed); !errors.Is(err, ErrPolicy) || in2.Stats().DropPolicy != 1 {
		t.Errorf("UDP-encapsulated packet on plain SA: %v", err)
	}
}

func TestTunnel4RoundTrip(t *testing.T) {
	inner4 := ip4Packet(6, "172.16.0.1", "172.16.0.2", payloadOf(100), 0)
	inner6 := make([]byte, 40+60)
	inner6[0] = 0x60
	binary.BigEndian.PutUint16(inner6[4:6], 60)
	inner6[6] = 17
	copy(inner6[40:], payloadOf(60))
	o := Outer4{Src: netip.MustParseAddr("203.0.113.1"), Dst: netip.MustParseAddr("203.0.113.2"), TOS: 8, ID: 7, DF: true}
	for _, enc := range []Encap{{}, {EncapUDP, 4500, 4500}} {
		for _, tc := range []struct {
			name  string
			inner []byte
			tfc   int
			nh    byte
		}{{"ipv4", inner4, 0, ProtoIPv4}, {"ipv6", inner6, 0, ProtoIPv6}, {"ipv4+tfc", inner4, 30, ProtoIPv4}, {"ipv6+tfc", inner6, 17, ProtoIPv6}} {
			out, in := pair(t, Config{Mode: Tunnel, Encap: enc})
			hr := out.TunnelHeadroom4()
			buf := make([]byte, hr+len(tc.inner)+tc.tfc+MaxTailroom)
			src := buf[hr : hr+len(tc.inner)+tc.tfc]
			copy(src, tc.inner) // TFC padding: zeros after the packet
			sealed, err := out.SealTunnel4(buf, src, o)
			if err != nil {
				t.Fatal(err)
			}
			proto := byte(ProtoESP)
			if enc.Type == EncapUDP {
				proto = ProtoUDP
			}
			checkIPv4(t, sealed, proto)
			if sealed[1] != 8 || sealed[6] != 0x40 || sealed[8] != 64 || binary.BigEndian.Uint16(sealed[4:6]) != 7 ||
				netip.AddrFrom4([4]byte(sealed[12:16])) != o.Src || netip.AddrFrom4([4]byte(sealed[16:20])) != o.Dst {
				t.Fatalf("outer header %x", sealed[:20])
			}
			// The next header inside is 4 or 41: check with the raw SA.
			tb := NewTable(nil)
			if err := tb.AddInbound(in); err != nil {
				t.Fatal(err)
			}
			got, sa, err := tb.OpenIPv4(append([]byte{}, sealed...))
			if err != nil || sa != in {
				t.Fatalf("%s encap %v: %v", tc.name, enc, err)
			}
			if !bytes.Equal(got, tc.inner) {
				t.Fatalf("%s: inner mismatch", tc.name)
			}
		}
	}
	out, _ := pair(t, Config{Mode: Tunnel})
	if _, err := out.SealTunnel4(make([]byte, 300), []byte("not an ip packet at all!"), o); !errors.Is(err, ErrNotIP) {
		t.Errorf("garbage inner: %v", err)
	}
	if _, err := out.SealTunnel4(make([]byte, 300), inner4, Outer4{Src: netip.MustParseAddr("::1"), Dst: o.Dst}); !errors.Is(err, ErrPolicy) {
		t.Errorf("IPv6 outer: %v", err)
	}
	if _, err := out.SealTunnel4(make([]byte, 30), inner4, o); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("short: %v", err)
	}
}

func TestTunnel4BadInner(t *testing.T) {
	// A tunnel SA must deliver only IP packets (next header 4 or 41)
	// whose length fits.
	const spi = 0x600
	_, in := pair(t, Config{SPI: spi, Mode: Tunnel})
	outer := func(seq uint64, body []byte) []byte {
		return ip4Packet(ProtoESP, "203.0.113.2", "203.0.113.1", refSeal(t, testKey128, spi, seq, false, body), 0)
	}
	inner := ip4Packet(6, "1.1.1.1", "2.2.2.2", payloadOf(20), 0)
	long := append([]byte{}, inner...)
	binary.BigEndian.PutUint16(long[2:4], 200)
	for _, tc := range []struct {
		name string
		pkt  []byte
		err  error
	}{
		{"next header tcp", outer(1, refBody(inner, 6)), ErrPolicy},
		{"ipv4 claims ipv6", outer(2, refBody(inner, ProtoIPv6)), ErrPolicy},
		{"inner longer than payload", outer(3, refBody(long, ProtoIPv4)), ErrTruncated},
		{"inner too short", outer(4, refBody(inner[:12], ProtoIPv4)), ErrPolicy},
	} {
		if _, err := in.OpenTunnel4(tc.pkt); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
}

func TestClassify4500(t *testing.T) {
	for _, tc := range []struct {
		b    []byte
		want Kind
	}{
		{nil, KindInvalid},
		{[]byte{0xff}, KindKeepalive},
		{[]byte{0x00}, KindInvalid},
		{[]byte{0, 0, 0}, KindInvalid},
		{[]byte{0, 0, 0, 0}, KindIKE},
		{append([]byte{0, 0, 0, 0}, payloadOf(40)...), KindIKE},
		{[]byte{0, 0, 0, 1, 0, 0, 0}, KindInvalid},
		{[]byte{0, 0, 0, 1, 0, 0, 0, 1}, KindESP},
		{[]byte{0xff, 0xff}, KindInvalid},
		{append([]byte{1, 2, 3, 4}, payloadOf(40)...), KindESP},
	} {
		if got := Classify4500(tc.b); got != tc.want {
			t.Errorf("Classify4500(%x) = %v, want %v", tc.b, got, tc.want)
		}
	}
}

func TestTableOpenIPv4(t *testing.T) {
	out, in := pair(t, Config{SPI: 0x700, Mode: Transport, Encap: Encap{EncapUDP, 4500, 4500}})
	tb := NewTable(nil)
	if err := tb.AddInbound(in); err != nil {
		t.Fatal(err)
	}
	orig := ip4Packet(ProtoUDP, "10.1.0.1", "10.1.0.2", geneve(50), 0)
	sealed, err := out.SealTransport4(make([]byte, 300), orig)
	if err != nil {
		t.Fatal(err)
	}
	got, sa, err := tb.OpenIPv4(append([]byte{}, sealed...))
	if err != nil || sa != in || !bytes.Equal(got, orig) {
		t.Fatalf("OpenIPv4: %v", err)
	}
	ike := ip4Packet(ProtoUDP, "10.1.0.2", "10.1.0.1", append([]byte{1, 0xf4, 0x11, 0x94, 0, 20, 0, 0}, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8), 0)
	unknown := append([]byte{}, sealed...)
	unknown[20+8+3] ^= 0xff
	for _, tc := range []struct {
		name string
		pkt  []byte
		err  error
	}{
		{"ike on 4500", ike, ErrNotESP},
		{"tcp", ip4Packet(6, "1.1.1.1", "2.2.2.2", payloadOf(40), 0), ErrNotESP},
		{"esp without spi", ip4Packet(ProtoESP, "1.1.1.1", "2.2.2.2", payloadOf(3), 0), ErrNotESP},
		{"garbage", []byte{0x45, 0, 0}, ErrNotIPv4},
		{"unknown spi", unknown, ErrNoSA},
	} {
		if _, _, err := tb.OpenIPv4(tc.pkt); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
	if s := tb.Stats(); s.NoSA != 1 || s.Malformed != 3 {
		t.Fatalf("table stats %+v", s)
	}
}

func TestIPv4HelpersNoAllocations(t *testing.T) {
	out, in := pair(t, Config{Mode: Transport})
	orig := ip4Packet(ProtoUDP, "10.0.0.1", "10.0.0.2", geneve(1300), 0)
	buf := make([]byte, 2048)
	hr := out.TransportHeadroom()
	allocs := testing.AllocsPerRun(300, func() {
		pkt := buf[hr : hr+len(orig)]
		copy(pkt, orig)
		s, err := out.SealTransport4(buf, pkt)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := in.OpenTransport4(s); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per transport round trip", allocs)
	}
}
