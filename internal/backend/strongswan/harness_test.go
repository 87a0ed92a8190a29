// Test harness: two network namespaces (sswt-a, sswt-b) joined by a veth
// pair on 192.0.2.0/24, a private charon in each (own /run, own
// strongswan.conf, VICI socket and log file in a temp dir), and test
// certificates made with crypto/x509.
package strongswan

import (
	"context"
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
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strongswan/govici/vici"

	"github.com/ovnsec/ovnsec/internal/testenv"
)

const charonBin = "/usr/lib/ipsec/charon"

// host is one namespace with its charon.
type host struct {
	t      *testing.T
	ns     string
	ip     string
	dir    string
	socket string // VICI URI
	cmd    *exec.Cmd
	exited chan struct{}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newPair creates sswt-a (192.0.2.1) and sswt-b (192.0.2.2) with a charon
// each. Everything is removed in t.Cleanup.
func newPair(t *testing.T) (a, b *host) {
	t.Helper()
	testenv.Short(t)
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, charonBin, "swanctl", "ip", "unshare", "mount")

	for _, ns := range []string{"sswt-a", "sswt-b"} {
		_ = exec.Command("ip", "netns", "del", ns).Run() // leftover of a killed run
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	run(t, "ip", "link", "add", "sswt-va", "netns", "sswt-a", "type", "veth", "peer", "name", "sswt-vb", "netns", "sswt-b")
	for _, c := range [][]string{
		{"sswt-a", "sswt-va", "192.0.2.1/24"},
		{"sswt-b", "sswt-vb", "192.0.2.2/24"},
	} {
		run(t, "ip", "-n", c[0], "addr", "add", c[2], "dev", c[1])
		run(t, "ip", "-n", c[0], "link", "set", c[1], "up")
		run(t, "ip", "-n", c[0], "link", "set", "lo", "up")
	}
	a = newHost(t, "sswt-a", "192.0.2.1")
	b = newHost(t, "sswt-b", "192.0.2.2")
	a.start()
	b.start()
	return a, b
}

func newHost(t *testing.T, ns, ip string) *host {
	dir := t.TempDir()
	h := &host{t: t, ns: ns, ip: ip, dir: dir, socket: "unix://" + filepath.Join(dir, "charon.vici")}
	conf := fmt.Sprintf(`charon {
	load_modular = yes
	install_routes = no
	retransmit_tries = 3
	retransmit_timeout = 1.0
	plugins {
		include /etc/strongswan.d/charon/*.conf
		vici {
			socket = %s
		}
		kernel-netlink {
			set_proto_port_transport_sa = yes
			xfrm_ack_expires = 10
		}
		gcm {
			load = yes
		}
	}
	filelog {
		sswt {
			path = %s
			time_format = %%T
			ike_name = yes
			default = 1
			flush_line = yes
		}
	}
}
`, h.socket, filepath.Join(dir, "charon.log"))
	if err := os.WriteFile(filepath.Join(dir, "strongswan.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.stop(syscall.SIGKILL)
		if t.Failed() {
			if log, err := os.ReadFile(filepath.Join(dir, "charon.log")); err == nil {
				t.Logf("charon log of %s:\n%s", ns, tail(string(log), 60))
			}
		}
	})
	return h
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// start runs charon in the namespace with a private /run (charon's pid file
// is hard-wired to /run/charon.pid) and waits for its VICI socket.
func (h *host) start() {
	h.t.Helper()
	sock := strings.TrimPrefix(h.socket, "unix://")
	_ = os.Remove(sock)
	script := fmt.Sprintf("mount -t tmpfs sswt-run /run && exec %s", charonBin)
	h.cmd = exec.Command("ip", "netns", "exec", h.ns, "unshare", "-m", "--propagation", "private", "sh", "-c", script)
	h.cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+filepath.Join(h.dir, "strongswan.conf"))
	out, err := os.OpenFile(filepath.Join(h.dir, "charon.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		h.t.Fatal(err)
	}
	h.cmd.Stdout, h.cmd.Stderr = out, out
	if err := h.cmd.Start(); err != nil {
		h.t.Fatalf("start charon in %s: %v", h.ns, err)
	}
	h.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}, f *os.File) {
		_ = c.Wait()
		f.Close()
		close(done)
	}(h.cmd, h.exited, out)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return
		}
		select {
		case <-h.exited:
			o, _ := os.ReadFile(filepath.Join(h.dir, "charon.out"))
			h.t.Fatalf("charon in %s exited at start:\n%s", h.ns, o)
		case <-time.After(100 * time.Millisecond):
		}
	}
	h.t.Fatalf("charon in %s did not open %s within 15s", h.ns, sock)
}

// stop signals our charon (by pid) and waits for it to exit.
func (h *host) stop(sig syscall.Signal) {
	if h.cmd == nil || h.cmd.Process == nil {
		return
	}
	select {
	case <-h.exited:
		return
	default:
	}
	_ = h.cmd.Process.Signal(sig)
	select {
	case <-h.exited:
	case <-time.After(10 * time.Second):
		_ = h.cmd.Process.Kill()
		<-h.exited
	}
}

// swanctl runs swanctl against this host's charon.
func (h *host) swanctl(args ...string) string {
	h.t.Helper()
	args = append(args, "--uri", h.socket)
	var stderr strings.Builder
	c := exec.Command("swanctl", args...)
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		h.t.Fatalf("swanctl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// loadForeignConn loads a connection shaped unlike ovnsec's (its child is
// not named after it), as an operator's swanctl.conf would.
func (h *host) loadForeignConn(name string) {
	h.t.Helper()
	s, err := vici.NewSession(vici.WithSocketPath(strings.TrimPrefix(h.socket, "unix://")))
	if err != nil {
		h.t.Fatalf("connect to charon in %s: %v", h.ns, err)
	}
	defer s.Close()
	child := vici.NewMessage()
	_ = child.Set("local_ts", []string{"10.9.0.0/16"})
	children := vici.NewMessage()
	_ = children.Set("net", child)
	conn := vici.NewMessage()
	_ = conn.Set("remote_addrs", []string{"192.0.2.9"})
	_ = conn.Set("children", children)
	m := vici.NewMessage()
	_ = m.Set(name, conn)
	if _, err := s.Call(context.Background(), "load-conn", m); err != nil {
		h.t.Fatalf("load foreign connection %s: %v", name, err)
	}
}

// sharedKeys lists the shared key ids loaded over VICI (swanctl has no
// command for it).
func (h *host) sharedKeys() []string {
	h.t.Helper()
	s, err := vici.NewSession(vici.WithSocketPath(strings.TrimPrefix(h.socket, "unix://")))
	if err != nil {
		h.t.Fatalf("connect to charon in %s: %v", h.ns, err)
	}
	defer s.Close()
	m, err := s.Call(context.Background(), "get-shared", nil)
	if err != nil {
		h.t.Fatalf("get-shared in %s: %v", h.ns, err)
	}
	keys, _ := m.Get("keys").([]string)
	return keys
}

// testPKI is a CA and two host certificates (CN = SAN DNS = host name).
type testPKI struct {
	dir    string
	caPath string
}

type hostCreds struct {
	cert, key string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	p := &testPKI{dir: dir, caPath: filepath.Join(dir, "cacert.pem")}
	return p
}

// issue makes a certificate for name signed by ca (self-signed when ca is
// nil); keyKind is "rsa"
// (PKCS#1 PEM), "ec" (SEC 1 PEM) or "pkcs8" (ECDSA in PKCS#8).
func (p *testPKI) issue(t *testing.T, caKey crypto.Signer, ca *x509.Certificate, name, keyKind string) hostCreds {
	t.Helper()
	var signer crypto.Signer
	var keyPEM []byte
	switch keyKind {
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		signer = k
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	case "ec", "pkcs8":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		signer = k
		if keyKind == "ec" {
			der, _ := x509.MarshalECPrivateKey(k)
			keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
		} else {
			der, _ := x509.MarshalPKCS8PrivateKey(k)
			keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		}
	default:
		t.Fatalf("unknown key kind %s", keyKind)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"ovnsec test"}},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	parent, parentKey := ca, caKey
	if ca == nil { // self-signed, as ovs-pki self-sign
		parent, parentKey = tmpl, signer
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, signer.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	hc := hostCreds{cert: filepath.Join(p.dir, name+"-cert.pem"), key: filepath.Join(p.dir, name+"-privkey.pem")}
	if err := os.WriteFile(hc.cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hc.key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return hc
}

// newCA makes a self-signed ECDSA CA and writes it to p.caPath.
func (p *testPKI) newCA(t *testing.T) (crypto.Signer, *x509.Certificate) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ovnsec test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return k, ca
}
