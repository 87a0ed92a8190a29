// Tutorial harness: two OVS hosts in namespaces (test/netns), each with the
// OVS IPsec tutorial's br-ipsec (overlay address on the bridge itself) and
// an ovnsecd with the native backend started inside the host's namespace
// against the host's own ovsdb, plus certificates made by `ovnsec pki` and
// the helpers the tutorial tests use to reconfigure the tunnel port `tun`,
// read tunnels/show (its JSON view through test/harness, its text for the
// logs) and classify underlay captures.
package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/reconcile"
	"github.com/ovnsec/ovnsec/internal/testenv"
	"github.com/ovnsec/ovnsec/test/harness"
	"github.com/ovnsec/ovnsec/test/netns"
)

// Addresses of the tutorial tests (only inside their namespaces).
var (
	tutUnderlay = netip.MustParsePrefix("198.51.100.0/24")
	tutOverlay  = netip.MustParsePrefix("203.0.113.0/24")
)

// tutPlaintext matches tunnel packets sent in clear on the underlay.
const tutPlaintext = "udp port 6081 or udp port 4789 or ip proto 47"

// tutHost is one tutorial host: OVS, br-ipsec and a native ovnsecd.
type tutHost struct {
	*netns.OVSHost
	bridge  string     // the tutorial's br-ipsec
	overlay netip.Addr // on the bridge's own interface
	ctl     string     // ovnsecd's unixctl socket
	log     string     // ovnsecd's log file
}

// tutEnv is the two hosts and their credentials.
type tutEnv struct {
	a, b  *tutHost
	bin   string   // ovnsec binaries
	certs string   // credentials directory
	args  []string // more ovnsecd flags (NAT: --direct-to-nic=false)
}

func tutPrereqs(t *testing.T) {
	t.Helper()
	testenv.Short(t)
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, "go", "ip", "ping", "tcpdump", "ovs-vsctl", "ovs-appctl", "ovsdb-server", "ovs-vswitchd")
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		testenv.Missing(t, "/dev/net/tun (the native backend's engine port is a TAP)")
	}
}

// tutUp builds two hosts named <prefix>-a and <prefix>-b with br-ipsec
// (<prefix>ipsec) and starts ovnsecd --ike-daemon=native on each.
func tutUp(t *testing.T, prefix string) *tutEnv {
	t.Helper()
	tutPrereqs(t)
	start := time.Now()
	e := &tutEnv{bin: harness.Binaries(t), certs: t.TempDir()}
	hs := netns.OVSHosts(t, netns.OVSOptions{Prefix: prefix, Hosts: 2, Underlay: tutUnderlay, Phy: prefix + "phy"})
	var hosts []*tutHost
	for i, oh := range hs {
		h := &tutHost{OVSHost: oh, bridge: prefix + "ipsec", overlay: tutNth(tutOverlay, i+1)}
		// Tutorial step 1: ovs-vsctl add-br br-ipsec; ip addr add ... dev br-ipsec.
		if _, err := h.Vsctl("add-br", h.bridge, "--", "set", "bridge", h.bridge, "datapath_type=netdev"); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		tutWait(t, 10*time.Second, h.Name+": "+h.bridge+" appears", func() error {
			_, err := h.Exec("ip", "link", "show", h.bridge)
			return err
		})
		h.MustExec("ip", "addr", "add", netip.PrefixFrom(h.overlay, tutOverlay.Bits()).String(), "dev", h.bridge)
		h.MustExec("ip", "link", "set", h.bridge, "mtu", "1400", "up")
		hosts = append(hosts, h)
	}
	e.a, e.b = hosts[0], hosts[1]
	for _, h := range hosts {
		e.startOvnsecd(t, h, prefix)
	}
	t.Logf("%s: two hosts with br-ipsec and native ovnsecd up in %.1f s", prefix, time.Since(start).Seconds())
	return e
}

func tutNth(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr()
	for range n {
		a = a.Next()
	}
	return a
}

// startOvnsecd runs ovnsecd in h's namespace (harness.StartNative, as
// scripts/demo.sh does) with the engine port <prefix>eng and e.args, and
// waits until it answers.
func (e *tutEnv) startOvnsecd(t *testing.T, h *tutHost, prefix string) {
	t.Helper()
	d, err := harness.StartNative(h.OVSHost, harness.NativeOptions{Bin: e.bin,
		Args: append([]string{"--engine-port=" + prefix + "eng"}, e.args...)})
	if err != nil {
		t.Fatal(err)
	}
	h.log = d.Log
	t.Cleanup(func() {
		d.Stop(10 * time.Second)
		if t.Failed() {
			if b, err := os.ReadFile(d.Log); err == nil {
				t.Logf("%s ovnsecd.log (tail):\n%s", h.Name, tutTail(string(b), 40))
			}
			if b, err := os.ReadFile(d.Out); err == nil && len(b) > 0 {
				t.Logf("%s ovnsecd stderr:\n%s", h.Name, tutTail(string(b), 10))
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := d.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	h.ctl = d.Ctl
}

// show is ovnsecd's tunnels/show as text, through the real ovs-appctl: for
// the logs (humans read it; the README quotes it) and for the few checks
// of the text itself. Checks of a tunnel's state, reason and SAs read the
// JSON view (doc, tunnel).
func (h *tutHost) show() (string, error) {
	out, err := exec.Command("ovs-appctl", "--timeout=5", "-t", h.ctl, "tunnels/show").CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: ovs-appctl tunnels/show: %w: %s", h.Name, err, out)
	}
	return string(out), nil
}

// doc is ovnsecd's tunnels/show --format=json, through the real ovs-appctl.
func (h *tutHost) doc() (harness.Show, error) {
	s, err := harness.ShowCtl(h.ctl)
	if err != nil {
		return s, fmt.Errorf("%s: %w", h.Name, err)
	}
	return s, nil
}

// tunnel is tunnel name in h's JSON view; an error if ovnsecd did not
// answer or does not list it.
func (h *tutHost) tunnel(name string) (reconcile.TunnelDoc, error) {
	s, err := h.doc()
	if err != nil {
		return reconcile.TunnelDoc{}, err
	}
	d, ok := s.Tunnel(name)
	if !ok {
		return d, fmt.Errorf("%s: tunnels/show does not list %s", h.Name, name)
	}
	return d, nil
}

// statusOf is tunnel name's state and reason on h, for messages.
func (h *tutHost) statusOf(name string) string {
	d, err := h.tunnel(name)
	if err != nil {
		return err.Error()
	}
	return harness.Status(d)
}

// tutStatusBlock returns the Status line of tunnel name and the indented
// detail lines after it (IKE SA, Child SAs), as tunnels/show prints them,
// for the logs.
func tutStatusBlock(show, name string) string {
	var b strings.Builder
	in, after := false, false
	for _, l := range strings.Split(show, "\n") {
		if rest, ok := strings.CutPrefix(l, "Interface name: "); ok {
			n, _, _ := strings.Cut(rest, " ")
			in, after = n == name, false
			continue
		}
		if !in {
			continue
		}
		if strings.HasPrefix(l, "  Status:") {
			after = true
		} else if !strings.HasPrefix(l, "  ") {
			after = false
		}
		if after {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// vsctl runs ovs-vsctl on h and fails t on error.
func (h *tutHost) vsctl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := h.Vsctl(args...)
	if err != nil {
		t.Fatalf("%s: %v", h.Name, err)
	}
	return out
}

// tutOpts are the Interface options of the tunnel port `tun`.
type tutOpts map[string]string

// addTun adds the tutorial's tunnel port `tun` of type typ towards peer,
// with options:remote_ip and options:local_ip plus opts.
func (h *tutHost) addTun(t *testing.T, peer *tutHost, typ string, opts tutOpts) {
	t.Helper()
	args := []string{"add-port", h.bridge, "tun", "--", "set", "interface", "tun", "type=" + typ,
		"options:remote_ip=" + peer.Underlay.String(), "options:local_ip=" + h.Underlay.String()}
	for k, v := range opts {
		args = append(args, "options:"+k+"="+v)
	}
	h.vsctl(t, args...)
}

// delTun removes the port `tun` and waits until ovnsecd forgets it.
func (h *tutHost) delTun(t *testing.T) {
	t.Helper()
	h.vsctl(t, "--if-exists", "del-port", h.bridge, "tun")
	tutWait(t, 15*time.Second, h.Name+": tun leaves tunnels/show", func() error {
		s, err := h.doc()
		if err != nil {
			return err
		}
		if d, ok := s.Tunnel("tun"); ok {
			return fmt.Errorf("still listed: %s", harness.Status(d))
		}
		return nil
	})
}

// setGlobal sets other_config of Open_vSwitch to exactly the given
// certificate/private_key/ca_cert (empty values are removed).
func (h *tutHost) setGlobal(t *testing.T, cert, key, ca string) {
	t.Helper()
	args := []string{"remove", "Open_vSwitch", ".", "other_config", "certificate", "private_key", "ca_cert"}
	for k, v := range map[string]string{"certificate": cert, "private_key": key, "ca_cert": ca} {
		if v != "" {
			args = append(args, "--", "set", "Open_vSwitch", ".", "other_config:"+k+"="+v)
		}
	}
	h.vsctl(t, args...)
}

// pki runs `ovnsec pki --batch ARGS` in dir.
func (e *tutEnv) pki(t *testing.T, dir string, args ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(e.bin, "ovnsec"), append([]string{"pki", "--batch"}, args...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ovnsec pki %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, out)
	}
}

// caSigned makes a CA in <certs>/<ca> and a certificate for each name
// signed by it (CN = SAN = name). It returns the CA certificate and the
// directory holding <name>-cert.pem and <name>-privkey.pem.
func (e *tutEnv) caSigned(t *testing.T, ca string, names ...string) (cacert, dir string) {
	t.Helper()
	pkiDir := filepath.Join(e.certs, ca)
	dir = filepath.Join(e.certs, ca+"-certs")
	e.pki(t, e.certs, "--dir="+pkiDir, "init")
	for _, n := range names {
		e.pki(t, dir, "--dir="+pkiDir, "req+sign", n, "switch")
	}
	return filepath.Join(pkiDir, "switchca", "cacert.pem"), dir
}

// selfSigned makes a self-signed certificate per name (CN = SAN = name)
// in <certs>/self and returns that directory.
func (e *tutEnv) selfSigned(t *testing.T, names ...string) string {
	t.Helper()
	dir := filepath.Join(e.certs, "self")
	for _, n := range names {
		e.pki(t, dir, "req", n)
		e.pki(t, dir, "self-sign", n)
	}
	return dir
}

// refresh is `ovs-appctl refresh`: ovnsecd re-checks every tunnel at once
// (its tunnels/show otherwise shows the backend's state as of the last
// reconciliation pass, up to 15 s old).
func (h *tutHost) refresh() error {
	out, err := exec.Command("ovs-appctl", "--timeout=5", "-t", h.ctl, "refresh").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: ovs-appctl refresh: %w: %s", h.Name, err, out)
	}
	return nil
}

// waitFor polls check until it returns nil or fails t after timeout. With
// refresh, it asks ovnsecd on both hosts for a reconciliation pass every
// half second.
func (e *tutEnv) waitFor(t *testing.T, timeout time.Duration, refresh bool, what string, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	last := start
	tutWait(t, timeout, what, func() error {
		if refresh && time.Since(last) > 500*time.Millisecond {
			last = time.Now()
			for _, h := range []*tutHost{e.a, e.b} {
				if err := h.refresh(); err != nil {
					return err
				}
			}
		}
		return check()
	})
	return time.Since(start)
}

// ipsecStatus is ovnsecd's ipsec/status (the backend's installed Child
// SAs in upstream's shape), for the logs.
func (h *tutHost) ipsecStatus() (string, error) {
	out, err := exec.Command("ovs-appctl", "--timeout=5", "-t", h.ctl, "ipsec/status").CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: ovs-appctl ipsec/status: %w: %s", h.Name, err, out)
	}
	return string(out), nil
}

// tutChildren is how many Child SAs a tunnel of type typ has: GRE one
// (tun-<v>), the UDP tunnels an -in- and an -out- one.
func tutChildren(typ string) int {
	if typ == "gre" {
		return 1
	}
	return 2
}

// upNow reports nil if `tun` is up on h: state up in the JSON view and
// every Child SA of a typ tunnel installed (an active connection each).
func (h *tutHost) upNow(typ string) error {
	d, err := h.tunnel("tun")
	if err != nil {
		return err
	}
	if d.State != backend.StateUp {
		return fmt.Errorf("%s: Status %s", h.Name, harness.Status(d))
	}
	if n := harness.ActiveConns(d); n != tutChildren(typ) || len(d.Conns) != tutChildren(typ) {
		return fmt.Errorf("%s: Status up but %d of %d Child SAs installed: %+v", h.Name, n, tutChildren(typ), d.Conns)
	}
	return nil
}

// waitUp waits until `tun` is up on both hosts and returns how long it
// took. A state of up alone is not enough: right after add-port it can be
// the removed tunnel's (same name, same version), so the backend's
// installed Child SAs must agree.
func (e *tutEnv) waitUp(t *testing.T, typ string, timeout time.Duration, refresh bool) time.Duration {
	t.Helper()
	return e.waitFor(t, timeout, refresh, "tun up on both hosts", func() error {
		for _, h := range []*tutHost{e.a, e.b} {
			if err := h.upNow(typ); err != nil {
				return err
			}
		}
		return nil
	})
}

// configured counts the backend's "tunnel configured" log lines of h: the
// number of times a tunnel was handed to the native backend.
func (h *tutHost) configured() int {
	b, _ := os.ReadFile(h.log)
	return strings.Count(string(b), `msg="tunnel configured"`)
}

// pingCapture captures on a's underlay NIC while a pings b's overlay
// address three times, and returns whether the pings were answered, ping's
// summary and the capture.
func (e *tutEnv) pingCapture() (bool, string, *netns.Capture) {
	c := e.a.Capture("")
	ok, out := e.a.Ping(e.b.overlay, 3, 0, 2*time.Second)
	c.Stop()
	return ok, strings.TrimSpace(out), c
}

// tutKinds counts captured packets by kind with tcpdump filters: tunnel
// packets in clear, ESP, UDP 4500 (ESP-in-UDP and IKE), UDP 500 (IKE),
// and any other IPv4 packet.
func tutKinds(c *netns.Capture) map[string]int {
	return map[string]int{
		"plaintext": c.Count(tutPlaintext),
		"esp":       c.Count("ip proto 50"),
		"udp4500":   c.Count("udp port 4500"),
		"udp500":    c.Count("udp port 500"),
		"other":     c.Count("ip and not (" + tutPlaintext + " or ip proto 50 or udp port 4500 or udp port 500)"),
	}
}

// tutWait polls check every 100 ms until it returns nil, or fails t.
func tutWait(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tutTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
