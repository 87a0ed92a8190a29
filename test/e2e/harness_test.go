// Harness glue for the end-to-end tests, and the lock of the OVN demo
// cluster: its ovd-* namespaces are fixed names, so every user of the
// cluster (scripts/demo.sh, bench/ovn.sh, the demo tests here) holds
// ovdLockPath while it uses it.
package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
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

type daemon = harness.Daemon

func buildBinaries(t *testing.T) string { return harness.Binaries(t) }

// ovdLockPath is the demo cluster's lock (flock), as scripts/demo.sh and
// bench/ovn.sh name it.
const ovdLockPath = "/tmp/ovnsec-ovd.lock"

// ovdLockWait bounds the wait for another user of the demo cluster (a
// bench run takes several minutes), as bench/ovn.sh's own wait.
const ovdLockWait = 15 * time.Minute

// lockDemoCluster takes the demo cluster's lock for the rest of the test,
// waiting while another process holds it, and returns the locked file;
// demoCommand hands it to scripts/demo.sh. It is released when the test's
// cleanups have run (register it before the cluster's teardown).
func lockDemoCluster(t *testing.T) *os.File {
	t.Helper()
	f, err := os.OpenFile(ovdLockPath, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("open the demo cluster's lock: %v", err)
	}
	wait := ovdLockWait
	if d, ok := t.Deadline(); ok {
		// Leave the test time to run once it has the cluster.
		if left := time.Until(d) - 5*time.Minute; left < wait {
			wait = max(left, 0)
		}
	}
	start := time.Now()
	logged := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			t.Fatalf("flock %s: %v", ovdLockPath, err)
		}
		if time.Since(start) >= wait {
			f.Close()
			t.Fatalf("the ovd-* demo cluster is still in use after %v: %s is held by %s", wait.Round(time.Second), ovdLockPath, lockHolder(ovdLockPath))
		}
		if !logged {
			t.Logf("the ovd-* demo cluster is in use: %s is held by %s; waiting up to %v", ovdLockPath, lockHolder(ovdLockPath), wait.Round(time.Second))
			logged = true
		}
		time.Sleep(500 * time.Millisecond)
	}
	if logged {
		t.Logf("got %s after %.1f s", ovdLockPath, time.Since(start).Seconds())
	}
	t.Cleanup(func() { f.Close() }) // closing the only descriptor releases the lock
	return f
}

// demoCommand is scripts/demo.sh (or another command that runs it, such
// as make demo-down) run by the holder of lock: the locked descriptor is
// its fd 3 and OVD_LOCK_FD says so. lock nil: run without it.
func demoCommand(ctx context.Context, lock *os.File, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = demoRepoRoot()
	cmd.Env = append(os.Environ(), "OVD_LOCK_FD=")
	if lock != nil {
		cmd.ExtraFiles = []*os.File{lock}
		cmd.Env = append(cmd.Env, "OVD_LOCK_FD=3")
	}
	return cmd
}

// lockHolder names the process holding the flock on path, "pid N
// (COMMAND)", from /proc/locks, as scripts/demo.sh's lock_holder does.
func lockHolder(path string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return "an unknown process (" + err.Error() + ")"
	}
	dev := uint64(st.Dev)
	major := (dev>>8)&0xfff | (dev>>32)&^uint64(0xfff)
	minor := dev&0xff | (dev>>12)&^uint64(0xff)
	key := fmt.Sprintf("%02x:%02x:%d", major, minor, st.Ino)
	f, err := os.Open("/proc/locks")
	if err != nil {
		return "an unknown process (" + err.Error() + ")"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "N: FLOCK  ADVISORY  WRITE PID MAJ:MIN:INODE 0 EOF"; a waiter
		// has "->" before FLOCK.
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[1] != "FLOCK" || fs[5] != key {
			continue
		}
		if cmd, ok := procCommand(fs[4]); ok {
			return fmt.Sprintf("pid %s (%s)", fs[4], cmd)
		}
		// The locker exited (bench/ovn.sh's flock command does at once);
		// the lock stays with the processes that have its descriptor.
		var all []int
		dirs, _ := os.ReadDir("/proc")
		for _, d := range dirs {
			if pid, err := strconv.Atoi(d.Name()); err == nil && pid != os.Getpid() {
				all = append(all, pid)
			}
		}
		var open []string
		for _, pid := range openersOf(path, all) {
			cmd, _ := procCommand(strconv.Itoa(pid))
			open = append(open, fmt.Sprintf("pid %d (%s)", pid, cmd))
		}
		return fmt.Sprintf("a descriptor that pid %s (exited) locked, open in %s", fs[4], strings.Join(open, ", "))
	}
	return "no process (it is free now)"
}

// procCommand is the command line of pid, as ps shows it.
func procCommand(pid string) (string, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " ")), true
}

// openersOf lists the pids among pids that have path open.
func openersOf(path string, pids []int) []int {
	var out []int
	for _, pid := range pids {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && l == path {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// pidfilePids reads the pids of the pidfiles matching pattern.
func pidfilePids(pattern string) []int {
	files, _ := filepath.Glob(pattern)
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// lockHolder names whoever holds a flock: this process, or the processes
// that keep the descriptor of a locker that has exited (as bench/ovn.sh's
// flock command does).
func TestLockHolder(t *testing.T) {
	testenv.NeedCommands(t, "flock", "sh", "sleep")
	path := filepath.Join(t.TempDir(), "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := lockHolder(path); got != "no process (it is free now)" {
		t.Errorf("free: %q", got)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if got, want := lockHolder(path), fmt.Sprintf("pid %d (", os.Getpid()); !strings.HasPrefix(got, want) {
		t.Errorf("held here: %q, want %q...", got, want)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)

	// sh opens the file as descriptor 9, flock(1) locks it and exits, sh
	// stays until its standard input closes.
	cmd := exec.Command("sh", "-c", `exec 9>>"$0"; flock -n 9 || exit 1; echo locked; read x`, path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "locked\n" {
		t.Fatalf("sh: %q, %v", line, err)
	}
	got := lockHolder(path)
	want := fmt.Sprintf("(exited) locked, open in pid %d (sh -c ", cmd.Process.Pid)
	if !strings.HasPrefix(got, "a descriptor that pid ") || !strings.Contains(got, want) {
		t.Errorf("held by an exited locker's descriptor: %q, want %q", got, want)
	}
}
