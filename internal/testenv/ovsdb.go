// OVSDB: a private Debian ovsdb-server with the real Open_vSwitch schema,
// for integration tests that drive it with the real ovs-vsctl.

package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// VswitchSchema is where Debian's openvswitch-common installs the schema.
const VswitchSchema = "/usr/share/openvswitch/vswitch.ovsschema"

// OVSDB is a running ovsdb-server in a test's temporary directory.
type OVSDB struct {
	t      testing.TB
	Dir    string
	DBFile string
	Sock   string // unix socket path
	Remote string // "unix:" + Sock
}

// StartOVSDB creates a database from the real schema and starts
// ovsdb-server on a unix socket; it is stopped when the test ends.
func StartOVSDB(t testing.TB) *OVSDB {
	t.Helper()
	NeedCommands(t, "ovs-vsctl", "ovs-appctl")
	db := StartSchema(t, VswitchSchema, "Debian package openvswitch-common")
	db.Vsctl("--no-wait", "init")
	return db
}

// StartSchema creates a database from the schema file (pkg names the
// Debian package that ships it, for the message when it is missing) and
// starts ovsdb-server on a unix socket in a fresh temporary directory; it
// is stopped when the test ends.
func StartSchema(t testing.TB, schema, pkg string) *OVSDB {
	t.Helper()
	NeedCommands(t, "ovsdb-server", "ovsdb-tool")
	if _, err := os.Stat(schema); err != nil {
		Missing(t, "schema %s (%s)", schema, pkg)
	}
	// Unix socket paths are limited to 107 bytes; t.TempDir can be long.
	dir, err := os.MkdirTemp("", "ovnsec-db-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	db := &OVSDB{t: t, Dir: dir, DBFile: filepath.Join(dir, "conf.db"), Sock: filepath.Join(dir, "db.sock")}
	db.Remote = "unix:" + db.Sock
	if out, err := exec.Command("ovsdb-tool", "create", db.DBFile, schema).CombinedOutput(); err != nil {
		t.Fatalf("ovsdb-tool create %s: %v\n%s", schema, err, out)
	}
	db.Start()
	t.Cleanup(db.Stop)
	return db
}

// Start runs ovsdb-server (again) on the same database file and socket.
func (db *OVSDB) Start() {
	db.t.Helper()
	cmd := exec.Command("ovsdb-server", db.DBFile,
		"--remote=punix:"+db.Sock,
		"--pidfile="+filepath.Join(db.Dir, "ovsdb-server.pid"),
		"--unixctl="+filepath.Join(db.Dir, "ovsdb-server.ctl"),
		"--log-file="+filepath.Join(db.Dir, "ovsdb-server.log"),
		"--detach", "--no-chdir")
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+db.Dir, "OVS_LOGDIR="+db.Dir, "OVS_DBDIR="+db.Dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		db.t.Fatalf("start ovsdb-server: %v\n%s", err, out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(db.Sock); err == nil {
			return
		}
		if time.Now().After(deadline) {
			db.t.Fatalf("ovsdb-server did not create %s", db.Sock)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop terminates ovsdb-server and waits until it is gone.
func (db *OVSDB) Stop() {
	pidb, err := os.ReadFile(filepath.Join(db.Dir, "ovsdb-server.pid"))
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
	os.Remove(filepath.Join(db.Dir, "ovsdb-server.pid"))
	os.Remove(db.Sock)
}

// Vsctl runs ovs-vsctl against the database and returns its output; a
// failure fails the test.
func (db *OVSDB) Vsctl(args ...string) string {
	db.t.Helper()
	all := append([]string{"--db=" + db.Remote, "--timeout=10"}, args...)
	out, err := exec.Command("ovs-vsctl", all...).CombinedOutput()
	if err != nil {
		db.t.Fatalf("ovs-vsctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
