package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/testenv"
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

func TestValidateBackend(t *testing.T) {
	tests := []struct {
		c    config
		want string // substring of the error; "" for none
	}{
		{config{ikeDaemon: "strongswan"}, ""},
		{config{ikeDaemon: "native", bridge: "br-phy", nic: "eth0"}, ""},
		{config{ikeDaemon: "native"}, "needs --bridge"},
		{config{ikeDaemon: "native", bridge: "br-phy", nic: "eth0", requireIPsec: true}, ""},
		{config{ikeDaemon: "native", bridge: "br-phy", nic: "eth0", portKind: "tap"}, ""},
		{config{ikeDaemon: "native", bridge: "br-phy", nic: "eth0", portKind: "af_xdp"}, "want veth or tap"},
		{config{ikeDaemon: "strongswan", requireIPsec: true}, "--require-ipsec needs --ike-daemon=native"},
		{config{ikeDaemon: "libreswan"}, "not available"},
		{config{ikeDaemon: "racoon"}, "should be native, strongswan or libreswan"},
	}
	for _, tc := range tests {
		err := validateBackend(tc.c)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: err = %v, want %q", tc.c, err, tc.want)
		}
	}
}

func TestParseArgs(t *testing.T) {
	t.Setenv("OVS_RUNDIR", "/run/x")
	tests := []struct {
		args    []string
		db      string
		pidfile string
		wantErr bool
	}{
		{nil, "unix:/run/x/db.sock", "", false},
		{[]string{"unix:/tmp/db.sock"}, "unix:/tmp/db.sock", "", false},
		{[]string{"--pidfile", "tcp:127.0.0.1:6640"}, "tcp:127.0.0.1:6640", "/run/x/ovnsecd.pid", false},
		{[]string{"--pidfile=my.pid"}, "unix:/run/x/db.sock", "/run/x/my.pid", false},
		{[]string{"a", "b"}, "", "", true},
		{[]string{"--no-such-flag"}, "", "", true},
	}
	for _, tc := range tests {
		c, err := parseArgs(tc.args, &bytes.Buffer{})
		if (err != nil) != tc.wantErr {
			t.Errorf("%v: err = %v", tc.args, err)
			continue
		}
		if err == nil && (c.database != tc.db || c.pidfile != tc.pidfile) {
			t.Errorf("%v: db %q pidfile %q", tc.args, c.database, c.pidfile)
		}
	}
}
