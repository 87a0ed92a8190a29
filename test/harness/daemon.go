// Package harness builds the project's binaries once per test process and
// runs ovnsecd against a test database, talking to it with the real
// ovs-appctl. Tests use it; nothing in the product imports it.
package harness

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// moduleRoot is the repository root, found from this file's location.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Binaries builds every command under cmd/ once per test process and
// returns the directory holding them (ovnsecd, ovnsec, ...).
func Binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "ovnsec-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/", "./cmd/...")
		cmd.Dir = moduleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/...: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// Daemon is a running ovnsecd.
type Daemon struct {
	t      testing.TB
	Cmd    *exec.Cmd
	Rundir string
	mu     sync.Mutex
	log    bytes.Buffer
	exited chan struct{}
}

type lockedWriter struct{ d *Daemon }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	return w.d.log.Write(p)
}

// StartDaemon runs ovnsecd with its own run directory against the OVSDB
// remote db. args come before the database argument. The daemon is killed
// when the test ends and its log printed if the test failed.
func StartDaemon(t testing.TB, db string, args ...string) *Daemon {
	t.Helper()
	bin := filepath.Join(Binaries(t), "ovnsecd")
	rundir, err := os.MkdirTemp("", "ovnsecd-run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rundir) })
	d := &Daemon{t: t, Rundir: rundir, exited: make(chan struct{})}
	all := append([]string{"--rundir=" + rundir, "--pidfile", "--log-level=debug"}, args...)
	all = append(all, db)
	d.Cmd = exec.Command(bin, all...)
	d.Cmd.Stdout = lockedWriter{d}
	d.Cmd.Stderr = lockedWriter{d}
	if err := d.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.Cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		d.Cmd.Process.Kill()
		<-d.exited
		if t.Failed() {
			t.Logf("ovnsecd log:\n%s", d.Logs())
		}
	})
	d.WaitFor("control socket", 10*time.Second, func() bool {
		select {
		case <-d.exited:
			t.Fatalf("ovnsecd exited at start:\n%s", d.Logs())
		default:
		}
		_, err := os.Stat(d.Ctl())
		return err == nil
	})
	return d
}

// Exited is closed when the process has exited.
func (d *Daemon) Exited() <-chan struct{} { return d.exited }

// Logs returns everything the daemon wrote so far.
func (d *Daemon) Logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// Ctl is the daemon's control socket.
func (d *Daemon) Ctl() string {
	return filepath.Join(d.Rundir, fmt.Sprintf("ovnsecd.%d.ctl", d.Cmd.Process.Pid))
}

// Appctl runs the real ovs-appctl against the daemon.
func (d *Daemon) Appctl(args ...string) (string, error) {
	all := append([]string{"-t", d.Ctl()}, args...)
	out, err := exec.Command("ovs-appctl", all...).CombinedOutput()
	return string(out), err
}

// WaitFor polls ok until it is true or fails the test after timeout.
func (d *Daemon) WaitFor(what string, timeout time.Duration, ok func() bool) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			d.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitShow waits until tunnels/show matches re and returns the output.
func (d *Daemon) WaitShow(timeout time.Duration, re string) string {
	d.t.Helper()
	rx := regexp.MustCompile(re)
	var out string
	deadline := time.Now().Add(timeout)
	for {
		var err error
		out, err = d.Appctl("tunnels/show")
		if err == nil && rx.MatchString(out) {
			return out
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("tunnels/show did not match %q within %v; last output:\n%s", re, timeout, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
