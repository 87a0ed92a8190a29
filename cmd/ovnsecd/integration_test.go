package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/reconcile"
	"github.com/ovnsec/ovnsec/internal/testenv"
	"github.com/ovnsec/ovnsec/internal/tunnel"
	"github.com/ovnsec/ovnsec/test/harness"
)

func startDaemon(t *testing.T, db *testenv.OVSDB, extra ...string) *harness.Daemon {
	t.Helper()
	args := append([]string{"--ike-daemon=strongswan", "--vici-socket=unix:///nonexistent/no-charon.vici"}, extra...)
	return harness.StartDaemon(t, db.Remote, args...)
}

// writeCert writes a self-signed ECDSA certificate with CN = SAN DNS = cn
// and its key, returning their paths.
func writeCert(t *testing.T, dir, cn string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Open vSwitch"}},
		DNSNames:     []string{cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath = filepath.Join(dir, cn+"-cert.pem")
	keyPath = filepath.Join(dir, cn+"-privkey.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

func TestDaemonFollowsDatabase(t *testing.T) {
	testenv.Short(t)
	t.Parallel()
	db := testenv.StartOVSDB(t)
	db.Vsctl("--no-wait", "add-br", "br-ipsec")
	d := startDaemon(t, db)

	out, err := d.Appctl("tunnels/show")
	if err != nil || !strings.Contains(out, "No tunnels configured with IPsec") {
		t.Fatalf("empty tunnels/show = %q, %v", out, err)
	}

	// A PSK geneve tunnel shows up within a second, PSK never printed.
	start := time.Now()
	db.Vsctl("--no-wait", "add-port", "br-ipsec", "gnv0", "--", "set", "interface", "gnv0",
		"type=geneve", "options:remote_ip=192.0.2.2", "options:psk=swordfish")
	out = d.WaitShow(time.Second, `Interface name: gnv0 v1 \(CONFIGURED\)`)
	t.Logf("gnv0 visible after %v", time.Since(start))
	for _, want := range []string{
		"  Tunnel Type:    geneve\n",
		"  Local IP:       %defaultroute\n",
		"  Remote IP:      192.0.2.2\n",
		"  Address Family: IPv4\n",
		"  PSK:            <redacted>\n",
		"  Status:         ",
		"IPsec connections that are active:\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("tunnels/show lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "swordfish") {
		t.Fatalf("tunnels/show printed the PSK:\n%s", out)
	}
	// No charon: the status says so instead of pretending.
	if !regexp.MustCompile(`Status: +\S.*(charon|strongSwan|vici|VICI)`).MatchString(out) {
		t.Errorf("status does not name the unreachable IKE daemon:\n%s", out)
	}
	// The same data, machine-readable: no secret, the state as data.
	js, err := d.Appctl("tunnels/show", "--format=json")
	if err != nil {
		t.Fatal(err)
	}
	var doc reconcile.Document
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatalf("tunnels/show --format=json is not JSON: %v\n%s", err, js)
	}
	if len(doc.Tunnels) != 1 || doc.Tunnels[0].Name != "gnv0" || doc.Tunnels[0].RemoteIP != "192.0.2.2" ||
		doc.Tunnels[0].Auth != tunnel.AuthPSK || doc.Tunnels[0].State == backend.StateUp || doc.Tunnels[0].Code == "" {
		t.Errorf("JSON view %+v", doc)
	}
	if strings.Contains(js, "swordfish") {
		t.Fatalf("the JSON view printed the PSK:\n%s", js)
	}
	if _, err := d.Appctl("tunnels/show", "--format=yaml"); err == nil {
		t.Error("tunnels/show accepted --format=yaml")
	}

	// vxlan and gre are picked up too; other types are not.
	db.Vsctl("--no-wait", "add-port", "br-ipsec", "vx0", "--", "set", "interface", "vx0",
		"type=vxlan", "options:remote_ip=192.0.2.3", "options:psk=x")
	db.Vsctl("--no-wait", "add-port", "br-ipsec", "gre0", "--", "set", "interface", "gre0",
		"type=gre", "options:remote_ip=192.0.2.4", "options:psk=y")
	db.Vsctl("--no-wait", "add-port", "br-ipsec", "stt0", "--", "set", "interface", "stt0",
		"type=stt", "options:remote_ip=192.0.2.5", "options:psk=z")
	out = d.WaitShow(time.Second, `(?s)gre0 v1 \(CONFIGURED\).*vx0 v1 \(CONFIGURED\)`)
	if strings.Contains(out, "stt0") {
		t.Errorf("stt tunnel should be ignored:\n%s", out)
	}

	// A global change bumps every tunnel's version.
	db.Vsctl("--no-wait", "set", "open_vswitch", ".", "other_config:ipsec_skb_mark=0/1")
	out = d.WaitShow(time.Second, `(?s)gnv0 v2 .*gre0 v2|(?s)gre0 v2 .*gnv0 v2`)
	if !strings.Contains(out, "vx0 v2") || !strings.Contains(out, "SKB mark:       0/1") {
		t.Errorf("global change did not bump every tunnel:\n%s", out)
	}

	// A status-only change (ofport) does not bump the version; an option
	// change bumps only that tunnel.
	db.Vsctl("--no-wait", "set", "interface", "vx0", "options:ipsec_encapsulation=yes")
	out = d.WaitShow(time.Second, `vx0 v3 \(CONFIGURED\)`)
	if !strings.Contains(out, "gnv0 v2") || !strings.Contains(out, "{'encapsulation': 'yes'}") {
		t.Errorf("per-tunnel change:\n%s", out)
	}

	// Removing the port removes the tunnel.
	db.Vsctl("--no-wait", "del-port", "gnv0")
	d.WaitFor("gnv0 to disappear from tunnels/show", time.Second, func() bool {
		out, err := d.Appctl("tunnels/show")
		return err == nil && !strings.Contains(out, "gnv0") && strings.Contains(out, "vx0")
	})

	logs := d.Logs()
	for _, want := range []string{"Tunnel gnv0 appeared in OVSDB", "Tunnel gnv0 disappeared from OVSDB", "Tunnel's 'vx0' configuration changed in OVSDB to 3"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

func TestDaemonInvalidConfigurations(t *testing.T) {
	testenv.Short(t)
	t.Parallel()
	db := testenv.StartOVSDB(t)
	db.Vsctl("--no-wait", "add-br", "br-ipsec")
	d := startDaemon(t, db)
	dir := t.TempDir()
	cert, key := writeCert(t, dir, "left")
	peer, _ := writeCert(t, dir, "right")

	add := func(name string, opts ...string) {
		args := []string{"--no-wait", "add-port", "br-ipsec", name, "--", "set", "interface", name, "type=geneve"}
		for _, o := range opts {
			args = append(args, "options:"+o)
		}
		db.Vsctl(args...)
	}
	// Without any global PKI.
	add("norip", "psk=x")
	add("nocert", "remote_ip=192.0.2.2", "remote_name=right")
	add("emptypsk", "remote_ip=192.0.2.2", "psk=\"\"")
	add("pskname", "remote_ip=192.0.2.2", "psk=x", "remote_name=right")
	d.WaitShow(2*time.Second, `(?s)nocert .*norip .*pskname `)
	out, _ := d.Appctl("tunnels/show")
	for name, reason := range map[string]string{
		"norip":    ": 'remote_ip' is not set",
		"nocert":   ": must set 'certificate' as local certificate when using CA-signed certificate or self-signed certificate to authenticate peers",
		"emptypsk": ": must choose a authentication method",
		"pskname":  ": 'certificate', 'private_key', 'ca_cert', 'remote_cert', and 'remote_name' must be unset with PSK",
	} {
		want := fmt.Sprintf("Interface name: %s v1 (INVALID%s)", name, reason)
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
		if !strings.Contains(d.Logs(), name+" contains invalid configuration"+reason) {
			t.Errorf("log lacks the invalid-configuration line for %s", name)
		}
	}

	// With a local certificate and key but no CA: remote_name alone is not
	// enough; remote_cert is.
	db.Vsctl("--no-wait", "set", "open_vswitch", ".", "other_config:certificate="+cert, "other_config:private_key="+key)
	add("noca", "remote_ip=192.0.2.2", "remote_name=right")
	add("pinned", "remote_ip=192.0.2.3", "remote_cert="+peer)
	add("garbage", "remote_ip=192.0.2.4", "remote_cert="+filepath.Join(dir, "missing.pem"))
	out = d.WaitShow(2*time.Second, `(?s)garbage v\d+ .*noca v\d+ .*pinned v\d+ `)
	for _, want := range []string{
		"noca v1 (INVALID: must set 'remote_cert' when using self-signed certificate authentication or 'ca_cert' when using CA-signed certificate authentication)",
		"pinned v1 (CONFIGURED)",
		"garbage v1 (INVALID: must choose a authentication method)",
		"  Remote name:    right\n",
		"  Local name:     left\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	// PSK tunnels are invalid while a global certificate is set.
	if !strings.Contains(out, "pskname v2 (INVALID: 'certificate', 'private_key', 'ca_cert', 'remote_cert', and 'remote_name' must be unset with PSK)") {
		t.Errorf("PSK with global PKI not rejected:\n%s", out)
	}
}

func TestDaemonSurvivesDatabaseRestart(t *testing.T) {
	testenv.Short(t)
	t.Parallel()
	db := testenv.StartOVSDB(t)
	db.Vsctl("--no-wait", "add-br", "br-ipsec")
	db.Vsctl("--no-wait", "add-port", "br-ipsec", "gnv0", "--", "set", "interface", "gnv0",
		"type=geneve", "options:remote_ip=192.0.2.2", "options:psk=x")
	d := startDaemon(t, db)
	d.WaitShow(2*time.Second, `gnv0 v1`)

	db.Stop()
	time.Sleep(300 * time.Millisecond)
	if out, err := d.Appctl("version"); err != nil {
		t.Fatalf("daemon stopped answering while the database was down: %v %s", err, out)
	}
	db.Start()
	db.Vsctl("--no-wait", "add-port", "br-ipsec", "gnv1", "--", "set", "interface", "gnv1",
		"type=geneve", "options:remote_ip=192.0.2.3", "options:psk=x")
	d.WaitShow(10*time.Second, `(?s)gnv0 v1 .*gnv1 v1`)
}

func TestDaemonExitAndCompatName(t *testing.T) {
	testenv.Short(t)
	t.Parallel()
	db := testenv.StartOVSDB(t)
	d := startDaemon(t, db)

	// ovs-appctl -t ovs-monitor-ipsec works with OVS_RUNDIR pointing at
	// our run directory.
	cmd := exec.Command("ovs-appctl", "-t", "ovs-monitor-ipsec", "ipsec/status")
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+d.Rundir)
	// No charon runs here: ipsec/status must fail (so a liveness probe
	// fails) and say why, rather than answer "{}" as if all were well.
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "charon is not reachable") {
		t.Fatalf("ovs-appctl -t ovs-monitor-ipsec ipsec/status = %v %q", err, out)
	}
	if out, err := d.Appctl("exit", "--bogus"); err != nil || !strings.Contains(out, "unrecognized parameter: --bogus") {
		t.Errorf("exit --bogus = %q, %v", out, err)
	}
	if out, err := d.Appctl("exit", "--no-cleanup"); err != nil {
		t.Fatalf("exit: %v %s", err, out)
	}
	select {
	case <-d.Exited():
		if !d.Cmd.ProcessState.Success() {
			t.Fatalf("ovnsecd exited with %v", d.Cmd.ProcessState)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ovnsecd did not exit")
	}
	for _, p := range []string{"ovnsecd.pid", "ovs-monitor-ipsec.pid"} {
		if _, err := os.Stat(filepath.Join(d.Rundir, p)); !os.IsNotExist(err) {
			t.Errorf("%s left behind after exit", p)
		}
	}
}

// Options after the database argument, as ovs-monitor-ipsec's argparse
// takes them (ovs-ctl start-ovs-ipsec puts the database first): every
// option takes effect, whichever side of the database it is on.
func TestDaemonOptionsAfterDatabase(t *testing.T) {
	testenv.Short(t)
	t.Parallel()
	db := testenv.StartOVSDB(t)
	db.Vsctl("--no-wait", "add-br", "br-ipsec")
	db.Vsctl("--no-wait", "add-port", "br-ipsec", "gnv0", "--", "set", "interface", "gnv0",
		"type=geneve", "options:remote_ip=192.0.2.2", "options:psk=x")

	// The harness puts its own options first and the last argument given
	// to it last: here the database sits between options.
	d := harness.StartDaemon(t, "--follow-ovn-ipsec=false", "--ike-daemon=strongswan", db.Remote,
		"--vici-socket=unix:///nonexistent/after-db.vici", "--bridge=br-phy")
	out := d.WaitShow(5*time.Second, `Interface name: gnv0 v1 \(CONFIGURED\)`)
	if !strings.Contains(out, "after-db.vici") {
		t.Errorf("--vici-socket after the database not used: tunnels/show does not name its socket:\n%s", out)
	}
	for _, want := range []string{
		"--follow-ovn-ipsec=false: OVN's SB_Global ipsec is not followed",
		"--bridge applies only to --ike-daemon=native; ignored with --ike-daemon=strongswan",
	} {
		if !strings.Contains(d.Logs(), want) {
			t.Errorf("log lacks %q (an option after the database)", want)
		}
	}

	// The database first, every option after it.
	rundir, err := os.MkdirTemp("", "ovnsecd-run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rundir) })
	cmd := exec.Command(filepath.Join(harness.Binaries(t), "ovnsecd"), db.Remote,
		"--ike-daemon=strongswan", "--vici-socket=unix:///nonexistent/first.vici", "--rundir="+rundir,
		"--pidfile", "--compat-name=false", "--follow-ovn-ipsec=false")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	ctl := filepath.Join(rundir, fmt.Sprintf("ovnsecd.%d.ctl", cmd.Process.Pid))
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			t.Fatalf("ovnsecd %s --ike-daemon=strongswan ... exited: %v\n%s", db.Remote, err, logs.String())
		default:
		}
		out, err := exec.Command("ovs-appctl", "-t", ctl, "tunnels/show").CombinedOutput()
		if err == nil && strings.Contains(string(out), "gnv0 v1 (CONFIGURED)") && strings.Contains(string(out), "first.vici") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ovnsecd with the database first: tunnels/show = %v %s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(rundir, "ovnsecd.pid")); err != nil {
		t.Errorf("bare --pidfile after the database: %v", err)
	}
}

// Arguments ovnsecd refuses at start, with the real binary: exit status 1
// and a message that names the problem.
func TestDaemonRefusesArguments(t *testing.T) {
	testenv.Short(t)
	t.Parallel()
	bin := filepath.Join(harness.Binaries(t), "ovnsecd")
	rundir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"unix:/nonexistent/a.sock", "--ike-daemon=strongswan", "unix:/nonexistent/b.sock"},
			`ovnsecd: expected at most one DATABASE argument, got "unix:/nonexistent/a.sock" and "unix:/nonexistent/b.sock"`},
		{[]string{"unix:/nonexistent/a.sock", "--ike-daemon=strongswan", "--require-ipsec"},
			"ovnsecd: --require-ipsec needs --ike-daemon=native: only the native backend can drop the packets of a tunnel that has no IPsec configuration"},
		// This host's /usr/sbin/ipsec is strongSwan's (Debian's libreswan
		// conflicts with it): refused by name, never driven.
		{[]string{"--ike-daemon=libreswan", "unix:/nonexistent/a.sock"},
			"ovnsecd: start the libreswan backend: libreswan: the ipsec command is strongSwan's"},
		{[]string{"unix:/nonexistent/a.sock", "--ike-daemon=native", "--bridge=br-phy", "--nic=eth0", "--engine-port-type=af_xdp"},
			`ovnsecd: --engine-port-type: unknown engine port type "af_xdp": want veth or tap`},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		args := append([]string{"--rundir=" + rundir, "--compat-name=false"}, tc.args...)
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), tc.want) {
			t.Errorf("ovnsecd %q: %v, want exit status 1 and %q; output:\n%s", tc.args, err, tc.want, out)
		}
	}
}
