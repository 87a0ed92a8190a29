package ovsbridge

// End-to-end test of the side-car attachment with two "hosts" (network
// namespaces obrt-a and obrt-b), each with its own ovsdb-server and
// ovs-vswitchd (userspace datapath), br-phy holding the underlay address
// 198.51.100.x and three overlay bridges, one per tunnel protocol (Geneve,
// VXLAN, GRE), each with a tunnel port to the peer and an internal port
// holding an overlay address in 203.0.113.0/24. It runs once per engine
// port configuration: the TAP, the veth pair (Config.Port = PortVeth), and
// the veth pair with outbound frames written straight to the NIC
// (LoopConfig.Wire).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/datapath/drop"

	"golang.org/x/sys/unix"

	"github.com/ovnsec/ovnsec/internal/testenv"
)

type testHost struct {
	name     string // netns
	dir      string // OVS state
	nic      string
	index    int // 0 for a, 1 for b
	underlay netip.Addr
	peer     netip.Addr // peer's underlay address
	ovs      OVS
	att      *Attachment
	attStop  context.CancelFunc
	attDone  chan error
	hook     Hook // nil: Passthrough
	kind     PortKind
	direct   bool        // outbound frames go straight to the NIC
	wire     *PacketPort // open while the loop runs, with direct
	loop     *Loop
	loopStop context.CancelFunc
	loopDone chan error
}

func (h *testHost) nsPath() string { return "/run/netns/" + h.name }

func cmdRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (h *testHost) ns(t *testing.T, args ...string) string {
	t.Helper()
	return cmdRun(t, "ip", append([]string{"netns", "exec", h.name}, args...)...)
}

func (h *testHost) vsctl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := h.ovs.Vsctl(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (h *testHost) startVswitchd(t *testing.T) {
	t.Helper()
	h.ns(t, "env", "OVS_RUNDIR="+h.dir, "OVS_DBDIR="+h.dir, "OVS_LOGDIR="+h.dir,
		"ovs-vswitchd", "unix:"+h.dir+"/db.sock", "--disable-system",
		"--pidfile="+h.dir+"/ovs-vswitchd.pid", "--unixctl="+h.dir+"/ovs-vswitchd.ctl",
		"--log-file="+h.dir+"/ovs-vswitchd.log", "--detach", "--no-chdir")
}

// killPidfile stops a daemon this test started, by its pidfile, and waits
// until it is gone.
func killPidfile(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 100; i++ {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

func setupHost(t *testing.T, h *testHost) {
	t.Helper()
	for _, kv := range []string{
		"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
		"net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.default.arp_ignore=1",
		"net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.default.rp_filter=1",
	} {
		h.ns(t, "sysctl", "-qw", kv)
	}
	h.ns(t, "ip", "link", "set", "lo", "up")
	h.ns(t, "ip", "link", "set", h.nic, "up")
	cmdRun(t, "ovsdb-tool", "create", h.dir+"/conf.db", "/usr/share/openvswitch/vswitch.ovsschema")
	h.ns(t, "env", "OVS_RUNDIR="+h.dir, "OVS_DBDIR="+h.dir, "OVS_LOGDIR="+h.dir,
		"ovsdb-server", h.dir+"/conf.db", "--remote=punix:"+h.dir+"/db.sock",
		"--pidfile="+h.dir+"/ovsdb-server.pid", "--unixctl="+h.dir+"/ovsdb-server.ctl",
		"--log-file="+h.dir+"/ovsdb-server.log", "--detach", "--no-chdir")
	t.Cleanup(func() { killPidfile(h.dir + "/ovsdb-server.pid") })
	h.vsctl(t, "--no-wait", "init")
	h.startVswitchd(t)
	t.Cleanup(func() { killPidfile(h.dir + "/ovs-vswitchd.pid") })
	h.vsctl(t, "add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev",
		"--", "add-port", "br-phy", h.nic)
	for _, o := range overlays {
		h.vsctl(t, "add-br", o.bridge, "--", "set", "bridge", o.bridge, "datapath_type=netdev",
			"--", "add-port", o.bridge, o.tunPort, "--", "set", "interface", o.tunPort, "type="+string(o.proto), "options:remote_ip="+h.peer.String(),
			"--", "add-port", o.bridge, o.intPort, "--", "set", "interface", o.intPort, "type=internal")
	}
	h.ns(t, "ip", "addr", "add", h.underlay.String()+"/24", "dev", "br-phy")
	h.ns(t, "ip", "link", "set", "br-phy", "up")

	att, err := Attach(context.Background(), Config{
		Bridge: "br-phy", NIC: h.nic, Engine: "obrt-eng", Port: h.kind, OVS: h.ovs, Netns: h.nsPath(),
		CheckInterval: 200 * time.Millisecond, Log: testLogger(t).With("host", h.name),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.att = att
	t.Cleanup(func() { h.stopWatcher(t) })
	for _, o := range overlays {
		mtu, err := att.OverlayMTU(Policy{PeerIP: h.peer, Proto: o.proto})
		if err != nil {
			t.Fatal(err)
		}
		h.ns(t, "ip", "link", "set", o.intPort, "mtu", strconv.Itoa(mtu))
		h.ns(t, "ip", "addr", "add", o.addr(h.index).String()+"/26", "dev", o.intPort)
		h.ns(t, "ip", "link", "set", o.intPort, "up")
	}
	h.setMode(t, ModeBenchPassthrough)
	h.startLoop(t)
	t.Cleanup(func() { h.stopLoop(t) })
	h.startWatcher()
}

// toyESP stands in for the ESP engine (it does not encrypt): outbound it
// moves the IP protocol into a one-byte trailer, growing the frame into its
// tailroom, and marks the packet as protocol 50; inbound it undoes that. It
// proves that the protected-mode rules carry ESP both ways and that OVS pops
// the restored tunnel packets.
type toyESP struct{}

func (toyESP) Outbound(fs []*Frame) {
	for _, f := range fs {
		in := f.Info
		ip := f.Buffer()[f.Offset()+in.L3:]
		if !in.Src.Is4() || in.Proto == protoESP || in.L3Len >= len(ip) {
			f.Verdict = VerdictDrop
			continue
		}
		ip[in.L3Len] = in.Proto
		binary.BigEndian.PutUint16(ip[2:], uint16(in.L3Len+1))
		ip[9] = protoESP
		ipv4Checksum(ip)
		if !f.SetBounds(f.Offset(), in.L3+in.L3Len+1) {
			f.Verdict = VerdictDrop
			continue
		}
		f.Verdict = VerdictPass
	}
}

func (toyESP) Inbound(fs []*Frame) {
	for _, f := range fs {
		in := f.Info
		if !in.Src.Is4() || in.Proto != protoESP || in.L3Len < ipv4Header+1 {
			f.Verdict = VerdictDrop
			continue
		}
		ip := f.Bytes()[in.L3:]
		ip[9] = ip[in.L3Len-1]
		binary.BigEndian.PutUint16(ip[2:], uint16(in.L3Len-1))
		ipv4Checksum(ip)
		f.SetBounds(f.Offset(), in.L3+in.L3Len-1)
		f.Verdict = VerdictPass
	}
}

func ipv4Checksum(ip []byte) {
	ihl := int(ip[0]&0x0f) * 4
	ip[10], ip[11] = 0, 0
	var sum uint32
	for i := 0; i+1 < ihl; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
}

// overlay is one tunnel protocol's overlay network between the hosts.
type overlay struct {
	proto                    Proto
	bridge, tunPort, intPort string
	base                     byte   // host a is 203.0.113.base, b is base+1
	sig                      string // how dump-flows shows the protocol's match
	filter                   string // tcpdump filter for its packets
}

var overlays = []overlay{
	{ProtoGeneve, "br-int", "gnv0", "ov0", 1, "tp_dst=6081", "udp port 6081"},
	{ProtoVXLAN, "br-vx", "vx0", "ovx", 65, "tp_dst=4789", "udp port 4789"},
	{ProtoGRE, "br-gre", "gre0", "ogr", 129, "nw_proto=47", "ip proto 47"},
}

func (o overlay) addr(host int) netip.Addr {
	return netip.AddrFrom4([4]byte{203, 0, 113, o.base + byte(host)})
}

const anyTunnel = "udp port 6081 or udp port 4789 or ip proto 47"

func (h *testHost) policies(m Mode) []Policy {
	var ps []Policy
	for _, o := range overlays {
		ps = append(ps, Policy{PeerIP: h.peer, Proto: o.proto, Mode: m})
	}
	return ps
}

func (h *testHost) setMode(t *testing.T, m Mode) {
	t.Helper()
	ps := h.policies(m)
	if err := h.att.SetPolicies(context.Background(), ps); err != nil {
		t.Fatal(err)
	}
	if h.loop != nil {
		h.loop.SetPeers(ps)
	}
}

func (h *testHost) startLoop(t *testing.T) {
	t.Helper()
	dev, err := OpenEngine(h.kind, "obrt-eng", h.nsPath())
	if err != nil {
		t.Fatal(err)
	}
	hook := h.hook
	if hook == nil {
		hook = Passthrough{}
	}
	cfg := LoopConfig{Device: dev, Hook: hook, MaxFrame: 1500 + ethHeader + vlanTag, Log: testLogger(t)}
	if h.direct {
		if h.wire, err = OpenWire(h.nic, h.nsPath()); err != nil {
			t.Fatal(err)
		}
		cfg.Wire = h.wire
	}
	l, err := NewLoop(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l.SetPeers(h.policies(ModeBenchPassthrough))
	ctx, cancel := context.WithCancel(context.Background())
	h.loop, h.loopStop, h.loopDone = l, cancel, make(chan error, 1)
	go func() { h.loopDone <- l.Run(ctx) }()
}

func (h *testHost) stopLoop(t *testing.T) {
	if h.loopStop == nil {
		return
	}
	h.loopStop()
	if err := <-h.loopDone; err != nil {
		t.Errorf("%s: packet loop: %v", h.name, err)
	}
	h.loopStop = nil
	if h.wire != nil {
		h.wire.Close()
		h.wire = nil
	}
}

func (h *testHost) startWatcher() {
	ctx, cancel := context.WithCancel(context.Background())
	h.attStop, h.attDone = cancel, make(chan error, 1)
	go func() { h.attDone <- h.att.Run(ctx) }()
}

func (h *testHost) stopWatcher(t *testing.T) {
	if h.attStop == nil {
		return
	}
	h.attStop()
	if err := <-h.attDone; err != nil {
		t.Errorf("%s: watcher: %v", h.name, err)
	}
	h.attStop = nil
}

// udpIn opens a UDP socket bound to addr inside the host's namespace.
func (h *testHost) udpIn(t *testing.T, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := inNetns(h.nsPath(), func() error {
		var err error
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		t.Fatalf("%s: udp socket on %s: %v", h.name, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echo sends payload to dst and waits for the same bytes back, retrying a
// few times (the first packets may wait for ARP).
func echo(c *net.UDPConn, dst netip.AddrPort, size, tries int, wait time.Duration) error {
	payload := bytes.Repeat([]byte{0x5a}, size)
	buf := make([]byte, 65536)
	var last error
	for i := 0; i < tries; i++ {
		if _, err := c.WriteToUDPAddrPort(payload, dst); err != nil {
			last = err
			time.Sleep(wait)
			continue
		}
		c.SetReadDeadline(time.Now().Add(wait))
		for {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				last = err
				break
			}
			if bytes.Equal(buf[:n], payload) {
				return nil
			}
		}
	}
	return fmt.Errorf("no echo of %d bytes from %s after %d tries: %w", size, dst, tries, last)
}

func echoServer(c *net.UDPConn) {
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		c.WriteToUDPAddrPort(buf[:n], from)
	}
}

// capture runs tcpdump on the host's NIC until stop is called, then returns
// the number of captured packets matching each filter.
func (h *testHost) capture(t *testing.T) (stop func(filters ...string) []int) {
	t.Helper()
	file := filepath.Join(h.dir, "cap.pcap")
	cmd := exec.Command("ip", "netns", "exec", h.name, "tcpdump", "--immediate-mode", "-nn", "-U", "-i", h.nic, "-w", file)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "listening on") {
				close(ready)
				once = true
			}
		}
		if !once {
			close(ready)
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("tcpdump did not start")
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return func(filters ...string) []int {
		time.Sleep(300 * time.Millisecond)
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		stopped = true
		counts := make([]int, len(filters))
		for i, f := range filters {
			out, err := exec.Command("tcpdump", "-nn", "-r", file, f).Output()
			if err != nil {
				t.Fatalf("tcpdump -r %s %q: %v", file, f, err)
			}
			counts[i] = strings.Count(string(out), "\n")
		}
		return counts
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// flowPackets returns the packets counted by the flow of kind k whose
// match contains sig.
func flowPackets(t *testing.T, h *testHost, k Kind, sig string) uint64 {
	t.Helper()
	fs, err := h.ovs.DumpFlows(context.Background(), uint64(DefaultCookie)|uint64(k), ^uint64(0))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if strings.Contains(f.Match, sig) {
			return f.Packets
		}
	}
	t.Fatalf("%s: no %v flow matching %s in %+v", h.name, k, sig, fs)
	return 0
}

func TestIntegrationTwoHosts(t *testing.T) {
	testenv.Short(t)
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, "ovs-vswitchd", "ovsdb-server", "ovsdb-tool", "ovs-vsctl", "ovs-ofctl", "ip", "tcpdump", "sysctl")
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		testenv.Missing(t, "/dev/net/tun")
	}
	for _, c := range []struct {
		name   string
		kind   PortKind
		direct bool
	}{
		{"tap", PortTAP, false},
		{"veth", PortVeth, false},
		{"veth direct", PortVeth, true},
	} {
		t.Run(c.name, func(t *testing.T) { testTwoHosts(t, c.kind, c.direct) })
	}
}

func testTwoHosts(t *testing.T, kind PortKind, direct bool) {
	start := time.Now()
	dir, err := os.MkdirTemp("/tmp", "obrt-") // short: unix socket paths are limited to 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	a := &testHost{name: "obrt-a", nic: "obrt-ua", index: 0, kind: kind, direct: direct,
		underlay: netip.MustParseAddr("198.51.100.1"), peer: netip.MustParseAddr("198.51.100.2")}
	b := &testHost{name: "obrt-b", nic: "obrt-ub", index: 1, kind: kind, direct: direct,
		underlay: netip.MustParseAddr("198.51.100.2"), peer: netip.MustParseAddr("198.51.100.1")}
	for _, h := range []*testHost{a, b} {
		h.dir = filepath.Join(dir, h.name)
		if err := os.Mkdir(h.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		h.ovs = OVS{DB: "unix:" + h.dir + "/db.sock", Target: "unix:" + h.dir + "/br-phy.mgmt"}
		exec.Command("ip", "netns", "del", h.name).Run() // leftover of an aborted run of this test
		cmdRun(t, "ip", "netns", "add", h.name)
	}
	t.Cleanup(func() {
		for _, h := range []*testHost{a, b} {
			if t.Failed() {
				if log, err := os.ReadFile(h.dir + "/ovs-vswitchd.log"); err == nil {
					t.Logf("%s ovs-vswitchd.log (tail):\n%s", h.name, tail(string(log), 30))
				}
			}
			exec.Command("ip", "netns", "del", h.name).Run()
		}
	})
	cmdRun(t, "ip", "link", "add", a.nic, "netns", a.name, "type", "veth", "peer", "name", b.nic, "netns", b.name)
	setupHost(t, a)
	setupHost(t, b)
	t.Logf("two hosts up in %v", time.Since(start).Round(time.Millisecond))

	// One echo server on b and one DF client on a per overlay.
	type pair struct {
		o   overlay
		cli *net.UDPConn
		dst netip.AddrPort
		mtu int
	}
	var pairs []pair
	for _, o := range overlays {
		dst := netip.AddrPortFrom(o.addr(1), 7777)
		go echoServer(b.udpIn(t, dst))
		cli := a.udpIn(t, netip.AddrPortFrom(o.addr(0), 0))
		rc, _ := cli.SyscallConn()
		rc.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO)
		})
		mtu, _ := a.att.OverlayMTU(Policy{PeerIP: a.peer, Proto: o.proto})
		pairs = append(pairs, pair{o, cli, dst, mtu})
	}
	ctx := context.Background()
	echoAll := func(t *testing.T, tries int) {
		t.Helper()
		for _, p := range pairs {
			if err := echo(p.cli, p.dst, 100, tries, 500*time.Millisecond); err != nil {
				t.Fatalf("%s overlay: %v", p.o.proto, err)
			}
		}
	}
	echoNone := func(t *testing.T, why string) {
		t.Helper()
		for _, p := range pairs {
			if err := echo(p.cli, p.dst, 100, 2, 250*time.Millisecond); err == nil {
				t.Errorf("%s overlay traffic passed %s", p.o.proto, why)
			}
		}
	}

	t.Run("passthrough steers both directions through the engine", func(t *testing.T) {
		echoAll(t, 20)
		for _, p := range pairs {
			// Largest overlay packet at the computed MTU, DF set (IP 20 + UDP 8).
			if err := echo(p.cli, p.dst, p.mtu-28, 5, 500*time.Millisecond); err != nil {
				t.Errorf("%s overlay MTU %d: %v", p.o.proto, p.mtu, err)
			}
		}
		for _, h := range []*testHost{a, b} {
			for _, o := range overlays {
				for _, k := range []Kind{KindSteerOut, KindSteerIn} {
					if n := flowPackets(t, h, k, o.sig); n == 0 {
						t.Errorf("%s: no %s packets through the %v flow", h.name, o.proto, k)
					}
				}
			}
			c, err := h.att.Counters(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if c[KindToLocal].Packets == 0 {
				t.Errorf("%s: no packets through %v flows: %+v", h.name, KindToLocal, c)
			}
			// Outbound frames go back through OVS, or with direct
			// straight to the NIC, never both.
			if toNIC := c[KindToNIC].Packets; direct != (toNIC == 0) {
				t.Errorf("%s: %d packets through %v flows with direct=%v", h.name, toNIC, KindToNIC, direct)
			}
			s := h.loop.Stats()
			// No drops (no-peer and malformed included): ARP broadcasts
			// on br-phy never reach the engine port (no-flood).
			if s.OutFrames == 0 || s.InFrames == 0 || s.OutWritten != s.OutFrames || s.InWritten != s.InFrames ||
				s.Drops.Total() != 0 {
				t.Errorf("%s: loop stats %+v", h.name, s)
			}
			t.Logf("%s: loop %+v", h.name, s)
		}
	})

	t.Run("engine stopped: nothing protected leaves, fail closed", func(t *testing.T) {
		a.stopLoop(t)
		stop := a.capture(t)
		echoNone(t, "with the engine stopped")
		// Proof that the capture sees the wire: underlay UDP bypasses the engine.
		ul := a.udpIn(t, netip.AddrPortFrom(a.underlay, 0))
		for i := 0; i < 3; i++ {
			ul.WriteToUDPAddrPort([]byte("probe"), netip.AddrPortFrom(b.underlay, 9))
		}
		// Only a's egress: b's engine still runs, and b's kernel may send
		// neighbour probes over the overlays meanwhile.
		n := stop("("+anyTunnel+") and src host "+a.underlay.String(), "udp port 9")
		if n[0] != 0 {
			t.Errorf("%d tunnel packets left a with its engine stopped", n[0])
		}
		if n[1] < 3 {
			t.Errorf("capture saw %d of 3 underlay probes: the capture is not working", n[1])
		}
		// IKE (UDP 500 between the underlay addresses) never touches the
		// engine, so it keeps working while the engine is down.
		ike := b.udpIn(t, netip.AddrPortFrom(b.underlay, 500))
		go echoServer(ike)
		ikeCli := a.udpIn(t, netip.AddrPortFrom(a.underlay, 500))
		if err := echo(ikeCli, netip.AddrPortFrom(b.underlay, 500), 300, 5, 500*time.Millisecond); err != nil {
			t.Errorf("IKE port 500 with the engine stopped: %v", err)
		}
		a.startLoop(t)
		echoAll(t, 10)
	})

	t.Run("protected: forged plaintext tunnel packets from the peer are dropped and counted", func(t *testing.T) {
		a.setMode(t, ModeProtected)
		t.Cleanup(func() { a.setMode(t, ModeBenchPassthrough) })
		// b still sends plaintext (its own neighbour probes over the
		// overlays), so count from here.
		before := make(map[Proto]uint64)
		for _, o := range overlays {
			before[o.proto] = flowPackets(t, a, KindDropPlaintext, o.sig)
		}
		total0, err := a.att.PlaintextDrops(ctx)
		if err != nil {
			t.Fatal(err)
		}
		byPeer0, err := a.att.PlaintextDropsByPeer(ctx)
		if err != nil {
			t.Fatal(err)
		}
		const forged = 5
		udp := b.udpIn(t, netip.AddrPortFrom(b.underlay, 40000))
		var gre *net.IPConn
		if err := inNetns(b.nsPath(), func() error {
			var err error
			gre, err = net.ListenIP("ip4:47", &net.IPAddr{IP: b.underlay.AsSlice()})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer gre.Close()
		body := bytes.Repeat([]byte{0xaa}, 60)
		for i := 0; i < forged; i++ {
			geneve := append([]byte{0, 0, 0x65, 0x58, 0, 0, 0x01, 0}, body...)
			vxlan := append([]byte{0x08, 0, 0, 0, 0, 0, 0x01, 0}, body...)
			grePkt := append([]byte{0, 0, 0x65, 0x58}, body...)
			if _, err := udp.WriteToUDPAddrPort(geneve, netip.AddrPortFrom(a.underlay, 6081)); err != nil {
				t.Fatal(err)
			}
			if _, err := udp.WriteToUDPAddrPort(vxlan, netip.AddrPortFrom(a.underlay, 4789)); err != nil {
				t.Fatal(err)
			}
			if _, err := gre.WriteToIP(grePkt, &net.IPAddr{IP: a.underlay.AsSlice()}); err != nil {
				t.Fatal(err)
			}
		}
		for _, o := range overlays {
			waitFor(t, string(o.proto)+" drop counter", 5*time.Second, func() bool {
				return flowPackets(t, a, KindDropPlaintext, o.sig) >= before[o.proto]+forged
			})
		}
		if n, err := a.att.PlaintextDrops(ctx); err != nil || n < total0+3*forged {
			t.Errorf("PlaintextDrops = %d (%v), want at least %d+%d", n, err, total0, 3*forged)
		}
		// The same drops by peer, as ovs-ofctl prints the rules' matches:
		// all of them b's.
		if m, err := a.att.PlaintextDropsByPeer(ctx); err != nil || len(m) != 1 || m[b.underlay] < byPeer0[b.underlay]+3*forged {
			t.Errorf("PlaintextDropsByPeer = %v (%v), want only %s with at least %d+%d", m, err, b.underlay, byPeer0[b.underlay], 3*forged)
		}
		// The engine's plaintext output (Passthrough is not ESP) is dropped
		// by OVS instead of leaving in clear.
		stop := a.capture(t)
		echoNone(t, "in plaintext to a protected peer")
		if n := stop("(" + anyTunnel + ") and src host " + a.underlay.String()); n[0] != 0 {
			t.Errorf("%d plaintext tunnel packets left for a protected peer", n[0])
		}
		c, err := a.att.Counters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Without direct OVS's engine-leak rule drops it; with direct the
		// loop's wire check does, before it reaches the NIC.
		if direct {
			if s := a.loop.Stats(); s.Drops[drop.Leak] == 0 || c[KindDropEngineLeak].Packets != 0 {
				t.Errorf("direct: loop leak drops %d, OVS engine-leak drops %d; want >0 and 0", s.Drops[drop.Leak], c[KindDropEngineLeak].Packets)
			}
		} else if c[KindDropEngineLeak].Packets == 0 {
			t.Errorf("engine-leak drop rule counted nothing: %+v", c)
		}
	})

	t.Run("protected with a toy ESP engine: only protocol 50 on the wire", func(t *testing.T) {
		for _, h := range []*testHost{a, b} {
			h.stopLoop(t)
			h.hook = toyESP{}
			h.setMode(t, ModeProtected)
			h.startLoop(t)
		}
		before, err := a.att.Counters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stop := a.capture(t)
		echoAll(t, 10)
		for _, p := range pairs {
			// The computed MTU leaves room for real ESP; the toy adds 1 byte.
			if err := echo(p.cli, p.dst, p.mtu-28, 5, 500*time.Millisecond); err != nil {
				t.Errorf("%s overlay MTU %d: %v", p.o.proto, p.mtu, err)
			}
		}
		n := stop(anyTunnel, "ip proto 50 and src host "+a.underlay.String(), "ip proto 50 and src host "+b.underlay.String())
		t.Logf("on the wire: %d plaintext tunnel, %d ESP from a, %d ESP from b", n[0], n[1], n[2])
		if n[0] != 0 {
			t.Errorf("%d plaintext tunnel packets on the wire between protected peers", n[0])
		}
		if n[1] < 2*len(overlays) || n[2] < 2*len(overlays) {
			t.Errorf("ESP packets on the wire: %d from a, %d from b; want at least %d each", n[1], n[2], 2*len(overlays))
		}
		after, err := a.att.Counters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		kinds := []Kind{KindSteerOut, KindSteerIn, KindToLocal}
		if !direct {
			kinds = append(kinds, KindToNIC)
		} else if s := a.loop.Stats(); s.OutWritten == 0 || s.Drops[drop.Leak] != 0 {
			t.Errorf("direct: loop wrote %d frames to the NIC, %d leak drops", s.OutWritten, s.Drops[drop.Leak])
		}
		for _, k := range kinds {
			if after[k].Packets <= before[k].Packets {
				t.Errorf("%v flows counted no new packets (%d)", k, after[k].Packets)
			}
		}
		if after[KindDropEngineLeak].Packets != before[KindDropEngineLeak].Packets {
			t.Errorf("the toy engine leaked %d non-ESP packets", after[KindDropEngineLeak].Packets-before[KindDropEngineLeak].Packets)
		}
	})

	t.Run("ovs-vswitchd restart: closed until the rules are back", func(t *testing.T) {
		echoAll(t, 10)
		a.stopWatcher(t)
		installs := a.att.Installs()
		killPidfile(a.dir + "/ovs-vswitchd.pid")
		a.startVswitchd(t)
		waitFor(t, "vswitchd with br-phy ports", 10*time.Second, func() bool {
			p, err := a.ovs.Ports(ctx)
			return err == nil && p["obrt-eng"].OFPort != "" && p[a.nic].OFPort != ""
		})
		if fs, err := a.ovs.DumpFlows(ctx, 0, 0); err != nil || len(fs) != 0 {
			t.Errorf("after restart br-phy has %d flows (%v); want none (fail_mode=secure)", len(fs), err)
		}
		echoNone(t, "before the rules were re-installed")
		// The bridge's internal port may lose its address if vswitchd
		// recreated it; a host's network configuration would restore it.
		if !strings.Contains(a.ns(t, "ip", "-4", "addr", "show", "dev", "br-phy"), a.underlay.String()) {
			t.Log("br-phy lost its address across the restart; re-adding")
			a.ns(t, "ip", "addr", "add", a.underlay.String()+"/24", "dev", "br-phy")
			a.ns(t, "ip", "link", "set", "br-phy", "up")
		}
		a.startWatcher()
		waitFor(t, "rules re-installed", 10*time.Second, func() bool { return a.att.Installs() > installs })
		echoAll(t, 20)
	})
	t.Run("CheckDirect refuses a NIC port that OVS tags on output", func(t *testing.T) {
		if err := a.att.CheckDirect(ctx); err != nil {
			t.Fatalf("plain NIC port: %v", err)
		}
		a.vsctl(t, "set", "Port", a.nic, "tag=100")
		if err := a.att.CheckDirect(ctx); err == nil {
			t.Error("CheckDirect accepted a NIC port with VLAN tag 100")
		}
		a.vsctl(t, "clear", "Port", a.nic, "tag")
		if err := a.att.CheckDirect(ctx); err != nil {
			t.Errorf("after clearing the tag: %v", err)
		}
	})
	t.Run("detach leaves a plain NORMAL bridge and no engine port", func(t *testing.T) {
		a.stopWatcher(t)
		a.stopLoop(t) // the TAP goes away only when no descriptor holds it
		if err := a.att.Detach(ctx); err != nil {
			t.Fatal(err)
		}
		p, err := a.ovs.Ports(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := p["obrt-eng"]; ok {
			t.Error("engine port still on br-phy")
		}
		if fs, err := a.ovs.DumpFlows(ctx, 0, 0); err != nil || len(fs) != 1 || fs[0].Actions != "NORMAL" {
			t.Errorf("flows after detach: %+v (%v)", fs, err)
		}
		for _, n := range []string{"obrt-eng", VethPeer("obrt-eng")} {
			if _, err := LinkMTU(n, a.nsPath()); err == nil {
				t.Errorf("engine device %s still exists after detach", n)
			}
		}
	})
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
