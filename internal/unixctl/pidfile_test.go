// Tests of pidfiles and target paths. Locks only conflict between
// processes, so holders and readers run as helper processes.

package unixctl

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestCtlPath(t *testing.T) {
	tests := []struct {
		rundir, program string
		pid             int
		want            string
	}{
		{"/var/run/openvswitch", "ovs-monitor-ipsec", 42, "/var/run/openvswitch/ovs-monitor-ipsec.42.ctl"},
		{"/run/ovnsec/", "ovnsecd", 1, "/run/ovnsec/ovnsecd.1.ctl"},
		{"rel", "x", 7, "rel/x.7.ctl"},
	}
	for _, tt := range tests {
		if got := CtlPath(tt.rundir, tt.program, tt.pid); got != tt.want {
			t.Errorf("CtlPath(%q, %q, %d) = %q, want %q", tt.rundir, tt.program, tt.pid, got, tt.want)
		}
	}
	if got := PidfilePath("/var/run/openvswitch", "ovnsecd"); got != "/var/run/openvswitch/ovnsecd.pid" {
		t.Errorf("PidfilePath = %q", got)
	}
}

func TestRunDir(t *testing.T) {
	t.Setenv("OVS_RUNDIR", "/tmp/x")
	if got := RunDir(); got != "/tmp/x" {
		t.Errorf("RunDir = %q", got)
	}
	t.Setenv("OVS_RUNDIR", "")
	if got := RunDir(); got != "/var/run/openvswitch" {
		t.Errorf("RunDir = %q", got)
	}
}

func TestWritePidfile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ovnsecd.pid")
	p, err := WritePidfile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Remove()
	if p.Path() != path {
		t.Errorf("Path = %q", p.Path())
	}
	want := fmt.Sprintf("pid %d", os.Getpid())
	if got := readPidfileElsewhere(t, path); got != want {
		t.Errorf("another process reads %q, want %q", got, want)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil || st.Mode&0o777 != 0o644 {
		t.Errorf("mode = %o, %v; want 644", st.Mode&0o777, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("leftover files: %v", entries)
	}

	// A second WritePidfile in this process must refuse, and must not
	// drop the lock while checking.
	if _, err := WritePidfile(path); !errors.Is(err, ErrPidfileHeld) {
		t.Errorf("second WritePidfile = %v, want ErrPidfileHeld", err)
	}
	if got := readPidfileElsewhere(t, path); got != want {
		t.Errorf("after refused second write, another process reads %q, want %q", got, want)
	}

	if err := p.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pidfile remains after Remove: %v", err)
	}
	if err := p.Remove(); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestWritePidfileReplacesStale(t *testing.T) {
	tests := []struct {
		name    string
		content string
	}{
		{"dead pid", "999999999\n"},
		{"our own pid from an earlier life", fmt.Sprintf("%d\n", os.Getpid())},
		{"garbage", "not a pid"},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ovnsecd.pid")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := WritePidfile(path)
			if err != nil {
				t.Fatalf("stale pidfile not replaced: %v", err)
			}
			defer p.Remove()
			if got, want := readPidfileElsewhere(t, path), fmt.Sprintf("pid %d", os.Getpid()); got != want {
				t.Errorf("reads %q, want %q", got, want)
			}
		})
	}
}

func TestWritePidfileHeldByOther(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ovnsecd.pid")
	h := startHelper(t, "hold:"+path)
	_, err := WritePidfile(path)
	if !errors.Is(err, ErrPidfileHeld) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", h.pid)) {
		t.Fatalf("WritePidfile = %v, want ErrPidfileHeld naming pid %d", err, h.pid)
	}
	if got, want := readPidfileElsewhere(t, path), fmt.Sprintf("pid %d", h.pid); got != want {
		t.Errorf("holder's pidfile disturbed: reads %q, want %q", got, want)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("leftover files: %v", entries)
	}

	// Once the holder is gone (it removes its pidfile), we can take it;
	// and if it died without removing it, the lock is gone anyway.
	h.stop()
	p, err := WritePidfile(path)
	if err != nil {
		t.Fatalf("after holder exit: %v", err)
	}
	p.Remove()
}

func TestRemoveKeepsSuccessor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ovnsecd.pid")
	p, err := WritePidfile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Someone replaced the pidfile (e.g. an operator, or a new instance
	// after ours was declared dead).
	other := path + ".new"
	os.WriteFile(other, []byte("1\n"), 0o644)
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	if err := p.Remove(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "1\n" {
		t.Errorf("successor's pidfile: %q, %v", b, err)
	}
}

func TestReadPidfile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// Unlocked files are stale whatever they contain.
	for _, content := range []string{fmt.Sprintf("%d\n", os.Getpid()), "1\n", ""} {
		_, err := ReadPidfile(write("unlocked.pid", content))
		if !errors.Is(err, syscall.ESRCH) {
			t.Errorf("unlocked %q: err = %v, want ESRCH", content, err)
		}
	}
	if _, err := ReadPidfile(filepath.Join(dir, "missing.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: err = %v", err)
	}

	// Locked by a process whose pid is not the content: stale (OVS's
	// "locked by someone else, e.g. a backup tool").
	mismatch := write("mismatch.pid", "1\n")
	startHelper(t, "lock:"+mismatch)
	if _, err := ReadPidfile(mismatch); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("mismatched pid: err = %v, want ESRCH", err)
	}

	// Locked but holding no number.
	garbage := write("garbage.pid", "xyz\n")
	startHelper(t, "lock:"+garbage)
	if _, err := ReadPidfile(garbage); err == nil || !strings.Contains(err.Error(), "does not hold a pid") {
		t.Errorf("garbage: err = %v", err)
	}

	// A live holder.
	live := filepath.Join(dir, "live.pid")
	h := startHelper(t, "hold:"+live)
	if pid, err := ReadPidfile(live); err != nil || pid != h.pid {
		t.Errorf("live: %d, %v; want %d", pid, err, h.pid)
	}
	if got, err := TargetPath(dir, "live"); err != nil || got != CtlPath(dir, "live", h.pid) {
		t.Errorf("TargetPath(name) = %q, %v", got, err)
	}
	if got, err := TargetPath(dir, "/abs/x.ctl"); err != nil || got != "/abs/x.ctl" {
		t.Errorf("TargetPath(path) = %q, %v", got, err)
	}
	if _, err := TargetPath(dir, "unlocked"); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("TargetPath(stale) = %v", err)
	}
}

func TestWritePidfileErrors(t *testing.T) {
	if _, err := WritePidfile(filepath.Join(t.TempDir(), "nodir", "x.pid")); err == nil || !strings.Contains(err.Error(), "run directory") {
		t.Errorf("missing dir: %v", err)
	}
}

func TestWritePidfileRace(t *testing.T) {
	// Several processes start at once over a stale pidfile: exactly one
	// may win, and the pidfile must name the winner.
	path := filepath.Join(t.TempDir(), "ovnsecd.pid")
	os.WriteFile(path, []byte("999999999\n"), 0o644)
	const n = 6
	type result struct {
		line string
		h    *helper
	}
	results := make(chan result, n)
	for range n {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=hold:"+path)
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		h := &helper{cmd: cmd, stdin: stdin}
		t.Cleanup(h.stop)
		go func() {
			line, _ := bufio.NewReader(stdout).ReadString('\n')
			results <- result{strings.TrimSpace(line), h}
		}()
	}
	var winners []string
	for range n {
		r := <-results
		if strings.HasPrefix(r.line, "ready ") {
			winners = append(winners, strings.TrimPrefix(r.line, "ready "))
		} else if !strings.Contains(r.line, ErrPidfileHeld.Error()) && !strings.Contains(r.line, "keeps changing") {
			t.Errorf("loser reported %q", r.line)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("winners = %q, want exactly one", winners)
	}
	if got := readPidfileElsewhere(t, path); got != "pid "+winners[0] {
		t.Errorf("pidfile reads %q, winner is %s", got, winners[0])
	}
}
