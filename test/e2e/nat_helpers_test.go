// NAT harness: the tutorial's two hosts (br-ipsec, native ovnsecd) with a
// port-translating NAT between them. netns.OVSHosts joins three or more
// hosts through a hub namespace holding a Linux bridge; natUp asks for
// three, takes hosts a and b off the bridge and makes the hub a router
// between them instead (proxy ARP, so the hosts keep their one underlay
// subnet and need no routes), with iptables translating the source port of
// a's IKE traffic: UDP 500 becomes 40500 and UDP 4500 becomes 44500, the
// address stays (the native backend's PSK identities are the addresses).
// Nothing b sends can open a mapping towards a, as with any NAT. Host c
// stays idle on the bridge.
package e2e

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/testenv"
	"github.com/ovnsec/ovnsec/test/harness"
	"github.com/ovnsec/ovnsec/test/netns"
)

// Ports the NAT maps a's IKE and NAT-T ports to.
const (
	natMapped500  = 40500
	natMapped4500 = 44500
)

// natEnv is the tutorial environment with the NAT namespace.
type natEnv struct {
	*tutEnv
	nat string // the NAT (hub) namespace
}

// natPrereqs checks what natUp needs on top of the tutorial's commands.
func natPrereqs(t *testing.T) {
	t.Helper()
	tutPrereqs(t)
	testenv.NeedCommands(t, "iptables", "sysctl")
}

// natUp builds hosts <prefix>-a and <prefix>-b with the NAT between them
// (namespace <prefix>-hub) and starts ovnsecd on both, adding ovnsecdArgs
// to its command line.
func natUp(t *testing.T, prefix string, ovnsecdArgs ...string) *natEnv {
	t.Helper()
	natPrereqs(t)
	start := time.Now()
	e := &natEnv{tutEnv: &tutEnv{bin: harness.Binaries(t), certs: t.TempDir(), args: ovnsecdArgs}, nat: prefix + "-hub"}
	hs := netns.OVSHosts(t, netns.OVSOptions{Prefix: prefix, Hosts: 3, Underlay: tutUnderlay, Phy: prefix + "phy"})
	var hosts []*tutHost
	for i, oh := range hs[:2] {
		h := &tutHost{OVSHost: oh, bridge: prefix + "ipsec", overlay: tutNth(tutOverlay, i+1)}
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
	e.natSetup(t, prefix)
	for _, h := range hosts {
		e.startOvnsecd(t, h, prefix)
	}
	t.Logf("%s: two hosts behind a port-translating NAT, native ovnsecd up in %.1f s", prefix, time.Since(start).Seconds())
	return e
}

// natSetup turns the hub into the NAT: a's and b's ports leave the bridge
// and become routed ports with proxy ARP, and iptables maps a's source
// ports 500 and 4500 on the way to b, and drops anything b starts towards
// a.
func (e *natEnv) natSetup(t *testing.T, prefix string) {
	t.Helper()
	pa, pb := prefix+"-pa", prefix+"-pb"
	a, b := e.a.Underlay.String(), e.b.Underlay.String()
	hub := netip.PrefixFrom(tutNth(tutUnderlay, 254), 32).String()
	run := func(args ...string) {
		t.Helper()
		netns.Run(t, append([]string{"ip", "netns", "exec", e.nat}, args...)...)
	}
	for _, p := range []string{pa, pb} {
		run("ip", "link", "set", p, "nomaster")
		run("ip", "addr", "add", hub, "dev", p)
		run("ip", "link", "set", p, "up")
	}
	run("sysctl", "-qw", "net.ipv4.ip_forward=1")
	for _, kv := range []string{
		"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
		"net.ipv4.conf." + pa + ".rp_filter=0", "net.ipv4.conf." + pb + ".rp_filter=0",
		"net.ipv4.conf." + pa + ".proxy_arp=1", "net.ipv4.conf." + pb + ".proxy_arp=1",
		"net.ipv4.conf.all.send_redirects=0",
	} {
		run("sysctl", "-qw", kv)
	}
	run("ip", "route", "add", a+"/32", "dev", pa)
	run("ip", "route", "add", b+"/32", "dev", pb)
	run("iptables", "-t", "nat", "-A", "POSTROUTING", "-o", pb, "-s", a, "-p", "udp", "--sport", "500",
		"-j", "SNAT", "--to-source", fmt.Sprintf("%s:%d", a, natMapped500))
	run("iptables", "-t", "nat", "-A", "POSTROUTING", "-o", pb, "-s", a, "-p", "udp", "--sport", "4500",
		"-j", "SNAT", "--to-source", fmt.Sprintf("%s:%d", a, natMapped4500))
	run("iptables", "-A", "FORWARD", "-i", pb, "-o", pa, "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP")
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("ip", "netns", "exec", e.nat, "iptables-save", "-c").CombinedOutput()
			t.Logf("%s iptables:\n%s", e.nat, out)
		}
	})
}

// natPingUntil pings to's overlay address from from, one packet at a
// time, until one is answered; it fails t if none is within timeout.
func natPingUntil(t *testing.T, from, to *tutHost, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, out := from.Ping(to.overlay, 1, 0, time.Second)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no traffic %s -> %s across the NAT within %v:\n%s", from.overlay, to.overlay, timeout, strings.TrimSpace(out))
		}
	}
}

// natFlows returns the lines of h's br-phy table that contain match.
func (h *tutHost) natFlows(t *testing.T, match string) []string {
	t.Helper()
	out, err := h.Ofctl("dump-flows", h.Phy)
	if err != nil {
		t.Fatalf("%s: %v", h.Name, err)
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, match) {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	return lines
}
