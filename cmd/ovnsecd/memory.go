// Memory: ovs-appctl memory/show (one line of counters, in the spirit of
// the OVS daemons' command of the same name) and debug/heap-profile, which
// writes a pprof heap profile so that what holds the memory can be found
// without a debug build.

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// Returning memory: setting up tunnels (IKE handshakes, OVSDB updates,
// br-phy installs) leaves megabytes of garbage, the periodic br-phy check
// (ovs-ofctl runs) adds about 100 KB/s more, and with a live heap of a few
// MB the Go runtime lets garbage pile up to twice that before it collects,
// then returns the freed memory to the OS only slowly. The packet path
// allocates nothing, so keeping the heap tight costs little: every
// memoryCheckInterval, if garbage plus free-but-held heap exceeds
// idleHeapLimit, ovnsecd collects and returns it (one GC of a heap of a few
// MB: about a millisecond).
const (
	memoryCheckInterval = 2 * time.Second
	idleHeapLimit       = 512 << 10
)

// returnMemory runs the check until ctx ends.
func returnMemory(ctx context.Context, every time.Duration, limit uint64) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if reclaimable() > limit {
				debug.FreeOSMemory()
			}
		}
	}
}

func (s *system) registerMemoryCommands() {
	s.ctl.Register("memory/show", 0, 0, "", func(ctx context.Context, _ []string) (string, error) {
		views, _ := s.rec.LiveView(ctx)
		return memoryLine(len(views), readRSSKiB("/proc/self/status")), nil
	})
	s.ctl.Register("debug/heap-profile", 1, 1, "FILE", func(_ context.Context, args []string) (string, error) {
		return writeHeapProfile(args[0])
	})
}

// reclaimable is the heap a GC and a scavenge would give back: objects
// not live at the last GC (garbage since, approximately) plus free memory
// the runtime still holds.
func reclaimable() uint64 {
	sample := []metrics.Sample{
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	metrics.Read(sample)
	var v [3]uint64
	for i, s := range sample {
		if s.Value.Kind() != metrics.KindUint64 {
			return 0
		}
		v[i] = s.Value.Uint64()
	}
	free, objects, live := v[0], v[1], v[2]
	if objects > live {
		free += objects - live
	}
	return free
}

// memoryLine formats the counters: the live heap after the last GC, what
// the Go runtime holds from the OS, the resident set, and their share per
// tunnel.
func memoryLine(tunnels int, rssKiB int64) string {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	live := int64(m.HeapAlloc / 1024)
	line := fmt.Sprintf("tunnels:%d heap_live_kib:%d heap_sys_kib:%d go_sys_kib:%d goroutines:%d gc_cycles:%d",
		tunnels, live, m.HeapSys/1024, m.Sys/1024, runtime.NumGoroutine(), m.NumGC)
	if rssKiB >= 0 {
		line += fmt.Sprintf(" rss_kib:%d", rssKiB)
	}
	return line + "\n"
}

// readRSSKiB returns VmRSS from a /proc status file, or -1.
func readRSSKiB(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	for _, ln := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(ln, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				if v, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return v
				}
			}
		}
	}
	return -1
}

// writeHeapProfile runs a GC and writes the heap profile to path (absolute,
// created with mode 0600, never overwriting).
func writeHeapProfile(path string) (string, error) {
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("heap profile %q: give an absolute path (ovnsecd's working directory is not yours)", path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("heap profile: %w (choose a new file)", err)
	}
	runtime.GC()
	werr := pprof.Lookup("heap").WriteTo(f, 0)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return "", fmt.Errorf("heap profile %s: %w", path, werr)
	}
	return "heap profile written to " + path + " (go tool pprof -sample_index=inuse_space " + path + ")\n", nil
}
