package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/enroll"
	"github.com/ovnsec/ovnsec/internal/pki"
	"github.com/ovnsec/ovnsec/internal/testenv"
)

func TestEnrollFlags(t *testing.T) {
	dir := t.TempDir()
	if err := (pki.Dir{Path: filepath.Join(dir, "pki")}).Init(pki.InitOptions{Key: pki.KeySpec{Type: pki.KeyECDSA}}); err != nil {
		t.Fatal(err)
	}
	ca := pki.Dir{Path: filepath.Join(dir, "pki")}.CACertPath(pki.SwitchCA)
	certs, _ := pki.LoadCertificates(ca)
	fp := enroll.FingerprintOf(certs[0]).String()
	for _, tc := range []struct {
		args []string
		want string // "" = accepted
	}{
		{[]string{"--enroll=https://192.0.2.10:8443", "--enroll-ca-cert=" + ca, "--enroll-token-file=/etc/t"}, ""},
		{[]string{"--enroll", "https://192.0.2.10:8443", "--enroll-ca-fingerprint", fp}, ""},
		{[]string{"--enroll-token-file=/etc/t"}, "--enroll-token-file needs --enroll"},
		{[]string{"--enroll-dir=/x"}, "--enroll-dir needs --enroll"},
		{[]string{"--enroll=http://192.0.2.10:8443", "--enroll-ca-cert=" + ca}, "want https://HOST:PORT"},
		{[]string{"--enroll=https://192.0.2.10:8443"}, "--enroll-ca-cert=FILE or --enroll-ca-fingerprint"},
		{[]string{"--enroll=https://192.0.2.10:8443", "--enroll-ca-cert=" + ca, "--enroll-ca-fingerprint=" + fp}, "not both"},
		{[]string{"--enroll=https://192.0.2.10:8443", "--enroll-ca-cert=" + filepath.Join(dir, "missing.pem")}, "--enroll-ca-cert"},
		{[]string{"--enroll=https://192.0.2.10:8443", "--enroll-ca-fingerprint=abcd"}, "64 hex digits"},
		{[]string{"--enroll=https://192.0.2.10:8443", "--enroll-ca-cert=" + ca, "--enroll-dir=relative"}, "absolute path"},
		{[]string{"--enroll=https://192.0.2.10:8443", "--enroll-ca-cert=" + ca, "--enroll-token-file=token"}, "absolute path"},
	} {
		c, err := parseArgs(tc.args, io.Discard)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		case tc.want == "" && c.enrollDir != defaultEnrollDir:
			t.Errorf("%q: --enroll-dir %q", tc.args, c.enrollDir)
		}
	}
}

// caService serves an EST CA from dir on 127.0.0.1 until the test ends.
func caService(t *testing.T, dir string, life time.Duration) string {
	t.Helper()
	srv, err := enroll.NewServer(enroll.Config{Dir: dir, Lifetime: life, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	id, err := enroll.ListenIdentity(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ctx, ln, srv.TLSConfig(id, nil))
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return "https://" + ln.Addr().String()
}

// caStatus reads ca/status as JSON.
func caStatus(t *testing.T, appctl func(...string) (string, error)) enroll.Status {
	t.Helper()
	out, err := appctl("ca/status", "--format=json")
	if err != nil {
		t.Fatalf("ca/status: %v\n%s", err, out)
	}
	var st enroll.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("ca/status JSON: %v\n%s", err, out)
	}
	return st
}

// ovnsecd --enroll against the real ovsdb-server and an in-process CA
// service: at start the certificate for another name in other_config is
// replaced by an enrolled one, other_config names the new files; a
// tunnel using it stays at its version across a renewal under the same
// paths; ca/status says all of it.
func TestDaemonEnrols(t *testing.T) {
	testenv.Short(t)
	t.Parallel()
	db := testenv.StartOVSDB(t)
	work := t.TempDir()
	pkiDir := filepath.Join(work, "pki")
	if err := (pki.Dir{Path: pkiDir}).Init(pki.InitOptions{Key: pki.KeySpec{Type: pki.KeyECDSA}}); err != nil {
		t.Fatal(err)
	}
	url := caService(t, pkiDir, time.Hour)
	tok, _, err := enroll.NewTokenStore(pkiDir, nil).Create("ch1", time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	tokFile := filepath.Join(work, "token")
	if err := os.WriteFile(tokFile, []byte(tok.Secret()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A certificate for another chassis is configured.
	otherCert, otherKey := writeCert(t, work, "ch2")
	db.Vsctl("--no-wait", "set", "Open_vSwitch", ".", "external_ids:system-id=ch1",
		"other_config:certificate="+otherCert, "other_config:private_key="+otherKey, "other_config:ca_cert="+otherCert)
	db.Vsctl("--no-wait", "add-br", "br-ipsec")
	db.Vsctl("--no-wait", "add-port", "br-ipsec", "tun", "--", "set", "interface", "tun",
		"type=geneve", "options:remote_ip=192.0.2.2", "options:remote_name=ch2")
	edir := filepath.Join(work, "enrolled")
	ca := pki.Dir{Path: pkiDir}.CACertPath(pki.SwitchCA)
	d := startDaemon(t, db, "--enroll="+url, "--enroll-ca-cert="+ca, "--enroll-token-file="+tokFile, "--enroll-dir="+edir)

	var st enroll.Status
	d.WaitFor("enrolment", 20*time.Second, func() bool {
		st = caStatus(t, d.Appctl)
		return st.State == "enrolled"
	})
	p := enroll.PathsIn(edir)
	if st.Chassis != "ch1" || st.InUse != p || st.Issued != 1 || st.LastOp != "simpleenroll" || st.Certificate == nil {
		t.Fatalf("status %+v", st)
	}
	oc := db.Vsctl("get", "Open_vSwitch", ".", "other_config")
	for _, want := range []string{`certificate="` + p.Cert + `"`, `private_key="` + p.Key + `"`, `ca_cert="` + p.CA + `"`} {
		if !strings.Contains(oc, want) {
			t.Errorf("other_config %s lacks %s", oc, want)
		}
	}
	if fi, err := os.Stat(p.Key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key %v %v", fi, err)
	}
	if fi, err := os.Stat(edir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("enrolment directory %v %v", fi, err)
	}
	rep := pki.Check(p.Cert, pki.CheckOptions{KeyPath: p.Key, CAPath: p.CA, Name: "ch1"})
	if !rep.OK() {
		t.Errorf("the enrolled certificate fails ovnsec pki check: %v", rep.Err())
	}
	text, err := d.Appctl("ca/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CA service:    " + url, "Chassis:       ch1", "State:         enrolled", "  Subject:     " + st.Certificate.Subject,
		"  Issuer:      " + st.Certificate.Issuer, "  Not after:   ", "Next renewal:  ", "Last attempt:  ", "Next attempt:  ", "Last error:    none"} {
		if !strings.Contains(text, want) {
			t.Errorf("ca/status lacks %q:\n%s", want, text)
		}
	}
	// The tunnel uses the enrolled files: the new paths make one new
	// version, as any other_config change does.
	show := d.WaitShow(10*time.Second, `(?s)Local cert:\s+`+regexpQuote(p.Cert))
	ver := tunnelVersion(t, show)

	// A renewal under the same paths changes the files, not the tunnel.
	if out, err := d.Appctl("ca/renew"); err != nil || !strings.Contains(out, "renewal asked for") {
		t.Fatalf("ca/renew: %v %s", err, out)
	}
	d.WaitFor("renewal", 20*time.Second, func() bool {
		st = caStatus(t, d.Appctl)
		return st.Issued == 2
	})
	if st.LastOp != "simplereenroll" || st.State != "enrolled" {
		t.Fatalf("status after renewal %+v", st)
	}
	d.WaitFor("the renewed certificate reaches the credentials store", 10*time.Second, func() bool {
		return strings.Contains(d.Logs(), "credential files changed")
	})
	time.Sleep(500 * time.Millisecond)
	show, _ = d.Appctl("tunnels/show")
	if v := tunnelVersion(t, show); v != ver {
		t.Errorf("the renewal re-versioned the tunnel: v%s -> v%s\n%s", ver, v, show)
	}
	if oc2 := db.Vsctl("get", "Open_vSwitch", ".", "other_config"); oc2 != oc {
		t.Errorf("the renewal changed other_config: %s -> %s", oc, oc2)
	}
	if logs := d.Logs(); strings.Contains(logs, tok.Secret()) || strings.Contains(logs, "PRIVATE KEY") {
		t.Error("the log holds the token or a key")
	}
}

func regexpQuote(s string) string {
	r := strings.NewReplacer(".", `\.`, "+", `\+`, "(", `\(`, ")", `\)`)
	return r.Replace(s)
}

// tunnelVersion reads "Interface name: tun vN" from tunnels/show.
func tunnelVersion(t *testing.T, show string) string {
	t.Helper()
	for _, l := range strings.Split(show, "\n") {
		if rest, ok := strings.CutPrefix(l, "Interface name: tun v"); ok {
			v, _, _ := strings.Cut(rest, " ")
			return v
		}
	}
	t.Fatalf("no tunnel tun in:\n%s", show)
	return ""
}

// Without --enroll, ca/status says how to turn it on; while the chassis
// has no system-id, it says what it waits for.
func TestCAStatusOffAndWaiting(t *testing.T) {
	testenv.Short(t)
	t.Parallel()
	db := testenv.StartOVSDB(t)
	d := startDaemon(t, db)
	if out, err := d.Appctl("ca/status"); err != nil || out != enrollOff {
		t.Errorf("ca/status without --enroll: %q, %v", out, err)
	}
	work := t.TempDir()
	pkiDir := filepath.Join(work, "pki")
	if err := (pki.Dir{Path: pkiDir}).Init(pki.InitOptions{Key: pki.KeySpec{Type: pki.KeyECDSA}}); err != nil {
		t.Fatal(err)
	}
	ca := pki.Dir{Path: pkiDir}.CACertPath(pki.SwitchCA)
	d2 := startDaemon(t, db, "--compat-name=false", "--enroll=https://127.0.0.1:9", "--enroll-ca-cert="+ca, "--enroll-dir="+filepath.Join(work, "e"))
	d2.WaitFor("waiting for system-id", 10*time.Second, func() bool {
		st := caStatus(t, d2.Appctl)
		return st.State == "starting" && strings.Contains(st.Detail, "external_ids:system-id is not set")
	})
	// Once it is set, it tries the (absent) CA service and says so.
	db.Vsctl("--no-wait", "set", "Open_vSwitch", ".", "external_ids:system-id=ch1")
	d2.WaitFor("the CA service's absence in ca/status", 40*time.Second, func() bool {
		st := caStatus(t, d2.Appctl)
		return st.State == "failing" && strings.Contains(st.LastError, "is the CA service running and reachable?")
	})
}
