// Package testenv lets tests state what they need from the machine. A test
// whose prerequisite is missing is skipped on a developer's machine but
// fails loudly under CI (CI=true), so that CI never passes by skipping.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing skips t, or fails it under CI, naming what is missing and how to
// get it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("prerequisite missing under CI: "+format+" (run scripts/install-deps.sh)", args...)
	}
	t.Skipf("prerequisite missing: "+format+" (run scripts/install-deps.sh)", args...)
}

// NeedCommands requires every named program on PATH (or as an absolute
// path) and returns their resolved paths in the same order.
func NeedCommands(t testing.TB, names ...string) []string {
	t.Helper()
	paths := make([]string, len(names))
	for i, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			Missing(t, "command %q not found", n)
			return nil
		}
		paths[i] = p
	}
	return paths
}

// NeedRoot requires uid 0 (network namespaces, TUN/TAP).
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "root privileges")
	}
}

// Short skips t under -short. Integration tests call it so that a quick
// `go test -short ./...` runs only unit tests. It never applies under CI.
func Short(t testing.TB) {
	t.Helper()
	if testing.Short() && !InCI() {
		t.Skip("integration test skipped with -short")
	}
}
