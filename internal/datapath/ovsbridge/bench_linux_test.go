package ovsbridge

// Throughput bench of the side-car attachment, run by bench/bridge.sh (it
// is skipped unless OVNSEC_BENCH=1). Same two-host setup as the integration
// test; iperf3 TCP over the Geneve overlay in two modes:
//   (a) baseline: no policies, br-phy forwards tunnel packets with NORMAL;
//   (b) steering without encrypting: every tunnel packet goes through the
//       engine port and the Passthrough hook, both directions.
// Mode (c), ESP, needs the engine from internal/esp.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/testenv"
)

type iperfResult struct {
	End struct {
		SumSent struct {
			BitsPerSecond float64 `json:"bits_per_second"`
			Retransmits   int     `json:"retransmits"`
		} `json:"sum_sent"`
		SumReceived struct {
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
}

func iperf(t *testing.T, a, b *testHost, dst string, seconds int) iperfResult {
	t.Helper()
	srv := exec.Command("ip", "netns", "exec", b.name, "iperf3", "-s", "-1", "-B", dst)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	time.Sleep(500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+30)*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", a.name, "iperf3", "-c", dst, "-t", strconv.Itoa(seconds), "-J").Output()
	if err != nil {
		t.Fatalf("iperf3 client: %v\n%s", err, out)
	}
	var r iperfResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("iperf3 JSON: %v", err)
	}
	return r
}

func TestBenchBridge(t *testing.T) {
	if os.Getenv("OVNSEC_BENCH") != "1" {
		t.Skip("bench: run bench/bridge.sh (OVNSEC_BENCH=1)")
	}
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, "ovs-vswitchd", "ovsdb-server", "ovsdb-tool", "ovs-vsctl", "ovs-ofctl", "ip", "iperf3", "sysctl")
	seconds := 10
	if s, err := strconv.Atoi(os.Getenv("OVNSEC_BENCH_SECONDS")); err == nil && s > 0 {
		seconds = s
	}
	dir, err := os.MkdirTemp("/tmp", "obrt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	a := &testHost{name: "obrt-a", nic: "obrt-ua", index: 0,
		underlay: netip.MustParseAddr("198.51.100.1"), peer: netip.MustParseAddr("198.51.100.2")}
	b := &testHost{name: "obrt-b", nic: "obrt-ub", index: 1,
		underlay: netip.MustParseAddr("198.51.100.2"), peer: netip.MustParseAddr("198.51.100.1")}
	for _, h := range []*testHost{a, b} {
		h.dir = filepath.Join(dir, h.name)
		if err := os.Mkdir(h.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		h.ovs = OVS{DB: "unix:" + h.dir + "/db.sock", Target: "unix:" + h.dir + "/br-phy.mgmt"}
		exec.Command("ip", "netns", "del", h.name).Run()
		cmdRun(t, "ip", "netns", "add", h.name)
	}
	t.Cleanup(func() {
		for _, h := range []*testHost{a, b} {
			exec.Command("ip", "netns", "del", h.name).Run()
		}
	})
	cmdRun(t, "ip", "link", "add", a.nic, "netns", a.name, "type", "veth", "peer", "name", b.nic, "netns", b.name)
	setupHost(t, a)
	setupHost(t, b)
	dst := overlays[0].addr(1).String()
	var report []string
	run := func(label string) {
		a0, b0 := a.loop.Stats(), b.loop.Stats()
		r := iperf(t, a, b, dst, seconds)
		a1, b1 := a.loop.Stats(), b.loop.Stats()
		line := fmt.Sprintf("%-28s %7.0f Mbit/s  retransmits %6d  engine frames a: out %d in %d  b: out %d in %d",
			label, r.End.SumReceived.BitsPerSecond/1e6, r.End.SumSent.Retransmits,
			a1.OutFrames-a0.OutFrames, a1.InFrames-a0.InFrames, b1.OutFrames-b0.OutFrames, b1.InFrames-b0.InFrames)
		t.Log(line)
		report = append(report, line)
	}
	run("(b) steering, passthrough")
	for _, h := range []*testHost{a, b} {
		if err := h.att.SetPolicies(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
	run("(a) baseline, NORMAL")
	fmt.Printf("BENCH bridge (%d s TCP, 1 stream, Geneve overlay MTU 1413, both hosts on this machine)\n%s\n",
		seconds, strings.Join(report, "\n"))
}
