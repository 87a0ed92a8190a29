// Interop harness: two network namespaces (iket-a for ovnsec, iket-b for
// charon) on 203.0.113.0/24, a private charon with kernel-libipsec in
// iket-b (own /run, strongswan.conf, VICI socket, log), swanctl configs,
// and test certificates made with crypto/x509.

package ike

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/ovnsec/ovnsec/internal/testenv"
	tnetns "github.com/ovnsec/ovnsec/test/netns"
)

const (
	charonBin = "/usr/lib/ipsec/charon"
	nsA       = "iket-a" // ovnsec
	nsB       = "iket-b" // charon
	ipA       = "203.0.113.1"
	ipB       = "203.0.113.2"
	innerA    = "203.0.113.101" // tunnel-mode inner hosts, on lo
	innerB    = "203.0.113.102"
	idA       = "ovnsec.test"
	idB       = "charon.test"
)

func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// setupNetns creates iket-a and iket-b joined by a veth pair.
func setupNetns(t testing.TB) {
	t.Helper()
	testenv.Short(t)
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, charonBin, "swanctl", "ip", "unshare", "mount")
	for _, ns := range []string{nsA, nsB} {
		_ = exec.Command("ip", "netns", "del", ns).Run() // leftover of a killed run
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	run(t, "ip", "link", "add", "iketa", "netns", nsA, "type", "veth", "peer", "name", "iketb", "netns", nsB)
	for _, c := range [][]string{{nsA, "iketa", ipA, innerA}, {nsB, "iketb", ipB, innerB}} {
		run(t, "ip", "-n", c[0], "addr", "add", c[2]+"/24", "dev", c[1])
		run(t, "ip", "-n", c[0], "link", "set", c[1], "up")
		run(t, "ip", "-n", c[0], "link", "set", "lo", "up")
		run(t, "ip", "-n", c[0], "addr", "add", c[3]+"/32", "dev", "lo")
	}
}

// inNetns runs f with the calling thread in namespace name; sockets made
// in f stay in that namespace.
func inNetns(t testing.TB, name string, f func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic("cannot return to the original network namespace: " + err.Error())
		}
	}()
	f()
}

// charon is a private charon in iket-b (test/netns starts and stops it).
type charon struct {
	*tnetns.Charon
	t   testing.TB
	dir string
}

// charonConf loads the plugins the tests need (kernel-libipsec for
// tunnel-mode Child SAs) and rekeys quickly.
func charonConf(socket, logFile string) string {
	return fmt.Sprintf(`charon {
	load_modular = no
	load = random nonce aesni openssl aes gcm sha1 sha2 hmac kdf pem pkcs1 pkcs8 x509 pubkey constraints revocation socket-default kernel-libipsec kernel-netlink vici updown
	install_routes = no
	retransmit_tries = 3
	retransmit_timeout = 1.0
	retransmit_base = 1.4
	delete_rekeyed_delay = 1
	plugins {
		vici {
			socket = %s
		}
	}
	filelog {
		iket {
			path = %s
			time_format = %%T
			ike_name = yes
			default = 1
			flush_line = yes
		}
	}
}
`, socket, logFile)
}

func startCharon(t testing.TB) *charon {
	t.Helper()
	nc := tnetns.NewCharon(t, &tnetns.Host{Name: nsB}, tnetns.CharonOptions{Config: charonConf})
	c := &charon{Charon: nc, t: t, dir: nc.Dir}
	for _, d := range []string{"x509", "x509ca", "private"} {
		if err := os.MkdirAll(filepath.Join(c.dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *charon) start() { c.Start() }
func (c *charon) stop()  { c.Stop(syscall.SIGKILL) }

func (c *charon) log() string {
	b, _ := os.ReadFile(c.Log)
	return string(b)
}

// swanctl runs swanctl against our charon; failures fail the test unless
// mayFail.
func (c *charon) swanctl(mayFail bool, args ...string) string {
	c.t.Helper()
	out, err := c.Swanctl(args...)
	if err != nil && !mayFail {
		c.t.Fatalf("swanctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// load writes swanctl.conf and loads it.
func (c *charon) load(conf string) {
	c.t.Helper()
	p := filepath.Join(c.dir, "swanctl.conf")
	if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
		c.t.Fatal(err)
	}
	c.swanctl(false, "--load-all", "--clear", "--file", p)
}

// waitSAs polls --list-sas until all wants appear.
func (c *charon) waitSAs(timeout time.Duration, wants ...string) (string, bool) {
	deadline := time.Now().Add(timeout)
	var out string
	for time.Now().Before(deadline) {
		out = c.swanctl(true, "--list-sas")
		ok := true
		for _, w := range wants {
			if !strings.Contains(out, w) {
				ok = false
			}
		}
		if ok {
			return out, true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return out, false
}

// swanConf is a charon connection towards ovnsec.
type swanConf struct {
	proposals string
	encap     bool
	auth      string // "psk" or "pubkey"
	psk       string
	localID   string
	remoteID  string
	certFile  string // in x509/
	keyFile   string // in private/
	caFile    string // in x509ca/ (remote cacerts)
	peerCert  string // pinned remote cert in x509/
	dpd       string
	esp       string // child esp_proposals (default aes256gcm16)
	transport bool   // transport-mode child on the outer addresses
	ipIDs     bool   // PSK without ids: charon uses the IP addresses (OVS PSK mode)
	extra     string // more connection options
}

func (s swanConf) String() string {
	if s.proposals == "" {
		s.proposals = "aes256gcm16-prfsha256-modp2048"
	}
	if s.localID == "" {
		s.localID = idB
	}
	if s.esp == "" {
		s.esp = "aes256gcm16"
	}
	if s.remoteID == "" {
		s.remoteID = idA
	}
	var b strings.Builder
	fmt.Fprintf(&b, "connections {\n ovn {\n  version = 2\n  local_addrs = %s\n  remote_addrs = %s\n  proposals = %s\n  encap = %v\n  mobike = no\n", ipB, ipA, s.proposals, yesNo(s.encap))
	if s.dpd != "" {
		fmt.Fprintf(&b, "  dpd_delay = %s\n", s.dpd)
	}
	b.WriteString(s.extra)
	if s.auth == "pubkey" {
		fmt.Fprintf(&b, "  local {\n   auth = pubkey\n   id = %s\n   certs = %s\n  }\n", s.localID, s.certFile)
		fmt.Fprintf(&b, "  remote {\n   auth = pubkey\n   id = %s\n", s.remoteID)
		if s.caFile != "" {
			fmt.Fprintf(&b, "   cacerts = %s\n", s.caFile)
		}
		if s.peerCert != "" {
			fmt.Fprintf(&b, "   certs = %s\n", s.peerCert)
		}
		b.WriteString("  }\n")
	} else {
		if s.ipIDs {
			b.WriteString("  local {\n   auth = psk\n  }\n  remote {\n   auth = psk\n  }\n")
		} else {
			fmt.Fprintf(&b, "  local {\n   auth = psk\n   id = %s\n  }\n  remote {\n   auth = psk\n   id = %s\n  }\n", s.localID, s.remoteID)
		}
	}
	if s.transport {
		fmt.Fprintf(&b, "  children {\n   tun {\n    mode = transport\n    esp_proposals = %s\n    start_action = none\n   }\n  }\n }\n}\n", s.esp)
	} else {
		fmt.Fprintf(&b, "  children {\n   tun {\n    mode = tunnel\n    local_ts = %s/32\n    remote_ts = %s/32\n    esp_proposals = %s\n    start_action = none\n   }\n  }\n }\n}\n", innerB, innerA, s.esp)
	}
	b.WriteString("secrets {\n")
	if s.auth == "pubkey" {
		fmt.Fprintf(&b, " private-1 {\n  file = %s\n }\n", s.keyFile)
	} else {
		if s.ipIDs {
			fmt.Fprintf(&b, " ike-1 {\n  id-1 = %%any\n  id-2 = %s\n  secret = \"%s\"\n }\n", ipA, s.psk)
		} else {
			fmt.Fprintf(&b, " ike-1 {\n  id-1 = %s\n  id-2 = %s\n  secret = \"%s\"\n }\n", idB, idA, s.psk)
		}
	}
	b.WriteString("}\n")
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// Test PKI.

type testCert struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	switch kind {
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return k
	default:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
}

func newCA(t testing.TB, name string) testCert {
	t.Helper()
	k := newKey(t, "ec")
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return testCert{c, k}
}

// issueCA makes an intermediate CA signed by parent.
func issueCA(t testing.TB, parent *testCert, name string) testCert {
	t.Helper()
	k := newKey(t, "ec")
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent.cert, k.Public(), parent.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return testCert{c, k}
}

// issue makes a certificate with CN = SAN DNS = name, signed by ca or
// self-signed when ca is nil.
func issue(t testing.TB, ca *testCert, name, kind string, notAfter time.Time) testCert {
	t.Helper()
	k := newKey(t, kind)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	parent, pk := tmpl, k
	if ca != nil {
		parent, pk = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, k.Public(), pk)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return testCert{c, k}
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeKey(t testing.TB, path string, k crypto.Signer) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, path, "PRIVATE KEY", der)
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
