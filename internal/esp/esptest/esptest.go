// Package esptest installs ESP security associations with static keys for
// tests of packages built on internal/esp (the data path, the daemon).
// Production keys come only from the IKE engine.
package esptest

import (
	"bytes"
	"testing"

	"github.com/ovnsec/ovnsec/internal/esp"
)

// KeyBytes returns deterministic AES-GCM keying material (key and 4-byte
// salt) of 20 bytes (AES-128) or 36 bytes (AES-256) derived from seed.
func KeyBytes(seed byte, aes256 bool) []byte {
	n := 20
	if aes256 {
		n = 36
	}
	b := bytes.Repeat([]byte{seed}, n)
	for i := range b {
		b[i] ^= byte(i * 31)
	}
	return b
}

// Pair returns an outbound and an inbound SA with the same configuration
// and a static key (cfg.Key if set, else KeyBytes(1, false)): what one side
// seals the other opens. cfg.Dir is ignored; cfg.SPI defaults to 0x1000 and
// cfg.Mode to transport. It fails tb on error.
func Pair(tb testing.TB, cfg esp.Config) (out, in *esp.SA) {
	tb.Helper()
	if cfg.SPI == 0 {
		cfg.SPI = 0x1000
	}
	if cfg.Mode == 0 {
		cfg.Mode = esp.Transport
	}
	if cfg.Key.Len() == 0 {
		k, err := esp.NewKey(KeyBytes(1, false))
		if err != nil {
			tb.Fatal(err)
		}
		cfg.Key = k
	}
	var err error
	cfg.Dir = esp.Outbound
	if out, err = esp.NewSA(cfg); err != nil {
		tb.Fatalf("esptest: outbound SA: %v", err)
	}
	cfg.Dir = esp.Inbound
	if in, err = esp.NewSA(cfg); err != nil {
		tb.Fatalf("esptest: inbound SA: %v", err)
	}
	return out, in
}

// Peers returns the SAs of two hosts A and B talking to each other, as IKE
// would install them: A's outbound SA matches B's inbound SA (SPI spiAB)
// and B's outbound SA matches A's inbound SA (SPI spiBA), with different
// keys per direction.
func Peers(tb testing.TB, cfg esp.Config, spiAB, spiBA esp.SPI) (aOut, aIn, bOut, bIn *esp.SA) {
	tb.Helper()
	ab, ba := cfg, cfg
	ab.SPI, ba.SPI = spiAB, spiBA
	var err error
	if ab.Key, err = esp.NewKey(KeyBytes(byte(spiAB), false)); err != nil {
		tb.Fatal(err)
	}
	if ba.Key, err = esp.NewKey(KeyBytes(byte(spiBA)+1, false)); err != nil {
		tb.Fatal(err)
	}
	aOut, bIn = Pair(tb, ab)
	bOut, aIn = Pair(tb, ba)
	return aOut, aIn, bOut, bIn
}
