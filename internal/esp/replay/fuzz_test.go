package replay

import (
	"encoding/binary"
	"testing"
)

// FuzzWindow drives a window with sequence numbers derived from the input
// (signed 16-bit steps around the top, occasionally big jumps) and checks
// every answer against a plain set of seen numbers.
func FuzzWindow(f *testing.F) {
	f.Add(uint16(64), []byte{0, 1, 0, 1, 0, 2, 0xff, 0xff, 0, 1})
	f.Add(uint16(1), []byte{0, 5, 0xff, 0xfe, 0, 0, 0x7f, 0xff})
	f.Add(uint16(1024), []byte{0x80, 0x00, 0x12, 0x34, 0xfc, 0x00, 0x04, 0x00})
	f.Fuzz(func(t *testing.T, size uint16, data []byte) {
		sz := int(size%2048) + 1
		w, err := New(sz)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[uint64]bool{}
		var top uint64
		for i := 0; i+1 < len(data); i += 2 {
			step := int64(int16(binary.BigEndian.Uint16(data[i:])))
			var seq uint64
			if step == -32768 { // big jump
				seq = top + 1<<20
			} else {
				seq = uint64(int64(top) + step)
			}
			if int64(seq) < 0 {
				seq = 0
			}
			want := seq != 0 && !seen[seq] && (seq > top || top-seq < uint64(sz))
			if got := w.Check(seq); got != want {
				t.Fatalf("Check(%d) = %v, want %v (top %d, size %d)", seq, got, want, top, sz)
			}
			if got := w.Update(seq); got != want {
				t.Fatalf("Update(%d) = %v, want %v", seq, got, want)
			}
			if want {
				seen[seq] = true
				top = max(top, seq)
			}
		}
	})
}
