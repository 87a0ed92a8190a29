package esphook

// Throughput bench of the OVS side-car attachment with ESP (skipped unless
// OVNSEC_BENCH=1; OVNSEC_BENCH_SECONDS sets the iperf3 duration, default
// 10). Two OVS hosts (natv-bx-a, natv-bx-b), iperf3 TCP over the Geneve
// overlay in these modes, one run each:
//   (a) plain Geneve: no policies, br-phy forwards with NORMAL;
//   (b) attachment + Passthrough: every tunnel packet through the engine
//       port (TAP) unchanged (ModeBenchPassthrough);
//   (c) attachment + ESP: this hook with static keys (ModeProtected), TAP;
//   (d) the same on a veth engine port read and written in batches;
//   (e) veth + direct: outbound ESP written by the engine straight to the
//       NIC (LoopConfig.Wire), inbound still through the veth.
// It prints a table with the CPU each part used (% of one core over the
// run: both ovs-vswitchd, this process = both engines, and the machine),
// and "ratio bridge_<mode>_vs_plain <v>" lines.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/testenv"
	"github.com/ovnsec/ovnsec/test/netns"
)

type benchHost struct {
	*netns.OVSHost
	peer     *benchHost
	att      *ovsbridge.Attachment
	esp      *Hook
	loop     *ovsbridge.Loop
	loopStop context.CancelFunc
	loopDone chan error
}

func (h *benchHost) startLoop(t *testing.T, hook ovsbridge.Hook, ps []ovsbridge.Policy, direct bool) {
	t.Helper()
	dev, err := ovsbridge.OpenEngine(h.att.Port(), itEngine, h.NsPath())
	if err != nil {
		t.Fatal(err)
	}
	cfg := ovsbridge.LoopConfig{Device: dev, Hook: hook}
	if direct {
		w, err := ovsbridge.OpenWire(h.Dev, h.NsPath())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		cfg.Wire = w
	}
	l, err := ovsbridge.NewLoop(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l.SetPeers(ps)
	if eh, ok := hook.(*Hook); ok {
		eh.SetReleaser(l)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.loop, h.loopStop, h.loopDone = l, cancel, make(chan error, 1)
	go func() { h.loopDone <- l.Run(ctx) }()
}

func (h *benchHost) stopLoop(t *testing.T) {
	if h.loopStop == nil {
		return
	}
	h.loopStop()
	if err := <-h.loopDone; err != nil {
		t.Errorf("%s: packet loop: %v", h.Name, err)
	}
	h.loopStop = nil
}

func TestBenchBridgeESP(t *testing.T) {
	if os.Getenv("OVNSEC_BENCH") != "1" {
		t.Skip("bench: run bench/bridge.sh or OVNSEC_BENCH=1")
	}
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, "iperf3")
	seconds := 10
	if s, err := strconv.Atoi(os.Getenv("OVNSEC_BENCH_SECONDS")); err == nil && s > 0 {
		seconds = s
	}
	ctx := context.Background()
	hs := netns.OVSHosts(t, netns.OVSOptions{
		Prefix: "natv-bx", Hosts: 2, Underlay: netip.MustParsePrefix("198.51.100.0/24"),
		Phy: "nvphy", Overlays: itOverlays[:1],
	})
	a, b := &benchHost{OVSHost: hs[0]}, &benchHost{OVSHost: hs[1]}
	a.peer, b.peer = b, a
	policy := func(h *benchHost, m ovsbridge.Mode) []ovsbridge.Policy {
		return []ovsbridge.Policy{{PeerIP: h.peer.Underlay, Proto: ovsbridge.ProtoGeneve, Mode: m}}
	}
	attach := func(h *benchHost, kind ovsbridge.PortKind) {
		att, err := ovsbridge.Attach(ctx, ovsbridge.Config{
			Bridge: "nvphy", NIC: h.Dev, Engine: itEngine, Port: kind,
			OVS:   ovsbridge.OVS{DB: h.DB(), Target: h.Mgmt("nvphy")},
			Netns: h.NsPath(),
		})
		if err != nil {
			t.Fatal(err)
		}
		h.att = att
	}
	var mtu int
	for _, h := range []*benchHost{a, b} {
		attach(h, ovsbridge.PortTAP)
		att := h.att
		var err error
		// One overlay MTU for every mode: room for ESP even when unused.
		if mtu, err = att.OverlayMTU(policy(h, ovsbridge.ModeProtected)[0]); err != nil {
			t.Fatal(err)
		}
		h.SetOverlayMTU(itOverlays[0], mtu)
		h.esp = New(Config{})
		if err := h.esp.SetPolicies(h.Underlay, policy(h, ovsbridge.ModeProtected)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.stopLoop(t) })
	}
	if err := a.esp.InstallStatic(b.Underlay, StaticSA{InSPI: 0x2002, OutSPI: 0x1001, InKey: key(2), OutKey: key(1)}); err != nil {
		t.Fatal(err)
	}
	if err := b.esp.InstallStatic(a.Underlay, StaticSA{InSPI: 0x1001, OutSPI: 0x2002, InKey: key(1), OutKey: key(2)}); err != nil {
		t.Fatal(err)
	}
	dst := b.OverlayAddr["nvint"]

	rounds, rate := 1, 0
	if s, err := strconv.Atoi(os.Getenv("OVNSEC_BENCH_RATE")); err == nil && s > 0 {
		rate = s // Mbit/s: a fixed load, to compare CPU per GB rather than throughput
	}
	if s, err := strconv.Atoi(os.Getenv("OVNSEC_BENCH_ROUNDS")); err == nil && s > 0 {
		rounds = s
	}
	type sample struct {
		mbit float64
		retr int
		cpu  cpuUse
	}
	run := func(label string, setup func(h *benchHost)) sample {
		for _, h := range []*benchHost{a, b} {
			h.stopLoop(t)
			setup(h)
		}
		deadline := time.Now().Add(15 * time.Second)
		for ok := false; !ok; {
			ok, _ = a.Ping(dst, 1, 0, time.Second)
			if !ok && time.Now().After(deadline) {
				t.Fatalf("%s: no overlay connectivity", label)
			}
		}
		c0 := readCPU(t, a, b)
		r := iperfRun(t, a, b, dst, seconds, rate)
		cpu := readCPU(t, a, b).since(c0)
		t.Logf("%s: %.0f Mbit/s, %d retransmits, cpu %+v", label, r.mbit, r.retr, cpu)
		return sample{r.mbit, r.retr, cpu}
	}
	esp := func(kind ovsbridge.PortKind, direct bool) func(h *benchHost) {
		return func(h *benchHost) {
			if h.att.Port() != kind {
				attach(h, kind)
			}
			ps := policy(h, ovsbridge.ModeProtected)
			h.startLoop(t, h.esp, ps, direct)
			if err := h.att.SetPolicies(ctx, ps); err != nil {
				t.Fatal(err)
			}
		}
	}
	modes := []struct {
		key, label string
		setup      func(h *benchHost)
		samples    []sample
	}{
		{key: "plain", label: "(a) plain Geneve", setup: func(h *benchHost) {
			if err := h.att.SetPolicies(ctx, nil); err != nil {
				t.Fatal(err)
			}
		}},
		{key: "passthrough", label: "(b) attachment+passthrough", setup: func(h *benchHost) {
			if h.att.Port() != ovsbridge.PortTAP {
				attach(h, ovsbridge.PortTAP)
			}
			ps := policy(h, ovsbridge.ModeBenchPassthrough)
			h.startLoop(t, ovsbridge.Passthrough{}, ps, false)
			if err := h.att.SetPolicies(ctx, ps); err != nil {
				t.Fatal(err)
			}
		}},
		{key: "esp_tap", label: "(c) attachment+ESP (TAP)", setup: esp(ovsbridge.PortTAP, false)},
		{key: "esp_veth", label: "(d) veth+ESP", setup: esp(ovsbridge.PortVeth, false)},
		{key: "esp_direct", label: "(e) veth+ESP+direct", setup: esp(ovsbridge.PortVeth, true)},
	}
	// OVNSEC_BENCH_MODES=esp_tap,esp_direct runs only those (and plain,
	// the reference).
	if sel := os.Getenv("OVNSEC_BENCH_MODES"); sel != "" {
		kept := modes[:1]
		for _, m := range modes[1:] {
			if strings.Contains(","+sel+",", ","+m.key+",") {
				kept = append(kept, m)
			}
		}
		modes = kept
	}
	for range rounds {
		for i := range modes {
			modes[i].samples = append(modes[i].samples, run(modes[i].label, modes[i].setup))
		}
	}
	if s := a.esp.Stats(); s.Sealed == 0 || s.Opened == 0 {
		t.Errorf("ESP mode did not use the hook: %+v", s)
	}
	// Per mode: the median run by throughput; CPU figures from that run.
	med := make([]sample, len(modes))
	for i, m := range modes {
		ss := append([]sample(nil), m.samples...)
		sort.Slice(ss, func(x, y int) bool { return ss[x].mbit < ss[y].mbit })
		med[i] = ss[len(ss)/2]
	}
	var sb strings.Builder
	limit := "unlimited"
	if rate > 0 {
		limit = fmt.Sprintf("limited to %d Mbit/s", rate)
	}
	fmt.Fprintf(&sb, "BENCH bridge: iperf3 TCP %d s, 1 stream %s, Geneve overlay MTU %d, both hosts on this machine, median of %d round(s)\n", seconds, limit, mtu, rounds)
	fmt.Fprintf(&sb, "%-28s %7s %6s %8s %10s %9s %7s %8s\n", "mode", "Mbit/s", "ratio", "retrans",
		"vswitchd%", "engines%", "busy%", "CPUs/GB")
	fmt.Fprintf(&sb, "%-28s %7s %6s %8s %10s %9s %7s %8s\n", "", "", "", "", "(a / b)", "(both)", "(of200)", "vsd+eng")
	for i, m := range modes {
		r := med[i]
		gb := r.mbit * float64(seconds) / 8000
		fmt.Fprintf(&sb, "%-28s %7.0f %6.3f %8d %4.0f / %3.0f %9.0f %7.0f %4.1f+%3.1f\n", m.label, r.mbit, r.mbit/med[0].mbit, r.retr,
			r.cpu.vswitchd[0], r.cpu.vswitchd[1], r.cpu.engine, r.cpu.machine,
			r.cpu.vswitchdSec/gb, r.cpu.engineSec/gb)
	}
	if rounds > 1 {
		fmt.Fprintf(&sb, "every round, Mbit/s (ratio to plain of the same round):\n")
		for _, m := range modes {
			fmt.Fprintf(&sb, "  %-26s", m.label)
			for r, x := range m.samples {
				fmt.Fprintf(&sb, " %5.0f (%.2f)", x.mbit, x.mbit/modes[0].samples[r].mbit)
			}
			sb.WriteByte('\n')
		}
	}
	for i, m := range modes[1:] {
		fmt.Fprintf(&sb, "ratio bridge_%s_vs_plain %.3f\n", m.key, med[i+1].mbit/med[0].mbit)
	}
	// The headline: ESP in the attachment's default configuration.
	for i, m := range modes {
		if m.key == benchDefaultESP {
			fmt.Fprintf(&sb, "ratio bridge_esp_vs_plain %.3f\n", med[i].mbit/med[0].mbit)
		}
	}
	fmt.Print(sb.String())
}

// benchDefaultESP is the mode whose ratio is printed as
// bridge_esp_vs_plain: what the native backend runs by default.
const benchDefaultESP = "esp_direct" // ovnsecd --engine-port-type=veth --direct-to-nic (the defaults)

type iperfOut struct {
	mbit float64
	retr int
}

func iperfRun(t *testing.T, a, b *benchHost, dst netip.Addr, seconds, rate int) iperfOut {
	t.Helper()
	srv := exec.Command("ip", "netns", "exec", b.Name, "iperf3", "-s", "-1", "-B", dst.String())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	time.Sleep(300 * time.Millisecond)
	args := []string{"iperf3", "-c", dst.String(), "-t", strconv.Itoa(seconds), "-J"}
	if rate > 0 {
		args = append(args, "-b", strconv.Itoa(rate)+"M")
	}
	out, err := a.Exec(args...)
	if err != nil {
		t.Fatalf("iperf3: %v\n%.500s", err, out)
	}
	var r struct {
		End struct {
			SumSent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("iperf3 JSON: %v", err)
	}
	return iperfOut{r.End.SumReceived.BitsPerSecond / 1e6, r.End.SumSent.Retransmits}
}

// cpuSample is cumulative CPU time (clock ticks) at one moment.
type cpuSample struct {
	at       time.Time
	vswitchd [2]uint64
	self     uint64
	busy     uint64 // all CPUs, non-idle
}

// cpuUse is CPU used between two samples, in % of one core.
type cpuUse struct {
	vswitchd    [2]float64
	engine      float64 // this process: both hosts' engines (and the test)
	machine     float64
	engineSec   float64 // engine CPU seconds
	vswitchdSec float64 // both ovs-vswitchd, CPU seconds
}

const clockTicks = 100 // USER_HZ on Linux

func readCPU(t *testing.T, a, b *benchHost) cpuSample {
	t.Helper()
	s := cpuSample{at: time.Now(), self: procTicks("/proc/self/stat")}
	for i, h := range []*benchHost{a, b} {
		pid, err := os.ReadFile(h.Dir + "/ovs-vswitchd.pid")
		if err == nil {
			s.vswitchd[i] = procTicks("/proc/" + strings.TrimSpace(string(pid)) + "/stat")
		}
	}
	if st, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(st), "\n")
		f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
		for i, v := range f[1:] {
			n, _ := strconv.ParseUint(v, 10, 64)
			if i != 3 && i != 4 && i < 8 {
				s.busy += n
			}
		}
	}
	return s
}

// procTicks returns utime+stime of a process from its stat file, 0 if
// unreadable.
func procTicks(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return 0
	}
	f := strings.Fields(rest) // state is field 3; utime 14 and stime 15
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return u + st
}

func (s cpuSample) since(s0 cpuSample) cpuUse {
	sec := s.at.Sub(s0.at).Seconds()
	pct := func(d uint64) float64 { return float64(d) / clockTicks / sec * 100 }
	return cpuUse{
		vswitchd:    [2]float64{pct(s.vswitchd[0] - s0.vswitchd[0]), pct(s.vswitchd[1] - s0.vswitchd[1])},
		engine:      pct(s.self - s0.self),
		machine:     pct(s.busy - s0.busy),
		engineSec:   float64(s.self-s0.self) / clockTicks,
		vswitchdSec: float64(s.vswitchd[0]-s0.vswitchd[0]+s.vswitchd[1]-s0.vswitchd[1]) / clockTicks,
	}
}
