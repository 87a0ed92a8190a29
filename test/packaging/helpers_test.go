package packaging

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/ovnsec/ovnsec/internal/packaging"
	"github.com/ovnsec/ovnsec/internal/testenv"
)

// testVersion is built into the binaries and so into the package
// (0.1.0~pkgtest): an installed ovnsec of that version is this test's.
const (
	testVersion = "0.1.0-pkgtest"
	debVersion  = "0.1.0~pkgtest"
)

// repoRoot is the repository root.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds the packaged binaries once per test process, exactly as
// `make deb` does (packaging.BuildBinaries), with testVersion.
func binaries(t *testing.T) string {
	t.Helper()
	testenv.NeedCommands(t, "go")
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "ovnsec-pkgtest-bin-")
		if buildErr != nil {
			return
		}
		buildErr = packaging.BuildBinaries(context.Background(), repoRoot(), binDir, testVersion, runtime.GOARCH)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// TestMain removes the binaries built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// unitFile is a systemd unit file as "section.Key" -> values, in order.
type unitFile map[string][]string

// readUnit parses a unit file: sections, Key=value lines, comments. The
// units of deploy/systemd use no line continuations; one is refused.
func readUnit(path string) (unitFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case strings.HasSuffix(line, "\\"):
			return nil, fmt.Errorf("%s:%d: line continuation not supported by this reader", path, n)
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			return nil, fmt.Errorf("%s:%d: not a Key=value line in a section: %q", path, n, line)
		}
		key := section + "." + strings.TrimSpace(k)
		u[key] = append(u[key], strings.TrimSpace(v))
	}
	return u, sc.Err()
}

// words are the space-separated values of key, over all its lines.
func (u unitFile) words(key string) []string {
	var w []string
	for _, v := range u[key] {
		w = append(w, strings.Fields(v)...)
	}
	return w
}

// one is the single value of key.
func (u unitFile) one(t *testing.T, key string) string {
	t.Helper()
	if len(u[key]) != 1 {
		t.Fatalf("%s: %d values %q, want one", key, len(u[key]), u[key])
	}
	return u[key][0]
}

// run runs a command and returns its combined output.
func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// mustRun is run that fails the test when the command fails.
func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := run(t, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}
