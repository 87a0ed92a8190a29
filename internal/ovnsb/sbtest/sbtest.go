// Package sbtest runs a private ovsdb-server with the real OVN_Southbound
// schema for integration tests, driven with the real ovn-sbctl. Like
// internal/testenv it skips locally and fails under CI=true when a
// prerequisite is missing.
package sbtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/testenv"
)

// Schema is where Debian's ovn-central installs the Southbound schema.
const Schema = "/usr/share/ovn/ovn-sb.ovsschema"

// SB is a running Southbound ovsdb-server in a temporary directory.
type SB struct {
	t      testing.TB
	Dir    string
	DBFile string
	Sock   string
	Remote string // "unix:" + Sock
}

// Start creates a Southbound database, starts ovsdb-server on a unix
// socket and creates the SB_Global row (ipsec=false), as ovn-northd would.
// The server is stopped when the test ends.
func Start(t testing.TB) *SB {
	t.Helper()
	testenv.NeedCommands(t, "ovsdb-server", "ovsdb-tool", "ovn-sbctl")
	if _, err := os.Stat(Schema); err != nil {
		testenv.Missing(t, "schema %s (Debian package ovn-central)", Schema)
	}
	dir, err := os.MkdirTemp("", "ovnsec-sb-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sb := &SB{t: t, Dir: dir, DBFile: filepath.Join(dir, "sb.db"), Sock: filepath.Join(dir, "sb.sock")}
	sb.Remote = "unix:" + sb.Sock
	if out, err := exec.Command("ovsdb-tool", "create", sb.DBFile, Schema).CombinedOutput(); err != nil {
		t.Fatalf("ovsdb-tool create %s: %v\n%s", Schema, err, out)
	}
	sb.Start()
	t.Cleanup(sb.Stop)
	sb.Sbctl("init")
	return sb
}

// Start runs ovsdb-server (again) on the same database and socket.
func (sb *SB) Start() {
	sb.t.Helper()
	cmd := exec.Command("ovsdb-server", sb.DBFile,
		"--remote=punix:"+sb.Sock,
		"--pidfile="+filepath.Join(sb.Dir, "ovsdb-server.pid"),
		"--unixctl="+filepath.Join(sb.Dir, "ovsdb-server.ctl"),
		"--log-file="+filepath.Join(sb.Dir, "ovsdb-server.log"),
		"--detach", "--no-chdir")
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+sb.Dir, "OVS_LOGDIR="+sb.Dir, "OVS_DBDIR="+sb.Dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		sb.t.Fatalf("start Southbound ovsdb-server: %v\n%s", err, out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(sb.Sock); err == nil {
			return
		}
		if time.Now().After(deadline) {
			sb.t.Fatalf("Southbound ovsdb-server did not create %s", sb.Sock)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills ovsdb-server and waits until it is gone.
func (sb *SB) Stop() {
	pidb, err := os.ReadFile(filepath.Join(sb.Dir, "ovsdb-server.pid"))
	if err != nil {
		return
	}
	pid := strings.TrimSpace(string(pidb))
	exec.Command("kill", "-9", pid).Run()
	for i := 0; i < 200; i++ {
		if exec.Command("kill", "-0", pid).Run() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	os.Remove(filepath.Join(sb.Dir, "ovsdb-server.pid"))
	os.Remove(sb.Sock)
}

// Sbctl runs ovn-sbctl against the database; a failure fails the test.
func (sb *SB) Sbctl(args ...string) string {
	sb.t.Helper()
	all := append([]string{"--db=" + sb.Remote, "--timeout=10"}, args...)
	out, err := exec.Command("ovn-sbctl", all...).CombinedOutput()
	if err != nil {
		sb.t.Fatalf("ovn-sbctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// SetIPsec sets SB_Global ipsec, as ovn-northd does from NB_Global ipsec.
func (sb *SB) SetIPsec(on bool) {
	sb.t.Helper()
	v := "false"
	if on {
		v = "true"
	}
	sb.Sbctl("set", "SB_Global", ".", "ipsec="+v)
}
