package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

func TestMemoryLine(t *testing.T) {
	re := regexp.MustCompile(`^tunnels:7 heap_live_kib:\d+ heap_sys_kib:\d+ go_sys_kib:\d+ goroutines:\d+ gc_cycles:\d+ rss_kib:1234\n$`)
	if got := memoryLine(7, 1234); !re.MatchString(got) {
		t.Errorf("memoryLine = %q", got)
	}
	if got := memoryLine(0, -1); strings.Contains(got, "rss_kib") {
		t.Errorf("unknown RSS printed: %q", got)
	}
}

func TestReadRSSKiB(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, body string
		want       int64
	}{
		{"ok", "Name:\tovnsecd\nVmRSS:\t   20134 kB\nThreads:\t9\n", 20134},
		{"missing", "Name:\tovnsecd\n", -1},
		{"garbage", "VmRSS:\tlots kB\n", -1},
		{"empty", "VmRSS:\n", -1},
	} {
		p := filepath.Join(dir, tc.name)
		if err := os.WriteFile(p, []byte(tc.body), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := readRSSKiB(p); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if got := readRSSKiB(filepath.Join(dir, "nonexistent")); got != -1 {
		t.Errorf("unreadable file: %d, want -1", got)
	}
	if got := readRSSKiB("/proc/self/status"); got <= 0 {
		t.Errorf("own RSS: %d", got)
	}
}

func TestWriteHeapProfile(t *testing.T) {
	if _, err := writeHeapProfile("heap.pprof"); err == nil || !strings.Contains(err.Error(), "absolute path") {
		t.Errorf("relative path: err = %v", err)
	}
	p := filepath.Join(t.TempDir(), "heap.pprof")
	msg, err := writeHeapProfile(p)
	if err != nil || !strings.Contains(msg, p) {
		t.Fatalf("write: %q %v", msg, err)
	}
	if st, err := os.Stat(p); err != nil || st.Size() == 0 || st.Mode().Perm() != 0o600 {
		t.Fatalf("profile file: %v %v", st, err)
	}
	if _, err := writeHeapProfile(p); err == nil || !strings.Contains(err.Error(), "choose a new file") {
		t.Errorf("existing file overwritten or wrong error: %v", err)
	}
}

// returnMemory gives free heap back to the OS once it exceeds the limit.
// The garbage is 32 MiB and the check allows 8 MiB to stay: the runtime's
// background scavenger returns none of it within 3 s (measured), while
// FreeOSMemory sometimes cannot return up to about 2.6 MB of free heap in a
// test binary (per-P page caches and the like); a 4 MiB garbage with a
// 1 MiB bound failed about one run in ten that way.
func TestReturnMemory(t *testing.T) {
	garbage := make([][]byte, 0, 512)
	for range 512 {
		garbage = append(garbage, make([]byte, 64<<10)) // 32 MiB
	}
	garbage = nil
	runtime.GC() // now free, not yet returned
	free := func() uint64 {
		s := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	if f := free(); f < 16<<20 {
		t.Skipf("the runtime already returned the memory (%d bytes free): nothing to check", f)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- returnMemory(ctx, 10*time.Millisecond, 1<<20) }()
	deadline := time.Now().Add(3 * time.Second)
	for free() > 8<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes of free heap still held after 3 s", free())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Garbage that no GC has collected yet counts too: returnMemory collects
// it once it exceeds the limit.
func TestReturnMemoryCollectsGarbage(t *testing.T) {
	runtime.GC()
	debugFree := func() uint64 { return reclaimable() }
	old := debug.SetGCPercent(-1) // no GC while the garbage is made
	var keep [][]byte
	for range 512 {
		keep = append(keep, make([]byte, 64<<10)) // 32 MiB
	}
	keep = nil // now garbage, and no GC has run
	r := debugFree()
	debug.SetGCPercent(old)
	if r < 24<<20 {
		t.Fatalf("reclaimable %d bytes after making 32 MiB of garbage: the garbage is not counted", r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go returnMemory(ctx, 10*time.Millisecond, 1<<20)
	deadline := time.Now().Add(3 * time.Second) // see TestReturnMemory for the bounds
	for debugFree() > 8<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still reclaimable after 3 s", debugFree())
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = keep
}
