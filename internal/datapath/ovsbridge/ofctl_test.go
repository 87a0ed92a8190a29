package ovsbridge

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
)

const dumpOutput = `OFPST_FLOW reply (OF1.4) (xid=0x2):
 cookie=0x4f42000000000001, duration=0.023s, table=0, n_packets=12, n_bytes=1200, priority=200,udp,in_port=LOCAL,nw_dst=198.51.100.2,tp_dst=6081 actions=output:2
 cookie=0x4f42000000000005, duration=0.023s, table=0, n_packets=3, n_bytes=300, idle_age=4, priority=100,udp,in_port=1,nw_src=198.51.100.2,tp_dst=6081 actions=drop
 cookie=0x4f42000000000008, duration=0.023s, table=0, n_packets=0, n_bytes=0, priority=0 actions=NORMAL
 cookie=0x0, duration=1s, table=0, n_packets=7, n_bytes=70, in_port=2 actions=drop
 cookie=0x9, duration=1s, table=0, n_packets=1, n_bytes=2, send_flow_rem reset_counts priority=5,arp actions=NORMAL
`

func TestParseDumpFlows(t *testing.T) {
	got, err := ParseDumpFlows(dumpOutput)
	if err != nil {
		t.Fatal(err)
	}
	want := []FlowStat{
		{Cookie: 0x4f42000000000001, Priority: 200, Packets: 12, Bytes: 1200, Match: "udp,in_port=LOCAL,nw_dst=198.51.100.2,tp_dst=6081", Actions: "output:2"},
		{Cookie: 0x4f42000000000005, Priority: 100, Packets: 3, Bytes: 300, Match: "udp,in_port=1,nw_src=198.51.100.2,tp_dst=6081", Actions: "drop"},
		{Cookie: 0x4f42000000000008, Priority: 0, Match: "", Actions: "NORMAL"},
		{Cookie: 0, Priority: 32768, Packets: 7, Bytes: 70, Match: "in_port=2", Actions: "drop"},
		{Cookie: 9, Priority: 5, Packets: 1, Bytes: 2, Match: "arp", Actions: "NORMAL"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d flows, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("flow %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if got[1].Kind() != KindDropPlaintext {
		t.Errorf("kind %v", got[1].Kind())
	}
}

func TestParseDumpFlowsErrors(t *testing.T) {
	for _, in := range []string{
		" cookie=0x1, n_packets=x, priority=1 actions=drop",
		" cookie=0xzz, n_packets=1, priority=1 actions=drop",
		" cookie=0x1, n_packets=1, priority=1",
		" cookie=0x1, n_bytes=-1, priority=1 actions=drop",
	} {
		if _, err := ParseDumpFlows(in); err == nil {
			t.Errorf("ParseDumpFlows(%q) accepted a malformed line", in)
		}
	}
}

func TestParseShow(t *testing.T) {
	out := `OFPT_FEATURES_REPLY (xid=0x2): dpid:00005a3c81745849
n_tables:254, n_buffers:0
 1(nic0): addr:7a:f7:cf:d4:64:aa
     config:     0
     state:      LINK_DOWN
 2(tap0): addr:72:88:c6:25:10:d1
     config:     NO_FLOOD
     state:      LINK_DOWN
 LOCAL(br-phy): addr:5a:3c:81:74:58:49
     config:     PORT_DOWN
     state:      LINK_DOWN
OFPT_GET_CONFIG_REPLY (xid=0x4): frags=normal miss_send_len=0`
	got := ParseShow(out)
	want := map[string]PortInfo{
		"nic0":   {OFPort: "1"},
		"tap0":   {OFPort: "2", NoFlood: true},
		"br-phy": {OFPort: "LOCAL", Down: true},
	}
	if len(got) != len(want) {
		t.Fatalf("ports %+v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("port %s = %+v, want %+v", k, got[k], v)
		}
	}
}

// fakeOVS emulates ovs-vsctl/ovs-ofctl for the attachment's commands.
type fakeOVS struct {
	mu       sync.Mutex
	calls    []string
	ports    map[string]PortInfo
	flows    string // flow text last installed
	down     bool
	replaces int
}

func (f *fakeOVS) Run(_ context.Context, stdin, name string, args ...string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cmd := name + " " + strings.Join(args, " ")
	f.calls = append(f.calls, cmd)
	if f.down {
		return "", errors.New("connection refused")
	}
	switch {
	case name == "ovs-vsctl" && strings.Contains(cmd, "add-port"):
		if _, ok := f.ports["ovnsec0"]; !ok {
			f.ports["ovnsec0"] = PortInfo{OFPort: "9"}
		}
		return "", nil
	case strings.Contains(cmd, " show "):
		var b strings.Builder
		for n, p := range f.ports {
			cfg := "0"
			if p.NoFlood {
				cfg = "NO_FLOOD"
			}
			fmt.Fprintf(&b, " %s(%s): addr:00:00:00:00:00:01\n     config:     %s\n", p.OFPort, n, cfg)
		}
		return b.String(), nil
	case strings.Contains(cmd, "mod-port"):
		p := f.ports[args[len(args)-2]]
		p.NoFlood = true
		f.ports[args[len(args)-2]] = p
		return "", nil
	case strings.Contains(cmd, "replace-flows"):
		f.flows = stdin
		f.replaces++
		return "", nil
	case strings.Contains(cmd, "dump-flows"):
		var want, mask uint64
		if sel := args[len(args)-1]; strings.HasPrefix(sel, "cookie=") {
			fmt.Sscanf(strings.Replace(strings.TrimPrefix(sel, "cookie="), "/", " ", 1), "%v %v", &want, &mask)
		}
		var b strings.Builder
		for _, l := range strings.Split(strings.TrimSpace(f.flows), "\n") {
			if l == "" {
				continue
			}
			c, rest, _ := strings.Cut(strings.TrimPrefix(l, "cookie="), ",")
			var cv uint64
			fmt.Sscanf(c, "%v", &cv)
			if cv&mask != want&mask {
				continue
			}
			fmt.Fprintf(&b, " cookie=%s, duration=1s, table=0, n_packets=5, n_bytes=500, %s\n", c, strings.Replace(strings.TrimPrefix(rest, "table=0,"), ",actions=", " actions=", 1))
		}
		return b.String(), nil
	}
	return "", fmt.Errorf("unexpected command %s", cmd)
}

// restart emulates ovs-vswitchd restarting: flows and no-flood are gone,
// port numbers may change.
func (f *fakeOVS) restart(newPort string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flows = ""
	f.ports["ovnsec0"] = PortInfo{OFPort: newPort}
}

// testAttachment builds an Attachment around a fake OVS without touching
// devices (Attach itself needs root; the integration test covers it).
func testAttachment(t *testing.T, f *fakeOVS, clk *clocktest.Fake) *Attachment {
	t.Helper()
	cfg := Config{Bridge: "br-phy", NIC: "nic0", Engine: "ovnsec0", Cookie: 0xab00,
		OVS: OVS{Runner: f, Target: "br-phy"}, CheckInterval: time.Second,
		Clock: clk}
	if clk == nil {
		cfg.Clock = clocktest.New(time.Unix(1700000000, 0))
	}
	bc := BridgeConfig{NIC: cfg.NIC, Engine: cfg.Engine, Cookie: cfg.Cookie}
	flows, err := Rules(bc, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &Attachment{cfg: cfg, bc: bc, flows: flows, log: testLogger(t)}
	a.underlay.Store(1500)
	if err := a.ensurePort(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.installLocked(context.Background()); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAttachmentCheck(t *testing.T) {
	peer := Policy{PeerIP: netip.MustParseAddr("198.51.100.2"), Proto: ProtoGeneve}
	tests := []struct {
		name    string
		break_  func(f *fakeOVS)
		reinst  bool
		wantErr bool
	}{
		{"healthy: nothing to do", func(*fakeOVS) {}, false, false},
		{"vswitchd restarted: flows gone, new port number", func(f *fakeOVS) { f.restart("3") }, true, false},
		{"flows flushed by someone", func(f *fakeOVS) { f.flows = "" }, true, false},
		{"one flow deleted", func(f *fakeOVS) {
			i := strings.Index(f.flows, "\n")
			f.flows = f.flows[i+1:]
		}, true, false},
		{"same number of flows, a kind replaced", func(f *fakeOVS) {
			f.flows = strings.Replace(f.flows, "cookie=0xab01,", "cookie=0xab08,", 1)
		}, true, false},
		{"foreign flow with our cookie prefix added", func(f *fakeOVS) {
			f.flows += "cookie=0xab05,table=0,priority=1,actions=drop\n"
		}, true, false},
		{"foreign flow added", func(f *fakeOVS) {
			f.flows += "cookie=0x0,table=0,priority=300,in_port=nic0,actions=LOCAL\n"
		}, true, false},
		{"no-flood lost", func(f *fakeOVS) { f.ports["ovnsec0"] = PortInfo{OFPort: "9"} }, true, false},
		{"engine port removed", func(f *fakeOVS) { delete(f.ports, "ovnsec0") }, true, false},
		{"vswitchd down", func(f *fakeOVS) { f.down = true }, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeOVS{ports: map[string]PortInfo{"nic0": {OFPort: "1"}}}
			a := testAttachment(t, f, nil)
			if err := a.SetPolicies(context.Background(), []Policy{peer}); err != nil {
				t.Fatal(err)
			}
			installed := f.flows
			before := a.Installs()
			tc.break_(f)
			re, err := a.Check(context.Background())
			if (err != nil) != tc.wantErr || re != tc.reinst {
				t.Fatalf("Check = %v, %v; want reinstalled=%v err=%v", re, err, tc.reinst, tc.wantErr)
			}
			if tc.reinst {
				if a.Installs() != before+1 || f.flows != installed || !f.ports["ovnsec0"].NoFlood {
					t.Errorf("after re-install: installs %d->%d, same table %v, no-flood %v",
						before, a.Installs(), f.flows == installed, f.ports["ovnsec0"].NoFlood)
				}
			}
		})
	}
}

func TestAttachmentRunReinstallsOnTick(t *testing.T) {
	f := &fakeOVS{ports: map[string]PortInfo{"nic0": {OFPort: "1"}}}
	clk := clocktest.New(time.Unix(1700000000, 0))
	a := testAttachment(t, f, clk)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	f.restart("4")
	reinstalled := func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.flows != "" && f.ports["ovnsec0"].NoFlood
	}
	for deadline := time.Now().Add(5 * time.Second); !reinstalled(); {
		if time.Now().After(deadline) {
			t.Fatal("Run did not re-install after a restart")
		}
		clk.Advance(time.Second) // a tick of the check interval
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestAttachmentSetPoliciesKeepsOldTableOnError(t *testing.T) {
	f := &fakeOVS{ports: map[string]PortInfo{"nic0": {OFPort: "1"}}}
	a := testAttachment(t, f, nil)
	old := Text(a.Flows())
	if err := a.SetPolicies(context.Background(), []Policy{{Proto: ProtoGeneve}}); err == nil {
		t.Fatal("invalid policy accepted")
	}
	f.down = true
	if err := a.SetPolicies(context.Background(), []Policy{{PeerIP: netip.MustParseAddr("198.51.100.2"), Proto: ProtoGeneve}}); err == nil {
		t.Fatal("install with vswitchd down succeeded")
	}
	if Text(a.Flows()) != old {
		t.Errorf("failed SetPolicies changed the table the attachment keeps")
	}
}

func TestAttachmentCounters(t *testing.T) {
	f := &fakeOVS{ports: map[string]PortInfo{"nic0": {OFPort: "1"}}}
	a := testAttachment(t, f, nil)
	peer := Policy{PeerIP: netip.MustParseAddr("198.51.100.2"), Proto: ProtoGeneve}
	if err := a.SetPolicies(context.Background(), []Policy{peer}); err != nil {
		t.Fatal(err)
	}
	c, err := a.Counters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The fake reports 5 packets per flow; protected geneve has two drop-plaintext flows.
	if got := c[KindDropPlaintext]; got.Flows != 2 || got.Packets != 10 {
		t.Errorf("drop-plaintext counters %+v", got)
	}
	if mtu, err := a.OverlayMTU(peer); err != nil || mtu != 1413 {
		t.Errorf("OverlayMTU = %d, %v", mtu, err)
	}
	// PlaintextDrops selects by exact cookie; the fake ignores the selector,
	// so check the selector it was given.
	if _, err := a.PlaintextDrops(context.Background()); err != nil {
		t.Fatal(err)
	}
	last := f.calls[len(f.calls)-1]
	if !strings.Contains(last, "cookie=0xab05/0xffffffffffffffff") {
		t.Errorf("PlaintextDrops selector: %s", last)
	}
}

func TestAttachmentKeepsInheritedProtection(t *testing.T) {
	// A previous run protected a peer; the new run must not replace those
	// rules with an empty table before its tunnels are configured again.
	f := &fakeOVS{ports: map[string]PortInfo{"nic0": {OFPort: "1"}}}
	old := testAttachment(t, f, nil)
	peer := Policy{PeerIP: netip.MustParseAddr("198.51.100.2"), Proto: ProtoGeneve, Mode: ModeProtected}
	if err := old.SetPolicies(context.Background(), []Policy{peer}); err != nil {
		t.Fatal(err)
	}
	protected := f.flows
	a := &Attachment{cfg: old.cfg, bc: old.bc, log: testLogger(t)}
	a.flows, _ = Rules(a.bc, nil)
	if !a.protectsPeers(context.Background()) {
		t.Fatal("protectsPeers does not see the previous run's drop rules")
	}
	a.inherited = true
	a.engPort = "9"
	if re, err := a.Check(context.Background()); err != nil || re {
		t.Fatalf("Check replaced the inherited table (reinstalled=%v, err=%v)", re, err)
	}
	if f.flows != protected {
		t.Fatal("inherited rules changed before SetPolicies")
	}
	if err := a.SetPolicies(context.Background(), []Policy{peer}); err != nil {
		t.Fatal(err)
	}
	if a.inherited {
		t.Fatal("SetPolicies did not end the inherited state")
	}
	// After a vswitchd restart the inherited rules are gone: Check installs.
	a.inherited = true
	f.restart("9")
	if re, err := a.Check(context.Background()); err != nil || !re {
		t.Fatalf("Check after restart: reinstalled=%v err=%v", re, err)
	}
}
