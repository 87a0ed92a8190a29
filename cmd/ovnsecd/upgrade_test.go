package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/testenv"
	"github.com/ovnsec/ovnsec/test/harness"
)

// TestDaemonUpgrade runs ovnsecd from a copy of its binary under a fake
// systemd notification socket. A broken binary in its place makes
// "ovs-appctl upgrade" fail with the reason while the daemon goes on
// serving; the real binary back in place, SIGHUP hands over to a new
// process: systemd hears RELOADING=1, the new MAINPID and READY=1, the old
// process exits cleanly, and the pidfile and control socket name the new
// one.
func TestDaemonUpgrade(t *testing.T) {
	testenv.Short(t)
	db := testenv.StartOVSDB(t)
	dir := t.TempDir()
	exe := filepath.Join(dir, "ovnsecd")
	real := filepath.Join(harness.Binaries(t), "ovnsecd")
	install := func(src string) {
		t.Helper()
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(exe+".new", b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(exe+".new", exe); err != nil {
			t.Fatal(err)
		}
	}
	install(real)

	sock := filepath.Join(dir, "notify")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	next := func(want string) string {
		t.Helper()
		buf := make([]byte, 512)
		nc.SetReadDeadline(time.Now().Add(70 * time.Second))
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %q from ovnsecd: %v", want, err)
		}
		got := string(buf[:n])
		if !strings.HasPrefix(got, want) {
			t.Fatalf("systemd notification %q, want %q", got, want)
		}
		return got
	}

	rundir, logFile := filepath.Join(dir, "run"), filepath.Join(dir, "ovnsecd.log")
	out, err := os.Create(filepath.Join(dir, "ovnsecd.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(exe, "--rundir="+rundir, "--pidfile", "--log-file="+logFile,
		"--ike-daemon=strongswan", "--vici-socket=unix:///nonexistent/no-charon.vici", "--follow-ovn-ipsec=false", db.Remote)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	cmd.Stdout, cmd.Stderr = out, out // files: Wait returns when this process exits
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pidOf := func() int {
		b, err := os.ReadFile(filepath.Join(rundir, "ovnsecd.pid"))
		if err != nil {
			return 0
		}
		p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return p
	}
	t.Cleanup(func() {
		if p := pidOf(); p > 0 {
			syscall.Kill(p, syscall.SIGKILL)
		}
		cmd.Process.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("ovnsecd log:\n%s", b)
		}
	})
	appctl := func(pid int, args ...string) (string, error) {
		ctl := filepath.Join(rundir, fmt.Sprintf("ovnsecd.%d.ctl", pid))
		o, err := exec.Command("ovs-appctl", append([]string{"--timeout=80", "-t", ctl}, args...)...).CombinedOutput()
		return string(o), err
	}

	next("READY=1")
	old := cmd.Process.Pid
	if p := pidOf(); p != old {
		t.Fatalf("pidfile names %d, want %d", p, old)
	}

	// A broken binary: the new process dies before it is ready.
	broken := filepath.Join(dir, "broken")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	install(broken)
	o, err := appctl(old, "upgrade")
	if err == nil || !strings.Contains(o, "goes on serving") {
		t.Fatalf("ovs-appctl upgrade with a broken binary = %v %q, want a failure saying the daemon goes on", err, o)
	}
	next("RELOADING=1")
	next("READY=1")
	if _, err := appctl(old, "version"); err != nil {
		t.Fatalf("ovnsecd does not answer after a failed upgrade: %v", err)
	}

	// The real binary: SIGHUP upgrades.
	install(real)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	next("RELOADING=1")
	m := next("MAINPID=")
	newPid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(m, "MAINPID=")))
	if err != nil || newPid == old || newPid <= 0 {
		t.Fatalf("MAINPID %q after the upgrade (old pid %d)", m, old)
	}
	next("READY=1")
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the old ovnsecd exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the old ovnsecd still runs 30 s after the new one is ready")
	}
	if p := pidOf(); p != newPid {
		t.Fatalf("pidfile names %d, want the new ovnsecd %d", p, newPid)
	}
	if _, err := appctl(newPid, "version"); err != nil {
		t.Fatalf("the new ovnsecd does not answer on its control socket: %v", err)
	}
	if _, err := os.Stat(filepath.Join(rundir, fmt.Sprintf("ovnsecd.%d.ctl", old))); !os.IsNotExist(err) {
		t.Errorf("the old control socket is still there: %v", err)
	}
	b, _ := os.ReadFile(logFile)
	for _, want := range []string{"upgrade: this ovnsecd serves now", "goes on serving"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if o, err := appctl(newPid, "exit"); err != nil {
		t.Fatalf("exit: %v %s", err, o)
	}
}
