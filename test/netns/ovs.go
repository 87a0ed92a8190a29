// OVS hosts: N network namespaces, each with its own ovsdb-server and
// ovs-vswitchd (userspace datapath, --disable-system), a netdev br-phy that
// holds the underlay address with the veth as its NIC port, and one overlay
// bridge per tunnel protocol with an internal port carrying an overlay
// address and tunnel ports to every other host. It applies the kernel
// hygiene a netdev bridge holding the underlay address needs (arp_ignore,
// rp_filter, IPv6 off, so the veth never answers for the bridge) and
// offers per-host ovs-vsctl/ofctl/appctl and underlay captures.

package netns

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovnsec/ovnsec/internal/testenv"
)

// Overlay is one tunnel protocol's overlay network between the hosts.
type Overlay struct {
	Proto   string // "geneve", "vxlan" or "gre"
	Bridge  string // overlay bridge (kernel interface name: keep it unique)
	TunPort string // tunnel port name prefix; the peer's letter is appended
	IntPort string // internal port holding the overlay address
	// Net is the overlay subnet; host i gets its (i+1)-th address.
	Net netip.Prefix
}

// OVSOptions describe the hosts.
type OVSOptions struct {
	// Prefix names the namespaces (<Prefix>-a, <Prefix>-b, ...), the hub
	// namespace for N > 2 (<Prefix>-hub) and the veths (<Prefix>-u<letter>).
	Prefix string
	// Hosts is the number of hosts, 2 to 26.
	Hosts int
	// Underlay is the underlay subnet; host i gets its (i+1)-th address.
	Underlay netip.Prefix
	// Phy is the br-phy bridge name (a kernel interface name).
	Phy      string
	Overlays []Overlay
	// OverlayMTU is the MTU of the overlay internal ports; default 1400.
	OverlayMTU int
}

// OVSHost is one host.
type OVSHost struct {
	*Host
	Index    int
	Letter   string
	Dir      string     // OVS state, sockets and logs
	Underlay netip.Addr // on br-phy
	Phy      string
	// OverlayAddr maps an overlay bridge name to this host's address on it.
	OverlayAddr map[string]netip.Addr
	opts        *OVSOptions
	mtu         map[string]int // internal port -> MTU set
}

// NsPath is the namespace's path for setns.
func (h *OVSHost) NsPath() string { return "/run/netns/" + h.Name }

// DB is the ovs-vsctl --db target of the host.
func (h *OVSHost) DB() string { return "unix:" + h.Dir + "/db.sock" }

// Mgmt is the ovs-ofctl target for bridge br.
func (h *OVSHost) Mgmt(br string) string { return "unix:" + h.Dir + "/" + br + ".mgmt" }

// Ctl is the ovs-vswitchd unixctl socket.
func (h *OVSHost) Ctl() string { return h.Dir + "/ovs-vswitchd.ctl" }

func (h *OVSHost) env() []string {
	return []string{"env", "OVS_RUNDIR=" + h.Dir, "OVS_DBDIR=" + h.Dir, "OVS_LOGDIR=" + h.Dir}
}

func cmdOut(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Vsctl runs ovs-vsctl against the host's database.
func (h *OVSHost) Vsctl(args ...string) (string, error) {
	return cmdOut(20*time.Second, "ovs-vsctl", append([]string{"--timeout=10", "--db=" + h.DB()}, args...)...)
}

// Ofctl runs ovs-ofctl <cmd> <bridge's mgmt socket> args...
func (h *OVSHost) Ofctl(cmd, br string, args ...string) (string, error) {
	return cmdOut(20*time.Second, "ovs-ofctl", append([]string{cmd, h.Mgmt(br)}, args...)...)
}

// Appctl runs ovs-appctl against the host's ovs-vswitchd.
func (h *OVSHost) Appctl(args ...string) (string, error) {
	return cmdOut(20*time.Second, "ovs-appctl", append([]string{"-t", h.Ctl()}, args...)...)
}

// Must fails the test if err is set and returns out otherwise.
func (h *OVSHost) Must(out string, err error) string {
	h.t.Helper()
	if err != nil {
		h.t.Fatalf("%s: %v", h.Name, err)
	}
	return out
}

// StartVswitchd starts the host's ovs-vswitchd.
func (h *OVSHost) StartVswitchd() {
	h.t.Helper()
	args := append(h.env(), "ovs-vswitchd", h.DB(), "--disable-system",
		"--pidfile="+h.Dir+"/ovs-vswitchd.pid", "--unixctl="+h.Ctl(),
		"--log-file="+h.Dir+"/ovs-vswitchd.log", "--detach", "--no-chdir")
	h.MustExec(args...)
}

// StopVswitchd stops the host's ovs-vswitchd (SIGTERM, then SIGKILL).
func (h *OVSHost) StopVswitchd() { killPidfile(h.Dir + "/ovs-vswitchd.pid") }

// RestartVswitchd stops and starts ovs-vswitchd and waits until it
// answers. It re-adds br-phy's address if the restart removed it.
func (h *OVSHost) RestartVswitchd() {
	h.t.Helper()
	h.StopVswitchd()
	h.StartVswitchd()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := h.Appctl("version"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: ovs-vswitchd did not come back", h.Name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.ensureUnderlayAddr()
	for _, ov := range h.opts.Overlays {
		h.ensureAddr(ov.IntPort, netip.PrefixFrom(h.OverlayAddr[ov.Bridge], ov.Net.Bits()), h.mtu[ov.IntPort])
	}
}

func (h *OVSHost) ensureUnderlayAddr() {
	h.ensureAddr(h.Phy, netip.PrefixFrom(h.Underlay, h.opts.Underlay.Bits()), 0)
}

// ensureAddr waits for the OVS internal port dev (ovs-vswitchd recreates
// them when it restarts) and gives it back its address, MTU and up state.
func (h *OVSHost) ensureAddr(dev string, p netip.Prefix, mtu int) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := h.Exec("ip", "-4", "addr", "show", "dev", dev)
		if err == nil {
			if !strings.Contains(out, p.String()) {
				h.MustExec("ip", "addr", "add", p.String(), "dev", dev)
			}
			if mtu > 0 {
				h.MustExec("ip", "link", "set", dev, "mtu", strconv.Itoa(mtu))
			}
			h.MustExec("ip", "link", "set", dev, "up")
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: %s did not appear: %v", h.Name, dev, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// killPidfile stops a daemon by its pidfile and waits until it is gone.
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
	for range 100 {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// nthAddr returns the n-th address (1-based) of p.
func nthAddr(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr()
	for range n {
		a = a.Next()
	}
	return a
}

// OVSHosts brings up o.Hosts hosts and tears everything down when the test
// ends (daemons by pidfile, namespaces, state directories). Leftovers of a
// killed run with the same prefix are removed first.
func OVSHosts(t testing.TB, o OVSOptions) []*OVSHost {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, "ip", "sysctl", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ovs-appctl")
	if o.Hosts < 2 || o.Hosts > 26 {
		t.Fatalf("OVSHosts: %d hosts; want 2..26", o.Hosts)
	}
	if o.OverlayMTU == 0 {
		o.OverlayMTU = 1400
	}
	dir, err := os.MkdirTemp("/tmp", o.Prefix+"-") // short: unix socket paths are limited to 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	var hosts []*OVSHost
	t.Cleanup(func() {
		for _, h := range hosts {
			if t.Failed() {
				if b, err := os.ReadFile(h.Dir + "/ovs-vswitchd.log"); err == nil {
					t.Logf("%s ovs-vswitchd.log (tail):\n%s", h.Name, tailLines(string(b), 25))
				}
			}
			killPidfile(h.Dir + "/ovs-vswitchd.pid")
			killPidfile(h.Dir + "/ovsdb-server.pid")
			_ = exec.Command("ip", "netns", "del", h.Name).Run()
		}
		_ = exec.Command("ip", "netns", "del", o.Prefix+"-hub").Run()
		os.RemoveAll(dir)
	})
	for i := range o.Hosts {
		l := string(rune('a' + i))
		ns := o.Prefix + "-" + l
		_ = exec.Command("ip", "netns", "del", ns).Run()
		Run(t, "ip", "netns", "add", ns)
		h := &OVSHost{
			Host:        &Host{t: t, Name: ns, Dev: o.Prefix + "-u" + l},
			Index:       i,
			Letter:      l,
			Dir:         filepath.Join(dir, l),
			Underlay:    nthAddr(o.Underlay, i+1),
			Phy:         o.Phy,
			OverlayAddr: map[string]netip.Addr{},
			opts:        &o,
			mtu:         map[string]int{},
		}
		h.IP = h.Underlay.String()
		if err := os.Mkdir(h.Dir, 0o755); err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, h)
	}
	if o.Hosts == 2 {
		Run(t, "ip", "link", "add", hosts[0].Dev, "netns", hosts[0].Name, "type", "veth",
			"peer", "name", hosts[1].Dev, "netns", hosts[1].Name)
	} else {
		hub := o.Prefix + "-hub"
		_ = exec.Command("ip", "netns", "del", hub).Run()
		Run(t, "ip", "netns", "add", hub)
		Run(t, "ip", "-n", hub, "link", "add", "hub", "type", "bridge")
		Run(t, "ip", "-n", hub, "link", "set", "hub", "up")
		for _, h := range hosts {
			port := o.Prefix + "-p" + h.Letter
			Run(t, "ip", "link", "add", h.Dev, "netns", h.Name, "type", "veth", "peer", "name", port, "netns", hub)
			Run(t, "ip", "-n", hub, "link", "set", port, "master", "hub", "up")
		}
	}
	for _, h := range hosts {
		h.setup(hosts)
	}
	return hosts
}

func (h *OVSHost) setup(all []*OVSHost) {
	t := h.t
	t.Helper()
	o := h.opts
	for _, kv := range []string{
		"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
		"net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.default.arp_ignore=1",
		"net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.default.rp_filter=1",
	} {
		h.MustExec("sysctl", "-qw", kv)
	}
	h.MustExec("ip", "link", "set", "lo", "up")
	h.MustExec("ip", "link", "set", h.Dev, "up")
	// Checksum offload off on the NIC: frames OVS writes through AF_PACKET
	// are complete already; this keeps captures and peers honest.
	if _, err := exec.LookPath("ethtool"); err == nil {
		_, _ = h.Exec("ethtool", "-K", h.Dev, "tx", "off", "rx", "off")
	}
	Run(t, "ovsdb-tool", "create", h.Dir+"/conf.db", "/usr/share/openvswitch/vswitch.ovsschema")
	h.MustExec(append(h.env(), "ovsdb-server", h.Dir+"/conf.db", "--remote=punix:"+h.Dir+"/db.sock",
		"--pidfile="+h.Dir+"/ovsdb-server.pid", "--unixctl="+h.Dir+"/ovsdb-server.ctl",
		"--log-file="+h.Dir+"/ovsdb-server.log", "--detach", "--no-chdir")...)
	h.Must(h.Vsctl("--no-wait", "init"))
	h.StartVswitchd()
	h.Must(h.Vsctl("add-br", o.Phy, "--", "set", "bridge", o.Phy, "datapath_type=netdev",
		"--", "add-port", o.Phy, h.Dev))
	for _, ov := range o.Overlays {
		args := []string{"add-br", ov.Bridge, "--", "set", "bridge", ov.Bridge, "datapath_type=netdev",
			"--", "add-port", ov.Bridge, ov.IntPort, "--", "set", "interface", ov.IntPort, "type=internal"}
		for _, p := range all {
			if p == h {
				continue
			}
			args = append(args, "--", "add-port", ov.Bridge, ov.TunPort+p.Letter,
				"--", "set", "interface", ov.TunPort+p.Letter, "type="+ov.Proto, "options:remote_ip="+p.Underlay.String())
		}
		h.Must(h.Vsctl(args...))
		if len(all) > 2 {
			// Split horizon: what comes from a tunnel goes to the host
			// only, so a full mesh of tunnels does not loop.
			var flows strings.Builder
			for _, p := range all {
				if p != h {
					fmt.Fprintf(&flows, "priority=10,in_port=%s,actions=output:%s,LOCAL\n", ov.TunPort+p.Letter, ov.IntPort)
				}
			}
			flows.WriteString("priority=0,actions=NORMAL\n")
			cmd := exec.Command("ovs-ofctl", "add-flows", h.Mgmt(ov.Bridge), "-")
			cmd.Stdin = strings.NewReader(flows.String())
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: overlay flows: %v\n%s", h.Name, err, out)
			}
		}
		addr := nthAddr(ov.Net, h.Index+1)
		h.OverlayAddr[ov.Bridge] = addr
		h.SetOverlayMTU(ov, o.OverlayMTU)
		h.MustExec("ip", "addr", "add", netip.PrefixFrom(addr, ov.Net.Bits()).String(), "dev", ov.IntPort)
		h.MustExec("ip", "link", "set", ov.IntPort, "up")
	}
	h.ensureUnderlayAddr()
}

// SetOverlayMTU sets the MTU of the overlay's internal port.
func (h *OVSHost) SetOverlayMTU(ov Overlay, mtu int) {
	h.t.Helper()
	h.MustExec("ip", "link", "set", ov.IntPort, "mtu", strconv.Itoa(mtu))
	h.mtu[ov.IntPort] = mtu
}

// Ping pings dst from inside the host: count packets of size payload
// bytes (0: ping's default) with DF set, waiting at most wait for each.
// It reports whether all replies came back.
func (h *OVSHost) Ping(dst netip.Addr, count, size int, wait time.Duration) (bool, string) {
	args := []string{"ping", "-n", "-q", "-M", "do", "-c", strconv.Itoa(count), "-i", "0.2",
		"-W", strconv.FormatFloat(wait.Seconds(), 'f', 1, 64)}
	if size > 0 {
		args = append(args, "-s", strconv.Itoa(size))
	}
	out, err := h.Exec(append(args, dst.String())...)
	return err == nil && strings.Contains(out, " 0% packet loss"), out
}

// InNetns runs fn on a thread switched into the host's namespace (for
// sockets: a socket stays in the namespace it was made in).
func (h *OVSHost) InNetns(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is not unlocked: if switching back failed it must
		// die with the goroutine rather than serve others.
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		f, err := os.Open(h.NsPath())
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", h.NsPath(), err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns back: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Capture is a running tcpdump on a host interface.
type Capture struct {
	t       testing.TB
	file    string
	cmd     *exec.Cmd
	stopped bool
}

// Capture starts tcpdump on dev (the underlay veth if "") writing to a
// file, and returns once it listens. It is killed when the test ends.
func (h *OVSHost) Capture(dev string) *Capture {
	t := h.t
	t.Helper()
	testenv.NeedCommands(t, "tcpdump")
	if dev == "" {
		dev = h.Dev
	}
	f, err := os.CreateTemp(h.Dir, "cap-*.pcap")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	c := &Capture{t: t, file: f.Name()}
	c.cmd = exec.Command("ip", "netns", "exec", h.Name, "tcpdump", "--immediate-mode", "-nn", "-U", "-i", dev, "-w", c.file)
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
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
	t.Cleanup(func() {
		if !c.stopped {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	})
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("tcpdump did not start")
	}
	return c
}

// Stop ends the capture (after a short grace for packets in flight).
func (c *Capture) Stop() {
	if c.stopped {
		return
	}
	time.Sleep(300 * time.Millisecond)
	_ = c.cmd.Process.Signal(os.Interrupt)
	_ = c.cmd.Wait()
	c.stopped = true
}

// Count stops the capture if needed and returns how many captured packets
// match the tcpdump filter.
func (c *Capture) Count(filter string) int {
	c.t.Helper()
	c.Stop()
	out, err := exec.Command("tcpdump", "-nn", "-r", c.file, filter).Output()
	if err != nil {
		c.t.Fatalf("tcpdump -r %s %q: %v", c.file, filter, err)
	}
	return strings.Count(string(out), "\n")
}

// Dump returns up to n captured packets matching filter, as tcpdump prints
// them (for failure messages).
func (c *Capture) Dump(filter string, n int) string {
	c.Stop()
	out, _ := exec.Command("tcpdump", "-nn", "-c", strconv.Itoa(n), "-r", c.file, filter).Output()
	return string(out)
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
