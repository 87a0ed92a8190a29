package esp

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

// Fuzz modes, chosen by the first argument modulo fuzzModes.
const (
	fuzzRaw        = iota // data is an ESP packet for SA.Open
	fuzzBody              // data is the plaintext body of a packet with a valid ICV
	fuzzIP                // data is an IPv4 or IPv6 packet for Table.OpenIP
	fuzzTunnelBody        // data is the plaintext body of a valid tunnel-mode IPv4 packet
	fuzzModes
)

var fuzzErrors = []error{ErrTruncated, ErrMisaligned, ErrSPIMismatch, ErrReplay, ErrAuth, ErrBadPadding,
	ErrDummy, ErrNoSA, ErrPolicy, ErrNotIP, ErrNotIPv4, ErrNotIPv6, ErrIPv6Unsupported, ErrFragment, ErrNotESP, ErrExpired}

func knownError(err error) bool {
	for _, e := range fuzzErrors {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

const (
	fuzzSPITransport = 0x100
	fuzzSPITunnel    = 0x200
	fuzzSPIUDP       = 0x300
)

// fuzzTable installs inbound transport, tunnel and UDP-encapsulated SAs
// with testKey128.
func fuzzTable(t testing.TB, esn bool) *Table {
	tb := NewTable(nil)
	for _, c := range []Config{
		{SPI: fuzzSPITransport, Mode: Transport},
		{SPI: fuzzSPITunnel, Mode: Tunnel},
		{SPI: fuzzSPIUDP, Mode: Transport, Encap: Encap{EncapUDP, NATTPort, NATTPort}},
	} {
		c.Dir, c.Key, c.ESN, c.ReplayWindow = Inbound, mustKey(t, testKey128), esn, 64
		sa, err := NewSA(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := tb.AddInbound(sa); err != nil {
			t.Fatal(err)
		}
	}
	return tb
}

func FuzzOpen(f *testing.F) {
	out, _ := pair(f, Config{SPI: fuzzSPITransport})
	for _, n := range []int{0, 1, 64} {
		p, _ := out.Seal(make([]byte, 128), payloadOf(n), 17)
		f.Add(byte(fuzzRaw), p)
		f.Add(byte(fuzzRaw), p[:len(p)-4])
	}
	f.Add(byte(fuzzBody), refBody([]byte("x"), 17))
	f.Add(byte(fuzzBody), []byte{'a', 'b', 0, 2, 3, 4, 4, 17})
	f.Add(byte(fuzzBody), []byte{1, 2, 200, 17})
	inner := ip4Packet(6, "10.0.0.1", "10.0.0.2", payloadOf(20), 0)
	f.Add(byte(fuzzTunnelBody), refBody(inner, ProtoIPv4))
	f.Add(byte(fuzzTunnelBody), refBody(inner[:10], ProtoIPv6))
	tout, _ := pair(f, Config{SPI: fuzzSPITunnel, Mode: Tunnel})
	o := Outer4{Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.2")}
	tp, _ := tout.SealTunnel4(make([]byte, 200), inner, o)
	f.Add(byte(fuzzIP), tp)
	uout, _ := pair(f, Config{SPI: fuzzSPIUDP, Encap: Encap{EncapUDP, NATTPort, NATTPort}})
	up, _ := uout.SealTransport4(make([]byte, 200), ip4Packet(ProtoUDP, "10.0.0.1", "10.0.0.2", geneve(10), 4))
	f.Add(byte(fuzzIP), up)
	f.Add(byte(fuzzIP), ip4Packet(ProtoUDP, "1.1.1.1", "2.2.2.2", []byte{0x11, 0x94, 0x11, 0x94, 0, 12, 0, 0, 0, 0, 0, 0}, 0))

	p6, _ := out.SealTransport6(make([]byte, 200), ip6Packet(ProtoUDP, "2001:db8::1", "2001:db8::2", geneve(10)))
	f.Add(byte(fuzzIP), p6)

	f.Fuzz(func(t *testing.T, sel byte, data []byte) {
		esn := sel&0x80 != 0
		tb := fuzzTable(t, esn)
		switch sel % fuzzModes {
		case fuzzRaw:
			sa := tb.Inbound(fuzzSPITransport)
			pl, _, err := sa.Open(nil, data)
			if err != nil && !knownError(err) {
				t.Fatalf("unexpected error %v", err)
			}
			if err == nil && len(pl) > len(data)-Headroom-ICVLen-TrailerLen {
				t.Fatalf("payload %d bytes from a %d-byte packet", len(pl), len(data))
			}
		case fuzzBody:
			pkt := refSeal(t, testKey128, fuzzSPITransport, 1, esn, data)
			pl, nh, sa, err := tb.Open(nil, pkt)
			if err != nil {
				if !knownError(err) {
					t.Fatalf("unexpected error %v", err)
				}
				if errors.Is(err, ErrAuth) || errors.Is(err, ErrReplay) {
					t.Fatalf("valid packet rejected: %v", err)
				}
				if len(data)%4 == 0 && len(data) >= 4 && errors.Is(err, ErrTruncated) {
					t.Fatalf("aligned body of %d bytes reported truncated", len(data))
				}
				return
			}
			pad := int(data[len(data)-2])
			if want := data[:len(data)-2-pad]; !bytes.Equal(pl, want) || nh != data[len(data)-1] {
				t.Fatalf("payload %x nh %d, want %x nh %d", pl, nh, want, data[len(data)-1])
			}
			for i, b := range data[len(data)-2-pad : len(data)-2] {
				if b != byte(i+1) {
					t.Fatalf("bad padding %x accepted", data[len(data)-2-pad:len(data)-2])
				}
			}
			if s := sa.Stats(); s.PacketsIn != 1 || s.BytesIn != uint64(len(pl)) {
				t.Fatalf("stats %+v", s)
			}
		case fuzzIP:
			got, _, err := tb.OpenIP(data)
			if err != nil && !knownError(err) {
				t.Fatalf("unexpected error %v", err)
			}
			if err == nil && len(got) > len(data) {
				t.Fatalf("output %d bytes longer than input %d", len(got), len(data))
			}
		case fuzzTunnelBody:
			esp := refSeal(t, testKey128, fuzzSPITunnel, 1, esn, data)
			pkt := ip4Packet(ProtoESP, "192.0.2.2", "192.0.2.1", esp, 0)
			got, _, err := tb.OpenIPv4(pkt)
			if err != nil {
				if !knownError(err) || errors.Is(err, ErrAuth) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(got) < 20 || (got[0]>>4 != 4 && got[0]>>4 != 6) || !bytes.HasPrefix(data, got) {
				t.Fatalf("inner packet %x from body %x", got, data)
			}
		}
	})
}
