// Benchmarks of the SK cipher, key derivation and DH.

package suite

import (
	"bytes"
	"testing"

	"github.com/ovnsec/ovnsec/internal/ike/message"
)

func BenchmarkSeal(b *testing.B) {
	a, _ := NewAEAD(message.ENCR_AES_GCM_16, Key(bytes.Repeat([]byte{1}, 36)))
	buf := make([]byte, 8+1024, 8+1024+16)
	aad := make([]byte, 32)
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Seal(buf[:8], buf[8:8+1024], aad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	a, _ := NewAEAD(message.ENCR_AES_GCM_16, Key(bytes.Repeat([]byte{1}, 36)))
	body := make([]byte, 8+1024, 8+1024+16)
	aad := make([]byte, 32)
	a.Seal(body[:8], body[8:], aad)
	body = body[:8+1024+16]
	dst := make([]byte, 0, 1024)
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Open(dst, body, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPRFPlusIKEKeys(b *testing.B) {
	p := Params{PRF: message.PRF_HMAC_SHA2_256, Encr: message.ENCR_AES_GCM_16, KeyBits: 256}
	gir, n := make([]byte, 256), make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewIKEKeys(p, gir, n, n, message.SPI{}, message.SPI{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDH(b *testing.B) {
	for _, g := range []message.DHGroup{message.MODP_2048, message.ECP_256, message.CURVE_25519} {
		b.Run(g.String(), func(b *testing.B) {
			peer, _ := NewDH(g, nil)
			for b.Loop() {
				d, err := NewDH(g, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := d.Shared(peer.Public()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
