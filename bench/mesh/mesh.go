// Package mesh is bench row 4: a full mesh of N OVS chassis in network
// namespaces, each with its own ovnsecd (native backend), the time from
// enabling IPsec (options:psk on every tunnel) to every tunnel up, and
// ovnsecd's resident memory per tunnel. bench/mesh.sh runs it; the
// measuring test is skipped unless OVNSEC_BENCH=1.
//
// This file holds the pure parts: counting tunnel states in tunnels/show's
// JSON view (read with test/harness, as the end-to-end tests read it),
// parsing what /proc and the daemons' logs report, the statistics and the
// report (markdown section and figures).
package mesh

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/test/harness"
)

// Goals of the issue: a 20-chassis mesh all up in under 10 s, at most
// 64 KiB of ovnsecd RSS per idle tunnel.
const (
	GoalN          = 20
	GoalUpSeconds  = 10.0
	GoalKiBPerTunl = 64.0
)

// ParseSizes parses MESH_SIZES ("10 20"): mesh sizes from 2 to 26 (the
// namespace harness names hosts a..z), each at most once.
func ParseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Fields(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 2 || n > 26 {
			return nil, fmt.Errorf("MESH_SIZES %q: %q is not a mesh size from 2 to 26", s, f)
		}
		if slices.Contains(out, n) {
			return nil, fmt.Errorf("MESH_SIZES %q: size %d given twice", s, n)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("MESH_SIZES %q: no mesh size given (e.g. \"10 20\")", s)
	}
	return out, nil
}

// CountUp counts the tunnels among names that tunnels/show's JSON view
// lists as up.
func CountUp(s harness.Show, names []string) int {
	n := 0
	for _, name := range names {
		if t, ok := s.Tunnel(name); ok && t.State == backend.StateUp {
			n++
		}
	}
	return n
}

// StatusSummary groups the tunnels of names by state ("up",
// "connecting", "pending", "not-loaded", ...; "missing" when not listed), e.g.
// "connecting=2 up=17", for a report of what is still missing.
func StatusSummary(s harness.Show, names []string) string {
	count := map[string]int{}
	for _, name := range names {
		state := "missing"
		if t, ok := s.Tunnel(name); ok {
			state = strings.ReplaceAll(t.State.String(), " ", "-") // "not-loaded"
		}
		count[state]++
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, count[k]))
	}
	return strings.Join(parts, " ")
}

// VmRSS returns the VmRSS line of a /proc/<pid>/status text, in KiB.
func VmRSS(status string) (int, error) {
	for _, l := range strings.Split(status, "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("VmRSS line %q: want \"VmRSS: <n> kB\"", l)
			}
			n, err := strconv.Atoi(f[0])
			if err != nil {
				return 0, fmt.Errorf("VmRSS line %q: %w", l, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS line in the process status (a kernel thread or a zombie?)")
}

// CPUTicks returns utime+stime (clock ticks, whole thread group) and
// cutime+cstime (the CPU of its children it has waited for: for ovnsecd
// the ovs-vsctl/ovs-ofctl processes it runs) from a /proc/<pid>/stat
// text. The command name may hold spaces and brackets, so the fields are
// counted after its last ')'.
func CPUTicks(stat string) (self, children int64, err error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("process stat %q: no ')' after the command name", truncate(stat, 60))
	}
	f := strings.Fields(stat[i+1:])
	// After ")": state is field 3 of the whole line; utime, stime, cutime
	// and cstime are fields 14 to 17, so indexes 11 to 14 here.
	if len(f) < 15 {
		return 0, 0, fmt.Errorf("process stat %q: %d fields after the command name, want at least 15", truncate(stat, 60), len(f))
	}
	var v [4]int64
	for j := range v {
		n, perr := strconv.ParseInt(f[11+j], 10, 64)
		if perr != nil {
			return 0, 0, fmt.Errorf("process stat: field %d %q is not a number", 14+j, f[11+j])
		}
		v[j] = n
	}
	return v[0] + v[1], v[2] + v[3], nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Median returns the median of v (the mean of the middle two for an even
// count) and NaN for none.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Max returns the largest of v and NaN for none.
func Max(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	return slices.Max(v)
}

// Result is one mesh size's measurement, or why there is none.
type Result struct {
	N int
	// Failed, when set, is why the size was not measured; the other
	// fields may hold what was measured before it failed.
	Failed string
	// UpSeconds is the time from the first psk transaction to the last
	// node reporting all N-1 tunnels up.
	UpSeconds float64
	// KiBPerTunnel is (RSS after - RSS before) / (N-1), per node.
	KiBPerTunnel []float64
	// RSSBefore and RSSAfter are ovnsecd's VmRSS per node, KiB.
	RSSBefore, RSSAfter []float64
	// VswitchdRSS is ovs-vswitchd's VmRSS per node after, KiB.
	VswitchdRSS []float64
	// CPUSeconds is utime+stime of all ovnsecd from enabling to all up.
	CPUSeconds float64
	// Ping is the sample overlay ping result ("a→b ok, ...", "not run").
	Ping string
	// AfterIdle is the tunnel state after the idle time: "all up" or how
	// many tunnels are no longer up.
	AfterIdle string
	// Problems are defects seen while measuring (tunnels lost after all
	// up, a failed ping): the figures stand but the mesh is not healthy.
	Problems []string
	// Notes are extra lines for the report (per-node timing, profile).
	Notes []string
}

// Tunnels is the number of tunnel ports of the mesh, N*(N-1): each
// chassis has one towards every other (the "380 tunnels" for 20).
func (r Result) Tunnels() int { return r.N * (r.N - 1) }

func num(v float64, prec int) string {
	if math.IsNaN(v) {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// Table renders the results as a markdown table.
func Table(rs []Result) string {
	var b strings.Builder
	b.WriteString("| N | tunnels (IKE SAs) | s to all up | RSS KiB/tunnel median | RSS KiB/tunnel max | ovnsecd RSS KiB before (median) | ovnsecd RSS KiB after (median) | ovnsecd CPU s, all nodes, set-up | ovs-vswitchd RSS KiB (median) | after idle | sample ping |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		if r.Failed != "" {
			fmt.Fprintf(&b, "| %d | %d (%d) | not measured: %s | | | | | | | | |\n", r.N, r.Tunnels(), r.Tunnels()/2, cell(r.Failed))
			continue
		}
		fmt.Fprintf(&b, "| %d | %d (%d) | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.N, r.Tunnels(), r.Tunnels()/2, num(r.UpSeconds, 2),
			num(Median(r.KiBPerTunnel), 1), num(Max(r.KiBPerTunnel), 1),
			num(Median(r.RSSBefore), 0), num(Median(r.RSSAfter), 0),
			num(r.CPUSeconds, 2), num(Median(r.VswitchdRSS), 0), cell(cmpOr(r.AfterIdle, "–")), cell(r.Ping))
	}
	return b.String()
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// cell makes s safe for one markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", "/")
}

// Figures renders the machine-readable lines ("figure <name> <value>") of
// the measured sizes: mesh<N>_up_seconds for each, and for N=20 the
// median (rss_kib_per_tunnel) and max (mesh20_rss_kib_per_tunnel_max).
func Figures(rs []Result) string {
	var b strings.Builder
	for _, r := range rs {
		if r.Failed != "" {
			continue
		}
		fmt.Fprintf(&b, "figure mesh%d_up_seconds %s\n", r.N, num(r.UpSeconds, 2))
		if r.N == GoalN && len(r.KiBPerTunnel) > 0 {
			fmt.Fprintf(&b, "figure rss_kib_per_tunnel %s\n", num(Median(r.KiBPerTunnel), 1))
			fmt.Fprintf(&b, "figure mesh20_rss_kib_per_tunnel_max %s\n", num(Max(r.KiBPerTunnel), 1))
		}
	}
	return b.String()
}

// Marginal tells the RSS growth per added tunnel between the smallest and
// the largest measured size: (growth at N2 - growth at N1) / (N2 - N1),
// medians over the nodes. The per-tunnel figure of one size also carries
// the fixed cost of the first tunnel (runtime and engine start-up, GC
// headroom); the slope does not. "" with fewer than two sizes measured.
func Marginal(rs []Result) string {
	var ok []Result
	for _, r := range rs {
		if r.Failed == "" && len(r.RSSBefore) > 0 && len(r.RSSAfter) > 0 {
			ok = append(ok, r)
		}
	}
	if len(ok) < 2 {
		return ""
	}
	a, b := ok[0], ok[0]
	for _, r := range ok {
		if r.N < a.N {
			a = r
		}
		if r.N > b.N {
			b = r
		}
	}
	if a.N == b.N {
		return ""
	}
	ga := Median(a.RSSAfter) - Median(a.RSSBefore)
	gb := Median(b.RSSAfter) - Median(b.RSSBefore)
	return fmt.Sprintf("- Marginal ovnsecd RSS per tunnel between N=%d and N=%d: %s KiB (growth %s KiB at %d tunnels per node, %s KiB at %d; medians)\n",
		a.N, b.N, num((gb-ga)/float64(b.N-a.N), 1), num(ga, 0), a.N-1, num(gb, 0), b.N-1)
}

// Goals renders the goal lines: met, not met, or not measured.
func Goals(rs []Result) string {
	var r *Result
	for i := range rs {
		if rs[i].N == GoalN {
			r = &rs[i]
		}
	}
	up := fmt.Sprintf("- Goal: %d-chassis mesh (%d tunnels) all up in under %.0f s: ", GoalN, GoalN*(GoalN-1), GoalUpSeconds)
	rss := fmt.Sprintf("- Goal: at most %.0f KiB ovnsecd RSS per idle tunnel (N=%d, every node): ", GoalKiBPerTunl, GoalN)
	switch {
	case r == nil:
		return up + "not measured (N=20 not in MESH_SIZES)\n" + rss + "not measured (N=20 not in MESH_SIZES)\n"
	case r.Failed != "":
		return up + "not measured: " + r.Failed + "\n" + rss + "not measured: " + r.Failed + "\n"
	}
	verdict := func(ok bool) string {
		if ok {
			return "**met**"
		}
		return "**not met**"
	}
	mx := Max(r.KiBPerTunnel)
	return fmt.Sprintf("%s%s (%s s)\n%s%s (median %s, max %s KiB)\n",
		up, verdict(r.UpSeconds < GoalUpSeconds), num(r.UpSeconds, 2),
		rss, verdict(mx <= GoalKiBPerTunl), num(Median(r.KiBPerTunnel), 1), num(mx, 1))
}

// LogStats is what one ovnsecd log tells about a set-up: how long each
// tunnel took from "Starting ipsec connection" to "tunnel configured" (the
// backend's Ensure: br-phy rules re-installed, IKE peer added), when the
// last tunnel was configured and the IKE SA events that matter at scale.
type LogStats struct {
	Ensure         []float64 // seconds per configured tunnel
	LastConfigured time.Time
	Established    int // IKE SAs established
	Duplicates     int // "duplicate IKE SA from simultaneous initiation"
	PeerDeleted    int // "peer deleted the IKE SA"
	LateInitiate   int // the higher-address side initiating after the grace
	PolicyInstalls int // "policy installed" lines (one per peer per br-phy rule install)
}

// ParseLog reads an ovnsecd log (slog text format) written after since.
func ParseLog(log string, since time.Time) LogStats {
	var st LogStats
	started := map[string]time.Time{}
	for _, l := range strings.Split(log, "\n") {
		ts, ok := logTime(l)
		if !ok || ts.Before(since) {
			continue
		}
		msg := logField(l, "msg")
		switch {
		case strings.HasPrefix(msg, "Starting ipsec connection "):
			conn := strings.TrimPrefix(msg, "Starting ipsec connection ")
			// "<if>-in-<v>" / "<if>-out-<v>" / "<if>-<v>": the tunnel is
			// what precedes the last one or two dash-separated fields.
			name := conn
			for _, sep := range []string{"-in-", "-out-"} {
				if i := strings.LastIndex(conn, sep); i > 0 {
					name = conn[:i]
				}
			}
			if name == conn {
				if i := strings.LastIndexByte(conn, '-'); i > 0 {
					name = conn[:i]
				}
			}
			if _, ok := started[name]; !ok {
				started[name] = ts
			}
		case msg == "tunnel configured":
			name := logField(l, "tunnel")
			if t0, ok := started[name]; ok {
				st.Ensure = append(st.Ensure, ts.Sub(t0).Seconds())
				delete(started, name)
			}
			if ts.After(st.LastConfigured) {
				st.LastConfigured = ts
			}
		case msg == "ike: IKE SA established":
			st.Established++
		case msg == "ike: duplicate IKE SA from simultaneous initiation":
			st.Duplicates++
		case msg == "ike: peer deleted the IKE SA":
			st.PeerDeleted++
		case strings.HasPrefix(msg, "peer did not bring the tunnel up"):
			st.LateInitiate++
		case msg == "policy installed":
			st.PolicyInstalls++
		}
	}
	return st
}

// logTime parses the time= field of a slog text line.
func logTime(l string) (time.Time, bool) {
	v, ok := strings.CutPrefix(l, "time=")
	if !ok {
		return time.Time{}, false
	}
	v, _, _ = strings.Cut(v, " ")
	ts, err := time.Parse(time.RFC3339Nano, v)
	return ts, err == nil
}

// logField returns the value of key in a slog text line (quoted or not).
func logField(l, key string) string {
	i := strings.Index(l, " "+key+"=")
	if i < 0 {
		return ""
	}
	v := l[i+len(key)+2:]
	if strings.HasPrefix(v, `"`) {
		if s, err := strconv.QuotedPrefix(v); err == nil {
			if u, err := strconv.Unquote(s); err == nil {
				return u
			}
		}
		return ""
	}
	v, _, _ = strings.Cut(v, " ")
	return v
}

// GCHeap returns the live heap (MB) after the last garbage collection in a
// GODEBUG=gctrace=1 output ("gc 7 @1.2s 0%: ... 4->4->2 MB, 5 MB goal,
// ..."): the third number of the "a->b->c MB" field. ok is false without
// a gc line.
func GCHeap(trace string) (mb float64, ok bool) {
	for _, l := range strings.Split(trace, "\n") {
		if !strings.HasPrefix(l, "gc ") {
			continue
		}
		for _, f := range strings.Split(l, ",") {
			f = strings.TrimSpace(f)
			if !strings.HasSuffix(f, " MB") || !strings.Contains(f, "->") {
				continue
			}
			parts := strings.Split(strings.TrimSuffix(f, " MB"), "->")
			if v, err := strconv.ParseFloat(parts[len(parts)-1], 64); err == nil {
				mb, ok = v, true
			}
		}
	}
	return mb, ok
}
