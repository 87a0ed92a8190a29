// Test scaffolding: a helper mode of the test binary that runs as a
// separate process, because POSIX record locks only conflict between
// processes.

package unixctl

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

const helperEnv = "UNIXCTL_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

// runHelper implements the helper process modes:
//
//	hold:<path>  WritePidfile(path), print "ready <pid>", wait for stdin EOF
//	lock:<path>  lock path (no write), print "ready <pid>", wait for stdin EOF
//	read:<path>  print ReadPidfile(path) as "pid <n>" or "error <text>"
func runHelper(mode string) int {
	verb, path, _ := strings.Cut(mode, ":")
	switch verb {
	case "hold":
		p, err := WritePidfile(path)
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("ready", os.Getpid())
		io.Copy(io.Discard, os.Stdin)
		p.Remove()
	case "lock":
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		if err := lockFile(f, syscall.F_SETLK); err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("ready", os.Getpid())
		io.Copy(io.Discard, os.Stdin)
	case "read":
		pid, err := ReadPidfile(path)
		if err != nil {
			fmt.Println("error", err)
			return 0
		}
		fmt.Println("pid", pid)
	default:
		fmt.Println("error unknown helper mode", mode)
		return 1
	}
	return 0
}

// helper is a running helper process.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	pid   int
}

// startHelper starts a helper in mode hold or lock and waits until it
// holds its lock. The helper is stopped at cleanup at the latest.
func startHelper(t *testing.T, mode string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper %s: %v", mode, err)
	}
	h := &helper{cmd: cmd, stdin: stdin}
	t.Cleanup(h.stop)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if _, err2 := fmt.Sscanf(line, "ready %d", &h.pid); err != nil || err2 != nil {
		t.Fatalf("helper %s: got %q, %v", mode, line, err)
	}
	return h
}

// stop ends the helper (closing stdin makes it exit) and waits for it.
func (h *helper) stop() {
	if h.stdin == nil {
		return
	}
	h.stdin.Close()
	h.stdin = nil
	h.cmd.Wait()
}

// readPidfileElsewhere runs ReadPidfile in another process, which is the
// only way to see this process's own locks.
func readPidfileElsewhere(t *testing.T, path string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=read:"+path)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper read %s: %v", path, err)
	}
	return strings.TrimSpace(string(out))
}
