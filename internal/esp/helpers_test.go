package esp

import (
	"bytes"
	"sync"
	"testing"
)

var (
	testKey128 = bytes.Repeat([]byte{0x11}, 20)
	testKey256 = []byte("0123456789abcdef0123456789abcdefSALT")
)

func mustKey(t testing.TB, raw []byte) Key {
	t.Helper()
	k, err := NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// pair returns an outbound and an inbound SA sharing cfg and its key.
func pair(t testing.TB, cfg Config) (out, in *SA) {
	t.Helper()
	if cfg.SPI == 0 {
		cfg.SPI = 0x1000
	}
	if cfg.Mode == 0 {
		cfg.Mode = Transport
	}
	if cfg.Key.Len() == 0 {
		cfg.Key = mustKey(t, testKey128)
	}
	var err error
	cfg.Dir = Outbound
	if out, err = NewSA(cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Dir = Inbound
	if in, err = NewSA(cfg); err != nil {
		t.Fatal(err)
	}
	return out, in
}

// events collects lifetime events.
type events struct {
	mu  sync.Mutex
	evs []Event
}

func (e *events) notify(ev Event) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}

func (e *events) list() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Event(nil), e.evs...)
}

func payloadOf(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	return p
}
