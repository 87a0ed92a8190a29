package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"testing"
)

// The benchmarks pair every ESP operation with raw crypto/cipher AES-GCM on
// the same buffers and sizes, so the ratio esp/raw is the engine's cost:
//
//	go test -run '^$' -bench 'Seal|Open' -benchmem ./internal/esp/
//
// BenchmarkSeal/aes128/esp/1400 vs BenchmarkSeal/aes128/raw/1400, etc.
// On a loaded machine compare cpu-ns/op (thread CPU time) rather than ns/op.

var benchSizes = []int{64, 1400, 8192}

func benchKeys() map[string][]byte {
	return map[string][]byte{"aes128": testKey128, "aes256": testKey256}
}

func rawGCM(b *testing.B, keymat []byte) cipher.AEAD {
	block, err := aes.NewCipher(keymat[:len(keymat)-4])
	if err != nil {
		b.Fatal(err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	return g
}

func BenchmarkSeal(b *testing.B) {
	for _, kn := range []string{"aes128", "aes256"} {
		keymat := benchKeys()[kn]
		for _, n := range benchSizes {
			buf := make([]byte, n+Headroom+MaxTailroom)
			b.Run(fmt.Sprintf("%s/esp/%d", kn, n), func(b *testing.B) {
				out, _ := pair(b, Config{Key: mustKey(b, keymat), ESN: true})
				payload := buf[Headroom : Headroom+n]
				b.SetBytes(int64(n))
				b.ReportAllocs()
				done := cpuPerOp(b)
				for b.Loop() {
					if _, err := out.Seal(buf, payload, 17); err != nil {
						b.Fatal(err)
					}
				}
				done()
			})
			b.Run(fmt.Sprintf("%s/raw/%d", kn, n), func(b *testing.B) {
				g := rawGCM(b, keymat)
				nonce, aad := make([]byte, 12), make([]byte, 8)
				pt := buf[Headroom : Headroom+n]
				b.SetBytes(int64(n))
				b.ReportAllocs()
				done := cpuPerOp(b)
				for b.Loop() {
					g.Seal(pt[:0], nonce, pt, aad)
				}
				done()
			})
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, kn := range []string{"aes128", "aes256"} {
		keymat := benchKeys()[kn]
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/esp/%d", kn, n), func(b *testing.B) {
				out, in := pair(b, Config{Key: mustKey(b, keymat), ESN: true, ReplayWindow: 64})
				pkt, err := out.Seal(make([]byte, n+Headroom+MaxTailroom), payloadOf(n), 17)
				if err != nil {
					b.Fatal(err)
				}
				dst := make([]byte, 0, len(pkt))
				b.SetBytes(int64(n))
				b.ReportAllocs()
				done := cpuPerOp(b)
				for b.Loop() {
					// Forget sequence number 1 so that the same packet
					// opens again (clears two words).
					in.win.Reset()
					if _, _, err := in.Open(dst, pkt); err != nil {
						b.Fatal(err)
					}
				}
				done()
			})
			b.Run(fmt.Sprintf("%s/raw/%d", kn, n), func(b *testing.B) {
				g := rawGCM(b, keymat)
				nonce, aad := make([]byte, 12), make([]byte, 8)
				ct := g.Seal(nil, nonce, payloadOf(n), aad)
				dst := make([]byte, 0, len(ct))
				b.SetBytes(int64(n))
				b.ReportAllocs()
				done := cpuPerOp(b)
				for b.Loop() {
					if _, err := g.Open(dst, nonce, ct, aad); err != nil {
						b.Fatal(err)
					}
				}
				done()
			})
		}
	}
}

func BenchmarkTransport4RoundTrip(b *testing.B) {
	out, in := pair(b, Config{Mode: Transport})
	orig := ip4Packet(ProtoUDP, "10.0.0.1", "10.0.0.2", geneve(1350), 0)
	buf := make([]byte, 2048)
	hr := out.TransportHeadroom()
	b.SetBytes(int64(len(orig)))
	b.ReportAllocs()
	for b.Loop() {
		pkt := buf[hr : hr+len(orig)]
		copy(pkt, orig)
		s, err := out.SealTransport4(buf, pkt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := in.OpenTransport4(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTableLookup(b *testing.B) {
	tb := NewTable(nil)
	for i := SPI(1); i <= 1000; i++ {
		sa, _ := NewSA(Config{SPI: i, Dir: Inbound, Mode: Transport, Key: mustKey(b, testKey128)})
		tb.AddInbound(sa)
	}
	b.ReportAllocs()
	var i SPI
	for b.Loop() {
		i = i%1000 + 1
		if tb.Inbound(i) == nil {
			b.Fatal("missing")
		}
	}
}
