// Regression test for the audit of 354e2ea: ovnsec-ike took the PSK on the
// command line (-psk), where every local user can read it. The program
// itself (this test binary re-executed as main) must refuse a PSK in argv
// and establish with the PSK read from a file and from stdin. Only the
// command line is used, so the test runs against 354e2ea too.

package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if os.Getenv("OVNSEC_IKE_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// lockedBuf is a bytes.Buffer safe for a process's output and the test.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// tool is one running ovnsec-ike program.
type tool struct {
	cmd         *exec.Cmd
	out, errOut *lockedBuf
	done        chan error
}

// startTool runs the program with args and stdin; it is stopped at the
// end of the test.
func startTool(t *testing.T, stdin string, args ...string) *tool {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "OVNSEC_IKE_RUN_MAIN=1")
	cmd.Stdin = strings.NewReader(stdin)
	x := &tool{cmd: cmd, out: &lockedBuf{}, errOut: &lockedBuf{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = x.out, x.errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { x.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-x.done
		if t.Failed() {
			t.Logf("ovnsec-ike %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), x.out, x.errOut)
		}
	})
	return x
}

// freePorts returns two UDP ports free on 127.0.0.1 and 127.0.0.2 (the
// engines bind the same ports on the two addresses).
func freePorts(t *testing.T) (int, int) {
	t.Helper()
	var ports []int
	var held []net.PacketConn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for try := 0; len(ports) < 2; try++ {
		if try == 100 {
			t.Fatal("no UDP port free on both 127.0.0.1 and 127.0.0.2")
		}
		a, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, a)
		p := a.LocalAddr().(*net.UDPAddr).Port
		b, err := net.ListenPacket("udp4", "127.0.0.2:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		held = append(held, b)
		ports = append(ports, p)
	}
	return ports[0], ports[1]
}

func endpointArgs(local, remote, id, peerID string, ike, natt int) []string {
	return []string{"-local", local, "-remote", remote, "-local-id", id, "-remote-id", peerID,
		"-port-ike", strconv.Itoa(ike), "-port-natt", strconv.Itoa(natt),
		"-remote-port-ike", strconv.Itoa(ike), "-remote-port-natt", strconv.Itoa(natt), "-dpd", "0"}
}

func TestPSKOnCommandLineRefused(t *testing.T) {
	ike, natt := freePorts(t)
	x := startTool(t, "", append(endpointArgs("127.0.0.1", "127.0.0.2", "a", "b", ike, natt), "-psk", "argv-psk-0123")...)
	select {
	case err := <-x.done:
		x.done <- err // for the cleanup
		if err == nil {
			t.Fatalf("exited 0 with a PSK on the command line")
		}
		if e := x.errOut.String(); !strings.Contains(e, "-psk-file") || strings.Contains(e, "argv-psk-0123") {
			t.Errorf("stderr %q: want a refusal naming -psk-file, without the key", e)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("still running after 60 s with a PSK on the command line (it should refuse at once)")
	}
}

func TestPSKFromFileAndStdin(t *testing.T) {
	const psk = "file-and-stdin-psk-0123"
	file := filepath.Join(t.TempDir(), "psk")
	if err := os.WriteFile(file, []byte(psk+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ike, natt := freePorts(t)
	b := startTool(t, psk+"\n", append(endpointArgs("127.0.0.2", "127.0.0.1", "b", "a", ike, natt), "-psk-file", "-")...)
	a := startTool(t, "", append(endpointArgs("127.0.0.1", "127.0.0.2", "a", "b", ike, natt), "-psk-file", file, "-initiate")...)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(a.out.String(), `"event":"established"`) || !strings.Contains(b.out.String(), `"event":"established"`) {
		select {
		case err := <-a.done:
			a.done <- err
			t.Fatalf("the side with -psk-file FILE exited: %v", err)
		case err := <-b.done:
			b.done <- err
			t.Fatalf("the side with -psk-file - exited: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Child SA within 60 s")
		}
	}
	for _, x := range []*tool{a, b} {
		if e := x.errOut.String(); strings.Contains(e, "ovnsec-ike: warning") {
			t.Errorf("unexpected warning: %s", e)
		}
	}
}
