// SK payload, fragmentation and reassembly tests, with suite.AEAD as the
// cipher.

package message_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	. "github.com/ovnsec/ovnsec/internal/ike/message"
	"github.com/ovnsec/ovnsec/internal/ike/suite"
)

func newAEAD(t testing.TB, fill byte) *suite.AEAD {
	t.Helper()
	a, err := suite.NewAEAD(ENCR_AES_GCM_16, suite.Key(bytes.Repeat([]byte{fill}, 36)))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func authRequest() *Message {
	return &Message{Header: Header{SPIi: spiI, SPIr: spiR, Exchange: IKE_AUTH, Flags: FlagInitiator, MessageID: 1}}
}

func TestSKRoundTrip(t *testing.T) {
	a := newAEAD(t, 1)
	for _, tc := range []struct {
		name  string
		clear []Payload
		inner []Payload
	}{
		{"ike-auth", nil, authInner()},
		{"empty informational", nil, nil},
		{"clear payload before SK", []Payload{&VendorID{Data: []byte("v")}}, []Payload{&Nonce{Data: []byte{1, 2}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := authRequest()
			m.Payloads = tc.clear
			b, err := m.EncodeSK(nil, tc.inner, a)
			if err != nil {
				t.Fatal(err)
			}
			if int(m.Length) != len(b) {
				t.Fatalf("Length %d for %d bytes", m.Length, len(b))
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			sk, ok := got.Payloads[len(got.Payloads)-1].(*Encrypted)
			if !ok {
				t.Fatalf("last payload %T", got.Payloads[len(got.Payloads)-1])
			}
			wantNext := PayloadNone
			if len(tc.inner) > 0 {
				wantNext = tc.inner[0].Type()
			}
			if sk.NextPayload != wantNext {
				t.Fatalf("SK next payload %s, want %s", sk.NextPayload, wantNext)
			}
			inner, err := got.Decrypt(a)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(inner, tc.inner) {
				t.Fatalf("inner payloads differ:\n got %#v\nwant %#v", inner, tc.inner)
			}
			if cl := got.Payloads[:len(got.Payloads)-1]; len(cl)+len(tc.clear) > 0 && !reflect.DeepEqual(cl, tc.clear) {
				t.Fatal("clear payloads differ")
			}
			// Open with a reused buffer yields the same stream.
			stream, err := got.Open(a, make([]byte, 0, 4096))
			if err != nil {
				t.Fatal(err)
			}
			ps, err := DecodePayloads(sk.NextPayload, stream)
			if err != nil || !reflect.DeepEqual(ps, tc.inner) {
				t.Fatalf("Open+DecodePayloads: %v", err)
			}
		})
	}
}

func TestSKAuthenticatesHeader(t *testing.T) {
	a := newAEAD(t, 1)
	b, err := authRequest().EncodeSK(nil, authInner(), a)
	if err != nil {
		t.Fatal(err)
	}
	// Flip every byte of the header and SK payload header (the AAD) and a
	// few of the body: all must fail authentication (or decoding).
	positions := []int{0, 8, 17, 19, 20, 23, HeaderLen + 1, HeaderLen + 4, len(b) / 2, len(b) - 1}
	for i := 0; i < HeaderLen+PayloadHeaderLen; i++ {
		positions = append(positions, i)
	}
	for _, i := range positions {
		c := append([]byte{}, b...)
		c[i] ^= 0x01
		m, err := Decode(c)
		if err != nil {
			continue
		}
		if _, err := m.Decrypt(a); err == nil {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
	// Wrong key.
	m, _ := Decode(b)
	if _, err := m.Decrypt(newAEAD(t, 2)); !errors.Is(err, suite.ErrAuth) {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	a := newAEAD(t, 1)
	m := initRequest()
	if _, err := m.Decrypt(a); !errors.Is(err, ErrNotProtected) {
		t.Fatalf("Decrypt of a built message: %v", err)
	}
	b, _ := initRequest().Encode(nil)
	m, _ = Decode(b)
	if _, err := m.Open(a, nil); !errors.Is(err, ErrNotProtected) {
		t.Fatalf("Open of a clear message: %v", err)
	}
	if _, err := m.OpenFragment(a); !errors.Is(err, ErrNotProtected) {
		t.Fatalf("OpenFragment of a clear message: %v", err)
	}
	// SK body shorter than IV + pad length + ICV.
	raw := &Message{Header: authRequest().Header, Payloads: []Payload{&Encrypted{NextPayload: PayloadNonce, Body: make([]byte, 24)}}}
	b, _ = raw.Encode(nil)
	m, _ = Decode(b)
	if _, err := m.Decrypt(a); !errors.Is(err, ErrInvalidSyntax) {
		t.Fatalf("short body: %v", err)
	}
	// Pad length larger than the plaintext: seal a hand-made body.
	body := make([]byte, 8+2, 8+2+16)
	body[8], body[9] = 0, 5 // one byte of "payload", pad length 5
	hdr := authRequest()
	hdr.Payloads = []Payload{&Encrypted{NextPayload: PayloadNonce, Body: make([]byte, 8+2+16)}}
	wire, _ := hdr.Encode(nil)
	aad := wire[:HeaderLen+PayloadHeaderLen]
	if err := a.Seal(body[:8], body[8:], aad); err != nil {
		t.Fatal(err)
	}
	copy(wire[HeaderLen+PayloadHeaderLen:], body[:8+2+16])
	m, _ = Decode(wire)
	if _, err := m.Decrypt(a); !errors.Is(err, ErrInvalidSyntax) {
		t.Fatalf("bad pad length: %v", err)
	}
}

func TestEncodeSKLimits(t *testing.T) {
	a := newAEAD(t, 1)
	m := authRequest()
	if _, err := m.EncodeSK(nil, []Payload{&Nonce{Data: make([]byte, 65520)}}, a); err == nil {
		t.Fatal("SK payload over 64 KiB accepted")
	}
	m.Payloads = []Payload{&Encrypted{}}
	if _, err := m.EncodeSK(nil, nil, a); err == nil {
		t.Fatal("nested SK accepted")
	}
}

func TestFragments(t *testing.T) {
	a := newAEAD(t, 3)
	inner := authInner()
	stream, _ := EncodePayloads(nil, inner)
	for _, maxLen := range []int{100, 576, 1280, 65535} {
		frags, err := authRequest().EncodeFragments(inner, a, maxLen)
		if err != nil {
			t.Fatal(err)
		}
		want := (len(stream) + maxLen - 61 - 1) / (maxLen - 61)
		if len(frags) != want {
			t.Fatalf("maxLen %d: %d fragments, want %d", maxLen, len(frags), want)
		}
		var r Reassembler
		now := time.Unix(1000, 0)
		// deliver in reverse order, with a duplicate
		order := []int{}
		for i := len(frags) - 1; i >= 0; i-- {
			order = append(order, i)
		}
		if len(order) > 1 {
			order = append([]int{order[0]}, order...)
		}
		var got []Payload
		for k, i := range order {
			b := frags[i]
			if len(b) > maxLen {
				t.Fatalf("fragment of %d bytes exceeds %d", len(b), maxLen)
			}
			m, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if m.MessageID != 1 || m.NextPayload != PayloadSKF {
				t.Fatalf("fragment header %+v", m.Header)
			}
			f, err := m.OpenFragment(a)
			if err != nil {
				t.Fatal(err)
			}
			next, s, done, err := r.Add(now, f)
			if err != nil {
				t.Fatal(err)
			}
			if done != (k == len(order)-1) {
				t.Fatalf("done=%v after %d of %d", done, k+1, len(order))
			}
			if done {
				if !bytes.Equal(s, stream) {
					t.Fatal("reassembled stream differs")
				}
				got, err = DecodePayloads(next, s)
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		if !reflect.DeepEqual(got, inner) || r.Pending() != 0 {
			t.Fatalf("maxLen %d: reassembly wrong (pending %d)", maxLen, r.Pending())
		}
	}
	if _, err := authRequest().EncodeFragments(inner, a, 61); err == nil {
		t.Fatal("fragment size below overhead accepted")
	}
	m := authRequest()
	m.Payloads = []Payload{&Nonce{}}
	if _, err := m.EncodeFragments(inner, a, 1000); err == nil {
		t.Fatal("clear payloads in a fragmented message accepted")
	}
}

// TestFragmentAADCoversNumbers swaps the fragment numbers: the ICV must fail.
func TestFragmentAADCoversNumbers(t *testing.T) {
	a := newAEAD(t, 3)
	frags, err := authRequest().EncodeFragments(authInner(), a, 500)
	if err != nil {
		t.Fatal(err)
	}
	b := append([]byte{}, frags[1]...)
	b[HeaderLen+5] = 3 // fragment number 2 -> 3
	m, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.OpenFragment(a); err == nil {
		t.Fatal("altered fragment number not detected")
	}
}

func frag(id uint32, n, total uint16, data string) Fragment {
	f := Fragment{MessageID: id, Number: n, Total: total, Data: []byte(data)}
	if n == 1 {
		f.NextPayload = PayloadNonce
	}
	return f
}

func TestReassemblerRules(t *testing.T) {
	t0 := time.Unix(0, 0)
	type step struct {
		f      Fragment
		at     time.Duration
		done   bool
		stream string
		err    bool
	}
	tests := []struct {
		name  string
		r     Reassembler
		steps []step
	}{
		{"in order", Reassembler{}, []step{{f: frag(1, 1, 2, "ab")}, {f: frag(1, 2, 2, "cd"), done: true, stream: "abcd"}}},
		{"single", Reassembler{}, []step{{f: frag(1, 1, 1, "x"), done: true, stream: "x"}}},
		{"empty pieces", Reassembler{}, []step{{f: frag(1, 2, 2, "")}, {f: frag(1, 1, 2, ""), done: true, stream: ""}}},
		{"number zero", Reassembler{}, []step{{f: frag(1, 0, 2, "a"), err: true}}},
		{"number above total", Reassembler{}, []step{{f: frag(1, 3, 2, "a"), err: true}}},
		{"first without payload type", Reassembler{}, []step{{f: Fragment{MessageID: 1, Number: 1, Total: 2}, err: true}}},
		{"too many fragments", Reassembler{MaxFragments: 4}, []step{{f: frag(1, 1, 5, "a"), err: true}}},
		{"too many bytes", Reassembler{MaxBytes: 3}, []step{{f: frag(1, 1, 2, "ab")}, {f: frag(1, 2, 2, "cd"), err: true}, {f: frag(1, 1, 2, "ab")}}},
		{"larger total restarts", Reassembler{}, []step{
			{f: frag(1, 1, 2, "AB")}, {f: frag(1, 1, 3, "a")}, {f: frag(1, 2, 2, "CD"), err: true},
			{f: frag(1, 2, 3, "b")}, {f: frag(1, 3, 3, "c"), done: true, stream: "abc"}}},
		{"messages kept apart", Reassembler{}, []step{
			{f: frag(1, 1, 2, "a")}, {f: frag(2, 1, 2, "x")}, {f: frag(2, 2, 2, "y"), done: true, stream: "xy"},
			{f: frag(1, 2, 2, "b"), done: true, stream: "ab"}}},
		{"request and response apart", Reassembler{}, []step{
			{f: frag(1, 1, 2, "a")}, {f: func() Fragment { f := frag(1, 2, 2, "R"); f.Response = true; return f }()},
			{f: frag(1, 2, 2, "b"), done: true, stream: "ab"}}},
		{"oldest evicted", Reassembler{MaxMessages: 2}, []step{
			{f: frag(1, 1, 2, "a")}, {f: frag(2, 1, 2, "b"), at: time.Second}, {f: frag(3, 1, 2, "c"), at: 2 * time.Second},
			{f: frag(1, 2, 2, "z"), at: 3 * time.Second}, // restarts message 1 without fragment 1, evicting 2
			{f: frag(3, 2, 2, "d"), done: true, stream: "cd"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			for i, s := range tc.steps {
				_, stream, done, err := r.Add(t0.Add(s.at), s.f)
				if (err != nil) != s.err || done != s.done || (done && string(stream) != s.stream) {
					t.Fatalf("step %d: done=%v stream=%q err=%v", i, done, stream, err)
				}
				if err != nil && !errors.Is(err, ErrFragmentDiscarded) {
					t.Fatalf("step %d: error %v does not wrap ErrFragmentDiscarded", i, err)
				}
			}
		})
	}
}

func TestReassemblerExpire(t *testing.T) {
	var r Reassembler
	t0 := time.Unix(100, 0)
	r.Add(t0, frag(1, 1, 2, "a"))
	r.Add(t0.Add(10*time.Second), frag(2, 1, 2, "a"))
	if n := r.Expire(t0.Add(5 * time.Second)); n != 1 || r.Pending() != 1 {
		t.Fatalf("expired %d, pending %d", n, r.Pending())
	}
	if _, _, done, _ := r.Add(t0, frag(1, 2, 2, "b")); done {
		t.Fatal("expired message completed")
	}
}

func TestReassemblerCopies(t *testing.T) {
	var r Reassembler
	f := frag(1, 1, 2, "ab")
	r.Add(time.Time{}, f)
	f.Data[0] = 'X'
	_, s, done, _ := r.Add(time.Time{}, frag(1, 2, 2, "cd"))
	if !done || string(s) != "abcd" {
		t.Fatalf("got %q", s)
	}
}

// TestZeroAllocs pins the allocation-free paths: Encode and EncodeSK into a
// buffer with room, Open into a reused buffer.
func TestZeroAllocs(t *testing.T) {
	a := newAEAD(t, 1)
	m, inner := authRequest(), authInner()
	buf := make([]byte, 0, 4096)
	plain := make([]byte, 0, 4096)
	wire, _ := authRequest().EncodeSK(nil, inner, a)
	dm, err := Decode(wire)
	if err != nil {
		t.Fatal(err)
	}
	clearMsg := authMessage()
	for name, f := range map[string]func(){
		"Encode":   func() { clearMsg.Encode(buf[:0]) },
		"EncodeSK": func() { m.EncodeSK(buf[:0], inner, a) },
		"Open":     func() { dm.Open(a, plain[:0]) },
	} {
		if n := testing.AllocsPerRun(50, f); n != 0 {
			t.Errorf("%s: %v allocations per run", name, n)
		}
	}
}
