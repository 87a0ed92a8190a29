// Tests of the measurement helpers: percentiles, the window, merging
// worker tallies, /proc parsing and address ranges.

package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median odd", ms(1, 2, 3), 50, 2 * time.Millisecond},
		{"median even takes lower", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p100 is max", ms(hundred...), 100, 100 * time.Millisecond},
		{"p50 of 100", ms(hundred...), 50, 50 * time.Millisecond},
		{"tiny p is first", ms(5, 6), 0.1, 5 * time.Millisecond},
	} {
		if got := percentile(tc.in, tc.p); got != tc.want {
			t.Errorf("%s: percentile(%v, %v) = %v, want %v", tc.name, tc.in, tc.p, got, tc.want)
		}
	}
}

func TestTallyWindowAndMerge(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := window{start: t0.Add(time.Second), end: t0.Add(3 * time.Second)}
	a, b := &tally{}, &tally{}
	a.done(w, t0, t0.Add(500*time.Millisecond))                            // warmup: not counted
	a.done(w, t0.Add(900*time.Millisecond), t0.Add(1100*time.Millisecond)) // ends inside: counted
	a.done(w, t0.Add(2*time.Second), t0.Add(2*time.Second+3*time.Millisecond))
	b.done(w, t0.Add(2900*time.Millisecond), t0.Add(3*time.Second)) // ends at the end: not counted
	b.done(w, t0.Add(time.Second), t0.Add(time.Second+time.Millisecond))
	a.fail(w, t0.Add(2*time.Second), "timeout") // started inside
	b.fail(w, t0.Add(500*time.Millisecond), "timeout")
	b.fail(w, t0.Add(2500*time.Millisecond), "auth")
	s := merge([]*tally{a, b})
	if s.Completed != 3 || s.Failed != 2 {
		t.Fatalf("completed %d failed %d, want 3 and 2", s.Completed, s.Failed)
	}
	if s.P50 != 3*time.Millisecond || s.Max != 200*time.Millisecond || s.P99 != 200*time.Millisecond {
		t.Errorf("p50 %v p99 %v max %v, want 3ms 200ms 200ms", s.P50, s.P99, s.Max)
	}
	if s.Reasons["timeout"] != 1 || s.Reasons["auth"] != 1 {
		t.Errorf("reasons %v, want timeout:1 auth:1", s.Reasons)
	}
}

func TestParseStatCPU(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       time.Duration
		err        string
	}{
		{"plain", "1234 (charon) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 17 0 100 0 0",
			3800 * time.Millisecond, ""},
		{"comm with spaces and parens", "77 (a) b (c) R 1 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 5",
			100 * time.Millisecond, ""},
		{"truncated", "77 (x) R 1 2 3", 0, "fields"},
		{"no comm", "77 x R", 0, "command name"},
		{"garbage", "77 (x) R 1 1 1 0 -1 0 0 0 0 0 x 3 0", 0, "utime/stime"},
	} {
		got, err := parseStatCPU([]byte(tc.line))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want one containing %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

func TestProcCPUSelf(t *testing.T) {
	d0, err := procCPU("self")
	if err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
	}
	d1, err := procCPU("self")
	if err != nil {
		t.Fatal(err)
	}
	if d1 < d0 {
		t.Errorf("CPU time went backwards: %v then %v", d0, d1)
	}
	if _, err := procCPU("999999999"); err == nil {
		t.Error("no error for a process that does not exist")
	}
}

func TestParseMachineBusy(t *testing.T) {
	stat := "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\ncpu1 50 3 25 500 10 2 1 1 0 0\nintr 1\n"
	busy, total, n, err := parseMachineBusy([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if busy != 161 || total != 1181 || n != 2 {
		t.Errorf("busy %d total %d cpus %d, want 161 1181 2", busy, total, n)
	}
	for _, bad := range []string{"intr 1\n", "cpu  1 2 3\n", "cpu  1 2 3 x 5 6 7 8\n"} {
		if _, _, _, err := parseMachineBusy([]byte(bad)); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
}

func TestAddrRange(t *testing.T) {
	a := netip.MustParseAddr
	for _, tc := range []struct {
		first string
		n     int
		last  string // "" = error
	}{
		{"198.51.100.1", 1, "198.51.100.1"},
		{"198.51.100.1", 16, "198.51.100.16"},
		{"198.51.100.129", 100, "198.51.100.228"},
		{"198.51.100.250", 5, "198.51.100.254"},
		{"198.51.100.250", 6, ""}, // would reach .255
		{"198.51.100.1", 0, ""},
		{"2001:db8::1", 2, ""},
	} {
		got, err := addrRange(a(tc.first), tc.n)
		if tc.last == "" {
			if err == nil {
				t.Errorf("addrRange(%s, %d) = %v, want an error", tc.first, tc.n, got)
			}
			continue
		}
		if err != nil || len(got) != tc.n || got[0] != a(tc.first) || got[len(got)-1] != a(tc.last) {
			t.Errorf("addrRange(%s, %d) = %v, %v; want %d addresses up to %s", tc.first, tc.n, got, err, tc.n, tc.last)
		}
	}
}
