// Unit tests for the Watcher's back-off, publication and retry loop (no
// ovsdb-server needed).

package ovsconf

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		name     string
		min, max time.Duration
		want     []time.Duration
	}{
		{"defaults", DefaultMinBackoff, DefaultMaxBackoff, []time.Duration{
			100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
			1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second,
		}},
		{"min above max", 2 * time.Second, time.Second, []time.Duration{time.Second, time.Second}},
		{"zero min retries at once", 0, time.Second, []time.Duration{0, 0, 0}},
		{"no cap", time.Second, 0, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := backoff{min: tc.min, max: tc.max}
			for i, want := range tc.want {
				if got := b.next(); got != want {
					t.Fatalf("step %d: next() = %v, want %v", i, got, want)
				}
			}
			b.reset()
			if got := b.next(); got != tc.want[0] {
				t.Fatalf("after reset: next() = %v, want %v", got, tc.want[0])
			}
		})
	}
}

func snap(k, v string) tunnel.Snapshot {
	return tunnel.Snapshot{OtherConfig: map[string]string{k: v}, ExternalIDs: map[string]string{}, Interfaces: []tunnel.Interface{}}
}

func TestPublish(t *testing.T) {
	w := New("unix:/nonexistent", nil)
	if _, ok := w.Current(); ok {
		t.Fatal("Current() reports a snapshot before any was published")
	}

	// A slow consumer only ever sees the latest snapshot.
	w.publish(snap("a", "1"), false)
	w.publish(snap("a", "2"), false)
	w.publish(snap("a", "3"), false)
	got := <-w.Updates()
	if got.OtherConfig["a"] != "3" || got.Seq != 3 {
		t.Fatalf("after three publishes got seq=%d %v, want seq=3 a=3", got.Seq, got.OtherConfig)
	}
	select {
	case s := <-w.Updates():
		t.Fatalf("second pending snapshot %+v; want at most one pending", s)
	default:
	}

	// Unchanged content is not published again unless forced.
	w.publish(snap("a", "3"), false)
	select {
	case s := <-w.Updates():
		t.Fatalf("unchanged snapshot published: %+v", s)
	default:
	}
	w.publish(snap("a", "3"), true)
	if s := <-w.Updates(); s.Seq != 4 {
		t.Fatalf("forced publish: seq = %d, want 4", s.Seq)
	}
	if cur, ok := w.Current(); !ok || cur.Seq != 4 || cur.OtherConfig["a"] != "3" {
		t.Fatalf("Current() = %+v, %v; want seq 4", cur, ok)
	}

	// A fast consumer sees every change in order.
	for i, v := range []string{"x", "y", "z"} {
		w.publish(snap("a", v), false)
		s := <-w.Updates()
		if s.OtherConfig["a"] != v || s.Seq != uint64(5+i) {
			t.Fatalf("publish %q: got seq=%d %v", v, s.Seq, s.OtherConfig)
		}
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunRetriesWithBackoff points the Watcher at a socket that does not
// exist and checks the retry delays, the log rate limiting, and that only a
// context cancel ends Run.
func TestRunRetriesWithBackoff(t *testing.T) {
	clk := clocktest.New(time.Unix(1700000000, 0))
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sock := filepath.Join(t.TempDir(), "missing.sock")
	w := New("unix:"+sock, logger, WithClock(clk), WithProbeInterval(0))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()

	// nextTimer waits until Run asks for a timer and returns its delay.
	nextTimer := func(attempt int) time.Duration {
		deadline := time.Now().Add(5 * time.Second)
		for clk.Pending() == 0 {
			select {
			case err := <-errc:
				t.Fatalf("Run returned on its own after %d attempts: %v", attempt-1, err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("attempt %d: no retry timer requested", attempt)
			}
			time.Sleep(time.Millisecond)
		}
		next, _ := clk.Next()
		return next.Sub(clk.Now())
	}
	want := []time.Duration{
		100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second,
		5 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second,
	}
	for i, d := range want {
		if got := nextTimer(i + 1); got != d {
			t.Fatalf("attempt %d: retry delay %v, want %v", i+1, got, d)
		}
		if w.Connected() {
			t.Fatalf("attempt %d: Connected() = true without a server", i+1)
		}
		clk.Advance(d)
	}
	// Wait for the 14th attempt to be scheduled, then cancel while Run waits.
	nextTimer(14)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, ok := <-w.Updates(); ok {
		t.Fatal("Updates delivered a snapshot without a server / not closed")
	}

	out := logs.String()
	if n := strings.Count(out, "level=WARN msg=\"ovsdb connect failed\""); n != 2 {
		t.Errorf("got %d WARN connect-failure lines for 14 attempts, want 2 (1st and 12th):\n%s", n, out)
	}
	if !strings.Contains(out, sock) {
		t.Errorf("log does not name the remote %s:\n%s", sock, out)
	}
}

func TestRunRejectsBadRemoteAndSecondRun(t *testing.T) {
	w := New("punix:/x.sock", nil)
	err := w.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "passive") {
		t.Fatalf("Run with a passive remote = %v, want an error", err)
	}
	if _, ok := <-w.Updates(); ok {
		t.Fatal("Updates not closed after Run returned")
	}
	if err := w.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "more than once") {
		t.Fatalf("second Run = %v, want a 'more than once' error", err)
	}
}
