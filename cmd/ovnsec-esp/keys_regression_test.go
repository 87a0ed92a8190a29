// Regression test for the audit of 354e2ea: ovnsec-esp took its ESP keys on
// the command line (--key-out, --key-in), where every local user can read
// them. The program itself (this test binary re-executed as main) must
// refuse keys in argv and accept them from a key file and from stdin.
// Without root it cannot open a TUN device, so --mtu 100 makes it stop
// right after the options are accepted (exit 1, "MTU 100 out of range")
// instead of at option parsing (exit 2); TestProgramInNetns carries
// traffic with keys from a file and from stdin. Only the command line is
// used, so the test runs against 354e2ea too.

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runProgram runs the program with args and stdin and returns its exit
// code and stderr.
func runProgram(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "OVNSEC_ESP_RUN_MAIN=1")
	cmd.Stdin = strings.NewReader(stdin)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, errb.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), errb.String()
	}
	t.Fatalf("run %v: %v", args, err)
	return 0, ""
}

// stopAfterOptions are valid options that make the program fail right
// after parsing them (TUN MTU below 576), before touching the system.
var stopAfterOptions = []string{"--static-keys-for-testing", "--dev", "h2esp0", "--mtu", "100",
	"--local", "192.0.2.1", "--remote", "192.0.2.2", "--addr", "203.0.113.1/32",
	"--remote-net", "203.0.113.2/32", "--spi-out", "0x1001", "--spi-in", "0x2002"}

func TestKeysOnCommandLineRefused(t *testing.T) {
	key := strings.Repeat("5a", 36)
	for _, flags := range [][]string{
		{"--key-out", key, "--key-in", key},
		{"--key-out=" + key},
		{"--key-in", key},
	} {
		code, stderr := runProgram(t, "", append(append([]string(nil), stopAfterOptions...), flags...)...)
		if code != 2 || !strings.Contains(stderr, "--key-file") || !strings.Contains(stderr, "visible to every local user") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and a refusal naming --key-file", flags[0], code, stderr)
		}
		if strings.Contains(stderr, key) {
			t.Errorf("%v: stderr shows the key", flags[0])
		}
	}
}

func TestKeysFromFileAndStdinAccepted(t *testing.T) {
	keys := "key-out " + strings.Repeat("11", 20) + "\nkey-in " + strings.Repeat("22", 36) + "\n"
	file := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(file, []byte(keys), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, file, stdin string }{
		{"file", file, ""},
		{"stdin", "-", keys},
	} {
		code, stderr := runProgram(t, tc.stdin, append(append([]string(nil), stopAfterOptions...), "--key-file", tc.file)...)
		if code != 1 || !strings.Contains(stderr, "MTU 100 out of range") {
			t.Errorf("%s: exit %d, stderr %q; want the keys accepted (exit 1 at the MTU check after parsing)", tc.name, code, stderr)
		}
		if strings.Contains(stderr, "warning: key file") {
			t.Errorf("%s: unexpected warning: %s", tc.name, stderr)
		}
	}
}
