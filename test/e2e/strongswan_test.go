package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/reconcile"
	"github.com/ovnsec/ovnsec/internal/testenv"
	"github.com/ovnsec/ovnsec/internal/tunnel"
	"github.com/ovnsec/ovnsec/test/harness"
	"github.com/ovnsec/ovnsec/test/netns"
)

// ssHost is one test host: a namespace with charon, plus its own
// ovsdb-server and ovnsecd (both talk over unix sockets, so they run in the
// root namespace and reach charon through its VICI socket).
type ssHost struct {
	ns     *netns.Host
	charon *netns.Charon
	db     *testenv.OVSDB
	d      *daemon
}

func newStrongswanPair(t *testing.T, prefix string) (a, b *ssHost) {
	t.Helper()
	testenv.Short(t)
	t.Parallel()
	na, nb := netns.Pair(t, prefix, "192.0.2.1/24", "192.0.2.2/24")
	hosts := []*ssHost{}
	for _, n := range []*netns.Host{na, nb} {
		h := &ssHost{ns: n, charon: netns.NewCharon(t, n, netns.CharonOptions{})}
		h.db = testenv.StartOVSDB(t)
		h.db.Vsctl("--no-wait", "add-br", "br-ipsec")
		h.d = harness.StartDaemon(t, h.db.Remote, "--ike-daemon=strongswan", "--vici-socket="+h.charon.Socket)
		hosts = append(hosts, h)
	}
	return hosts[0], hosts[1]
}

func (h *ssHost) swanctl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := h.charon.Swanctl(args...)
	if err != nil {
		t.Fatalf("swanctl %v on %s: %v\n%s", args, h.ns.Name, err, out)
	}
	return out
}

// waitSwanctl polls swanctl until its output matches re.
func (h *ssHost) waitSwanctl(t *testing.T, timeout time.Duration, re string, args ...string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	return h.waitSwanctlFunc(t, timeout, fmt.Sprintf("match %q", re), rx.MatchString, args...)
}

// waitSwanctlFunc polls swanctl until ok accepts its output.
func (h *ssHost) waitSwanctlFunc(t *testing.T, timeout time.Duration, what string, ok func(string) bool, args ...string) string {
	t.Helper()
	var out string
	deadline := time.Now().Add(timeout)
	for {
		out, _ = h.charon.Swanctl(args...)
		if ok(out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("swanctl %v on %s did not %s within %v:\n%s", args, h.ns.Name, what, timeout, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// kernelRefused accepts a tunnel whose Status says that the kernel
// refused its Child SA (this kernel has no ESP).
func kernelRefused(d reconcile.TunnelDoc) bool {
	return d.State != backend.StateUp && d.Code == backend.CodeKernelRefused &&
		strings.Contains(strings.ToLower(d.Detail), "kernel refused")
}

func addTunnel(h *ssHost, name, typ, peer string, opts ...string) {
	args := []string{"--no-wait", "add-port", "br-ipsec", name, "--", "set", "interface", name,
		"type=" + typ, "options:remote_ip=" + peer, "options:local_ip=" + h.ns.IP}
	for _, o := range opts {
		args = append(args, "options:"+o)
	}
	h.db.Vsctl(args...)
}

// TestStrongswanBackend is issue 3's acceptance 5: ovnsecd driving two real
// charons from two real databases.
func TestStrongswanBackend(t *testing.T) {
	a, b := newStrongswanPair(t, "e2esp")

	// PSK geneve tunnel on both sides.
	addTunnel(a, "gnv0", "geneve", b.ns.IP, "psk=swordfish")
	addTunnel(b, "gnv0", "geneve", a.ns.IP, "psk=swordfish")

	// The connections have the ovs-monitor-ipsec layout.
	conns := a.waitSwanctl(t, 10*time.Second, `gnv0-out-1`, "--list-conns")
	for _, want := range []string{"gnv0-in-1", "gnv0-out-1", "udp/6081", "TRANSPORT"} {
		if !strings.Contains(conns, want) {
			t.Errorf("list-conns lacks %q:\n%s", want, conns)
		}
	}
	// The IKE SA is established between the two hosts ...
	a.waitSwanctl(t, 30*time.Second, `ESTABLISHED`, "--list-sas")
	b.waitSwanctl(t, 30*time.Second, `ESTABLISHED`, "--list-sas")
	// ... and, because this kernel has no ESP, the Child SA is refused and
	// tunnels/show says so plainly.
	a.d.WaitTunnel(45*time.Second, "gnv0", kernelRefused)
	// The text view (for the log, and checked itself: never the PSK).
	out, err := a.d.Appctl("tunnels/show")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "swordfish") {
		t.Fatalf("tunnels/show printed the PSK:\n%s", out)
	}
	t.Logf("tunnels/show on %s:\n%s", a.ns.Name, out)

	// Changing the tunnel loads version 2 and unloads version 1. The
	// backend loads version 2 before it unloads version 1 (make before
	// break), so version 1 may still be listed a moment after version 2
	// appears: wait for it to go.
	a.db.Vsctl("--no-wait", "set", "interface", "gnv0", "options:psk=swordfish2")
	b.db.Vsctl("--no-wait", "set", "interface", "gnv0", "options:psk=swordfish2")
	a.waitSwanctl(t, 10*time.Second, `gnv0-out-2`, "--list-conns")
	a.waitSwanctlFunc(t, 10*time.Second, "list version 2 only", func(conns string) bool {
		return strings.Contains(conns, "gnv0-in-2") && strings.Contains(conns, "gnv0-out-2") &&
			!strings.Contains(conns, "gnv0-in-1") && !strings.Contains(conns, "gnv0-out-1")
	}, "--list-conns")
	a.waitSwanctl(t, 30*time.Second, `gnv0-2.*ESTABLISHED`, "--list-sas")

	// Restarting charon: ovnsecd loads everything again.
	a.charon.Stop(syscall.SIGKILL)
	a.charon.Start()
	a.waitSwanctl(t, 30*time.Second, `gnv0-out-2`, "--list-conns")
	a.waitSwanctl(t, 30*time.Second, `ESTABLISHED`, "--list-sas")

	// Deleting the tunnel unloads it.
	a.db.Vsctl("--no-wait", "del-port", "gnv0")
	deadline := time.Now().Add(10 * time.Second)
	for {
		conns, _ = a.charon.Swanctl("--list-conns")
		if !strings.Contains(conns, "gnv0") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gnv0 still loaded after del-port:\n%s", conns)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestStrongswanCASigned uses certificates made by `ovnsec pki` (CN = SAN
// DNS = host name) with remote_name, as OVN configures every chassis.
func TestStrongswanCASigned(t *testing.T) {
	a, b := newStrongswanPair(t, "e2esc")
	bins := buildBinaries(t)
	pkiDir := filepath.Join(t.TempDir(), "pki")
	work := t.TempDir()
	ovnsec := func(args ...string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bins, "ovnsec"), append([]string{"pki", "--dir=" + pkiDir, "--batch", "--key=ecdsa"}, args...)...)
		cmd.Dir = work
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ovnsec pki %v: %v\n%s", args, err, out)
		}
	}
	ovnsec("init")
	names := map[*ssHost]string{a: "hosta", b: "hostb"}
	for _, h := range []*ssHost{a, b} {
		ovnsec("req+sign", names[h], "switch")
	}
	ca := filepath.Join(pkiDir, "switchca", "cacert.pem")
	for _, h := range []*ssHost{a, b} {
		n := names[h]
		h.db.Vsctl("--no-wait", "set", "open_vswitch", ".",
			"other_config:certificate="+filepath.Join(work, n+"-cert.pem"),
			"other_config:private_key="+filepath.Join(work, n+"-privkey.pem"),
			"other_config:ca_cert="+ca)
	}
	addTunnel(a, "gnv1", "geneve", b.ns.IP, "remote_name=hostb")
	addTunnel(b, "gnv1", "geneve", a.ns.IP, "remote_name=hosta")

	sas := a.waitSwanctl(t, 30*time.Second, `ESTABLISHED`, "--list-sas")
	if !strings.Contains(sas, "hosta") || !strings.Contains(sas, "hostb") {
		t.Errorf("IKE SA does not show the chassis identities:\n%s", sas)
	}
	d := a.d.WaitTunnel(45*time.Second, "gnv1", kernelRefused)
	if d.RemoteName != "hostb" || d.LocalName != "hosta" || d.Auth != tunnel.AuthCASigned {
		t.Errorf("JSON view of gnv1: remote name %q, local name %q, auth %q; want hostb, hosta, CA-signed", d.RemoteName, d.LocalName, d.Auth)
	}
	// The same in the text, in upstream's layout (a check of the text
	// output itself: tools written for ovs-monitor-ipsec read these lines).
	out, err := a.d.Appctl("tunnels/show")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"  Remote name:    hostb\n", "  Local name:     hosta\n", "  CA cert:        " + ca + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("tunnels/show lacks %q:\n%s", want, out)
		}
	}

	// A wrong remote_name: no IKE SA for that tunnel, and the reason says
	// authentication failed.
	a.db.Vsctl("--no-wait", "set", "interface", "gnv1", "options:remote_name=intruder")
	authRE := regexp.MustCompile(`(?i)auth|identity|intruder`)
	d = a.d.WaitTunnel(60*time.Second, "gnv1", func(d reconcile.TunnelDoc) bool {
		return d.Version == 2 && d.Config == tunnel.StateConfigured && d.State != backend.StateUp && authRE.MatchString(d.Detail)
	})
	out, _ = a.d.Appctl("tunnels/show")
	t.Logf("wrong remote_name: Status %s\n%s", harness.Status(d), out)
}
