package esphook

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/ovnsec/ovnsec/internal/datapath/drop"

	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/esp"
)

// natMapped is the port a NAT in front of host a maps a's 4500 to.
const natMapped = 44500

// wireNode is newNode with a Wire: outbound frames the hook passes go
// through the loop's direct-to-NIC leak filter to wire.
func wireNode(t *testing.T, local netip.Addr, ps []ovsbridge.Policy) (*node, *fakeDev) {
	t.Helper()
	h := New(Config{})
	dev, wire := &fakeDev{}, &fakeDev{}
	l, err := ovsbridge.NewLoop(ovsbridge.LoopConfig{Device: dev, Wire: wire, Hook: h, MaxFrame: 9000})
	if err != nil {
		t.Fatal(err)
	}
	h.SetReleaser(l)
	if err := h.SetPolicies(local, ps); err != nil {
		t.Fatal(err)
	}
	l.SetPeers(ps)
	return &node{t: t, local: local, h: h, dev: dev, loop: l}, wire
}

// withNATPort sets the NAT-T port of every policy.
func withNATPort(ps []ovsbridge.Policy, port uint16) []ovsbridge.Policy {
	for i := range ps {
		ps[i].EncapPort = port
	}
	return ps
}

// udpPorts returns the outer UDP header of an untagged ESP-in-UDP frame.
func udpPorts(f []byte) []byte { return ipOf(f)[20:24] }

// natPair sets up a (behind the NAT, sending from and to 4500) and b
// (sending to a's mapped port), each with a Wire. bPolicyPort is the NAT-T
// port b's policies carry.
func natPair(t *testing.T, bPolicyPort uint16) (a, b *node, wireA, wireB *fakeDev) {
	t.Helper()
	a, wireA = wireNode(t, addrA, policies(addrB, ovsbridge.EncapUDP4500))
	b, wireB = wireNode(t, addrB, withNATPort(policies(addrA, ovsbridge.EncapUDP4500), bPolicyPort))
	mapped := esp.Encap{Type: esp.EncapUDP, SrcPort: esp.NATTPort, DstPort: natMapped}
	if err := a.h.InstallStatic(addrB, StaticSA{InSPI: 0x2002, OutSPI: 0x1001, InKey: key(2), OutKey: key(1), Encap: udp4500}); err != nil {
		t.Fatal(err)
	}
	if err := b.h.InstallStatic(addrA, StaticSA{InSPI: 0x1001, OutSPI: 0x2002, InKey: key(1), OutKey: key(2), Encap: mapped}); err != nil {
		t.Fatal(err)
	}
	return a, b, wireA, wireB
}

// TestNATMappedPortRoundTrip: through a NAT that maps a's 4500 to 44500
// (UDP checksum 0, so the NAT only rewrites the port), b's ESP-in-UDP
// goes to a's mapped port and leaves through the leak filter, a's opens
// at b whatever its source port, and both decrypt to the original frames.
func TestNATMappedPortRoundTrip(t *testing.T) {
	a, b, wireA, wireB := natPair(t, natMapped)

	// a -> b: a sends 4500 -> 4500; the NAT makes the source 44500.
	orig := frame(addrA, addrB, protoUDP, 6081, 300)
	a.push(orig)
	out := wireA.take()
	if len(out) != 1 {
		t.Fatalf("a put %d frames on the wire, want 1 (loop %+v)", len(out), a.loop.Stats())
	}
	if p := udpPorts(out[0]); binary.BigEndian.Uint16(p[0:]) != 4500 || binary.BigEndian.Uint16(p[2:]) != 4500 {
		t.Fatalf("a sent UDP % x, want 4500 -> 4500", p)
	}
	binary.BigEndian.PutUint16(udpPorts(out[0])[0:], natMapped)
	if back := b.push(out[0]); len(back) != 1 || !bytes.Equal(back[0], orig) {
		t.Fatalf("b did not open a's ESP-in-UDP from port %d: %d frames, hook %+v", natMapped, len(back), b.h.Stats())
	}

	// b -> a: b sends 4500 -> 44500; the NAT makes the destination 4500.
	orig = frame(addrB, addrA, protoUDP, 6081, 300)
	b.push(orig)
	out = wireB.take()
	if len(out) != 1 {
		t.Fatalf("b put %d frames on the wire, want 1 (loop %+v)", len(out), b.loop.Stats())
	}
	if p := udpPorts(out[0]); binary.BigEndian.Uint16(p[0:]) != 4500 || binary.BigEndian.Uint16(p[2:]) != natMapped {
		t.Fatalf("b sent UDP % x, want 4500 -> %d", p, natMapped)
	}
	binary.BigEndian.PutUint16(udpPorts(out[0])[2:], 4500)
	if back := a.push(out[0]); len(back) != 1 || !bytes.Equal(back[0], orig) {
		t.Fatalf("a did not open b's ESP-in-UDP: %d frames, hook %+v", len(back), a.h.Stats())
	}
	for _, n := range []*node{a, b} {
		if s := n.loop.Stats(); s.Drops[drop.Leak] != 0 {
			t.Errorf("%v: leak drops %d", n.local, s.Drops[drop.Leak])
		}
	}
}

// TestNATMappedPortNeedsThePolicyPort: the SA seals to the mapped port, but
// a policy that does not name it (as before the fix: 4500 only) keeps the
// frame off the wire, and a policy naming another port does too.
func TestNATMappedPortNeedsThePolicyPort(t *testing.T) {
	for _, port := range []uint16{0, natMapped + 1} {
		_, b, _, wireB := natPair(t, port)
		b.push(frame(addrB, addrA, protoUDP, 6081, 300))
		if got, s := len(wireB.take()), b.loop.Stats(); got != 0 || s.Drops[drop.Leak] != 1 || b.h.Stats().Sealed != 1 {
			t.Errorf("policy port %d: %d frames on the wire, %d leak drops, hook %+v; want 0, 1 and one sealed", port, got, s.Drops[drop.Leak], b.h.Stats())
		}
	}
}
