// Leak-test helpers: a timestamped underlay capture, 10 ms pings with
// per-reply times, daemon restarts from their own command lines, forged
// Geneve injection and the plaintext-drop counters of br-phy.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ovnsec/ovnsec/internal/tunnel"
	"github.com/ovnsec/ovnsec/test/harness"
)

// leakPkt is one captured inter-chassis packet.
type leakPkt struct {
	at       time.Time
	src, dst string // underlay addresses
	kind     string // demoPacketKinds' kinds: esp, geneve, ike, other
	line     string
}

var leakLineRE = regexp.MustCompile(`^(\d+)\.(\d+) .*?IP (\d+\.\d+\.\d+\.\d+)(?:\.\d+)? > (\d+\.\d+\.\d+\.\d+)(?:\.\d+)?: `)

// parseLeakLine parses one `tcpdump -tt -n -i any` line.
func parseLeakLine(l string) (leakPkt, bool) {
	m := leakLineRE.FindStringSubmatch(l)
	if m == nil {
		return leakPkt{}, false
	}
	sec, err1 := strconv.ParseInt(m[1], 10, 64)
	frac := (m[2] + "000000000")[:9]
	ns, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil {
		return leakPkt{}, false
	}
	kind := "other"
	for k := range demoPacketKinds([]string{l}) {
		kind = k
	}
	if kind == "other" && (strings.Contains(l, "udp port 500 unreachable") || strings.Contains(l, "udp port 4500 unreachable")) {
		kind = "ike" // the host's answer to IKE while ovnsecd is down
	}
	return leakPkt{at: time.Unix(sec, ns), src: m[3], dst: m[4], kind: kind, line: l}, true
}

func TestParseLeakLine(t *testing.T) {
	for _, tc := range []struct {
		line           string
		ok             bool
		src, dst, kind string
		sec            int64
		nsec           int
	}{
		{"1795000000.123456 ovd-ul1 In  IP 192.0.2.1.57938 > 192.0.2.2.6081: Geneve, Flags [C], vni 0x1", true, "192.0.2.1", "192.0.2.2", "geneve", 1795000000, 123456000},
		{"1795000001.5 ovd-ul2 Out IP 192.0.2.2 > 192.0.2.3: ESP(spi=0x1,seq=0x2), length 100", true, "192.0.2.2", "192.0.2.3", "esp", 1795000001, 500000000},
		{"1795000002.000001 ovd-ul3 In  IP 192.0.2.3.500 > 192.0.2.1.500: isakmp: child_sa", true, "192.0.2.3", "192.0.2.1", "ike", 1795000002, 1000},
		{"1795000004.25 ovd-ul2 P   IP 192.0.2.2 > 192.0.2.1: ICMP 192.0.2.2 udp port 500 unreachable, length 93", true, "192.0.2.2", "192.0.2.1", "ike", 1795000004, 250000000},
		{"1795000005.25 ovd-ul2 P   IP 192.0.2.2 > 192.0.2.1: ICMP 192.0.2.2 protocol 50 unreachable, length 184", true, "192.0.2.2", "192.0.2.1", "other", 1795000005, 250000000},
		{"listening on any, link-type LINUX_SLL2", false, "", "", "", 0, 0},
		{"1795000003.1 ovd-ul1 In  ARP, Request who-has 192.0.2.2 tell 192.0.2.1", false, "", "", "", 0, 0},
	} {
		p, ok := parseLeakLine(tc.line)
		if ok != tc.ok {
			t.Errorf("%q: ok = %v", tc.line, ok)
			continue
		}
		if ok && (p.src != tc.src || p.dst != tc.dst || p.kind != tc.kind || p.at.Unix() != tc.sec || p.at.Nanosecond() != tc.nsec) {
			t.Errorf("%q: got %+v", tc.line, p)
		}
	}
}

// leakCapture is a tcpdump on every underlay port, running for the whole
// test, with epoch timestamps.
type leakCapture struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	pkts []leakPkt
	done chan struct{}
}

func startLeakCapture(t *testing.T, ns string) *leakCapture {
	t.Helper()
	c := &leakCapture{done: make(chan struct{})}
	c.cmd = exec.Command("ip", "netns", "exec", ns, "tcpdump", "-tt", "-l", "-n", "-i", "any",
		"ip and src net 192.0.2.0/24 and dst net 192.0.2.0/24 and not host 192.0.2.10")
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuf
	c.cmd.Stderr = &stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start tcpdump in %s: %v", ns, err)
	}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if p, ok := parseLeakLine(sc.Text()); ok {
				c.mu.Lock()
				c.pkts = append(c.pkts, p)
				c.mu.Unlock()
			}
		}
	}()
	t.Cleanup(c.stop)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stderr.String(), "listening on") {
		if time.Now().After(deadline) {
			t.Fatalf("tcpdump did not start: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c
}

func (c *leakCapture) stop() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Signal(syscall.SIGINT)
		c.cmd.Wait()
		<-c.done
	}
}

// flush waits until tcpdump has printed what it saw up to now.
func (c *leakCapture) flush() { time.Sleep(500 * time.Millisecond) }

// between returns the packets seen in [from, to).
func (c *leakCapture) between(from, to time.Time) []leakPkt {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []leakPkt
	for _, p := range c.pkts {
		if !p.at.Before(from) && p.at.Before(to) {
			out = append(out, p)
		}
	}
	return out
}

// leakCount counts packets by kind.
func leakCount(pkts []leakPkt) map[string]int {
	m := map[string]int{}
	for _, p := range pkts {
		m[p.kind]++
	}
	return m
}

// plaintext returns the plaintext tunnel packets among pkts, and every
// packet that is neither ESP nor IKE (anything else between two chassis
// would be a leak as well).
func leakPlaintext(pkts []leakPkt) []leakPkt {
	var out []leakPkt
	for _, p := range pkts {
		if p.kind == "geneve" || p.kind == "other" {
			out = append(out, p)
		}
	}
	return out
}

func leakLines(pkts []leakPkt, n int) string {
	var b strings.Builder
	for i, p := range pkts {
		if i == n {
			fmt.Fprintf(&b, "... %d more\n", len(pkts)-n)
			break
		}
		b.WriteString(p.line)
		b.WriteByte('\n')
	}
	return b.String()
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// leakPing is `ping -D -i 0.01` running in a VM namespace.
type leakPing struct {
	what string
	cmd  *exec.Cmd
	out  syncBuf
}

func startLeakPing(t *testing.T, ns, dst, what string) *leakPing {
	t.Helper()
	return startLeakPingN(t, ns, dst, what, 0)
}

// startLeakPingN sends count pings (0: until stopped) every 10 ms. A
// counted run ends by itself once the last reply is in or 1 s late (wait),
// so that no ping in flight is counted lost.
func startLeakPingN(t *testing.T, ns, dst, what string, count int) *leakPing {
	t.Helper()
	p := &leakPing{what: what}
	args := []string{"netns", "exec", ns, "ping", "-D", "-n", "-i", "0.01", "-W", "1"}
	if count > 0 {
		args = append(args, "-c", strconv.Itoa(count))
	}
	p.cmd = exec.Command("ip", append(args, dst)...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: start ping: %v", what, err)
	}
	t.Cleanup(func() { p.stop() })
	return p
}

// leakPingResult is what one ping run measured.
type leakPingResult struct {
	sent, received int
	replies        []time.Time
	maxGap         time.Duration // longest time without a reply
	gapEnd         time.Time     // the reply that ended it
}

func (r leakPingResult) lost() int { return r.sent - r.received }

func (r leakPingResult) String() string {
	return fmt.Sprintf("%d sent, %d received, %d lost, longest gap %.2f s", r.sent, r.received, r.lost(), r.maxGap.Seconds())
}

// repliesAfter counts replies at or after at.
func (r leakPingResult) repliesAfter(at time.Time) int {
	n := 0
	for _, t := range r.replies {
		if !t.Before(at) {
			n++
		}
	}
	return n
}

// firstReplyAfter is the first reply at or after at (zero if none).
func (r leakPingResult) firstReplyAfter(at time.Time) time.Time {
	for _, t := range r.replies {
		if !t.Before(at) {
			return t
		}
	}
	return time.Time{}
}

// wait waits for a counted run to end (at most timeout; then it is
// stopped) and returns what it measured.
func (p *leakPing) wait(timeout time.Duration) leakPingResult {
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		p.cmd.Process.Signal(syscall.SIGINT)
		<-done
	}
	return parseLeakPing(p.out.String())
}

func (p *leakPing) stop() leakPingResult {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGINT)
		p.cmd.Wait()
	}
	return parseLeakPing(p.out.String())
}

var (
	leakReplyRE = regexp.MustCompile(`(?m)^\[(\d+)\.(\d+)\] \d+ bytes from .*icmp_seq=\d+`)
	leakStatsRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)
)

func parseLeakPing(out string) leakPingResult {
	var r leakPingResult
	if m := leakStatsRE.FindStringSubmatch(out); m != nil {
		r.sent, _ = strconv.Atoi(m[1])
		r.received, _ = strconv.Atoi(m[2])
	}
	for _, m := range leakReplyRE.FindAllStringSubmatch(out, -1) {
		sec, _ := strconv.ParseInt(m[1], 10, 64)
		ns, _ := strconv.ParseInt((m[2] + "000000000")[:9], 10, 64)
		at := time.Unix(sec, ns)
		if n := len(r.replies); n > 0 {
			if g := at.Sub(r.replies[n-1]); g > r.maxGap {
				r.maxGap, r.gapEnd = g, at
			}
		}
		r.replies = append(r.replies, at)
	}
	return r
}

func TestParseLeakPing(t *testing.T) {
	out := `PING 203.0.113.2 (203.0.113.2) 56(84) bytes of data.
[1795000000.100000] 64 bytes from 203.0.113.2: icmp_seq=1 ttl=64 time=0.5 ms
[1795000000.110000] 64 bytes from 203.0.113.2: icmp_seq=2 ttl=64 time=0.5 ms
[1795000002.610000] 64 bytes from 203.0.113.2: icmp_seq=252 ttl=64 time=0.5 ms
[1795000002.620000] 64 bytes from 203.0.113.2: icmp_seq=253 ttl=64 time=0.5 ms

--- 203.0.113.2 ping statistics ---
253 packets transmitted, 4 received, 98.4189% packet loss, time 2530ms
`
	r := parseLeakPing(out)
	if r.sent != 253 || r.received != 4 || r.lost() != 249 || len(r.replies) != 4 {
		t.Fatalf("got %+v", r)
	}
	if r.maxGap != 2500*time.Millisecond || r.gapEnd != time.Unix(1795000002, 610000000) {
		t.Errorf("gap %v ending %v", r.maxGap, r.gapEnd)
	}
	if n := r.repliesAfter(time.Unix(1795000001, 0)); n != 2 {
		t.Errorf("repliesAfter = %d", n)
	}
	if empty := parseLeakPing("ping: connect: Network is unreachable\n"); empty.sent != 0 || len(empty.replies) != 0 || empty.maxGap != 0 {
		t.Errorf("empty: %+v", empty)
	}
}

// leakProc is a running daemon's command line, environment and netns, as
// needed to start it again exactly as it was started.
type leakProc struct {
	pid  int
	argv []string
	env  []string
	ns   string
}

// readLeakProc reads the daemon whose pidfile is pidfile; it must run
// binary (a base name).
func readLeakProc(pidfile, binary, ns string) (leakProc, error) {
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return leakProc{}, fmt.Errorf("read pidfile %s: %w", pidfile, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return leakProc{}, fmt.Errorf("pidfile %s: %q is no pid", pidfile, b)
	}
	cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return leakProc{}, fmt.Errorf("%s (pid %d) is not running: %w", binary, pid, err)
	}
	argv := strings.Split(strings.TrimRight(string(cl), "\x00"), "\x00")
	if len(argv) == 0 || filepath.Base(argv[0]) != binary {
		return leakProc{}, fmt.Errorf("pid %d from %s runs %q, not %s", pid, pidfile, argv, binary)
	}
	envb, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return leakProc{}, fmt.Errorf("environment of %s (pid %d): %w", binary, pid, err)
	}
	var env []string
	for _, kv := range strings.Split(string(envb), "\x00") {
		if strings.HasPrefix(kv, "OVS_") || strings.HasPrefix(kv, "OVN_") || strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	return leakProc{pid: pid, argv: argv, env: env, ns: ns}, nil
}

// leakAlive reports whether pid runs: not gone, and not a zombie whose
// threads have all exited. (The thread-group leader turns zombie before
// the other threads are done; until they are, the process still holds
// its descriptors, its listening sockets among them.)
func leakAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	zombie, threads := false, 1
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "State:"); ok {
			zombie = strings.HasPrefix(strings.TrimSpace(v), "Z")
		}
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			threads, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return !zombie || threads > 1
}

// kill sends sig and waits until the process is gone.
func (p leakProc) kill(sig syscall.Signal, timeout time.Duration) error {
	if err := syscall.Kill(p.pid, sig); err != nil {
		return fmt.Errorf("kill -%d %d (%s): %w", sig, p.pid, p.argv[0], err)
	}
	deadline := time.Now().Add(timeout)
	for leakAlive(p.pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (pid %d) still runs %v after signal %v", p.argv[0], p.pid, timeout, sig)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// start runs the same command line again in the same netns, detached
// from the test (its own session; output to logFile). It returns once the
// command was started; daemons that --detach have then forked.
func (p leakProc) start(logFile string) (*exec.Cmd, error) {
	args := append([]string{"netns", "exec", p.ns, "env", "-i"}, p.env...)
	args = append(args, p.argv...)
	cmd := exec.Command("ip", args...)
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("restart %s in %s: %w", p.argv[0], p.ns, err)
	}
	go cmd.Wait()
	return cmd, nil
}

// leakOfctl runs ovs-ofctl in the chassis netns against bridge's
// management socket in rundir.
func leakOfctl(ns, rundir, bridge string, args ...string) (string, error) {
	a := append([]string{"netns", "exec", ns, "ovs-ofctl"}, args[0], filepath.Join(rundir, bridge+".mgmt"))
	a = append(a, args[1:]...)
	return demoRun(10*time.Second, "ip", a...)
}

// leakDropCookie is the cookie of br-phy's plaintext-drop rules
// (ovsbridge.DefaultCookie | KindDropPlaintext).
const leakDropCookie = "0x6f766e7365630005"

var leakNPacketsRE = regexp.MustCompile(`n_packets=(\d+)`)

// sumNPackets adds up n_packets over ovs-ofctl dump-flows lines.
func sumNPackets(dump string) (n uint64, flows int) {
	for _, l := range strings.Split(dump, "\n") {
		if m := leakNPacketsRE.FindStringSubmatch(l); m != nil {
			v, _ := strconv.ParseUint(m[1], 10, 64)
			n += v
			flows++
		}
	}
	return n, flows
}

func TestSumNPackets(t *testing.T) {
	dump := "NXST_FLOW reply (xid=0x4):\n" +
		" cookie=0x6f766e7365630005, duration=1s, table=0, n_packets=3, n_bytes=1, priority=100,udp,in_port=1,nw_src=192.0.2.1,tp_dst=6081 actions=drop\n" +
		" cookie=0x6f766e7365630005, duration=1s, table=0, n_packets=40, n_bytes=1, priority=100,udp,in_port=1,nw_src=192.0.2.3,tp_dst=6081 actions=drop\n"
	if n, f := sumNPackets(dump); n != 43 || f != 2 {
		t.Errorf("got %d packets in %d flows", n, f)
	}
	if n, f := sumNPackets("NXST_FLOW reply (xid=0x4):\n"); n != 0 || f != 0 {
		t.Errorf("empty: %d %d", n, f)
	}
}

// leakSendRaw sends an IPv4 packet as it is (source address included)
// from the network namespace ns.
func leakSendRaw(ns string, pkt []byte, count int) error {
	if len(pkt) < 20 || pkt[0]>>4 != 4 {
		return errors.New("not an IPv4 packet")
	}
	dst, _ := netip.AddrFromSlice(pkt[16:20])
	errc := make(chan error, 1)
	go func() {
		// A thread of its own, never returned to the scheduler: it leaves
		// the test's namespace.
		runtime.LockOSThread()
		h, err := netns.GetFromName(ns)
		if err != nil {
			errc <- fmt.Errorf("netns %s: %w", ns, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", ns, err)
			return
		}
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
		if err != nil {
			errc <- fmt.Errorf("raw socket in %s: %w", ns, err)
			return
		}
		defer syscall.Close(fd)
		sa := &syscall.SockaddrInet4{Addr: dst.As4()}
		for i := 0; i < count; i++ {
			if err := syscall.Sendto(fd, pkt, 0, sa); err != nil {
				errc <- fmt.Errorf("send to %s from %s: %w", dst, ns, err)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		errc <- nil
	}()
	return <-errc
}

// leakFirstPcapPacket returns the IP packet of the first frame in a
// pcap file of link type Ethernet.
func leakFirstPcapPacket(data []byte) ([]byte, error) {
	if len(data) < 24+16 {
		return nil, errors.New("pcap: no packet")
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(data) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo = binary.BigEndian
	default:
		return nil, errors.New("pcap: bad magic")
	}
	if lt := bo.Uint32(data[20:24]); lt != 1 {
		return nil, fmt.Errorf("pcap: link type %d, want Ethernet (1)", lt)
	}
	incl := int(bo.Uint32(data[24+8:]))
	frame := data[24+16:]
	if incl > len(frame) || incl < 14+20 {
		return nil, errors.New("pcap: truncated packet")
	}
	frame = frame[:incl]
	if binary.BigEndian.Uint16(frame[12:14]) != 0x0800 {
		return nil, errors.New("pcap: not an IPv4 frame")
	}
	return frame[14:], nil
}

func TestLeakFirstPcapPacket(t *testing.T) {
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr, 0xa1b2c3d4)
	binary.LittleEndian.PutUint32(hdr[20:], 1)
	ip := append([]byte{0x45}, make([]byte, 19)...)
	frame := append(append(make([]byte, 12), 0x08, 0x00), ip...)
	rec := make([]byte, 16)
	binary.LittleEndian.PutUint32(rec[8:], uint32(len(frame)))
	binary.LittleEndian.PutUint32(rec[12:], uint32(len(frame)))
	good := append(append(append([]byte(nil), hdr...), rec...), frame...)
	got, err := leakFirstPcapPacket(good)
	if err != nil || !bytes.Equal(got, ip) {
		t.Fatalf("got %x, %v", got, err)
	}
	sll := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(sll[20:], 113)
	for name, in := range map[string][]byte{"empty": nil, "short": good[:30], "sll": sll, "truncated": good[:len(good)-5]} {
		if _, err := leakFirstPcapPacket(in); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// leakCapturePcap captures one packet matching filter on iface in ns into
// a pcap file while trigger runs.
func leakCapturePcap(ctx context.Context, ns, iface, filter, file string, trigger func()) error {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "tcpdump", "-n", "-U", "-c", "1", "-i", iface, "-w", file, filter)
	var stderr syncBuf
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stderr.String(), "listening on") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	trigger()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("tcpdump: %w: %s", err, stderr.String())
		}
		return nil
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("tcpdump %s in %s caught no packet matching %q", iface, ns, filter)
	}
}

// leakTunnelPorts lists the geneve Interfaces of the OVS database db with
// their options (demoEnv.tunnels without a testing.T, for retried checks).
func leakTunnelPorts(db string) ([]demoTunnelPort, error) {
	out, err := demoRun(15*time.Second, "ovs-vsctl", "--timeout=10", "--db="+db, "--bare",
		"--columns=name,options", "find", "Interface", "type=geneve")
	if err != nil {
		return nil, err
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
	return ports, nil
}

// leakWait retries check every 200 ms until it returns nil or timeout
// passes, and returns its last error (demoEventually without failing).
func leakWait(timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// pauseOVNControllers stops (SIGSTOP) ovn-controller on every chassis and
// returns the function that resumes them; they are resumed at the end of
// the test in any case.
func (l *leakEnv) pauseOVNControllers(t *testing.T) (resume func()) {
	t.Helper()
	var pids []int
	for i := range l.chassis {
		c := l.proc(t, i, "ovn-controller")
		if err := syscall.Kill(c.pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, c.pid)
	}
	resume = func() {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	return resume
}

// leakSBCause is how tunnels/show names SB_Global as the reason a tunnel
// without IPsec options is INVALID.
const leakSBCause = "IPsec is required on this host (OVN SB_Global ipsec=true)"

// allBlockedBySB checks that every chassis lists each of its tunnels as
// INVALID because SB_Global requires IPsec, with the backend reporting its
// packets blocked.
func (l *leakEnv) allBlockedBySB() error {
	for i, ch := range l.chassis {
		s, err := l.show(i)
		if err != nil {
			return err
		}
		if len(s.Tunnels) != len(l.chassis)-1 {
			return fmt.Errorf("%s lists %d tunnels", ch, len(s.Tunnels))
		}
		for _, d := range s.Tunnels {
			if d.Config != tunnel.StateInvalid || !strings.Contains(d.Detail, "configuration is invalid: "+leakSBCause) {
				return fmt.Errorf("%s %s v%d %s: Status %s", ch, d.Name, d.Version, d.Config, harness.Status(d))
			}
			if !strings.Contains(d.Detail, "blocked:") {
				return fmt.Errorf("%s %s: Status %s (not blocked yet)", ch, d.Name, harness.Status(d))
			}
		}
	}
	return nil
}

// revalidatorWait waits until every chassis' ovs-vswitchd has revalidated
// its datapath flows against the current OpenFlow tables.
func (l *leakEnv) revalidatorWait(t *testing.T) {
	t.Helper()
	for i := range l.chassis {
		if _, err := demoRun(15*time.Second, "ovs-appctl", "--timeout=10", "-t",
			filepath.Join(l.rundir(i), "ovs-vswitchd.ctl"), "revalidator/wait"); err != nil {
			t.Fatal(err)
		}
	}
}

// tunnelsAll lists the tunnel ports of every chassis.
func (l *leakEnv) tunnelsAll(t *testing.T) []demoTunnelPort {
	t.Helper()
	var all []demoTunnelPort
	for i := range l.chassis {
		all = append(all, l.tunnels(t, i)...)
	}
	return all
}

// fdStore plays systemd's file-descriptor store for a daemon it starts:
// it listens on the daemon's NOTIFY_SOCKET, keeps the descriptors sent
// with FDSTORE=1 under their FDNAME (FDSTOREREMOVE=1 drops them), and
// starts the next process with them as LISTEN_FDS, LISTEN_FDNAMES and
// LISTEN_PID, as systemd does (sd_notify(3), sd_listen_fds(3)).
type fdStore struct {
	path  string
	conn  *net.UnixConn
	mu    sync.Mutex
	files map[string]*os.File
	order []string
	msgs  []string
	seen  chan struct{}
}

func newFDStore(t *testing.T) *fdStore {
	t.Helper()
	dir, err := os.MkdirTemp("", "ovnsec-fdstore-")
	if err != nil {
		t.Fatal(err)
	}
	s := &fdStore{path: filepath.Join(dir, "notify"), files: map[string]*os.File{}, seen: make(chan struct{}, 64)}
	s.conn, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.conn.Close()
		os.RemoveAll(dir)
		s.mu.Lock()
		for _, f := range s.files {
			f.Close()
		}
		s.mu.Unlock()
	})
	go s.serve()
	return s
}

func (s *fdStore) serve() {
	buf, oob := make([]byte, 4096), make([]byte, 4096)
	for {
		n, oobn, _, _, err := s.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		var fds []int
		if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, cm := range cms {
				if r, err := unix.ParseUnixRights(&cm); err == nil {
					fds = append(fds, r...)
				}
			}
		}
		kv := map[string]string{}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				kv[k] = v
			}
		}
		s.mu.Lock()
		s.msgs = append(s.msgs, string(buf[:n]))
		name := kv["FDNAME"]
		switch {
		case kv["FDSTORE"] == "1" && len(fds) == 1 && name != "":
			if old := s.files[name]; old != nil {
				old.Close()
			} else {
				s.order = append(s.order, name)
			}
			s.files[name] = os.NewFile(uintptr(fds[0]), name)
			fds = nil
		case kv["FDSTOREREMOVE"] == "1" && name != "":
			if f := s.files[name]; f != nil {
				f.Close()
				delete(s.files, name)
				s.order = slices.DeleteFunc(s.order, func(n string) bool { return n == name })
			}
		}
		s.mu.Unlock()
		for _, fd := range fds {
			unix.Close(fd)
		}
		select {
		case s.seen <- struct{}{}:
		default:
		}
	}
}

func (s *fdStore) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.order)
}

func (s *fdStore) count() int { return len(s.names()) }

// waitFor waits for a notification starting with msg sent after the
// last waitFor.
func (s *fdStore) waitFor(t *testing.T, msg string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		s.mu.Lock()
		for i, m := range s.msgs {
			if strings.HasPrefix(m, msg) {
				s.msgs = s.msgs[i+1:]
				s.mu.Unlock()
				return
			}
		}
		s.mu.Unlock()
		select {
		case <-s.seen:
		case <-deadline:
			t.Fatalf("no %q from the daemon in 30 s", msg)
		}
	}
}

// start runs p's command line under the store: NOTIFY_SOCKET, and the
// stored descriptors from fd 3 on with their names.
func (s *fdStore) start(t *testing.T, p leakProc, logFile string) {
	t.Helper()
	s.mu.Lock()
	names := slices.Clone(s.order)
	var files []*os.File
	for _, n := range names {
		files = append(files, s.files[n])
	}
	s.msgs = nil
	s.mu.Unlock()
	env := append(slices.Clone(p.env), "NOTIFY_SOCKET="+s.path)
	if len(files) > 0 {
		env = append(env, fmt.Sprintf("LISTEN_FDS=%d", len(files)), "LISTEN_FDNAMES="+strings.Join(names, ":"))
	}
	// LISTEN_PID is the daemon's own pid: sh exports its $$ and execs it.
	args := append([]string{"netns", "exec", p.ns, "env", "-i"}, env...)
	args = append(args, "sh", "-c", `export LISTEN_PID=$$; exec "$@"`, "sh")
	args = append(args, p.argv...)
	cmd := exec.Command("ip", args...)
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.ExtraFiles = files
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s under the descriptor store: %v", p.argv[0], err)
	}
	go cmd.Wait()
}
