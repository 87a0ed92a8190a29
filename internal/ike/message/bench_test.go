// Benchmarks of the codec and the SK paths on an IKE_AUTH-sized message.

package message_test

import (
	"testing"

	. "github.com/ovnsec/ovnsec/internal/ike/message"
)

// authMessage is an IKE_AUTH request of typical size sent in clear (for
// codec cost alone).
func authMessage() *Message {
	m := authRequest()
	m.Payloads = authInner()
	return m
}

func BenchmarkEncode(b *testing.B) {
	m := authMessage()
	buf, _ := m.Encode(nil)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = m.Encode(buf[:0])
	}
}

func BenchmarkDecode(b *testing.B) {
	buf, _ := authMessage().Encode(nil)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeSK(b *testing.B) {
	a := newAEAD(b, 1)
	m, inner := authRequest(), authInner()
	buf, _ := m.EncodeSK(nil, inner, a)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = m.EncodeSK(buf[:0], inner, a)
	}
}

func BenchmarkOpenSK(b *testing.B) {
	a := newAEAD(b, 1)
	wire, _ := authRequest().EncodeSK(nil, authInner(), a)
	m, err := Decode(wire)
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, len(wire))
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Open(a, dst); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeDecrypt(b *testing.B) {
	a := newAEAD(b, 1)
	wire, _ := authRequest().EncodeSK(nil, authInner(), a)
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := Decode(wire)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Decrypt(a); err != nil {
			b.Fatal(err)
		}
	}
}
