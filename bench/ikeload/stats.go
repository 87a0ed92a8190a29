// Measurement: handshake latencies and their percentiles, the measured
// window, CPU time of processes from /proc/<pid>/stat and the busy time of
// the whole machine from /proc/stat.

package main

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// userHZ is the unit of the utime/stime fields in /proc/<pid>/stat. Linux
// exports USER_HZ = 100 to user space on every architecture Go supports.
const userHZ = 100

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, or 0 for an empty slice.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted)) + 0.999999999)
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

// window is the measured interval; events outside it are warmup or
// stragglers and are not counted.
type window struct {
	start, end time.Time
}

func (w window) contains(t time.Time) bool { return !t.Before(w.start) && t.Before(w.end) }

// tally collects one worker's results inside the window: handshakes that
// completed in it, and handshakes started in it that failed (even if the
// timeout ran out after the window). Each worker owns one, so recording
// takes no lock; merge combines them at the end.
type tally struct {
	lat    []time.Duration
	failed int
	reason map[string]int
	count  *atomic.Int64 // shared by all workers, for progress; may be nil
	fatal  error         // the worker could not go on
}

func (t *tally) done(w window, start, end time.Time) {
	if w.contains(end) {
		t.lat = append(t.lat, end.Sub(start))
		if t.count != nil {
			t.count.Add(1)
		}
	}
}

func (t *tally) fail(w window, started time.Time, reason string) {
	if !w.contains(started) {
		return
	}
	t.failed++
	if t.reason == nil {
		t.reason = map[string]int{}
	}
	t.reason[reason]++
}

// summary is the merged result of all workers.
type summary struct {
	Completed     int
	Failed        int
	P50, P99, Max time.Duration
	Reasons       map[string]int
}

func merge(ts []*tally) summary {
	var all []time.Duration
	s := summary{Reasons: map[string]int{}}
	for _, t := range ts {
		all = append(all, t.lat...)
		s.Failed += t.failed
		for r, n := range t.reason {
			s.Reasons[r] += n
		}
	}
	slices.Sort(all)
	s.Completed = len(all)
	s.P50, s.P99 = percentile(all, 50), percentile(all, 99)
	if len(all) > 0 {
		s.Max = all[len(all)-1]
	}
	return s
}

// parseStatCPU returns utime+stime of a /proc/<pid>/stat line. The command
// name (field 2) may contain spaces and parentheses, so fields are counted
// after the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("no ')' after the command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	var ticks uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("utime/stime %q: %v", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// procCPU returns the CPU time (user + system, all threads) the process
// has used so far. pid "self" means this process.
func procCPU(pid string) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read CPU time of process %s: %w (has it exited?)", pid, err)
	}
	d, err := parseStatCPU(b)
	if err != nil {
		return 0, fmt.Errorf("parse /proc/%s/stat: %w", pid, err)
	}
	return d, nil
}

// parseMachineBusy returns busy and total jiffies of the "cpu " line of
// /proc/stat (busy: user nice system irq softirq steal; total adds idle
// and iowait) and the number of CPUs (the "cpuN" lines).
func parseMachineBusy(b []byte) (busy, total uint64, ncpu int, err error) {
	found := false
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, "cpu") && len(line) > 3 && line[3] >= '0' && line[3] <= '9' {
			ncpu++
			continue
		}
		if !strings.HasPrefix(line, "cpu ") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 9 {
			return 0, 0, 0, fmt.Errorf("/proc/stat cpu line has %d fields, want at least 9", len(f))
		}
		var v [8]uint64
		for i := range v {
			if v[i], err = strconv.ParseUint(f[i+1], 10, 64); err != nil {
				return 0, 0, 0, fmt.Errorf("/proc/stat cpu field %d: %v", i+1, err)
			}
		}
		busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
		total = busy + v[3] + v[4]
		found = true
	}
	if !found {
		return 0, 0, 0, fmt.Errorf("/proc/stat has no 'cpu ' line")
	}
	return busy, total, max(ncpu, 1), nil
}

func machineBusy() (busy, total uint64, ncpu int, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, 0, fmt.Errorf("read /proc/stat: %w", err)
	}
	return parseMachineBusy(b)
}

// addrRange returns n consecutive addresses starting at first, or an error
// if the range leaves first's /24 (the bench gives each side one subnet).
func addrRange(first netip.Addr, n int) ([]netip.Addr, error) {
	if n < 1 {
		return nil, fmt.Errorf("need at least one address, got %d", n)
	}
	if !first.Is4() {
		return nil, fmt.Errorf("address %s: only IPv4 ranges are supported", first)
	}
	out := make([]netip.Addr, 0, n)
	a := first
	pfx := netip.PrefixFrom(first, 24).Masked()
	for range n {
		if !pfx.Contains(a) || a.As4()[3] == 255 {
			return nil, fmt.Errorf("%d addresses from %s do not fit in %s", n, first, pfx)
		}
		out = append(out, a)
		a = a.Next()
	}
	return out, nil
}

// The inner ranges the Child SAs protect, the same for every identity (so
// charon's kernel-libipsec installs one shared route, not one per SA).
var (
	generatorsInner = netip.MustParsePrefix("10.200.0.0/16")
	responderInner  = netip.MustParsePrefix("10.201.0.0/16")
)
