// OVN end to end: the demo cluster of scripts/demo.sh (three chassis, real
// ovn-northd and ovn-controller, ovs-vswitchd with the userspace datapath,
// ovnsecd per chassis) driven through ovn-nbctl's ipsec switch.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/reconcile"
	"github.com/ovnsec/ovnsec/internal/testenv"
	"github.com/ovnsec/ovnsec/internal/tunnel"
	"github.com/ovnsec/ovnsec/test/harness"
)

// nativeArgs starts ovnsecd with the native backend; the test hands it to
// scripts/demo.sh (OVNSECD_NATIVE_ARGS) so that probe and demo agree.
const nativeArgs = "--ike-daemon=native --bridge=ovd-phy --nic=ovd-eth"

// demoEnv is the parsed environment file of `scripts/demo.sh up`.
type demoEnv struct {
	vars       map[string]string
	underlayNS string
	chassis    []string // ch1 ch2 ch3
	chassisNS  []string
	chassisIPs []string
	vmNS       []string
	vmIPs      []string
	nbDB       string
	ovsDBs     []string
	ctls       []string // ovnsecd control sockets
	backend    string   // native or strongswan-fallback
}

func demoRepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// parseDemoEnv reads KEY="VALUE" lines (comments after the value allowed).
func parseDemoEnv(data []byte) (map[string]string, error) {
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("line %q: want KEY=\"VALUE\"", line)
		}
		if strings.HasPrefix(v, `"`) {
			end := strings.Index(v[1:], `"`)
			if end < 0 {
				return nil, fmt.Errorf("line %q: unterminated quote", line)
			}
			v = v[1 : 1+end]
		} else if i := strings.IndexAny(v, " \t#"); i >= 0 {
			v = v[:i]
		}
		vars[k] = v
	}
	return vars, sc.Err()
}

func TestParseDemoEnv(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]string
		wantErr  bool
	}{
		{name: "quoted with comment", in: "# c\nVM_IPS=\"203.0.113.1 203.0.113.2\"   # x\n",
			want: map[string]string{"VM_IPS": "203.0.113.1 203.0.113.2"}},
		{name: "bare", in: "NB_DB=unix:/x/nb.sock\n", want: map[string]string{"NB_DB": "unix:/x/nb.sock"}},
		{name: "empty value", in: "A=\"\"\n", want: map[string]string{"A": ""}},
		{name: "no equals", in: "garbage\n", wantErr: true},
		{name: "open quote", in: "A=\"x\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseDemoEnv([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func ovnPrereqs(t *testing.T) {
	t.Helper()
	testenv.Short(t)
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, "go", "make", "ip", "ethtool", "tcpdump", "iperf3", "ping", "openssl",
		"ovsdb-server", "ovsdb-tool", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl",
		"ovn-northd", "ovn-controller", "ovn-nbctl", "ovn-sbctl")
}

// demoUp takes the demo cluster's lock for the whole test, runs
// `scripts/demo.sh up` and registers `make demo-down`, both with the lock
// handed down.
func demoUp(t *testing.T) *demoEnv {
	t.Helper()
	root := demoRepoRoot()
	lock := lockDemoCluster(t)
	t.Cleanup(func() {
		cmd := demoCommand(context.Background(), lock, "make", "--no-print-directory", "demo-down")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("make demo-down: %v\n%s", err, out)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := demoCommand(ctx, lock, filepath.Join(root, "scripts", "demo.sh"), "up")
	cmd.Env = append(cmd.Env, "DEMO_SKIP_DEPS=1", "OVNSECD_NATIVE_ARGS="+nativeArgs)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/demo.sh up: %v\n%s", err, out)
	}

	m := regexp.MustCompile(`(?m)^demo environment: (\S+)$`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("scripts/demo.sh up printed no \"demo environment:\" line:\n%s", out)
	}
	data, err := os.ReadFile(string(m[1]))
	if err != nil {
		t.Fatalf("read demo environment: %v", err)
	}
	vars, err := parseDemoEnv(data)
	if err != nil {
		t.Fatalf("parse %s: %v", m[1], err)
	}
	for _, k := range []string{"UNDERLAY_NS", "CHASSIS", "CHASSIS_NS", "CHASSIS_IPS", "VM_NS", "VM_IPS",
		"NB_DB", "OVS_DBS", "OVNSECD_CTLS", "OVNSECD_BACKEND"} {
		if vars[k] == "" {
			t.Fatalf("%s: %s is missing or empty", m[1], k)
		}
	}
	e := &demoEnv{vars: vars, underlayNS: vars["UNDERLAY_NS"], nbDB: vars["NB_DB"], backend: vars["OVNSECD_BACKEND"],
		chassis: strings.Fields(vars["CHASSIS"]), chassisNS: strings.Fields(vars["CHASSIS_NS"]),
		chassisIPs: strings.Fields(vars["CHASSIS_IPS"]), vmNS: strings.Fields(vars["VM_NS"]),
		vmIPs: strings.Fields(vars["VM_IPS"]), ovsDBs: strings.Fields(vars["OVS_DBS"]),
		ctls: strings.Fields(vars["OVNSECD_CTLS"])}
	n := len(e.chassis)
	for k, l := range map[string][]string{"CHASSIS_NS": e.chassisNS, "CHASSIS_IPS": e.chassisIPs, "VM_NS": e.vmNS,
		"VM_IPS": e.vmIPs, "OVS_DBS": e.ovsDBs, "OVNSECD_CTLS": e.ctls} {
		if len(l) != n {
			t.Fatalf("%s has %d entries, CHASSIS has %d", k, len(l), n)
		}
	}
	if n < 2 {
		t.Fatalf("need at least 2 chassis, got %q", vars["CHASSIS"])
	}
	// The daemons outlive the script; none may keep the lock, or the
	// cluster would stay locked after its user has gone.
	state := vars["DEMO_STATE"]
	daemons := append(pidfilePids(filepath.Join(state, "*", "*.pid")), pidfilePids(filepath.Join(state, "*.pid"))...)
	if len(daemons) == 0 {
		t.Fatalf("no daemon pidfile under %s", state)
	}
	if holders := openersOf(ovdLockPath, daemons); len(holders) != 0 {
		t.Fatalf("demo daemons %v have %s open: they would hold the cluster's lock after its user exits", holders, ovdLockPath)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		t.Logf("scripts/demo.sh up said:\n%s", out)
		for _, f := range strings.Fields(e.vars["OVNSECD_LOGS"]) {
			if b, err := os.ReadFile(f); err == nil {
				t.Logf("%s (last lines):\n%s", f, demoHead(demoTail(strings.Split(string(b), "\n"), 15), 15))
			}
		}
	})
	return e
}

func demoRun(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (e *demoEnv) nbctl(t *testing.T, args ...string) {
	t.Helper()
	if _, err := demoRun(15*time.Second, "ovn-nbctl", append([]string{"--timeout=10", "--db=" + e.nbDB}, args...)...); err != nil {
		t.Fatal(err)
	}
}

// pingAll pings every ordered VM pair (up to three tries each).
func (e *demoEnv) pingAll(t *testing.T) {
	t.Helper()
	for i := range e.vmNS {
		for j := range e.vmIPs {
			if i == j {
				continue
			}
			var err error
			for try := 0; try < 3; try++ {
				if _, err = demoRun(10*time.Second, "ip", "netns", "exec", e.vmNS[i], "ping", "-c1", "-W1", e.vmIPs[j]); err == nil {
					break
				}
			}
			if err != nil {
				t.Fatalf("vm%d -> vm%d: %v", i+1, j+1, err)
			}
		}
	}
}

// iperf runs a TCP iperf3 from the first VM to the second for secs
// seconds and fails the test unless data arrived.
func (e *demoEnv) iperf(t *testing.T, secs int) {
	t.Helper()
	srv := exec.Command("ip", "netns", "exec", e.vmNS[1], "iperf3", "-s", "-1", "-B", e.vmIPs[1])
	if err := srv.Start(); err != nil {
		t.Fatalf("start iperf3 server: %v", err)
	}
	defer func() {
		srv.Process.Kill()
		srv.Wait()
	}()
	var out string
	var err error
	for try := 0; try < 20; try++ { // until the server listens
		out, err = demoRun(time.Duration(secs+20)*time.Second, "ip", "netns", "exec", e.vmNS[0],
			"iperf3", "-c", e.vmIPs[1], "-t", fmt.Sprint(secs), "-f", "m")
		if err == nil || !strings.Contains(out, "unable to connect") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || !strings.Contains(out, "receiver") {
		t.Fatalf("iperf3 vm1 -> vm2: %v\n%s", err, out)
	}
}

// capture records inter-chassis IP packets (central excluded) on every
// underlay port while fn runs, one tcpdump line per packet.
func (e *demoEnv) capture(t *testing.T, fn func()) []string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("ip", "netns", "exec", e.underlayNS, "tcpdump", "-l", "-n", "-i", "any",
		"ip and src net 192.0.2.0/24 and dst net 192.0.2.0/24 and not host 192.0.2.10")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start tcpdump: %v", err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cmd.Process.Signal(syscall.SIGINT)
			cmd.Wait()
		}
	}
	defer stop()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stderr.String(), "listening on") {
		if time.Now().After(deadline) {
			t.Fatalf("tcpdump did not start: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	fn()
	time.Sleep(300 * time.Millisecond)
	stop()
	var lines []string
	for _, l := range strings.Split(stdout.String(), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// demoPacketKinds counts tcpdump lines by kind: esp, geneve, ike, other.
func demoPacketKinds(lines []string) map[string]int {
	c := map[string]int{}
	for _, l := range lines {
		switch {
		case strings.Contains(l, "ESP("):
			c["esp"]++
		case strings.Contains(l, "Geneve") || strings.Contains(l, ".6081: "):
			c["geneve"]++
		case strings.Contains(l, "isakmp") || strings.Contains(l, ".500: ") || strings.Contains(l, ".4500: "):
			c["ike"]++
		default:
			c["other"]++
		}
	}
	return c
}

func TestDemoPacketKinds(t *testing.T) {
	for _, tc := range []struct {
		line, want string
	}{
		{"01:00:50.04 ovd-ul1 In  IP 192.0.2.1.57938 > 192.0.2.2.6081: Geneve, Flags [C], vni 0x1, options [8 bytes]: IP 203.0.113.1 > 203.0.113.2: ICMP echo request", "geneve"},
		{"01:00:50.04 IP 192.0.2.1 > 192.0.2.2: ESP(spi=0x00001001,seq=0x1), length 172", "esp"},
		{"01:00:50.04 IP 192.0.2.1.4500 > 192.0.2.2.4500: UDP-encap: ESP(spi=0x1,seq=0x2), length 180", "esp"},
		{"01:00:50.04 IP 192.0.2.1.500 > 192.0.2.2.500: isakmp: parent_sa ikev2_init[I]", "ike"},
		{"01:00:50.04 IP 192.0.2.1.4500 > 192.0.2.2.4500: NONESP-encap: isakmp: child_sa ikev2_auth[I]", "ike"},
		{"01:00:50.04 IP 192.0.2.1 > 192.0.2.2: ICMP echo request, id 1, seq 1, length 64", "other"},
	} {
		got := demoPacketKinds([]string{tc.line})
		if got[tc.want] != 1 || len(got) != 1 {
			t.Errorf("%q: got %v, want one %s", tc.line, got, tc.want)
		}
	}
}

// demoTunnelPort is one tunnel Interface of one chassis.
type demoTunnelPort struct {
	name    string
	options map[string]string
}

var demoOptRE = regexp.MustCompile(`([a-z_]+)=("[^"]*"|[^ ]+)`)

// tunnels lists the geneve Interfaces of chassis i with their options.
func (e *demoEnv) tunnels(t *testing.T, i int) []demoTunnelPort {
	t.Helper()
	out, err := demoRun(15*time.Second, "ovs-vsctl", "--timeout=10", "--db="+e.ovsDBs[i], "--bare",
		"--columns=name,options", "find", "Interface", "type=geneve")
	if err != nil {
		t.Fatal(err)
	}
	var ports []demoTunnelPort
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for k := 0; k+1 < len(lines); k++ {
		name := strings.TrimSpace(lines[k])
		if name == "" {
			continue
		}
		p := demoTunnelPort{name: name, options: map[string]string{}}
		for _, m := range demoOptRE.FindAllStringSubmatch(lines[k+1], -1) {
			p.options[m[1]] = strings.Trim(m[2], `"`)
		}
		ports = append(ports, p)
		k++
	}
	return ports
}

// tunnelsShow is chassis i's ovnsecd tunnels/show, its JSON view.
func (e *demoEnv) tunnelsShow(t *testing.T, i int) []reconcile.TunnelDoc {
	t.Helper()
	s, err := harness.ShowCtl(e.ctls[i])
	if err != nil {
		t.Fatal(err)
	}
	return s.Tunnels
}

// demoEventually retries check until it returns nil or the timeout passes.
func demoEventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	var first error
	for {
		err := check()
		if err == nil {
			if d := time.Since(start); d > 2*time.Second {
				t.Logf("%s: after %.1f s (first seen: %v)", what, d.Seconds(), first)
			} else {
				t.Logf("%s: after %.1f s", what, d.Seconds())
			}
			return
		}
		if first == nil {
			first = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// peerOf maps an underlay address to its chassis name.
func (e *demoEnv) peerOf(ip string) string {
	for k, a := range e.chassisIPs {
		if a == ip {
			return e.chassis[k]
		}
	}
	return ""
}

// ipsecOn checks that every tunnel port of every chassis carries local_ip
// and remote_name of its peer, and that ovnsecd lists it as CONFIGURED.
func (e *demoEnv) ipsecOn(t *testing.T) error {
	for i, ch := range e.chassis {
		ports := e.tunnels(t, i)
		if len(ports) != len(e.chassis)-1 {
			return fmt.Errorf("%s has %d tunnel ports, want %d", ch, len(ports), len(e.chassis)-1)
		}
		want := map[string]string{} // port -> peer
		for _, p := range ports {
			peer := e.peerOf(p.options["remote_ip"])
			if peer == "" {
				return fmt.Errorf("%s %s: remote_ip %q is no chassis", ch, p.name, p.options["remote_ip"])
			}
			if p.options["remote_name"] != peer || p.options["local_ip"] != e.chassisIPs[i] {
				return fmt.Errorf("%s %s: options %v, want remote_name=%s local_ip=%s", ch, p.name, p.options, peer, e.chassisIPs[i])
			}
			want[p.name] = peer
		}
		shown := e.tunnelsShow(t, i)
		if len(shown) != len(want) {
			return fmt.Errorf("%s tunnels/show lists %d tunnels, want %d", ch, len(shown), len(want))
		}
		for _, s := range shown {
			if s.Config != tunnel.StateConfigured || want[s.Name] == "" || s.RemoteName != want[s.Name] {
				return fmt.Errorf("%s tunnels/show: %s v%d %s remote name %q, want CONFIGURED with remote name %q", ch, s.Name, s.Version, s.Config, s.RemoteName, want[s.Name])
			}
		}
	}
	return nil
}

// ipsecOff checks that no tunnel port keeps local_ip/remote_name and that
// ovnsecd lists no tunnel.
func (e *demoEnv) ipsecOff(t *testing.T) error {
	for i, ch := range e.chassis {
		ports := e.tunnels(t, i)
		if len(ports) != len(e.chassis)-1 {
			return fmt.Errorf("%s has %d tunnel ports, want %d", ch, len(ports), len(e.chassis)-1)
		}
		for _, p := range ports {
			if _, ok := p.options["remote_name"]; ok {
				return fmt.Errorf("%s %s still has remote_name: %v", ch, p.name, p.options)
			}
			if _, ok := p.options["local_ip"]; ok {
				return fmt.Errorf("%s %s still has local_ip: %v", ch, p.name, p.options)
			}
		}
		if shown := e.tunnelsShow(t, i); len(shown) != 0 {
			return fmt.Errorf("%s tunnels/show still lists %d tunnels (first %s)", ch, len(shown), shown[0].Name)
		}
	}
	return nil
}

// TestOVNIPsecToggle: plaintext Geneve between the chassis with
// ipsec=false; ipsec=true reaches every tunnel port and ovnsecd; toggled
// off and on twice.
func TestOVNIPsecToggle(t *testing.T) {
	ovnPrereqs(t)
	start := time.Now()
	e := demoUp(t)
	t.Logf("demo up in %.1f s; ovnsecd backend: %s", time.Since(start).Seconds(), e.backend)

	lines := e.capture(t, func() { e.pingAll(t) })
	kinds := demoPacketKinds(lines)
	if kinds["geneve"] == 0 {
		t.Fatalf("ipsec=false: no Geneve on the underlay while pinging; captured %v:\n%s", kinds, strings.Join(lines, "\n"))
	}
	if !strings.Contains(strings.Join(lines, "\n"), "ICMP echo request") {
		t.Fatalf("ipsec=false: the capture does not show the plaintext inner ICMP:\n%s", strings.Join(lines, "\n"))
	}
	if err := e.ipsecOff(t); err != nil {
		t.Fatalf("before ipsec=true: %v", err)
	}

	for round := 1; round <= 2; round++ {
		e.nbctl(t, "set", "nb_global", ".", "ipsec=true")
		demoEventually(t, 30*time.Second, fmt.Sprintf("round %d: ipsec=true on every chassis", round), func() error { return e.ipsecOn(t) })
		e.nbctl(t, "set", "nb_global", ".", "ipsec=false")
		demoEventually(t, 30*time.Second, fmt.Sprintf("round %d: ipsec=false on every chassis", round), func() error { return e.ipsecOff(t) })
		e.pingAll(t)
	}
}

func demoTail(lines []string, n int) []string {
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

func demoHead(lines []string, n int) string {
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// demoNetnsExists reports whether the network namespace name exists.
func demoNetnsExists(t *testing.T, name string) bool {
	t.Helper()
	out, err := demoRun(5*time.Second, "ip", "netns", "list")
	if err != nil {
		t.Fatal(err)
	}
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\b`).MatchString(out)
}

// TestOVNDemoLock: while another user holds the demo cluster's lock (here
// this test, as a bench or another test would mid-run), scripts/demo.sh
// up, run and down change nothing: they exit with status 3 naming the
// holder, at once or after DEMO_LOCK_WAIT, and the cluster's namespaces
// stay. The holder itself hands the lock down (OVD_LOCK_FD) and proceeds.
func TestOVNDemoLock(t *testing.T) {
	ovnPrereqs(t)
	lock := lockDemoCluster(t)
	// One of the cluster's namespaces, as the lock holder's cluster has it.
	const ns = "ovd-ul"
	if !demoNetnsExists(t, ns) {
		if _, err := demoRun(10*time.Second, "ip", "netns", "add", ns); err != nil {
			t.Fatal(err)
		}
	}
	state := t.TempDir()
	t.Cleanup(func() { // whatever happened: leave no ovd-* namespace behind
		cmd := demoCommand(context.Background(), lock, filepath.Join(demoRepoRoot(), "scripts", "demo.sh"), "down")
		cmd.Env = append(cmd.Env, "DEMO_STATE="+state)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("scripts/demo.sh down (with the lock): %v\n%s", err, out)
		}
	})

	holder := fmt.Sprintf("held by pid %d (", os.Getpid())
	for _, tc := range []struct {
		cmd  string
		env  []string
		want string
	}{
		{"up", nil, "the ovd-* demo cluster is in use: " + ovdLockPath + " is " + holder},
		{"run", nil, "Nothing was changed"},
		{"down", nil, holder},
		{"up", []string{"DEMO_LOCK_WAIT=1"}, "still in use after 1 s: " + ovdLockPath + " is " + holder},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := demoCommand(ctx, nil, filepath.Join(demoRepoRoot(), "scripts", "demo.sh"), tc.cmd)
		cmd.Env = append(cmd.Env, append([]string{"DEMO_STATE=" + state, "DEMO_SKIP_DEPS=1", "DEMO_SKIP_BUILD=1"}, tc.env...)...)
		out, err := cmd.CombinedOutput()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v scripts/demo.sh %s while this test holds the lock: %v, want exit status 3 and %q; output:\n%s", tc.env, tc.cmd, err, tc.want, out)
		}
		if !demoNetnsExists(t, ns) {
			t.Fatalf("%v scripts/demo.sh %s deleted netns %s while this test held the lock; output:\n%s", tc.env, tc.cmd, ns, out)
		}
	}

	// The holder hands its lock down: down proceeds.
	cmd := demoCommand(context.Background(), lock, filepath.Join(demoRepoRoot(), "scripts", "demo.sh"), "down")
	cmd.Env = append(cmd.Env, "DEMO_STATE="+state)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/demo.sh down with OVD_LOCK_FD: %v\n%s", err, out)
	}
	if demoNetnsExists(t, ns) {
		t.Fatalf("scripts/demo.sh down with the lock handed down left netns %s", ns)
	}
}
