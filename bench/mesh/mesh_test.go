package mesh

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/test/harness"
)

func TestParseSizes(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []int
		wantErr string
	}{
		{in: "10 20", want: []int{10, 20}},
		{in: " 2\t26 ", want: []int{2, 26}},
		{in: "", wantErr: "no mesh size"},
		{in: "1", wantErr: "from 2 to 26"},
		{in: "27", wantErr: "from 2 to 26"},
		{in: "ten", wantErr: "from 2 to 26"},
		{in: "10 10", wantErr: "twice"},
	} {
		got, err := ParseSizes(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseSizes(%q) = %v, %v; want error with %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) || (len(got) > 0 && (got[0] != tc.want[0] || got[len(got)-1] != tc.want[len(tc.want)-1])) {
			t.Errorf("ParseSizes(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// showSample is a tunnels/show --format=json reply (trimmed).
const showSample = `{
  "tunnels": [
    {"name": "gnvb", "version": 1, "config": "CONFIGURED", "type": "geneve", "state": "up",
     "ike": {"state": "established", "initiator": true, "udp_encap": false, "nat_local": false, "nat_remote": false, "rekeys": 0},
     "conns": [{"name": "gnvb-in-1", "active": true}, {"name": "gnvb-out-1", "active": true}]},
    {"name": "gnvc", "version": 1, "config": "CONFIGURED", "type": "geneve", "state": "connecting",
     "code": "waiting_for_child", "detail": "IKE SA established, waiting for Child SA gnvc-out-1"},
    {"name": "gnvd", "version": 1, "config": "CONFIGURED", "type": "geneve", "state": "pending",
     "code": "pending", "detail": "not yet given to the IKE daemon"},
    {"name": "gnve", "version": 1, "config": "CONFIGURED", "type": "geneve", "state": "not loaded",
     "code": "not_loaded", "detail": "the IKE daemon holds no connection for this tunnel; it will be loaded again"}
  ]
}
`

func TestCountUpStatusSummary(t *testing.T) {
	names := []string{"gnvb", "gnvc", "gnvd", "gnve", "gnvf"}
	for _, tc := range []struct {
		name    string
		show    string
		up      int
		summary string
	}{
		{"mixed", showSample, 1, "connecting=1 missing=1 not-loaded=1 pending=1 up=1"},
		{"none configured", `{"tunnels": []}`, 0, "missing=5"},
		{"all up", `{"tunnels": [{"name": "gnvb", "version": 2, "state": "up"}, {"name": "gnvc", "state": "up"}]}`, 2, "missing=3 up=2"},
		// Only the state up counts, not a state that is up with an old
		// configuration.
		{"updating is not up", `{"tunnels": [{"name": "gnvb", "version": 2, "state": "updating", "detail": "the IKE daemon still runs version 1"}]}`, 0, "missing=4 updating=1"},
		// A tunnel that is not among names does not count.
		{"other tunnel", `{"tunnels": [{"name": "gre0", "state": "up"}]}`, 0, "missing=5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := harness.ShowJSON(tc.show)
			if err != nil {
				t.Fatal(err)
			}
			if got := CountUp(s, names); got != tc.up {
				t.Errorf("CountUp = %d, want %d (%+v)", got, tc.up, s)
			}
			if got := StatusSummary(s, names); got != tc.summary {
				t.Errorf("StatusSummary = %q, want %q", got, tc.summary)
			}
		})
	}
}

func TestVmRSS(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     int
		wantErr  bool
	}{
		{"status", "Name:\tovnsecd\nVmPeak:\t 1000 kB\nVmRSS:\t   15236 kB\nRssAnon:\t 9000 kB\n", 15236, false},
		{"kernel thread", "Name:\tkworker/0:1\nState:\tI (idle)\n", 0, true},
		{"bad unit", "VmRSS:\t 12 MB\n", 0, true},
		{"not a number", "VmRSS:\t x kB\n", 0, true},
	} {
		got, err := VmRSS(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s: VmRSS = %d, %v; want %d, error %v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestCPUTicks(t *testing.T) {
	// utime 120, stime 30, cutime 7, cstime 3; the command name holds a
	// space and a ')'.
	stat := "1835 (ovn secd) x) S 1 1835 1835 0 -1 4194560 2803 0 0 0 120 30 7 3 20 0 9 0 1000 800000 3900 18446744073709551615"
	self, children, err := CPUTicks(stat)
	if err != nil || self != 150 || children != 10 {
		t.Errorf("CPUTicks = %d, %d, %v; want 150, 10", self, children, err)
	}
	for _, bad := range []string{"1835 ovnsecd S 1", "1835 (ovnsecd) S 1 2 3", "1 (a) S 1 1 1 0 -1 0 0 0 0 0 x 30 7 3 20"} {
		if _, _, err := CPUTicks(bad); err == nil {
			t.Errorf("CPUTicks(%q): no error", bad)
		}
	}
}

func TestMedianMax(t *testing.T) {
	for _, tc := range []struct {
		in       []float64
		med, max float64
	}{
		{[]float64{3, 1, 2}, 2, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 4},
		{[]float64{7}, 7, 7},
	} {
		if got := Median(tc.in); got != tc.med {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.med)
		}
		if got := Max(tc.in); got != tc.max {
			t.Errorf("Max(%v) = %v, want %v", tc.in, got, tc.max)
		}
	}
	if !math.IsNaN(Median(nil)) || !math.IsNaN(Max(nil)) {
		t.Error("Median/Max of nothing should be NaN")
	}
	in := []float64{3, 1, 2}
	Median(in)
	if in[0] != 3 {
		t.Error("Median sorted its input")
	}
}

func TestReport(t *testing.T) {
	ok20 := Result{N: 20, UpSeconds: 8.5, KiBPerTunnel: []float64{40, 60, 50}, RSSBefore: []float64{15000}, RSSAfter: []float64{16000},
		VswitchdRSS: []float64{19000}, CPUSeconds: 3.25, Ping: "a→b ok", AfterIdle: "all up"}
	slow20 := ok20
	slow20.UpSeconds, slow20.KiBPerTunnel = 12, []float64{40, 70}
	for _, tc := range []struct {
		name                string
		rs                  []Result
		table, figs, goals  []string
		notTable, notFigure []string
	}{
		{name: "goals met", rs: []Result{{N: 10, UpSeconds: 3.456, KiBPerTunnel: []float64{100}}, ok20},
			table: []string{"| 10 | 90 (45) | 3.46 | 100.0 |", "| 20 | 380 (190) | 8.50 | 50.0 | 60.0 | 15000 | 16000 | 3.25 | 19000 | all up | a→b ok |"},
			figs:  []string{"figure mesh10_up_seconds 3.46\n", "figure mesh20_up_seconds 8.50\n", "figure rss_kib_per_tunnel 50.0\n", "figure mesh20_rss_kib_per_tunnel_max 60.0\n"},
			goals: []string{"under 10 s: **met** (8.50 s)", "per idle tunnel (N=20, every node): **met** (median 50.0, max 60.0 KiB)"}},
		{name: "goals missed", rs: []Result{slow20},
			figs:  []string{"figure rss_kib_per_tunnel 55.0\n", "figure mesh20_rss_kib_per_tunnel_max 70.0\n"},
			goals: []string{"**not met** (12.00 s)", "**not met** (median 55.0, max 70.0 KiB)"}},
		{name: "N=20 failed", rs: []Result{{N: 10, UpSeconds: 2}, {N: 20, Failed: "not all up within 60 s (a|b)"}},
			table:     []string{"| 20 | 380 (190) | not measured: not all up within 60 s (a/b) |"},
			figs:      []string{"figure mesh10_up_seconds 2.00\n"},
			goals:     []string{"all up in under 10 s: not measured: not all up", "per idle tunnel (N=20, every node): not measured"},
			notFigure: []string{"mesh20", "rss_kib"}},
		{name: "no N=20", rs: []Result{{N: 10, UpSeconds: 2, KiBPerTunnel: []float64{1}}},
			goals: []string{"not measured (N=20 not in MESH_SIZES)"}, notFigure: []string{"rss_kib_per_tunnel"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table, figs, goals := Table(tc.rs), Figures(tc.rs), Goals(tc.rs)
			for _, w := range tc.table {
				if !strings.Contains(table, w) {
					t.Errorf("table lacks %q:\n%s", w, table)
				}
			}
			for _, w := range tc.figs {
				if !strings.Contains(figs, w) {
					t.Errorf("figures lack %q:\n%s", w, figs)
				}
			}
			for _, w := range tc.notFigure {
				if strings.Contains(figs, w) {
					t.Errorf("figures have %q:\n%s", w, figs)
				}
			}
			for _, w := range tc.goals {
				if !strings.Contains(goals, w) {
					t.Errorf("goals lack %q:\n%s", w, goals)
				}
			}
			for _, l := range strings.Split(strings.TrimSpace(figs), "\n") {
				if l != "" && len(strings.Fields(l)) != 3 {
					t.Errorf("figure line %q: want \"figure <name> <value>\"", l)
				}
			}
		})
	}
}

func TestParseLog(t *testing.T) {
	log := `time=2026-11-23T02:53:03.933Z level=INFO msg="Tunnel gnvb appeared in OVSDB" tunnel=gnvb
time=2026-11-23T02:53:05.477Z level=INFO msg="policy installed" backend=native peer=198.51.100.2
time=2026-11-23T02:53:05.477Z level=INFO msg="Starting ipsec connection gnvb-in-1"
time=2026-11-23T02:53:05.477Z level=INFO msg="Starting ipsec connection gnvb-out-1"
time=2026-11-23T02:53:05.865Z level=INFO msg="tunnel configured" backend=native tunnel=gnvb version=1
time=2026-11-23T02:53:05.865Z level=INFO msg="Starting ipsec connection gre-x-1"
time=2026-11-23T02:53:06.365Z level=INFO msg="tunnel configured" backend=native tunnel=gre-x version=1
time=2026-11-23T02:53:06.883Z level=INFO msg="ike: IKE SA established" backend=native peer=gnvb-1
time=2026-11-23T02:53:07.355Z level=INFO msg="ike: duplicate IKE SA from simultaneous initiation" backend=native
time=2026-11-23T02:53:07.361Z level=INFO msg="ike: peer deleted the IKE SA" backend=native peer=gnvj-1
time=2026-11-23T02:53:08.827Z level=INFO msg="peer did not bring the tunnel up; initiating" backend=native tunnel=gnva grace=10s
not a log line
`
	since := time.Date(2026, 11, 23, 2, 53, 5, 0, time.UTC)
	st := ParseLog(log, since)
	if len(st.Ensure) != 2 || math.Abs(st.Ensure[0]-0.388) > 1e-9 || math.Abs(st.Ensure[1]-0.5) > 1e-9 {
		t.Errorf("Ensure = %v, want [0.388 0.5]", st.Ensure)
	}
	if want := time.Date(2026, 11, 23, 2, 53, 6, 365e6, time.UTC); !st.LastConfigured.Equal(want) {
		t.Errorf("LastConfigured = %v, want %v", st.LastConfigured, want)
	}
	if st.Established != 1 || st.Duplicates != 1 || st.PeerDeleted != 1 || st.LateInitiate != 1 || st.PolicyInstalls != 1 {
		t.Errorf("counts = %+v", st)
	}
	// Lines before since are not counted.
	if st := ParseLog(log, since.Add(time.Hour)); len(st.Ensure) != 0 || st.PolicyInstalls != 0 {
		t.Errorf("ParseLog after the log: %+v", st)
	}
}

func TestGCHeap(t *testing.T) {
	trace := `gc 1 @1.892s 0%: 1.0+16+0.004 ms clock, 2.1+0.29/3.8/5.0+0.008 ms cpu, 4->4->3 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P
some other line
gc 3 @22.086s 0%: 1.5+103+0.007 ms clock, 3.0+0/1.9/87+0.014 ms cpu, 9->9->5 MB, 9 MB goal, 0 MB stacks, 0 MB globals, 2 P
`
	if mb, ok := GCHeap(trace); !ok || mb != 5 {
		t.Errorf("GCHeap = %v, %v; want 5, true", mb, ok)
	}
	if _, ok := GCHeap("no trace\n"); ok {
		t.Error("GCHeap of no trace: ok")
	}
}

func TestMarginal(t *testing.T) {
	r10 := Result{N: 10, RSSBefore: []float64{15000, 15100}, RSSAfter: []float64{19000, 19100}} // +4000
	r20 := Result{N: 20, RSSBefore: []float64{16000}, RSSAfter: []float64{22000}}               // +6000
	for _, tc := range []struct {
		name string
		rs   []Result
		want string
	}{
		{"two sizes", []Result{r20, r10}, "between N=10 and N=20: 200.0 KiB (growth 4000 KiB at 9 tunnels per node, 6000 KiB at 19"},
		{"one size", []Result{r10}, ""},
		{"other failed", []Result{r10, {N: 20, Failed: "x"}}, ""},
	} {
		got := Marginal(tc.rs)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: Marginal = %q, want %q", tc.name, got, tc.want)
		}
	}
}
