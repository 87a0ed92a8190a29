package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/reconcile"
	"github.com/ovnsec/ovnsec/internal/testenv"
	"github.com/ovnsec/ovnsec/test/harness"
	"github.com/ovnsec/ovnsec/test/netns"
)

// lsHost is one libreswan test host: a namespace with its own pluto, an
// ovsdb-server and ovnsecd --ike-daemon=libreswan (in the root
// namespace: it reaches pluto through its control socket and the ipsec
// wrapper, which runs libreswan's commands inside the namespace).
type lsHost struct {
	ns    *netns.Host
	pluto *netns.Pluto
	db    *testenv.OVSDB
	d     *daemon
	name  string // certificate CN
	args  []string
}

// newLibreswanPair builds two libreswan hosts; prefix must be unique
// ("lsw-..."). extra are more ovnsecd arguments for both.
func newLibreswanPair(t *testing.T, prefix string, o netns.PlutoOptions, extra ...string) (a, b *lsHost) {
	t.Helper()
	testenv.Short(t)
	t.Parallel()
	na, nb := netns.Pair(t, prefix, "192.0.2.1/24", "192.0.2.2/24")
	var hosts []*lsHost
	for i, n := range []*netns.Host{na, nb} {
		h := &lsHost{ns: n, pluto: netns.NewPluto(t, n, o), name: []string{"lsw-a", "lsw-b"}[i]}
		h.db = testenv.StartOVSDB(t)
		h.db.Vsctl("--no-wait", "add-br", "br-ipsec")
		h.args = append(h.pluto.DaemonArgs(), extra...)
		hosts = append(hosts, h)
	}
	return hosts[0], hosts[1]
}

// start runs ovnsecd on h (again).
func (h *lsHost) start(t *testing.T) {
	t.Helper()
	h.d = harness.StartDaemon(t, h.db.Remote, h.args...)
}

func (h *lsHost) addTunnel(name, typ, peer string, opts ...string) {
	args := []string{"--no-wait", "add-port", "br-ipsec", name, "--", "set", "interface", name,
		"type=" + typ, "options:remote_ip=" + peer, "options:local_ip=" + h.ns.IP}
	for _, o := range opts {
		args = append(args, "options:"+o)
	}
	h.db.Vsctl(args...)
}

// waitStatus polls `ipsec status` until ok accepts it.
func (h *lsHost) waitStatus(t *testing.T, timeout time.Duration, what string, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := h.pluto.Status()
		if ok(out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("ipsec status on %s did not %s within %v:\n%s", h.ns.Name, what, timeout, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

var ikeEstablishedRE = regexp.MustCompile(`#\d+: "([^"]+)".*ESTABLISHED_IKE_SA`)

// loadedCount is pluto's "Total IPsec connections: loaded N".
func loadedCount(status string) string {
	m := regexp.MustCompile(`Total IPsec connections: loaded (\d+)`).FindStringSubmatch(status)
	if m == nil {
		return ""
	}
	return m[1]
}

// lswCerts issues the two hosts' certificates with `ovnsec pki` (RSA; CN
// = SAN DNS = host name): CA-signed, or self-signed when selfSigned.
func lswCerts(t *testing.T, a, b *lsHost, selfSigned bool) (work, ca string) {
	t.Helper()
	bins := buildBinaries(t)
	pkiDir := filepath.Join(t.TempDir(), "pki")
	work = t.TempDir()
	ovnsec := func(args ...string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bins, "ovnsec"), append([]string{"pki", "--dir=" + pkiDir, "--batch"}, args...)...)
		cmd.Dir = work
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ovnsec pki %v: %v\n%s", args, err, out)
		}
	}
	if selfSigned {
		for _, h := range []*lsHost{a, b} {
			ovnsec("req", h.name)
			ovnsec("self-sign", h.name)
		}
		return work, ""
	}
	ovnsec("init")
	for _, h := range []*lsHost{a, b} {
		ovnsec("req+sign", h.name, "switch")
	}
	return work, filepath.Join(pkiDir, "switchca", "cacert.pem")
}

// setPKI points h's other_config at its certificate and key (and ca).
func (h *lsHost) setPKI(work, ca string) {
	args := []string{"--no-wait", "set", "open_vswitch", ".",
		"other_config:certificate=" + filepath.Join(work, h.name+"-cert.pem"),
		"other_config:private_key=" + filepath.Join(work, h.name+"-privkey.pem")}
	if ca != "" {
		args = append(args, "other_config:ca_cert="+ca)
	}
	h.db.Vsctl(args...)
}

// TestLibreswanBackend is issue 15's first acceptance: two namespaces,
// each with its own pluto and ovnsecd --ike-daemon=libreswan; PSK,
// self-signed and CA-signed tunnels of every type reach IKE SA
// established, and the Child SA this kernel cannot install is reported as
// the kernel's refusal.
func TestLibreswanBackend(t *testing.T) {
	for _, mode := range []string{"psk", "self-signed", "ca-signed"} {
		t.Run(mode, func(t *testing.T) {
			prefix := map[string]string{"psk": "lsw-p", "self-signed": "lsw-s", "ca-signed": "lsw-c"}[mode]
			a, b := newLibreswanPair(t, prefix, netns.PlutoOptions{})
			opts := map[*lsHost][]string{}
			switch mode {
			case "psk":
				opts[a], opts[b] = []string{"psk=swordfish"}, []string{"psk=swordfish"}
			case "self-signed":
				work, _ := lswCerts(t, a, b, true)
				a.setPKI(work, "")
				b.setPKI(work, "")
				opts[a] = []string{"remote_cert=" + filepath.Join(work, "lsw-b-cert.pem")}
				opts[b] = []string{"remote_cert=" + filepath.Join(work, "lsw-a-cert.pem")}
			case "ca-signed":
				work, ca := lswCerts(t, a, b, false)
				a.setPKI(work, ca)
				b.setPKI(work, ca)
				opts[a], opts[b] = []string{"remote_name=lsw-b"}, []string{"remote_name=lsw-a"}
			}
			for _, h := range []*lsHost{a, b} {
				h.start(t)
				peer := map[*lsHost]*lsHost{a: b, b: a}[h]
				h.addTunnel("gnv", "geneve", peer.ns.IP, opts[h]...)
				h.addTunnel("vxl", "vxlan", peer.ns.IP, opts[h]...)
				h.addTunnel("gr", "gre", peer.ns.IP, opts[h]...)
			}
			for _, h := range []*lsHost{a, b} {
				// pluto makes one IKE SA per peer and negotiates every
				// conn's Child SA under it; on this kernel each Child SA
				// fails, so the conns are reconciled (brought up, deleted
				// as defunct, started again) every 15 s.
				st := h.waitStatus(t, 90*time.Second, "establish an IKE SA and load all 5 conns", func(s string) bool {
					return ikeEstablishedRE.MatchString(s) && loadedCount(s) == "5"
				})
				for _, c := range []string{"gnv-in-1", "gnv-out-1", "vxl-in-1", "vxl-out-1", "gr-1"} {
					if !strings.Contains(st, `"`+c+`"`) {
						t.Errorf("%s: pluto does not hold %s:\n%s", h.ns.Name, c, st)
					}
				}
				// Each tunnel: IKE SA established, and the Child SA the
				// kernel refused, said so.
				for _, tun := range []string{"gnv", "vxl", "gr"} {
					h.d.WaitTunnel(90*time.Second, tun, func(d reconcile.TunnelDoc) bool {
						return kernelRefused(d) && d.IKE != nil && d.IKE.State == "established"
					})
				}
				out, err := h.d.Appctl("tunnels/show")
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(out, "swordfish") {
					t.Fatalf("tunnels/show printed the PSK:\n%s", out)
				}
				t.Logf("tunnels/show on %s:\n%s", h.ns.Name, out)
			}
		})
	}
}

// connLines counts, per conn, the first status lines pluto prints for it
// (`"name": <address>...`): more than one would be a duplicate.
func connLines(status string) map[string]int {
	n := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^(?:000 )?"([^"]+)": [0-9a-fA-F\[]`).FindAllStringSubmatch(status, -1) {
		n[m[1]]++
	}
	return n
}

// checkConnsOnce fails unless pluto holds exactly want, each once.
func (h *lsHost) checkConnsOnce(t *testing.T, stage string, want ...string) {
	t.Helper()
	st := h.waitStatus(t, 60*time.Second, stage+": hold every conn", func(s string) bool {
		return loadedCount(s) == fmt.Sprint(len(want))
	})
	got := connLines(st)
	for _, c := range want {
		if got[c] != 1 {
			t.Errorf("%s on %s: conn %s listed %d times:\n%s", stage, h.ns.Name, c, got[c], st)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s on %s: conns %v, want %v", stage, h.ns.Name, got, want)
	}
}

// checkNSS fails unless pluto's NSS database holds exactly one entry per
// nickname, each equal to its file.
func (h *lsHost) checkNSS(t *testing.T, stage string, want map[string]string) {
	t.Helper()
	names := h.pluto.NSSNicknames()
	slices.Sort(names)
	var wantNames []string
	for n := range want {
		wantNames = append(wantNames, n)
	}
	slices.Sort(wantNames)
	if !slices.Equal(names, wantNames) {
		t.Errorf("%s on %s: NSS holds %v, want %v", stage, h.ns.Name, names, wantNames)
	}
	for n, file := range want {
		out, err := exec.Command("certutil", "-L", "-d", "sql:"+h.pluto.NSS, "-a", "-n", n).Output()
		if err != nil {
			t.Errorf("%s: certutil -L -n %s: %v", stage, n, err)
			continue
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := pemBodies(string(out)), pemBodies(string(data)); !slices.Equal(got, want[:1]) {
			t.Errorf("%s on %s: NSS entry %s holds %d certificate(s), not the one in %s", stage, h.ns.Name, n, len(got), file)
		}
	}
}

// pemBodies are the base64 bodies of the certificates in text, without
// line breaks.
func pemBodies(text string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?s)-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----`).FindAllStringSubmatch(text, -1) {
		out = append(out, strings.Join(strings.Fields(m[1]), ""))
	}
	return out
}

// stop ends h's ovnsecd with SIGTERM (no cleanup: pluto keeps the conns).
func (h *lsHost) stop(t *testing.T) {
	t.Helper()
	_ = h.d.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.d.Exited():
	case <-time.After(30 * time.Second):
		t.Fatalf("ovnsecd on %s did not exit after SIGTERM", h.ns.Name)
	}
}

// TestLibreswanRestarts is issue 15's fourth acceptance: restarting pluto,
// and restarting ovnsecd (with and without --no-restart-ike-daemon, and
// after the certificate was replaced while it was down, upstream's
// 83de251fa case), brings every conn back once, with exactly the current
// certificates in NSS.
func TestLibreswanRestarts(t *testing.T) {
	a, b := newLibreswanPair(t, "lsw-r", netns.PlutoOptions{})
	work, ca := lswCerts(t, a, b, false)
	for _, h := range []*lsHost{a, b} {
		h.setPKI(work, ca)
		h.start(t)
		peer := map[*lsHost]*lsHost{a: b, b: a}[h]
		h.addTunnel("gnv", "geneve", peer.ns.IP, "remote_name="+peer.name)
		h.addTunnel("gr", "gre", peer.ns.IP, "remote_name="+peer.name)
	}
	conns := []string{"gnv-in-1", "gnv-out-1", "gr-1"}
	nss := map[string]string{"ovs_cert_cacert": ca, "ovs_certkey_lsw-a": filepath.Join(work, "lsw-a-cert.pem")}
	up := func(stage string) {
		t.Helper()
		a.checkConnsOnce(t, stage, conns...)
		for _, tun := range []string{"gnv", "gr"} {
			a.d.WaitTunnel(90*time.Second, tun, func(d reconcile.TunnelDoc) bool {
				return kernelRefused(d) && d.IKE != nil && d.IKE.State == "established"
			})
		}
		a.checkNSS(t, stage, nss)
	}
	up("start")

	// pluto killed and started again: it loads our ipsec.conf itself;
	// ovnsecd reconciles, without duplicates.
	a.pluto.Stop(syscall.SIGKILL)
	a.pluto.Start()
	up("pluto restarted")

	// ovnsecd restarted (SIGTERM, then a start that purges and reloads).
	a.stop(t)
	a.start(t)
	up("ovnsecd restarted")

	// ovnsecd restarted with --no-restart-ike-daemon: pluto keeps its conns.
	a.stop(t)
	a.args = append(a.args, "--no-restart-ike-daemon")
	a.start(t)
	up("ovnsecd restarted with --no-restart-ike-daemon")

	// The CA and a's certificate replaced while ovnsecd is down: the stale
	// entries leave NSS, the new ones come in, once each.
	a.stop(t)
	pkiDir := filepath.Dir(filepath.Dir(ca))
	bins := buildBinaries(t)
	for _, args := range [][]string{{"init", "--force"}, {"req+sign", "lsw-a", "switch", "--force"}, {"req+sign", "lsw-b", "switch", "--force"}} {
		cmd := exec.Command(filepath.Join(bins, "ovnsec"), append([]string{"pki", "--dir=" + pkiDir, "--batch"}, args...)...)
		cmd.Dir = work
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ovnsec pki %v: %v\n%s", args, err, out)
		}
	}
	a.start(t)
	up("certificates replaced while ovnsecd was down")
}
