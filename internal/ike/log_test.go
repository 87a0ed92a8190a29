// Tests of what the engine logs at info level for an operator: one line
// per IKE SA set up, carrying its first Child SA, and the failures after
// it in order.

package ike

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuf is a log destination safe for the engine's goroutines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the lines logged so far that contain all of subs.
func (l *logBuf) lines(subs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ln := range strings.Split(l.b.String(), "\n") {
		ok := ln != ""
		for _, s := range subs {
			ok = ok && strings.Contains(ln, s)
		}
		if ok {
			out = append(out, ln)
		}
	}
	return out
}

func TestEngineLogLines(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mod    func(a, b *Peer)
		child  bool     // the Child SA of IKE_AUTH comes up
		warnA  string   // the initiator's warning after its IKE SA line
		warnB  string   // the responder's
		fields []string // on both IKE SA lines
	}{
		{name: "with child", child: true,
			fields: []string{"alg=AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519", "encap=false", "child=gnv", "in=0x", "out=0x", "mode=transport", "esp_encap=none"}},
		{name: "child refused", mod: func(a, b *Peer) {
			a.Children[0].RemoteTS = []TrafficSelector{PrefixTS(netip.MustParsePrefix("10.9.9.9/32"), 0)}
		}, warnA: `msg="ike: child SA failed"`, warnB: `msg="ike: child SA refused"`, fields: []string{"encap=false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var la, lb logBuf
			a := newSide(t, "127.0.0.1", func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&la, nil)) })
			b := newSide(t, "127.0.0.2", func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&lb, nil)) })
			pa, pb := peerOf(a, b, "b", true), peerOf(b, a, "a", false)
			if tc.mod != nil {
				tc.mod(&pa, &pb)
			}
			if err := b.e.AddPeer(pb); err != nil {
				t.Fatal(err)
			}
			if err := a.e.AddPeer(pa); err != nil {
				t.Fatal(err)
			}
			for _, s := range []struct {
				log        *logBuf
				role, warn string
			}{{&la, "initiator", tc.warnA}, {&lb, "responder", tc.warnB}} {
				want := 1
				if s.warn != "" {
					want = 2
				}
				deadline := time.Now().Add(5 * time.Second)
				for time.Now().Before(deadline) && len(s.log.lines("level=")) < want {
					time.Sleep(5 * time.Millisecond)
				}
				time.Sleep(20 * time.Millisecond) // nothing else should follow
				all := s.log.lines("level=")
				if len(all) != want {
					t.Fatalf("%s logged %d lines, want %d:\n%s", s.role, len(all), want, strings.Join(all, "\n"))
				}
				up := all[0]
				for _, f := range append([]string{`level=INFO msg="ike: IKE SA established"`, "role=" + s.role, "spi_i=", "spi_r="}, tc.fields...) {
					if !strings.Contains(up, f) {
						t.Errorf("%s: %q lacks %q", s.role, up, f)
					}
				}
				if !tc.child && strings.Contains(up, "child=") {
					t.Errorf("%s: %q names a child that did not come up", s.role, up)
				}
				if s.warn != "" && !strings.Contains(all[1], s.warn) {
					t.Errorf("%s: second line %q, want %s", s.role, all[1], s.warn)
				}
			}
			// The deletion has a line of its own.
			if tc.child {
				if err := a.e.DeleteIKE("b"); err != nil {
					t.Fatal(err)
				}
				deadline := time.Now().Add(5 * time.Second)
				for time.Now().Before(deadline) && len(lb.lines(`msg="ike: peer deleted the IKE SA"`)) == 0 {
					time.Sleep(5 * time.Millisecond)
				}
				if n := len(lb.lines(`msg="ike: peer deleted the IKE SA"`, "spi_r=")); n != 1 {
					t.Errorf("responder logged the deletion %d times, want once", n)
				}
			}
		})
	}
}
