// Integration tests: the Watcher against Debian's real ovsdb-server, driven
// by ovs-vsctl (online) and ovsdb-tool (offline, while the server is down).

package ovsconf

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/testenv"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// ovsdbServer is one ovsdb-server on a conf.db in a temp dir.
type ovsdbServer struct {
	t                   testing.TB
	server, tool, vsctl string
	dir, db, sock       string
	extra               []string // more ovsdb-server arguments
	cmd                 *exec.Cmd
	exited              chan struct{}
	stderr              *bytes.Buffer
}

func newOVSDBServer(t *testing.T) *ovsdbServer {
	t.Helper()
	testenv.Short(t)
	bins := testenv.NeedCommands(t, "ovsdb-server", "ovsdb-tool", "ovs-vsctl")
	if bins == nil {
		return nil
	}
	dir := t.TempDir()
	o := &ovsdbServer{
		t: t, server: bins[0], tool: bins[1], vsctl: bins[2],
		dir: dir, db: filepath.Join(dir, "conf.db"), sock: filepath.Join(dir, "db.sock"),
	}
	if len(o.sock) > maxUnixPath {
		t.Fatalf("temp socket path %s too long for a unix socket", o.sock)
	}
	o.run(o.tool, "create", o.db, "/usr/share/openvswitch/vswitch.ovsschema")
	t.Cleanup(o.kill)
	return o
}

func (o *ovsdbServer) remote() string { return "unix:" + o.sock }

// start launches ovsdb-server in the foreground (no --detach, so the test
// owns the process) and waits until the socket accepts connections.
func (o *ovsdbServer) start() {
	o.t.Helper()
	if o.cmd != nil {
		o.t.Fatal("ovsdb-server already running")
	}
	o.stderr = new(bytes.Buffer)
	o.cmd = exec.Command(o.server, o.db,
		"--remote=punix:"+o.sock,
		"--unixctl="+filepath.Join(o.dir, "ovsdb-server.ctl"),
		"--log-file="+filepath.Join(o.dir, "ovsdb-server.log"),
		"-vconsole:off")
	o.cmd.Args = append(o.cmd.Args, o.extra...)
	o.cmd.Stderr = o.stderr
	if err := o.cmd.Start(); err != nil {
		o.t.Fatalf("start ovsdb-server: %v", err)
	}
	o.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		cmd.Wait()
		close(exited)
	}(o.cmd, o.exited)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("unix", o.sock)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-o.exited:
			o.t.Fatalf("ovsdb-server exited at start: %s", o.stderr)
		default:
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("ovsdb-server socket %s not ready: %v", o.sock, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill stops ovsdb-server with SIGKILL (leaving a stale socket file, as a
// crash would) and waits for it to exit.
func (o *ovsdbServer) kill() {
	if o.cmd == nil {
		return
	}
	o.cmd.Process.Kill()
	<-o.exited
	o.cmd = nil
}

func (o *ovsdbServer) run(name string, args ...string) string {
	o.t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		o.t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func (o *ovsdbServer) ctl(args ...string) string {
	o.t.Helper()
	return o.run(o.vsctl, append([]string{"--db=" + o.remote(), "--no-wait", "--timeout=10"}, args...)...)
}

// transactOffline changes conf.db directly while the server is down.
func (o *ovsdbServer) transactOffline(ops string) {
	o.t.Helper()
	o.run(o.tool, "transact", o.db, `["Open_vSwitch",`+ops+`]`)
}

// watch runs a Watcher on o until the test ends. Logs go to a buffer that
// is printed if the test fails (libovsdb goroutines may log after the test,
// which t.Log does not allow).
func watch(t *testing.T, remote string, opts ...Option) *Watcher {
	t.Helper()
	logs := new(syncBuffer)
	w := New(remote, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), opts...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run = %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
		if t.Failed() {
			t.Logf("watcher log:\n%s", logs)
		}
	})
	return w
}

// next waits up to timeout for a tunnel.Snapshot satisfying cond and returns it.
// Snapshots must arrive with increasing Seq.
func next(t *testing.T, w *Watcher, last *uint64, timeout time.Duration, what string, cond func(tunnel.Snapshot) bool) tunnel.Snapshot {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case s, ok := <-w.Updates():
			if !ok {
				t.Fatalf("waiting for %s: Updates closed", what)
			}
			if s.Seq <= *last {
				t.Fatalf("waiting for %s: seq %d after %d", what, s.Seq, *last)
			}
			*last = s.Seq
			if cond(s) {
				return s
			}
		case <-deadline:
			cur, _ := w.Current()
			t.Fatalf("no snapshot with %s within %v; last: %+v", what, timeout, cur)
		}
	}
}

// quiet fails if a tunnel.Snapshot arrives within d.
func quiet(t *testing.T, w *Watcher, d time.Duration, why string) {
	t.Helper()
	if d == 0 {
		select {
		case s := <-w.Updates():
			t.Fatalf("%s: unexpected snapshot %+v", why, s)
		default:
		}
		return
	}
	select {
	case s := <-w.Updates():
		t.Fatalf("%s: unexpected snapshot %+v", why, s)
	case <-time.After(d):
	}
}

func iface(s tunnel.Snapshot, name string) *tunnel.Interface {
	for i := range s.Interfaces {
		if s.Interfaces[i].Name == name {
			return &s.Interfaces[i]
		}
	}
	return nil
}

func names(s tunnel.Snapshot) []string {
	var n []string
	for _, i := range s.Interfaces {
		n = append(n, i.Name)
	}
	return n
}

func TestWatcherFollowsDatabase(t *testing.T) {
	o := newOVSDBServer(t)
	o.start()
	o.ctl("init")
	o.ctl("add-br", "br-int", "--", "set", "open_vswitch", ".", "external_ids:system-id=ch1")
	w := watch(t, o.remote())
	var seq uint64

	s := next(t, w, &seq, 5*time.Second, "initial state", func(s tunnel.Snapshot) bool { return iface(s, "br-int") != nil })
	if !w.Connected() || s.ExternalIDs["system-id"] != "ch1" || iface(s, "br-int").Type != "internal" {
		t.Fatalf("initial snapshot %+v (connected=%v)", s, w.Connected())
	}

	t0 := time.Now()
	o.ctl("add-port", "br-int", "gnv0", "--", "set", "interface", "gnv0", "type=geneve",
		"options:remote_ip=192.0.2.2", "options:psk=swordfish")
	s = next(t, w, &seq, time.Second, "geneve port gnv0 with psk", func(s tunnel.Snapshot) bool { return iface(s, "gnv0") != nil })
	t.Logf("add-port visible %v after ovs-vsctl returned", time.Since(t0))
	g := iface(s, "gnv0")
	if g.Type != "geneve" || g.Options["psk"] != "swordfish" || g.Options["remote_ip"] != "192.0.2.2" || g.UUID == "" {
		t.Fatalf("gnv0 = %+v", g)
	}
	if g.OFPort != nil || g.CFMFault != nil {
		t.Fatalf("gnv0 without vswitchd: ofport=%v cfm_fault=%v, want both unset", g.OFPort, g.CFMFault)
	}
	if got := strings.Join(names(s), ","); got != "br-int,gnv0" {
		t.Fatalf("interfaces %s, want br-int,gnv0 (sorted)", got)
	}

	o.ctl("set", "open_vswitch", ".", "other_config:certificate=/c.pem", "other_config:private_key=/k.pem")
	s = next(t, w, &seq, time.Second, "other_config certificate", func(s tunnel.Snapshot) bool {
		return s.OtherConfig["certificate"] == "/c.pem" && s.OtherConfig["private_key"] == "/k.pem"
	})

	o.ctl("set", "interface", "gnv0", "ofport=-1", "cfm_fault=true")
	s = next(t, w, &seq, time.Second, "ofport -1 and cfm_fault true", func(s tunnel.Snapshot) bool {
		g := iface(s, "gnv0")
		return g != nil && g.OFPort != nil && *g.OFPort == -1 && g.CFMFault != nil && *g.CFMFault
	})
	o.ctl("set", "interface", "gnv0", "ofport=5", "cfm_fault=false")
	s = next(t, w, &seq, time.Second, "ofport 5 and cfm_fault false", func(s tunnel.Snapshot) bool {
		g := iface(s, "gnv0")
		return g != nil && g.OFPort != nil && *g.OFPort == 5 && g.CFMFault != nil && !*g.CFMFault
	})
	o.ctl("clear", "interface", "gnv0", "ofport", "cfm_fault")
	s = next(t, w, &seq, time.Second, "ofport and cfm_fault cleared", func(s tunnel.Snapshot) bool {
		g := iface(s, "gnv0")
		return g != nil && g.OFPort == nil && g.CFMFault == nil
	})

	// Columns the Watcher does not monitor must not produce snapshots.
	o.ctl("set", "interface", "gnv0", "mtu_request=1400", "external_ids:foo=bar", "--",
		"set", "bridge", "br-int", "external_ids:x=y", "--",
		"set", "open_vswitch", ".", "statistics:cpu=4")
	quiet(t, w, 300*time.Millisecond, "change of unmonitored columns")

	o.ctl("remove", "open_vswitch", ".", "other_config", "certificate", "--", "del-port", "gnv0")
	s = next(t, w, &seq, time.Second, "gnv0 deleted and certificate removed", func(s tunnel.Snapshot) bool {
		return iface(s, "gnv0") == nil && s.OtherConfig["certificate"] == ""
	})
	if s.OtherConfig["private_key"] != "/k.pem" || len(s.Interfaces) != 1 {
		t.Fatalf("after delete: %+v", s)
	}
	if cur, ok := w.Current(); !ok || cur.Seq != s.Seq {
		t.Fatalf("Current() = seq %d, want %d", cur.Seq, s.Seq)
	}
}

func TestWatcherReconnects(t *testing.T) {
	o := newOVSDBServer(t)
	o.start()
	o.ctl("init")
	o.ctl("add-br", "br-int", "--", "add-port", "br-int", "gnv0", "--",
		"set", "interface", "gnv0", "type=geneve", "options:remote_ip=192.0.2.2", "options:psk=one")
	port := o.ctl("get", "port", "gnv0", "_uuid")
	w := watch(t, o.remote(), WithBackoff(50*time.Millisecond, 200*time.Millisecond))
	var seq uint64
	next(t, w, &seq, 5*time.Second, "initial gnv0", func(s tunnel.Snapshot) bool { return iface(s, "gnv0") != nil })
	if !w.Connected() {
		t.Fatal("Connected() = false after the first snapshot")
	}
	goroutines := runtime.NumGoroutine()

	// Crash the server; change the database while it is down.
	o.kill()
	waitFor(t, 2*time.Second, "Connected() == false after the server died", func() bool { return !w.Connected() })
	o.transactOffline(fmt.Sprintf(
		`{"op":"mutate","table":"Open_vSwitch","where":[],"mutations":[["other_config","insert",["map",[["while_down","1"]]]]]},`+
			`{"op":"mutate","table":"Bridge","where":[["name","==","br-int"]],"mutations":[["ports","delete",["uuid",%q]]]}`, port))
	time.Sleep(400 * time.Millisecond) // several failed attempts
	quiet(t, w, 0, "server down")
	if w.Connected() {
		t.Fatal("Connected() = true while the server is down")
	}

	o.start()
	o.ctl("add-port", "br-int", "gnv1", "--", "set", "interface", "gnv1", "type=geneve",
		"options:remote_ip=192.0.2.3", "options:psk=two")
	s := next(t, w, &seq, 5*time.Second, "state after restart", func(s tunnel.Snapshot) bool {
		return iface(s, "gnv1") != nil
	})
	if s.OtherConfig["while_down"] != "1" {
		t.Errorf("change made while the server was down is missing: other_config=%v", s.OtherConfig)
	}
	if iface(s, "gnv0") != nil {
		t.Errorf("gnv0, deleted while the server was down, survived the reconnect: %v", names(s))
	}
	if g := iface(s, "gnv1"); g.Options["psk"] != "two" || g.Type != "geneve" {
		t.Errorf("gnv1 = %+v", g)
	}
	if !w.Connected() {
		t.Error("Connected() = false after reconnect")
	}

	// A restart without any change still yields a fresh full snapshot.
	o.kill()
	waitFor(t, 2*time.Second, "Connected() == false after the second kill", func() bool { return !w.Connected() })
	o.start()
	again := next(t, w, &seq, 5*time.Second, "fresh snapshot after an unchanged restart", func(tunnel.Snapshot) bool { return true })
	if !sameContent(again, s) {
		t.Errorf("snapshot after unchanged restart differs:\n got %+v\nwant %+v", again, s)
	}
	o.ctl("set", "interface", "gnv1", "options:psk=three")
	next(t, w, &seq, time.Second, "psk change after second restart", func(s tunnel.Snapshot) bool {
		g := iface(s, "gnv1")
		return g != nil && g.Options["psk"] == "three"
	})

	// Two dropped connections and many failed attempts must not leave
	// goroutines of old libovsdb clients behind.
	waitFor(t, 2*time.Second, fmt.Sprintf("goroutines back to %d (+2)", goroutines), func() bool {
		return runtime.NumGoroutine() <= goroutines+2
	})
}

func TestWatcherWaitsForServer(t *testing.T) {
	o := newOVSDBServer(t)
	w := watch(t, o.remote(), WithBackoff(20*time.Millisecond, 100*time.Millisecond))
	quiet(t, w, 300*time.Millisecond, "no server yet")
	if w.Connected() {
		t.Fatal("Connected() = true without a server")
	}
	o.start()
	var seq uint64
	// The database is still empty (no `ovs-vsctl init`): no Open_vSwitch row.
	s := next(t, w, &seq, 5*time.Second, "empty database", func(tunnel.Snapshot) bool { return true })
	if len(s.Interfaces) != 0 || len(s.OtherConfig) != 0 || s.OtherConfig == nil || s.ExternalIDs == nil {
		t.Fatalf("empty database snapshot = %+v", s)
	}
	o.ctl("init")
	o.ctl("set", "open_vswitch", ".", "external_ids:system-id=ch9")
	next(t, w, &seq, time.Second, "system-id after init", func(s tunnel.Snapshot) bool { return s.ExternalIDs["system-id"] == "ch9" })
}

// TestWatcherProbeDetectsHungServer stops (SIGSTOP) ovsdb-server: the socket
// stays open, so only the echo probe can notice. After SIGCONT the Watcher
// must be back with a fresh snapshot.
func TestWatcherProbeDetectsHungServer(t *testing.T) {
	o := newOVSDBServer(t)
	o.start()
	o.ctl("init")
	w := watch(t, o.remote(), WithProbeInterval(200*time.Millisecond),
		WithConnectTimeout(300*time.Millisecond), WithBackoff(50*time.Millisecond, 100*time.Millisecond))
	var seq uint64
	first := next(t, w, &seq, 5*time.Second, "initial state", func(tunnel.Snapshot) bool { return true })
	if !w.Connected() {
		t.Fatal("Connected() = false after the first snapshot")
	}
	goroutines := runtime.NumGoroutine()

	if err := o.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP ovsdb-server: %v", err)
	}
	cont := func() { o.cmd.Process.Signal(syscall.SIGCONT) }
	defer cont()
	waitFor(t, 3*time.Second, "Connected() == false while ovsdb-server is stopped", func() bool { return !w.Connected() })
	cont()
	s := next(t, w, &seq, 5*time.Second, "fresh snapshot after SIGCONT", func(tunnel.Snapshot) bool { return true })
	if !sameContent(s, first) || !w.Connected() {
		t.Fatalf("after SIGCONT: %+v (connected=%v), want %+v", s, w.Connected(), first)
	}
	// The abandoned connections to the stopped server must be closed.
	waitFor(t, 2*time.Second, fmt.Sprintf("goroutines back to %d (+2)", goroutines), func() bool {
		return runtime.NumGoroutine() <= goroutines+2
	})
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWatcherSSL runs the Watcher over an ssl: remote against ovsdb-server
// with mutual certificate authentication.
func TestWatcherSSL(t *testing.T) {
	o := newOVSDBServer(t)
	caPEM, srvCert, srvKey, cliCert := testPKI(t)
	files := map[string][]byte{"ca.pem": caPEM, "srv-cert.pem": srvCert, "srv-key.pem": srvKey}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(o.dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	o.extra = []string{
		"--remote=pssl:" + port + ":127.0.0.1",
		"--private-key=" + filepath.Join(o.dir, "srv-key.pem"),
		"--certificate=" + filepath.Join(o.dir, "srv-cert.pem"),
		"--ca-cert=" + filepath.Join(o.dir, "ca.pem"),
	}
	o.start()
	o.ctl("init")
	o.ctl("set", "open_vswitch", ".", "external_ids:system-id=tls1")

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	w := watch(t, "ssl:127.0.0.1:"+port, WithTLSConfig(&tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{cliCert}, MinVersion: tls.VersionTLS12,
	}))
	var seq uint64
	next(t, w, &seq, 5*time.Second, "system-id over ssl", func(s tunnel.Snapshot) bool { return s.ExternalIDs["system-id"] == "tls1" })
	o.ctl("set", "open_vswitch", ".", "other_config:ca_cert=/ca.pem")
	next(t, w, &seq, time.Second, "other_config change over ssl", func(s tunnel.Snapshot) bool { return s.OtherConfig["ca_cert"] == "/ca.pem" })
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// testPKI makes a CA, a server certificate for 127.0.0.1 and a client
// certificate; it returns the CA and server material as PEM.
func testPKI(t *testing.T) (caPEM, srvCertPEM, srvKeyPEM []byte, cli tls.Certificate) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ovsconf test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	pemOf := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	keyPEM := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pemOf("PRIVATE KEY", der)
	}
	srvDER, srvKey := leaf(2, "ovsdb-server", x509.ExtKeyUsageServerAuth)
	cliDER, cliKey := leaf(3, "ovnsecd", x509.ExtKeyUsageClientAuth)
	cli, err = tls.X509KeyPair(pemOf("CERTIFICATE", cliDER), keyPEM(cliKey))
	if err != nil {
		t.Fatal(err)
	}
	return pemOf("CERTIFICATE", caDER), pemOf("CERTIFICATE", srvDER), keyPEM(srvKey), cli
}
