package esp

import (
	"encoding/binary"
	"errors"
	"testing"
)

// An SA saved by one process and resumed by the next: the outbound side
// never sends a sequence number (AES-GCM nonce) twice under the key, the
// inbound side never accepts what the earlier window may have accepted.
func TestResume(t *testing.T) {
	key := mustKey(t, testKey256)
	out1, in1 := pair(t, Config{SPI: 0x2000, Key: key})
	var sealed [][]byte
	for range 5 {
		p, err := out1.Seal(make([]byte, 0, 256), []byte("payload"), 4)
		if err != nil {
			t.Fatal(err)
		}
		sealed = append(sealed, append([]byte(nil), p...))
	}
	for _, p := range sealed[:3] {
		if _, _, err := in1.Open(make([]byte, 256), p); err != nil {
			t.Fatal(err)
		}
	}
	so, si := out1.Saved(), in1.Saved()
	if so.LastSeq != 5 || si.ReplayTop != 3 {
		t.Fatalf("saved %+v %+v", so, si)
	}

	out2, err := NewSA(Config{SPI: 0x2000, Dir: Outbound, Mode: Transport, Key: key, Resume: &so})
	if err != nil {
		t.Fatal(err)
	}
	in2, err := NewSA(Config{SPI: 0x2000, Dir: Inbound, Mode: Transport, Key: key, Resume: &si})
	if err != nil {
		t.Fatal(err)
	}
	p, err := out2.Seal(make([]byte, 0, 256), []byte("payload"), 4)
	if err != nil {
		t.Fatal(err)
	}
	if seq := binary.BigEndian.Uint32(p[4:8]); seq != 5+ResumeMargin+1 {
		t.Fatalf("resumed SA sent sequence number %d, want %d", seq, 5+ResumeMargin+1)
	}
	// Packets the old window accepted are replays; one it never saw but
	// older than its top is refused too (conservative); newer ones pass.
	for i, p := range sealed[:3] {
		if _, _, err := in2.Open(make([]byte, 256), p); !errors.Is(err, ErrReplay) {
			t.Errorf("accepted packet %d: %v", i+1, err)
		}
	}
	if _, _, err := in2.Open(make([]byte, 256), sealed[4]); err != nil {
		t.Errorf("packet 5 (after the saved top): %v", err)
	}
	if _, _, err := in2.Open(make([]byte, 256), p); err != nil {
		t.Errorf("the resumed sender's packet: %v", err)
	}
	// No room left without ESN: refused, not wrapped.
	if _, err := NewSA(Config{SPI: 0x2000, Dir: Outbound, Mode: Transport, Key: key, Resume: &Resume{LastSeq: 1<<32 - 10}}); err == nil {
		t.Error("resumed an SA at the end of its 32-bit sequence space")
	}
}
