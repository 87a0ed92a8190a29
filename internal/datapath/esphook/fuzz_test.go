package esphook

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
)

// FuzzInbound feeds arbitrary frames from the peer's address to a hook
// with SAs installed (both plain ESP and ESP-in-UDP policies): it must
// never panic, and whatever it passes must be a well-formed IPv4 frame
// whose header checksum holds.
func FuzzInbound(f *testing.F) {
	f.Add(frame(addrA, addrB, protoESP, 0, 64))
	f.Add(frame(addrA, addrB, protoUDP, 4500, 40))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := newNode(t, addrB, policies(addrA, ovsbridge.EncapUDP4500))
		if err := b.h.InstallStatic(addrA, StaticSA{InSPI: 0x1001, OutSPI: 0x2002, InKey: key(1), OutKey: key(2), Encap: udp4500}); err != nil {
			t.Fatal(err)
		}
		for _, w := range b.push(data) {
			if bytes.Equal(w, data) {
				continue // IKE on 4500 passes unchanged
			}
			if len(w) < 14+20 {
				t.Fatalf("passed a %d-byte frame", len(w))
			}
			in, err := ovsbridge.ParseFrame(w)
			if err != nil {
				t.Fatalf("passed an unparseable frame: %v", err)
			}
			ip := w[in.L3:]
			ihl := int(ip[0]&0x0f) * 4
			if checksum(ip[:ihl]) != 0 {
				t.Fatal("passed a frame with a bad IPv4 header checksum")
			}
			if int(binary.BigEndian.Uint16(ip[2:])) > len(ip) {
				t.Fatal("passed a frame shorter than its IP length")
			}
		}
	})
}
