package packaging

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/ovnsec/ovnsec/internal/testenv"
)

// root is the repository root seen from this package's directory.
const root = "../.."

// fakeBinaries writes stand-ins for the packaged binaries: Build copies
// them, it does not run them.
func fakeBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, b := range Binaries() {
		if err := os.WriteFile(filepath.Join(dir, b), []byte("#!/bin/sh\necho "+b+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func dpkgDeb(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func buildTestDeb(t *testing.T) string {
	t.Helper()
	testenv.NeedCommands(t, "dpkg-deb")
	path, err := Build(Options{Root: root, BinDir: fakeBinaries(t), Version: "1.2.3-rc1", Arch: "amd64", OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBuildControl(t *testing.T) {
	deb := buildTestDeb(t)
	if got, want := filepath.Base(deb), "ovnsec_1.2.3~rc1_amd64.deb"; got != want {
		t.Errorf("file name %s, want %s", got, want)
	}
	for field, want := range map[string]string{
		"Package":      "ovnsec",
		"Version":      "1.2.3~rc1", // sorts before 1.2.3
		"Architecture": "amd64",
		"Depends":      "openvswitch-switch, openvswitch-common",
	} {
		if got := strings.TrimSpace(dpkgDeb(t, "-f", deb, field)); got != want {
			t.Errorf("%s: %q, want %q", field, got, want)
		}
	}
	// The two /etc/default files are conffiles: an upgrade keeps the
	// operator's options.
	conf := strings.Fields(dpkgDeb(t, "-I", deb, "conffiles"))
	slices.Sort(conf)
	if want := []string{"/etc/default/ovnsec-ca", "/etc/default/ovnsecd"}; !slices.Equal(conf, want) {
		t.Errorf("conffiles %q, want %q", conf, want)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		src, err := os.ReadFile(filepath.Join(root, "packaging/scripts", s))
		if err != nil {
			t.Fatal(err)
		}
		if got := dpkgDeb(t, "-I", deb, s); got != string(src) {
			t.Errorf("control %s differs from packaging/scripts/%s", s, s)
		}
	}
}

func TestBuildContents(t *testing.T) {
	deb := buildTestDeb(t)
	// mode and owner of every regular file, by path.
	files := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(dpkgDeb(t, "-c", deb)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || strings.HasPrefix(f[0], "d") {
			continue
		}
		files[strings.TrimPrefix(f[len(f)-1], ".")] = f[0] + " " + f[1]
	}
	want := map[string]string{
		"/usr/bin/ovnsecd":                      "-rwxr-xr-x root/root",
		"/usr/bin/ovnsec":                       "-rwxr-xr-x root/root",
		"/lib/systemd/system/ovnsecd.service":   "-rw-r--r-- root/root",
		"/lib/systemd/system/ovnsec-ca.service": "-rw-r--r-- root/root",
		"/etc/default/ovnsecd":                  "-rw-r--r-- root/root",
		"/etc/default/ovnsec-ca":                "-rw-r--r-- root/root",
		"/usr/share/doc/ovnsec/README.md":       "-rw-r--r-- root/root",
	}
	for p, mode := range want {
		if got, ok := files[p]; !ok {
			t.Errorf("%s is not in the package", p)
		} else if got != mode {
			t.Errorf("%s: %s, want %s", p, got, mode)
		}
	}
	for p := range files {
		if _, ok := want[p]; !ok {
			t.Errorf("unexpected file %s in the package", p)
		}
	}

	// What is packaged is what the repository holds: every unit of
	// deploy/systemd, the defaults and the binaries as given.
	x := t.TempDir()
	dpkgDeb(t, "-x", deb, x)
	same := map[string]string{
		"/etc/default/ovnsecd":   "packaging/default/ovnsecd",
		"/etc/default/ovnsec-ca": "packaging/default/ovnsec-ca",
	}
	units, err := filepath.Glob(filepath.Join(root, "deploy/systemd/*"))
	if err != nil || len(units) == 0 {
		t.Fatalf("no units in deploy/systemd: %v", err)
	}
	for _, u := range units {
		same["/lib/systemd/system/"+filepath.Base(u)] = filepath.Join("deploy/systemd", filepath.Base(u))
	}
	for dst, src := range same {
		a, err := os.ReadFile(filepath.Join(x, dst))
		if err != nil {
			t.Errorf("%s (from %s) is not in the package: %v", dst, src, err)
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, src))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s", dst, src)
		}
	}
	if b, err := os.ReadFile(filepath.Join(x, "usr/bin/ovnsecd")); err != nil || string(b) != "#!/bin/sh\necho ovnsecd\n" {
		t.Errorf("/usr/bin/ovnsecd is not the given binary: %q, %v", b, err)
	}
}

func TestBuildRefuses(t *testing.T) {
	bins := fakeBinaries(t)
	for _, v := range []string{"", "v1.2.3", "1.2", "dev", "1.2.3 4", "1.2.3-rc_1"} {
		if _, err := Build(Options{Root: root, BinDir: bins, Version: v, OutDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "semantic version") {
			t.Errorf("version %q: err %v, want a refusal naming the semantic version", v, err)
		}
	}
	empty := t.TempDir()
	_, err := Build(Options{Root: root, BinDir: empty, Version: "1.0.0", OutDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "binary ovnsecd") {
		t.Errorf("no binaries: err %v, want one naming ovnsecd", err)
	}
	out := t.TempDir()
	_, err = Build(Options{Root: root, Config: filepath.Join(root, "packaging/missing.yaml"), BinDir: bins, Version: "1.0.0", OutDir: out})
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing configuration: err %v, want one naming it", err)
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Errorf("a failed build left %d files in the output directory", len(left))
	}
}

func TestBinaryVersion(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ctx := context.Background()
	// ovnsecd prints its version on standard error.
	if v, err := BinaryVersion(ctx, script("good", `echo "ovnsecd 0.3.0-rc2" >&2`)); err != nil || v != "0.3.0-rc2" {
		t.Errorf("BinaryVersion = %q, %v; want 0.3.0-rc2", v, err)
	}
	for name, body := range map[string]string{
		"other":  `echo "ovs-monitor-ipsec 3.1"`,
		"empty":  `true`,
		"failed": `echo "ovnsecd 1.0.0"; exit 1`,
		"extra":  `echo "ovnsecd 1.0.0 (built by hand)"`,
	} {
		if v, err := BinaryVersion(ctx, script(name, body)); err == nil {
			t.Errorf("%s: BinaryVersion = %q, want an error", name, v)
		}
	}
}

func TestBuildBinariesRefusesBadVersion(t *testing.T) {
	err := BuildBinaries(context.Background(), root, t.TempDir(), "1.0", runtime.GOARCH)
	if err == nil || !strings.Contains(err.Error(), "semantic version") {
		t.Errorf("err %v, want a refusal", err)
	}
}
