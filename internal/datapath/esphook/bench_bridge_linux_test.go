package esphook

// Throughput bench of the OVS side-car attachment with ESP (skipped unless
// OVNSEC_BENCH=1; OVNSEC_BENCH_SECONDS sets the iperf3 duration, default
// 10). Two OVS hosts (natv-bx-a, natv-bx-b), iperf3 TCP over the Geneve
// overlay in three modes, one run each:
//   (a) plain Geneve: no policies, br-phy forwards with NORMAL;
//   (b) attachment + Passthrough: every tunnel packet through the engine
//       port unchanged (ModeBenchPassthrough);
//   (c) attachment + ESP: this hook with static keys (ModeProtected).
// It prints a table and "ratio bridge_<mode>_vs_plain <v>" lines.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
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

func (h *benchHost) startLoop(t *testing.T, hook ovsbridge.Hook, ps []ovsbridge.Policy) {
	t.Helper()
	tap, err := ovsbridge.OpenTAP(itEngine, h.NsPath())
	if err != nil {
		t.Fatal(err)
	}
	l, err := ovsbridge.NewLoop(ovsbridge.LoopConfig{Device: tap, Hook: hook})
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
	var mtu int
	for _, h := range []*benchHost{a, b} {
		att, err := ovsbridge.Attach(ctx, ovsbridge.Config{
			Bridge: "nvphy", NIC: h.Dev, Engine: itEngine,
			OVS:   ovsbridge.OVS{DB: h.DB(), Target: h.Mgmt("nvphy")},
			Netns: h.NsPath(),
		})
		if err != nil {
			t.Fatal(err)
		}
		h.att = att
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

	type row struct {
		label string
		mbit  float64
		retr  int
	}
	var rows []row
	run := func(label string, setup func(h *benchHost)) {
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
		r := iperfRun(t, a, b, dst, seconds)
		rows = append(rows, row{label, r.mbit, r.retr})
		t.Logf("%s: %.0f Mbit/s, %d retransmits", label, r.mbit, r.retr)
	}
	run("(a) plain Geneve", func(h *benchHost) {
		if err := h.att.SetPolicies(ctx, nil); err != nil {
			t.Fatal(err)
		}
	})
	run("(b) attachment+passthrough", func(h *benchHost) {
		ps := policy(h, ovsbridge.ModeBenchPassthrough)
		h.startLoop(t, ovsbridge.Passthrough{}, ps)
		if err := h.att.SetPolicies(ctx, ps); err != nil {
			t.Fatal(err)
		}
	})
	run("(c) attachment+ESP", func(h *benchHost) {
		ps := policy(h, ovsbridge.ModeProtected)
		h.startLoop(t, h.esp, ps)
		if err := h.att.SetPolicies(ctx, ps); err != nil {
			t.Fatal(err)
		}
	})
	if s := a.esp.Stats(); s.Sealed == 0 || s.Opened == 0 {
		t.Errorf("ESP mode did not use the hook: %+v", s)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "BENCH bridge: iperf3 TCP %d s, 1 stream, Geneve overlay MTU %d, both hosts on this machine\n", seconds, mtu)
	fmt.Fprintf(&sb, "%-30s %10s %8s %12s\n", "mode", "Mbit/s", "ratio", "retransmits")
	for _, r := range rows {
		fmt.Fprintf(&sb, "%-30s %10.0f %8.3f %12d\n", r.label, r.mbit, r.mbit/rows[0].mbit, r.retr)
	}
	fmt.Fprintf(&sb, "ratio bridge_passthrough_vs_plain %.3f\n", rows[1].mbit/rows[0].mbit)
	fmt.Fprintf(&sb, "ratio bridge_esp_vs_plain %.3f\n", rows[2].mbit/rows[0].mbit)
	fmt.Print(sb.String())
}

type iperfOut struct {
	mbit float64
	retr int
}

func iperfRun(t *testing.T, a, b *benchHost, dst netip.Addr, seconds int) iperfOut {
	t.Helper()
	srv := exec.Command("ip", "netns", "exec", b.Name, "iperf3", "-s", "-1", "-B", dst.String())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	time.Sleep(300 * time.Millisecond)
	out, err := a.Exec("iperf3", "-c", dst.String(), "-t", strconv.Itoa(seconds), "-J")
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
