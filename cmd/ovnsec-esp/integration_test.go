// integration_test.go: two copies of this program (the test binary
// re-executed as main) under `ip netns exec` in h2-esp-a and h2-esp-b over
// a veth; ping crosses the tunnel and SIGTERM makes each print its
// counters. One reads its keys from a key file, the other from stdin.

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/testenv"
)

func TestMain(m *testing.M) {
	if os.Getenv("OVNSEC_ESP_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestProgramInNetns(t *testing.T) {
	testenv.Short(t)
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, "ip", "ping")
	const nsA, nsB = "h2-esp-a", "h2-esp-b"
	for _, ns := range []string{nsA, nsB} {
		exec.Command("ip", "netns", "del", ns).Run() // leftover of an interrupted run
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	sh(t, "ip", "link", "add", "h2-espva", "netns", nsA, "type", "veth", "peer", "name", "h2-espvb", "netns", nsB)
	sh(t, "ip", "-n", nsA, "addr", "add", "192.0.2.1/24", "dev", "h2-espva")
	sh(t, "ip", "-n", nsB, "addr", "add", "192.0.2.2/24", "dev", "h2-espvb")
	for _, x := range [][2]string{{nsA, "h2-espva"}, {nsB, "h2-espvb"}} {
		sh(t, "ip", "-n", x[0], "link", "set", x[1], "up")
		sh(t, "ip", "-n", x[0], "link", "set", "lo", "up")
	}
	keyAB, keyBA := strings.Repeat("11", 20), strings.Repeat("22", 36)
	keysA := filepath.Join(t.TempDir(), "a.keys")
	if err := os.WriteFile(keysA, []byte("# A's keys\nkey-out "+keyAB+"\nkey-in "+keyBA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func(ns, stdin string, args ...string) (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command("ip", append([]string{"netns", "exec", ns, os.Args[0], "--static-keys-for-testing", "--dev", "h2tun0"}, args...)...)
		cmd.Env = append(os.Environ(), "OVNSEC_ESP_RUN_MAIN=1")
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				t.Logf("%s stderr:\n%s", ns, errb.String())
			}
		})
		return cmd, &out
	}
	a, outA := start(nsA, "", "--local", "192.0.2.1", "--remote", "192.0.2.2", "--addr", "203.0.113.1/32",
		"--remote-net", "203.0.113.2/32", "--spi-out", "0x1001", "--spi-in", "0x2002", "--key-file", keysA)
	b, outB := start(nsB, "key-in "+keyAB+"\nkey-out "+keyBA+"\n", "--local", "192.0.2.2", "--remote", "192.0.2.1", "--addr", "203.0.113.2/32",
		"--remote-net", "203.0.113.1/32", "--spi-out", "0x2002", "--spi-in", "0x1001", "--key-file", "-")

	var err error
	for range 50 {
		if err = exec.Command("ip", "netns", "exec", nsA, "ping", "-c", "1", "-W", "1", "203.0.113.2").Run(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("tunnel did not come up: %v", err)
	}
	sh(t, "ip", "netns", "exec", nsA, "ping", "-c", "3", "-i", "0.2", "-W", "2", "203.0.113.2")

	for _, x := range []struct {
		name string
		cmd  *exec.Cmd
		out  *bytes.Buffer
	}{{"A", a, outA}, {"B", b, outB}} {
		x.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- x.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s exited with %v", x.name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not stop on SIGTERM", x.name)
		}
		var st statsReport
		if err := json.Unmarshal(x.out.Bytes(), &st); err != nil {
			t.Fatalf("%s counters %q: %v", x.name, x.out.String(), err)
		}
		if st.TxPackets < 4 || st.RxPackets < 4 || len(st.RxDrops) != 0 {
			t.Fatalf("%s counters %+v", x.name, st)
		}
	}
}
