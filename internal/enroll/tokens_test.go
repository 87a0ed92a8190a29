package enroll

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The file keeps hashes only, mode 0600; the token's String hides it.
func TestTokenStoredHashed(t *testing.T) {
	dir := newPKI(t)
	s := NewTokenStore(dir, nil)
	tok, rec, err := s.Create("ch1", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.Expires.Sub(rec.Created); got != DefaultTokenTTL {
		t.Errorf("default ttl %v", got)
	}
	b, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	_, secret, _ := strings.Cut(tok.Secret(), ".")
	if len(secret) < 40 || strings.Contains(string(b), secret) {
		t.Fatalf("the token's secret is on disk:\n%s", b)
	}
	sum := sha256.Sum256([]byte(tok.Secret()))
	if !strings.Contains(string(b), hex.EncodeToString(sum[:])) {
		t.Errorf("no hash of the token in the file:\n%s", b)
	}
	if m := fileMode(t, s.Path()); m != 0o600 {
		t.Errorf("token file mode %04o, want 0600", m)
	}
	if strings.Contains(tok.String(), secret) || !strings.Contains(tok.String(), string(tok.ID())) {
		t.Errorf("String() = %q", tok.String())
	}
	// No temporary file is left beside it.
	ents, _ := os.ReadDir(filepath.Dir(s.Path()))
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("left over %s", e.Name())
		}
	}
	// A token file others can read is refused, not used.
	if err := os.Chmod(s.Path(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Check("ch1", tok); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable token file: %v", err)
	}
}

func TestTokenLifecycle(t *testing.T) {
	dir := newPKI(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clk := &fixedClock{t: now}
	s := NewTokenStore(dir, clk)
	tok, _, err := s.Create("ch1", time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check("ch1", tok); err != nil {
		t.Fatal(err)
	}
	calls := 0
	fail := errors.New("issue failed")
	if err := s.Use("ch1", tok, func() error { calls++; return fail }); !errors.Is(err, fail) {
		t.Fatalf("Use: %v", err)
	}
	if err := s.Check("ch1", tok); err != nil {
		t.Fatalf("a failed issue used the token up: %v", err)
	}
	if err := s.Use("ch1", tok, func() error { calls++; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Use("ch1", tok, func() error { calls++; return nil }); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("second use: %v", err)
	}
	if calls != 2 {
		t.Errorf("issue ran %d times, want 2", calls)
	}
	t2, _, _ := s.Create("ch2", time.Hour, true)
	clk.t = now.Add(2 * time.Hour)
	s = NewTokenStore(dir, clk)
	if err := s.Check("ch2", t2); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired: %v", err)
	}
	if err := s.Revoke("0000000000000000"); err == nil {
		t.Error("revoked a token that does not exist")
	}
	if err := s.Revoke(t2.ID()); err != nil {
		t.Fatal(err)
	}
	recs, _ := s.List()
	if len(recs) != 2 || recs[1].State(clk.t) != "revoked" || recs[0].State(clk.t) != "used" {
		t.Errorf("records %+v", recs)
	}
	// Records that cannot be used any more go after a week.
	clk.t = now.Add(8 * 24 * time.Hour)
	s = NewTokenStore(dir, clk)
	t3, _, _ := s.Create("ch3", time.Hour, false)
	recs, _ = s.List()
	if len(recs) != 1 || recs[0].ID != t3.ID() {
		t.Errorf("after a week: %+v", recs)
	}
}

// Two stores on one file (the CLI and the server) and many goroutines:
// every create is kept.
func TestTokenConcurrentCreate(t *testing.T) {
	dir := newPKI(t)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := NewTokenStore(dir, nil).Create("ch1", time.Hour, i%2 == 0); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	recs, err := NewTokenStore(dir, nil).List()
	if err != nil || len(recs) != 16 {
		t.Fatalf("%d records, %v; want 16", len(recs), err)
	}
}

func TestParseTokenFileErrors(t *testing.T) {
	good := "0123456789abcdef\tch1\t" + strings.Repeat("ab", 32) + "\t2026-01-01T00:00:00Z\t2026-01-02T00:00:00Z\tonce\t0\t-\t-"
	if recs, err := ParseTokenFile([]byte(tokenHeader + "\n" + good + "\n")); err != nil || len(recs) != 1 {
		t.Fatalf("good line: %v", err)
	}
	bad := map[string]string{
		"fields":    "0123456789abcdef\tch1",
		"id":        strings.Replace(good, "0123456789abcdef", "0123456789ABCDEF", 1),
		"chassis":   strings.Replace(good, "\tch1\t", "\tch 1\t", 1),
		"hash":      strings.Replace(good, strings.Repeat("ab", 32), "abcd", 1),
		"time":      strings.Replace(good, "2026-01-01T00:00:00Z", "yesterday", 1),
		"fraction":  strings.Replace(good, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.5Z", 1),
		"kind":      strings.Replace(good, "once", "twice", 1),
		"uses":      strings.Replace(good, "\t0\t", "\t-1\t", 1),
		"last used": strings.Replace(good, "\t0\t", "\t1\t", 1),
		"duplicate": good + "\n" + good,
	}
	for name, line := range bad {
		if _, err := ParseTokenFile([]byte(line + "\n")); err == nil {
			t.Errorf("%s: accepted %q", name, line)
		}
	}
}
