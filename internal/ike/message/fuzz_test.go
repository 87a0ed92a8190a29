// Fuzz targets for every parser of network input, and the generator of
// their committed seed corpora.

package message_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	. "github.com/ovnsec/ovnsec/internal/ike/message"
	"github.com/ovnsec/ovnsec/internal/ike/suite"
)

// FuzzDecode: Decode never panics, and whatever it accepts re-encodes to a
// message that decodes to the same value and the same bytes.
func FuzzDecode(f *testing.F) {
	for _, b := range decodeSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			NotifyFor(err)
			return
		}
		enc, err := m.Encode(nil)
		if err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
		m2, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if m2.Header != m.Header || !reflect.DeepEqual(m2.Payloads, m.Payloads) {
			t.Fatalf("round trip differs")
		}
		enc2, _ := m2.Encode(nil)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable")
		}
	})
}

// FuzzDecodePayloads: the first byte is the first payload type, the rest
// the payload stream (as found inside an SK payload).
func FuzzDecodePayloads(f *testing.F) {
	for _, b := range payloadSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		next := PayloadType(b[0])
		ps, err := DecodePayloads(next, b[1:])
		if err != nil {
			return
		}
		enc, err := EncodePayloads(nil, ps)
		if err != nil {
			t.Fatalf("decoded payloads do not encode: %v", err)
		}
		ps2, err := DecodePayloads(next, enc)
		if err != nil || !reflect.DeepEqual(ps, ps2) {
			t.Fatalf("round trip differs: %v", err)
		}
	})
}

// FuzzReassemble feeds fragments described by the input to a Reassembler
// with small limits and checks its bounds. Each record is: message ID,
// number, total, flags (bit 0 response, bit 1 first-type none), seconds,
// data length, data.
func FuzzReassemble(f *testing.F) {
	f.Add([]byte{1, 1, 2, 0, 0, 2, 'a', 'b', 1, 2, 2, 0, 0, 1, 'c'})
	f.Add([]byte{1, 2, 2, 0, 0, 1, 'c', 1, 1, 2, 0, 1, 2, 'a', 'b', 1, 1, 2, 0, 1, 2, 'a', 'b'})
	f.Add([]byte{1, 1, 3, 0, 0, 1, 'a', 1, 1, 4, 0, 0, 1, 'a', 2, 1, 1, 1, 0, 0, 9, 9, 9, 0, 0, 0})
	f.Add([]byte{5, 1, 9, 0, 0, 4, 1, 2, 3, 4, 5, 2, 9, 0, 0, 4, 1, 2, 3, 4, 6, 1, 1, 2, 50, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := Reassembler{MaxFragments: 8, MaxBytes: 64, MaxMessages: 3}
		t0 := time.Unix(0, 0)
		for len(b) >= 6 {
			fr := Fragment{MessageID: uint32(b[0] % 4), Number: uint16(b[1] % 10), Total: uint16(b[2] % 10),
				Response: b[3]&1 != 0, NextPayload: PayloadNonce}
			if b[3]&2 != 0 {
				fr.NextPayload = PayloadNone
			}
			now := t0.Add(time.Duration(b[4]) * time.Second)
			n := min(int(b[5]), len(b)-6)
			fr.Data = b[6 : 6+n]
			b = b[6+n:]
			next, stream, done, err := r.Add(now, fr)
			if err != nil && done {
				t.Fatal("done with an error")
			}
			if done && (len(stream) > 64 || next == PayloadNone) {
				t.Fatalf("completed message of %d bytes, next %s", len(stream), next)
			}
			if r.Pending() > 3 {
				t.Fatalf("%d messages pending", r.Pending())
			}
			if b := len(b); b%7 == 0 {
				r.Expire(now.Add(-3 * time.Second))
			}
		}
	})
}

// fuzzAEAD turns arbitrary bytes into an SK cipher.
func fuzzAEAD(t testing.TB, key []byte) *suite.AEAD {
	k := sha256.Sum256(key)
	a, err := suite.NewAEAD(ENCR_AES_GCM_16, suite.Key(append(k[:], 1, 2, 3, 4)))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// FuzzOpenSK: opening any message with any key never panics; and any
// plaintext sealed under the right key (so that it authenticates) is
// unpadded and decoded without panicking, and what decodes re-encodes.
func FuzzOpenSK(f *testing.F) {
	a := fuzzAEAD(f, []byte("seed"))
	for _, b := range skSeeds(f, a) {
		f.Add([]byte("seed"), b, []byte{})
	}
	inner, _ := EncodePayloads(nil, authInner())
	f.Add([]byte("seed"), []byte{}, append([]byte{byte(PayloadIDi)}, append(inner, 0)...))
	f.Add([]byte("k"), []byte{}, []byte{byte(PayloadNonce), 0, 0, 0, 5, 1, 3, 7, 7, 2})
	f.Add([]byte("k"), []byte{}, []byte{byte(PayloadNonce), 0, 0, 0, 5, 1, 9})
	f.Fuzz(func(t *testing.T, key, msg, plain []byte) {
		a := fuzzAEAD(t, key)
		if m, err := Decode(msg); err == nil {
			m.Decrypt(a)
			m.Open(a, nil)
			m.OpenFragment(a)
		}
		if len(plain) == 0 {
			return
		}
		// plain[0] is the inner first payload type, the rest the plaintext
		// including padding and pad length.
		pt := plain[1:]
		m := &Message{Header: Header{SPIi: spiI, SPIr: spiR, Exchange: IKE_AUTH, MessageID: 4},
			Payloads: []Payload{&Encrypted{NextPayload: PayloadType(plain[0]), Body: make([]byte, 8+len(pt)+16)}}}
		wire, err := m.Encode(nil)
		if err != nil {
			return // too long
		}
		body := wire[HeaderLen+PayloadHeaderLen:]
		copy(body[8:], pt)
		if err := a.Seal(body[:8], body[8:8+len(pt)], wire[:HeaderLen+PayloadHeaderLen]); err != nil {
			t.Fatal(err)
		}
		dm, err := Decode(wire)
		if err != nil {
			t.Fatalf("sealed message does not decode: %v", err)
		}
		ps, err := dm.Decrypt(a)
		if err != nil {
			return
		}
		again, err := authRequest().EncodeSK(nil, ps, a)
		if err != nil {
			t.Fatalf("decrypted payloads do not encode: %v", err)
		}
		dm2, err := Decode(again)
		if err != nil {
			t.Fatal(err)
		}
		ps2, err := dm2.Decrypt(a)
		if err != nil || !reflect.DeepEqual(ps, ps2) {
			t.Fatalf("SK round trip differs: %v", err)
		}
	})
}

func decodeSeeds(t testing.TB) [][]byte {
	var out [][]byte
	ms := samples()
	for _, name := range slices.Sorted(maps.Keys(ms)) {
		b, err := ms[name].Encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return append(out, skSeeds(t, fuzzAEAD(t, []byte("seed")))...)
}

func skSeeds(t testing.TB, a *suite.AEAD) [][]byte {
	sk, err := authRequest().EncodeSK(nil, authInner(), a)
	if err != nil {
		t.Fatal(err)
	}
	frags, err := authRequest().EncodeFragments(authInner(), a, 600)
	if err != nil {
		t.Fatal(err)
	}
	return append([][]byte{sk}, frags[:2]...)
}

func payloadSeeds(t testing.TB) [][]byte {
	var out [][]byte
	ms := samples()
	for _, name := range slices.Sorted(maps.Keys(ms)) {
		ps := ms[name].Payloads
		if len(ps) > 0 {
			switch ps[len(ps)-1].(type) {
			case *Encrypted, *EncryptedFragment:
				continue
			}
		}
		b, err := EncodePayloads(nil, ps)
		if err != nil {
			t.Fatal(err)
		}
		first := PayloadNone
		if len(ps) > 0 {
			first = ps[0].Type()
		}
		out = append(out, append([]byte{byte(first)}, b...))
	}
	return out
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/*/seed-* when
// OVNSEC_WRITE_SEEDS=1 and otherwise checks they are present.
func TestWriteFuzzSeeds(t *testing.T) {
	a := fuzzAEAD(t, []byte("seed"))
	inner, _ := EncodePayloads(nil, authInner())
	sets := map[string][][][]byte{}
	for _, b := range decodeSeeds(t) {
		sets["FuzzDecode"] = append(sets["FuzzDecode"], [][]byte{b})
	}
	for _, b := range payloadSeeds(t) {
		sets["FuzzDecodePayloads"] = append(sets["FuzzDecodePayloads"], [][]byte{b})
	}
	for _, b := range skSeeds(t, a) {
		sets["FuzzOpenSK"] = append(sets["FuzzOpenSK"], [][]byte{[]byte("seed"), b, {}})
	}
	sets["FuzzOpenSK"] = append(sets["FuzzOpenSK"], [][]byte{[]byte("seed"), {}, append([]byte{byte(PayloadIDi)}, append(inner, 0)...)})
	sets["FuzzReassemble"] = [][][]byte{
		{{1, 1, 2, 0, 0, 2, 'a', 'b', 1, 2, 2, 0, 0, 1, 'c'}},
		{{1, 1, 3, 0, 0, 1, 'a', 1, 1, 4, 0, 0, 1, 'a', 2, 1, 1, 1, 0, 0, 9, 9, 9, 0, 0, 0}},
	}
	for name, seeds := range sets {
		dir := filepath.Join("testdata", "fuzz", name)
		if os.Getenv("OVNSEC_WRITE_SEEDS") != "1" {
			if ents, err := os.ReadDir(dir); err != nil || len(ents) < len(seeds) {
				t.Errorf("%s: seed corpus missing (run with OVNSEC_WRITE_SEEDS=1): %v", dir, err)
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, args := range seeds {
			var buf bytes.Buffer
			buf.WriteString("go test fuzz v1\n")
			for _, a := range args {
				fmt.Fprintf(&buf, "[]byte(%q)\n", a)
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
