package esptest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ovnsec/ovnsec/internal/esp"
)

func TestPair(t *testing.T) {
	for _, cfg := range []esp.Config{{}, {Mode: esp.Tunnel, ESN: true}} {
		out, in := Pair(t, cfg)
		pkt, err := out.Seal(make([]byte, 64), []byte("ping"), 17)
		if err != nil {
			t.Fatal(err)
		}
		got, nh, err := in.Open(nil, pkt)
		if err != nil || string(got) != "ping" || nh != 17 {
			t.Fatalf("round trip: %v %q %d", err, got, nh)
		}
	}
}

func TestPeers(t *testing.T) {
	aOut, aIn, bOut, bIn := Peers(t, esp.Config{}, 0x1111, 0x2222)
	if aOut.SPI() != bIn.SPI() || bOut.SPI() != aIn.SPI() || aOut.SPI() == bOut.SPI() {
		t.Fatal("SPIs do not pair up")
	}
	ab, _ := aOut.Seal(make([]byte, 64), []byte("a->b"), 17)
	if got, _, err := bIn.Open(nil, append([]byte{}, ab...)); err != nil || !bytes.Equal(got, []byte("a->b")) {
		t.Fatalf("a->b: %v", err)
	}
	// Keys differ per direction: A's packet relabelled with B's SPI fails.
	copy(ab[0:4], []byte{0, 0, 0x22, 0x22})
	if _, _, err := aIn.Open(nil, ab); !errors.Is(err, esp.ErrAuth) {
		t.Fatalf("cross-direction packet: %v", err)
	}
}
