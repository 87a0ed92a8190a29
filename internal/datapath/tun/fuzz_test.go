package tun

import (
	"bytes"
	"testing"

	"github.com/ovnsec/ovnsec/internal/esp"
)

// FuzzOpenBatch feeds arbitrary datagrams received on port 4500 to the
// inbound path. Nothing may panic, and nothing that reaches the device may
// differ from what an authentic peer sealed.
func FuzzOpenBatch(f *testing.F) {
	// One pair for the whole run (building one allocates its buffers);
	// the only authentic datagram is valid, once.
	A, B := newSides(f, nil, nil, nil, nil)
	want := ip4(innerA, innerB, 60)
	valid := A.seal(f, want)[0].Buf
	f.Add(valid)
	f.Add([]byte{0, 0, 0, 0, 1, 2, 3, 4})
	f.Add([]byte{0xff})
	f.Add([]byte{0, 0, 0x10, 0x01, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, dgram []byte) {
		if len(dgram) > maxPacket {
			return
		}
		got := B.open(t, underA, dgram)
		if len(got) == 1 && !(bytes.Equal(dgram, valid) && bytes.Equal(got[0], want)) {
			t.Fatalf("forged datagram reached the device: %x", got[0])
		}
		if len(got) > 1 {
			t.Fatalf("one datagram gave %d packets", len(got))
		}
	})
}

// FuzzInnerPacket seals arbitrary inner bytes with a real SA and next
// header and opens them on the other side: the decrypted-packet parser and
// the policy check see any content. Whatever reaches the device must be a
// prefix of what was sealed, and an IP packet from A's subnet.
func FuzzInnerPacket(f *testing.F) {
	f.Add(ip4(innerA, innerB, 60), byte(esp.ProtoIPv4))
	f.Add(ip4(innerA, innerB, 60), byte(esp.ProtoIPv6))
	f.Add(ip6(innerA, innerB, 60), byte(esp.ProtoIPv6))
	f.Add(append(ip4(innerA, innerB, 40), 0, 0, 0, 0), byte(esp.ProtoIPv4))
	f.Add([]byte{0x45}, byte(esp.ProtoIPv4))
	A, B := newSides(f, nil, nil, nil, nil)
	f.Fuzz(func(t *testing.T, inner []byte, nh byte) {
		if len(inner) > 4000 {
			return
		}
		d, err := A.table.Outbound(underB).Seal(make([]byte, esp.SealedLen(len(inner))), inner, nh)
		if err != nil {
			return
		}
		got := B.open(t, underA, d)
		if len(got) == 0 {
			return
		}
		p := got[0]
		src, _, n, ok := innerAddrs(p)
		if !ok || n != len(p) || !bytes.HasPrefix(inner, p) || !netA.Contains(src) {
			t.Fatalf("accepted %x from inner %x (nh %d)", p, inner, nh)
		}
	})
}

// FuzzSealBatch feeds arbitrary packets from the device to the outbound
// path: nothing may panic, and whatever is sealed must open on the peer to
// exactly the inner packet.
func FuzzSealBatch(f *testing.F) {
	f.Add(ip4(innerA, innerB, 60))
	f.Add(ip6(innerA, innerB, 60))
	f.Add([]byte{0x45, 0, 0, 20})
	A, B := newSides(f, nil, nil, nil, nil)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) > maxPacket {
			return
		}
		dg := A.seal(t, pkt)
		if len(dg) == 0 {
			return
		}
		_, _, n, ok := innerAddrs(pkt)
		if !ok {
			t.Fatalf("sealed a packet the parser rejects: %x", pkt)
		}
		src, _, _, _ := innerAddrs(pkt)
		got := B.open(t, underA, dg[0].Buf)
		switch {
		case len(got) == 1 && !bytes.Equal(got[0], pkt[:n]):
			t.Fatalf("round trip changed %x into %x", pkt[:n], got[0])
		case len(got) == 0 && netA.Contains(src):
			t.Fatalf("packet from A's subnet sealed but refused: %x; %+v", pkt, B.a.Stats())
		}
	})
}
