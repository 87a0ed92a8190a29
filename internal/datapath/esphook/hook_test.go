package esphook

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/esp"
)

// ipOf returns the IPv4 packet of an untagged Ethernet frame.
func ipOf(f []byte) []byte { return f[14:] }

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		encap   ovsbridge.Encap
		proto   uint8
		port    uint16
		payload int
	}{
		{"geneve", ovsbridge.EncapNone, protoUDP, 6081, 100},
		{"geneve-large", ovsbridge.EncapNone, protoUDP, 6081, 1400},
		{"geneve-odd", ovsbridge.EncapNone, protoUDP, 6081, 1},
		{"vxlan", ovsbridge.EncapNone, protoUDP, 4789, 77},
		{"gre", ovsbridge.EncapNone, protoGRE, 0, 64},
		{"geneve-udp4500", ovsbridge.EncapUDP4500, protoUDP, 6081, 300},
		{"gre-udp4500", ovsbridge.EncapUDP4500, protoGRE, 0, 300},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pairAB(t, tc.encap)
			orig := frame(addrA, addrB, tc.proto, tc.port, tc.payload)
			out := a.push(orig)
			if len(out) != 1 {
				t.Fatalf("a wrote %d frames, want 1 (stats %+v)", len(out), a.h.Stats())
			}
			w := out[0]
			if !bytes.Equal(w[:14], orig[:14]) {
				t.Errorf("Ethernet header changed: % x -> % x", orig[:14], w[:14])
			}
			ip := ipOf(w)
			if checksum(ip[:20]) != 0 {
				t.Error("outer IPv4 checksum invalid")
			}
			if got := int(binary.BigEndian.Uint16(ip[2:])); got != len(ip) {
				t.Errorf("IP total length %d, frame carries %d", got, len(ip))
			}
			if !bytes.Equal(ip[12:20], ipOf(orig)[12:20]) {
				t.Error("outer addresses changed")
			}
			espAt := 20
			switch tc.encap {
			case ovsbridge.EncapNone:
				if ip[9] != protoESP {
					t.Fatalf("protocol %d, want ESP", ip[9])
				}
			case ovsbridge.EncapUDP4500:
				if ip[9] != protoUDP || binary.BigEndian.Uint16(ip[22:]) != 4500 || binary.BigEndian.Uint16(ip[20:]) != 4500 {
					t.Fatalf("not ESP-in-UDP 4500->4500: proto %d % x", ip[9], ip[20:28])
				}
				espAt += 8
			}
			if spi := binary.BigEndian.Uint32(ip[espAt:]); spi != 0x1001 {
				t.Errorf("SPI %#x, want 0x1001", spi)
			}
			if bytes.Contains(w, ipOf(orig)[28:]) && tc.payload > 16 {
				t.Error("plaintext payload visible in the sealed frame")
			}
			back := b.push(w)
			if len(back) != 1 {
				t.Fatalf("b wrote %d frames, want 1 (stats %+v)", len(back), b.h.Stats())
			}
			if !bytes.Equal(back[0], orig) {
				t.Errorf("decrypted frame differs:\n got % x\nwant % x", back[0], orig)
			}
			if s := a.h.Stats(); s.Sealed != 1 || s.Dropped() != 0 {
				t.Errorf("a stats %+v", s)
			}
			if s := b.h.Stats(); s.Opened != 1 || s.Dropped() != 0 {
				t.Errorf("b stats %+v", s)
			}
		})
	}
}

func TestRoundTripVLAN(t *testing.T) {
	a, b := pairAB(t, ovsbridge.EncapNone)
	plain := frame(addrA, addrB, protoUDP, 6081, 200)
	tagged := append(append(append([]byte{}, plain[:12]...), 0x81, 0x00, 0x00, 0x07), plain[12:]...)
	out := a.push(tagged)
	if len(out) != 1 || !bytes.Equal(out[0][:16], tagged[:16]) || out[0][18+9] != protoESP {
		t.Fatalf("tagged frame not sealed with its tag kept: %d frames", len(out))
	}
	back := b.push(out[0])
	if len(back) != 1 || !bytes.Equal(back[0], tagged) {
		t.Fatalf("tagged round trip failed: %d frames", len(back))
	}
}

// seal makes what host a would send to b for orig.
func seal(t *testing.T, a *node, orig []byte) []byte {
	t.Helper()
	out := a.push(orig)
	if len(out) != 1 {
		t.Fatalf("seal: %d frames", len(out))
	}
	return out[0]
}

func TestInboundDrops(t *testing.T) {
	geneve := func() []byte { return frame(addrA, addrB, protoUDP, 6081, 120) }
	tests := []struct {
		name   string
		encap  ovsbridge.Encap
		make   func(t *testing.T, a, b *node) []byte
		reason string // "" = passed
		same   bool   // passed unchanged
	}{
		{"tampered ciphertext", ovsbridge.EncapNone, func(t *testing.T, a, b *node) []byte {
			w := seal(t, a, geneve())
			w[len(w)-20] ^= 1
			return w
		}, "drop_auth", false},
		{"tampered ICV", ovsbridge.EncapNone, func(t *testing.T, a, b *node) []byte {
			w := seal(t, a, geneve())
			w[len(w)-1] ^= 0x80
			return w
		}, "drop_auth", false},
		{"unknown SPI", ovsbridge.EncapNone, func(t *testing.T, a, b *node) []byte {
			w := seal(t, a, geneve())
			binary.BigEndian.PutUint32(w[34:], 0x9999)
			return w
		}, "drop_no_sa", false},
		{"truncated ESP", ovsbridge.EncapNone, func(t *testing.T, a, b *node) []byte {
			f := frame(addrA, addrB, protoESP, 0, 4)
			return f
		}, "drop_malformed", false},
		{"ESP-in-UDP to a plain-ESP SA", ovsbridge.EncapNone, func(t *testing.T, a, b *node) []byte {
			f := frame(addrA, addrB, protoUDP, 4500, 60)
			binary.BigEndian.PutUint32(f[42:], 0x1001)
			return f
		}, "drop_policy", false},
		{"IKE on 4500 passes unchanged", ovsbridge.EncapUDP4500, func(t *testing.T, a, b *node) []byte {
			f := frame(addrA, addrB, protoUDP, 4500, 60)
			copy(f[42:], []byte{0, 0, 0, 0})
			return f
		}, "", true},
		{"NAT keepalive", ovsbridge.EncapUDP4500, func(t *testing.T, a, b *node) []byte {
			f := frame(addrA, addrB, protoUDP, 4500, 1)
			f[42] = 0xff
			return f
		}, "drop_keepalive", false},
		{"plain UDP other port", ovsbridge.EncapNone, func(t *testing.T, a, b *node) []byte {
			return frame(addrA, addrB, protoUDP, 53, 60)
		}, "drop_policy", false},
		{"not to our address", ovsbridge.EncapNone, func(t *testing.T, a, b *node) []byte {
			return frame(addrA, addrC, protoESP, 0, 60)
		}, "drop_policy", false},
		{"fragment", ovsbridge.EncapNone, func(t *testing.T, a, b *node) []byte {
			w := seal(t, a, geneve())
			w[14+6] = 0x20 // MF
			binary.BigEndian.PutUint16(w[14+10:], 0)
			binary.BigEndian.PutUint16(w[14+10:], checksum(w[14:34]))
			return w
		}, "drop_fragment", false},
		{"inner packet not a tunnel packet", ovsbridge.EncapNone, func(t *testing.T, a, b *node) []byte {
			// a seals a UDP/53 packet with its real SA: authentic, but
			// not a tunnel packet of the policy.
			sa := a.h.Table().Outbound(addrB)
			f := frame(addrA, addrB, protoUDP, 53, 60)
			buf := make([]byte, 256)
			copy(buf[16+14:], f[14:])
			out, err := sa.SealTransport4(buf[14:], buf[30:30+len(f)-14])
			if err != nil {
				t.Fatal(err)
			}
			return append(append([]byte{}, f[:14]...), out...)
		}, "drop_inner_policy", false},
		{"replayed", ovsbridge.EncapNone, func(t *testing.T, a, b *node) []byte {
			w := seal(t, a, geneve())
			if got := b.push(w); len(got) != 1 {
				t.Fatal("first copy not accepted")
			}
			return w
		}, "drop_replay", false},
		{"inbound SA closed", ovsbridge.EncapNone, func(t *testing.T, a, b *node) []byte {
			w := seal(t, a, geneve())
			b.h.Table().Inbound(0x1001).Close()
			return w
		}, "drop_expired", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pairAB(t, tc.encap)
			f := tc.make(t, a, b)
			before := b.h.Stats()
			got := b.push(f)
			s := b.h.Stats()
			if tc.reason == "" {
				if len(got) != 1 {
					t.Fatalf("frame dropped, want passed; stats %+v", s)
				}
				if tc.same && !bytes.Equal(got[0], f) {
					t.Error("frame changed, want unchanged")
				}
				if s.Dropped() != before.Dropped() {
					t.Errorf("drops counted: %+v", s.Drops)
				}
				return
			}
			if len(got) != 0 {
				t.Fatalf("frame passed, want drop %s", tc.reason)
			}
			if s.Drops[tc.reason] != before.Drops[tc.reason]+1 {
				t.Errorf("drop %s not counted: %+v", tc.reason, s.Drops)
			}
		})
	}
}

func TestInboundWrongPeer(t *testing.T) {
	// b has SAs with a and with c. A packet sealed with c's SA but sent
	// from a's address (ESP does not protect the outer header) must not
	// be accepted as a's.
	ps := append(policies(addrA, ovsbridge.EncapNone), policies(addrC, ovsbridge.EncapNone)...)
	b := newNode(t, addrB, ps)
	c := newNode(t, addrC, policies(addrB, ovsbridge.EncapNone))
	if err := b.h.InstallStatic(addrA, StaticSA{InSPI: 0x1001, OutSPI: 0x2002, InKey: key(1), OutKey: key(2)}); err != nil {
		t.Fatal(err)
	}
	if err := b.h.InstallStatic(addrC, StaticSA{InSPI: 0x3003, OutSPI: 0x4004, InKey: key(3), OutKey: key(4)}); err != nil {
		t.Fatal(err)
	}
	if err := c.h.InstallStatic(addrB, StaticSA{InSPI: 0x4004, OutSPI: 0x3003, InKey: key(4), OutKey: key(3)}); err != nil {
		t.Fatal(err)
	}
	fromC := c.push(frame(addrC, addrB, protoUDP, 6081, 80))
	if len(fromC) != 1 {
		t.Fatal("c did not seal")
	}
	spoofed := append([]byte{}, fromC[0]...)
	ip := spoofed[14:]
	a4 := addrA.As4()
	copy(ip[12:16], a4[:])
	binary.BigEndian.PutUint16(ip[10:], 0)
	binary.BigEndian.PutUint16(ip[10:], checksum(ip[:20]))
	if got := b.push(spoofed); len(got) != 0 {
		t.Fatal("packet with c's SPI accepted from a's address")
	}
	if s := b.h.Stats(); s.Drops["drop_wrong_peer"] != 1 {
		t.Errorf("stats %+v", s)
	}
	if got := b.push(fromC[0]); len(got) != 1 {
		t.Fatal("genuine packet from c refused")
	}
}

func TestOutboundHoldAndRelease(t *testing.T) {
	a := newNode(t, addrA, policies(addrB, ovsbridge.EncapNone))
	b := newNode(t, addrB, policies(addrA, ovsbridge.EncapNone))
	frames := [][]byte{
		frame(addrA, addrB, protoUDP, 6081, 10),
		frame(addrA, addrB, protoUDP, 4789, 20),
		frame(addrA, addrB, protoGRE, 0, 30),
	}
	if got := a.push(frames...); len(got) != 0 {
		t.Fatalf("%d frames left without an SA", len(got))
	}
	if n := a.loop.Hold().Len(addrB); n != 3 {
		t.Fatalf("%d frames held, want 3", n)
	}
	if s := a.h.Stats(); s.Held != 3 {
		t.Errorf("Held = %d, want 3", s.Held)
	}
	if err := b.h.InstallStatic(addrA, StaticSA{InSPI: 0x1001, OutSPI: 0x2002, InKey: key(1), OutKey: key(2)}); err != nil {
		t.Fatal(err)
	}
	// Installing a's SAs releases the held frames through the hook.
	if err := a.h.InstallStatic(addrB, StaticSA{InSPI: 0x2002, OutSPI: 0x1001, InKey: key(2), OutKey: key(1)}); err != nil {
		t.Fatal(err)
	}
	released := a.dev.take()
	if len(released) != 3 {
		t.Fatalf("released %d frames, want 3", len(released))
	}
	for i, w := range released {
		if w[14+9] != protoESP {
			t.Fatalf("released frame %d is not ESP", i)
		}
		back := b.push(w)
		if len(back) != 1 || !bytes.Equal(back[0], frames[i]) {
			t.Errorf("released frame %d did not decrypt to the original", i)
		}
	}
	if n := a.loop.Hold().Len(addrB); n != 0 {
		t.Errorf("%d frames still held", n)
	}
}

func TestOutboundExpiredSAHolds(t *testing.T) {
	a, _ := pairAB(t, ovsbridge.EncapNone)
	a.h.Table().Outbound(addrB).Close()
	if got := a.push(frame(addrA, addrB, protoUDP, 6081, 10)); len(got) != 0 {
		t.Fatal("frame left through a closed SA")
	}
	if n := a.loop.Hold().Len(addrB); n != 1 {
		t.Errorf("%d held, want 1", n)
	}
}

func TestOutboundPolicyDrops(t *testing.T) {
	tests := []struct {
		name   string
		f      []byte
		reason string
	}{
		{"not a tunnel port", frame(addrA, addrB, protoUDP, 53, 10), "drop_policy"},
		{"TCP", frame(addrA, addrB, 6, 0, 40), "drop_policy"},
		{"not from our address", frame(addrC, addrB, protoUDP, 6081, 10), "drop_policy"},
		{"already ESP", frame(addrA, addrB, protoESP, 0, 40), "drop_policy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := pairAB(t, ovsbridge.EncapNone)
			if got := a.push(tc.f); len(got) != 0 {
				t.Fatal("frame passed")
			}
			if s := a.h.Stats(); s.Drops[tc.reason] != 1 {
				t.Errorf("stats %+v, want one %s", s, tc.reason)
			}
		})
	}
}

func TestOutboundFragmentDropped(t *testing.T) {
	a, _ := pairAB(t, ovsbridge.EncapNone)
	f := frame(addrA, addrB, protoUDP, 6081, 100)
	f[14+6] = 0x20
	binary.BigEndian.PutUint16(f[14+10:], 0)
	binary.BigEndian.PutUint16(f[14+10:], checksum(f[14:34]))
	if got := a.push(f); len(got) != 0 {
		t.Fatal("fragment passed")
	}
	if s := a.h.Stats(); s.Drops["drop_fragment"] != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestRekeyMakeBeforeBreak(t *testing.T) {
	a, b := pairAB(t, ovsbridge.EncapNone)
	old := seal(t, a, frame(addrA, addrB, protoUDP, 6081, 50)) // in flight during the rekey

	mk := func(spi esp.SPI, dir esp.Direction, seed byte) *esp.SA {
		k, err := esp.NewKey(key(seed))
		if err != nil {
			t.Fatal(err)
		}
		sa, err := esp.NewSA(esp.Config{SPI: spi, Dir: dir, Mode: esp.Transport, Key: k})
		if err != nil {
			t.Fatal(err)
		}
		return sa
	}
	// b installs the new inbound first (responder), then a switches.
	if err := b.h.Rekey(addrA, mk(0x1101, esp.Inbound, 11), mk(0x2202, esp.Outbound, 22), 0x1001, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := a.h.Rekey(addrB, mk(0x2202, esp.Inbound, 22), mk(0x1101, esp.Outbound, 11), 0x2002, time.Minute); err != nil {
		t.Fatal(err)
	}
	nw := seal(t, a, frame(addrA, addrB, protoUDP, 6081, 50))
	if spi := binary.BigEndian.Uint32(nw[34:]); spi != 0x1101 {
		t.Fatalf("after rekey a sends SPI %#x, want 0x1101", spi)
	}
	if got := b.push(nw, old); len(got) != 2 {
		t.Fatalf("b accepted %d of the new and the in-flight old packet, want 2 (stats %+v)", len(got), b.h.Stats())
	}
	if p, ok := b.h.PeerOf(0x1101); !ok || p != addrA {
		t.Errorf("new SPI bound to %v %v", p, ok)
	}
	// A rekey naming another peer's SA as the old one is refused.
	if err := b.h.Rekey(addrC, mk(0x5005, esp.Inbound, 5), mk(0x6006, esp.Outbound, 6), 0x1101, time.Minute); err == nil {
		t.Error("rekey of c retiring a's SA accepted")
	}
}

func TestRemovePeer(t *testing.T) {
	a, b := pairAB(t, ovsbridge.EncapNone)
	w := seal(t, a, frame(addrA, addrB, protoUDP, 6081, 50))
	b.h.RemovePeer(addrA)
	if got := b.push(w); len(got) != 0 {
		t.Fatal("accepted after RemovePeer")
	}
	if _, ok := b.h.PeerOf(0x1001); ok {
		t.Error("binding kept after RemovePeer")
	}
	if got := b.push(frame(addrB, addrA, protoUDP, 6081, 10)); len(got) != 0 {
		t.Fatal("outbound passed after RemovePeer")
	}
	if b.loop.Hold().Len(addrA) != 1 {
		t.Error("outbound frame not held after RemovePeer")
	}
}

func TestSetPoliciesValidation(t *testing.T) {
	v6 := netip.MustParseAddr("2001:db8::1")
	tests := []struct {
		name  string
		local netip.Addr
		ps    []ovsbridge.Policy
		err   string
	}{
		{"ok", addrA, policies(addrB, ovsbridge.EncapNone), ""},
		{"mapped local ok", netip.AddrFrom16(addrA.As16()), policies(addrB, ovsbridge.EncapNone), ""},
		{"no local", netip.Addr{}, policies(addrB, ovsbridge.EncapNone), "local underlay"},
		{"v6 local", v6, policies(addrB, ovsbridge.EncapNone), "local underlay"},
		{"v6 peer", addrA, []ovsbridge.Policy{{PeerIP: v6, Proto: ovsbridge.ProtoGeneve}}, "only IPv4"},
		{"passthrough refused", addrA, []ovsbridge.Policy{{PeerIP: addrB, Proto: ovsbridge.ProtoGeneve, Mode: ovsbridge.ModeBenchPassthrough}}, "protected"},
		{"bad proto", addrA, []ovsbridge.Policy{{PeerIP: addrB, Proto: "ipip"}}, "not supported"},
		{"too many ports", addrA, []ovsbridge.Policy{
			{PeerIP: addrB, Proto: ovsbridge.ProtoGeneve, DstPort: 1},
			{PeerIP: addrB, Proto: ovsbridge.ProtoGeneve, DstPort: 2},
			{PeerIP: addrB, Proto: ovsbridge.ProtoGeneve, DstPort: 3},
			{PeerIP: addrB, Proto: ovsbridge.ProtoGeneve, DstPort: 4},
			{PeerIP: addrB, Proto: ovsbridge.ProtoGeneve, DstPort: 5},
		}, "more than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := New(Config{}).SetPolicies(tc.local, tc.ps)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestInstallChecks(t *testing.T) {
	h := New(Config{})
	k, _ := esp.NewKey(key(1))
	tun, err := esp.NewSA(esp.Config{SPI: 0x100, Dir: esp.Inbound, Mode: esp.Tunnel, Key: k})
	if err != nil {
		t.Fatal(err)
	}
	out, err := esp.NewSA(esp.Config{SPI: 0x101, Dir: esp.Outbound, Mode: esp.Transport, Key: k})
	if err != nil {
		t.Fatal(err)
	}
	in, err := esp.NewSA(esp.Config{SPI: 0x102, Dir: esp.Inbound, Mode: esp.Transport, Key: k})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		do   func() error
		ok   bool
	}{
		{"tunnel mode refused", func() error { return h.AddInbound(addrB, tun) }, false},
		{"outbound as inbound", func() error { return h.AddInbound(addrB, out) }, false},
		{"inbound as outbound", func() error { return h.SetOutbound(addrB, in) }, false},
		{"nil", func() error { return h.SetOutbound(addrB, nil) }, false},
		{"v6 peer", func() error { return h.AddInbound(netip.MustParseAddr("2001:db8::2"), in) }, false},
		{"inbound ok", func() error { return h.AddInbound(addrB, in) }, true},
		{"duplicate SPI", func() error { return h.AddInbound(addrC, in) }, false},
		{"outbound ok without releaser", func() error { return h.SetOutbound(addrB, out) }, true},
		{"bad static key", func() error {
			return h.InstallStatic(addrC, StaticSA{InSPI: 0x300, OutSPI: 0x301, InKey: []byte{1, 2}, OutKey: key(1)})
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	if p, ok := h.PeerOf(0x102); !ok || p != addrB {
		t.Errorf("SPI 0x102 bound to %v %v; the duplicate must not rebind it", p, ok)
	}
}

// Demand counts a peer's packets that found no SA, in both directions, and
// keeps counting across SetPolicies; packets that have an SA do not count.
func TestDemand(t *testing.T) {
	a, b := pairAB(t, ovsbridge.EncapNone)
	if d := a.h.Demand(addrB); d != 0 {
		t.Fatalf("Demand before any traffic = %d, want 0", d)
	}
	// With SAs installed (pairAB), traffic does not count.
	w := a.push(frame(addrA, addrB, protoUDP, 6081, 50))
	if len(w) != 1 || len(b.push(w[0])) != 1 {
		t.Fatal("round trip with SAs failed")
	}
	if d := a.h.Demand(addrB) + b.h.Demand(addrA); d != 0 {
		t.Fatalf("Demand with SAs = %d, want 0", d)
	}
	// b loses its SAs (a restart): a's ESP arrives under an unknown SPI.
	b.h.RemovePeer(addrA)
	if err := b.h.SetPolicies(addrB, policies(addrA, ovsbridge.EncapNone)); err != nil {
		t.Fatal(err)
	}
	w = a.push(frame(addrA, addrB, protoUDP, 6081, 50), frame(addrA, addrB, protoUDP, 6081, 60))
	if got := b.push(w...); len(got) != 0 {
		t.Fatalf("%d frames passed without an SA", len(got))
	}
	if d := b.h.Demand(addrA); d != 2 {
		t.Errorf("Demand after 2 ESP packets under an unknown SPI = %d, want 2", d)
	}
	// b's own outbound frames are held for want of an SA and count too;
	// the count survives a policy update.
	b.push(frame(addrB, addrA, protoUDP, 6081, 40))
	if err := b.h.SetPolicies(addrB, policies(addrA, ovsbridge.EncapNone)); err != nil {
		t.Fatal(err)
	}
	if d := b.h.Demand(addrA); d != 3 {
		t.Errorf("Demand after a held frame and a policy update = %d, want 3", d)
	}
	if d := b.h.Demand(netip.MustParseAddr("192.0.2.99")); d != 0 {
		t.Errorf("Demand of a peer without a policy = %d, want 0", d)
	}
}
