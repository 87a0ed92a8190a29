package packaging

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/packaging"
	"github.com/ovnsec/ovnsec/internal/testenv"
)

// units are the systemd units the package installs, where Debian 12
// packages put them.
var units = []string{"/lib/systemd/system/ovnsecd.service", "/lib/systemd/system/ovnsec-ca.service"}

// unitDirs are where systemd looks for units on Debian 12.
var unitDirs = []string{"/etc/systemd/system", "/run/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"}

// exposure is the highest "systemd-analyze security" exposure (times 10)
// each unit may have: the hardening the units carry today (2.8 and 1.9)
// with a little slack. Removing a protection of weight 0.3 or more, or
// several small ones, fails the test.
var exposure = map[string]int{"ovnsecd.service": 30, "ovnsec-ca.service": 21}

// TestDebInstalls builds the Debian package as `make deb` does, installs
// it with dpkg -i on this machine, checks what dpkg installed, has
// systemd-analyze verify the installed units, runs the installed ovnsecd
// (its --version, and the unit's command line with the packaged defaults),
// then purges it and checks nothing is left.
func TestDebInstalls(t *testing.T) {
	testenv.Short(t)
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, "dpkg", "dpkg-query", "dpkg-deb", "systemd-analyze", "sh")

	if v, present := installed(t); present {
		if v != debVersion {
			t.Fatalf("package ovnsec %s is installed on this machine, not by this test; the test would replace and purge it: remove it first (dpkg --purge ovnsec)", v)
		}
		t.Logf("purging ovnsec %s left by an interrupted run of this test", v)
		dpkg(t, "--purge", "ovnsec")
	}

	deb, err := packaging.Build(packaging.Options{Root: repoRoot(), BinDir: binaries(t), Version: testVersion, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, present := installed(t); present {
			dpkg(t, "--purge", "ovnsec")
		}
	})
	t.Logf("dpkg -i %s:\n%s", filepath.Base(deb), dpkg(t, "-i", deb))

	if v, present := installed(t); !present || v != debVersion {
		t.Fatalf("after dpkg -i: ovnsec %q installed=%v, want %s", v, present, debVersion)
	}
	listed := map[string]bool{}
	for _, p := range strings.Split(mustRun(t, "dpkg", "-L", "ovnsec"), "\n") {
		listed[p] = true
	}
	for _, p := range append([]string{"/usr/bin/ovnsecd", "/usr/bin/ovnsec", "/etc/default/ovnsecd", "/etc/default/ovnsec-ca"}, units...) {
		if !listed[p] {
			t.Errorf("dpkg -L ovnsec does not list %s", p)
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("installed file: %v", err)
		}
	}
	if c := mustRun(t, "dpkg-query", "-W", "-f=${Conffiles}", "ovnsec"); !strings.Contains(c, "/etc/default/ovnsecd ") || !strings.Contains(c, "/etc/default/ovnsec-ca ") {
		t.Errorf("conffiles %q, want /etc/default/ovnsecd and /etc/default/ovnsec-ca", c)
	}
	// Installed, not enabled: ovnsecd would stop openvswitch-ipsec, and
	// ovnsec-ca's command does not exist yet.
	for _, u := range units {
		wants := filepath.Join("/etc/systemd/system/multi-user.target.wants", filepath.Base(u))
		if _, err := os.Lstat(wants); err == nil {
			t.Errorf("%s exists: the package enabled %s", wants, filepath.Base(u))
		}
	}

	t.Run("systemd-analyze verify", func(t *testing.T) { verifyUnits(t) })
	t.Run("units ordered against existing units", func(t *testing.T) { dependenciesExist(t) })
	t.Run("systemd-analyze security", func(t *testing.T) {
		for _, u := range units {
			name := filepath.Base(u)
			out, err := run(t, "systemd-analyze", "security", "--offline=true", fmt.Sprintf("--threshold=%d", exposure[name]), u)
			last := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
			if err != nil {
				t.Errorf("%s: exposure above %.1f (%v): %s\n%s", name, float64(exposure[name])/10, err, last, out)
				continue
			}
			t.Logf("%s", last)
		}
	})
	t.Run("reload is the hitless upgrade, restart keeps the sockets", func(t *testing.T) {
		uf, err := readUnit(units[0])
		if err != nil {
			t.Fatal(err)
		}
		// The upgraded process, not the main one, sends MAINPID= and
		// READY=1 (cmd/ovnsecd/upgrade.go): notify, with access for all.
		for key, want := range map[string]string{
			"Service.Type": "notify", "Service.NotifyAccess": "all", "Service.ExecReload": "/bin/kill -HUP $MAINPID",
			// A restart keeps the sockets (cmd/ovnsecd/fdstore.go).
			"Service.FileDescriptorStoreMax": "8",
		} {
			if got := uf.one(t, key); got != want {
				t.Errorf("%s: %s=%q, want %q", units[0], key, got, want)
			}
		}
	})
	t.Run("ovnsecd --version", func(t *testing.T) {
		out := mustRun(t, "/usr/bin/ovnsecd", "--version")
		if strings.TrimSpace(out) != "ovnsecd "+testVersion {
			t.Errorf("/usr/bin/ovnsecd --version printed %q, want %q", out, "ovnsecd "+testVersion)
		}
		mustRun(t, "/usr/bin/ovnsec", "help")
	})
	t.Run("ExecStart with the packaged defaults", func(t *testing.T) { execStartParses(t) })

	t.Log(dpkg(t, "--purge", "ovnsec"))
	if v, present := installed(t); present {
		t.Errorf("after dpkg --purge: ovnsec %s still known to dpkg", v)
	}
	left := append([]string{"/usr/bin/ovnsecd", "/usr/bin/ovnsec", "/etc/default/ovnsecd", "/etc/default/ovnsec-ca", "/usr/share/doc/ovnsec"}, units...)
	for _, d := range []string{"/var/lib/systemd/deb-systemd-helper-enabled", "/var/lib/systemd/deb-systemd-helper-masked"} {
		m, _ := filepath.Glob(filepath.Join(d, "*ovnsec*"))
		left = append(left, m...)
		m, _ = filepath.Glob(filepath.Join(d, "*", "*ovnsec*"))
		left = append(left, m...)
	}
	for _, p := range left {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is left after dpkg --purge ovnsec", p)
		}
	}
}

// installed is the version of the ovnsec package dpkg knows (installed, or
// its configuration files left), if any.
func installed(t *testing.T) (string, bool) {
	t.Helper()
	out, err := run(t, "dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Version}", "ovnsec")
	if err != nil {
		return "", false // "no packages found matching ovnsec"
	}
	status, version, _ := strings.Cut(strings.TrimSpace(out), " ")
	if status == "un" || version == "" {
		return "", false
	}
	return strings.TrimSpace(version), true
}

// dpkg runs dpkg, waiting while another dpkg or apt holds its lock (other
// work on this machine may be installing packages).
func dpkg(t *testing.T, args ...string) string {
	t.Helper()
	for tries := 0; ; tries++ {
		out, err := run(t, "dpkg", args...)
		if err == nil {
			return out
		}
		if !strings.Contains(out, "lock") || tries >= 300 {
			t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if tries == 0 {
			t.Logf("dpkg is locked, waiting: %s", strings.TrimSpace(out))
		}
		time.Sleep(time.Second)
	}
}

// verifyUnits runs systemd-analyze verify on the installed units. It must
// succeed and say nothing about them. It may load the units ours are
// ordered against and warn about those (other packages' files, e.g. a
// PIDFile= under /var/run): such lines are logged, not failures.
func verifyUnits(t *testing.T) {
	for _, u := range units {
		name := filepath.Base(u)
		out, err := run(t, "systemd-analyze", "verify", u)
		if err != nil {
			t.Errorf("systemd-analyze verify %s: %v\n%s", u, err, out)
			continue
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			switch {
			case line == "":
			case strings.Contains(line, name) || strings.Contains(line, "/usr/bin/ovnsec"):
				t.Errorf("systemd-analyze verify %s: %s", u, line)
			default:
				t.Logf("systemd-analyze verify %s, about another unit (accepted): %s", u, line)
			}
		}
	}
}

// dependenciesExist checks that every unit ours want, require or are
// ordered after exists here, where the OVS packages are installed:
// systemd-analyze verify does not report a misspelt name there. Conflicts=
// names openvswitch-ipsec.service, which need not be installed.
func dependenciesExist(t *testing.T) {
	for _, u := range units {
		uf, err := readUnit(u)
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"Unit.Wants", "Unit.Requires", "Unit.After", "Unit.Before", "Unit.BindsTo", "Unit.PartOf"} {
			for _, dep := range uf.words(key) {
				found := false
				for _, d := range unitDirs {
					if _, err := os.Stat(filepath.Join(d, dep)); err == nil {
						found = true
						break
					}
				}
				if !found {
					t.Errorf("%s: %s=%s: no such unit in %s", filepath.Base(u), strings.TrimPrefix(key, "Unit."), dep, strings.Join(unitDirs, ", "))
				}
			}
		}
	}
}

// execStartParses runs ovnsecd.service's ExecStart= through sh with
// /etc/default/ovnsecd sourced, as systemd expands $OVNSECD_OPTS (split on
// white space), plus --version: ovnsecd parses every option before it
// prints its version, so an option it does not know fails here. The
// commented-out alternatives in the defaults (the native backend) are
// checked the same way.
func execStartParses(t *testing.T) {
	uf, err := readUnit(units[0])
	if err != nil {
		t.Fatal(err)
	}
	start := uf.one(t, "Service.ExecStart")
	if !strings.HasPrefix(start, "/usr/bin/ovnsecd ") {
		t.Fatalf("ExecStart=%s does not run /usr/bin/ovnsecd", start)
	}
	if got := uf.one(t, "Service.EnvironmentFile"); got != "-/etc/default/ovnsecd" {
		t.Errorf("EnvironmentFile=%s, want -/etc/default/ovnsecd", got)
	}
	defaults, err := os.ReadFile("/etc/default/ovnsecd")
	if err != nil {
		t.Fatal(err)
	}
	variants := map[string]string{"active": string(defaults)}
	for _, line := range strings.Split(string(defaults), "\n") {
		if opts, ok := strings.CutPrefix(line, "#OVNSECD_OPTS="); ok {
			variants["commented "+opts] = "OVNSECD_OPTS=" + opts + "\n"
		}
	}
	if len(variants) < 2 {
		t.Errorf("/etc/default/ovnsecd has no commented-out OVNSECD_OPTS alternative (the native backend)")
	}
	dir := t.TempDir()
	for name, text := range variants {
		file := filepath.Join(dir, "defaults")
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := run(t, "sh", "-c", `set -a; . "$1"; exec `+start+` --version`, "sh", file)
		if err != nil || strings.TrimSpace(out) != "ovnsecd "+testVersion {
			t.Errorf("%s defaults: ExecStart %q --version: %v\n%s", name, start, err, out)
		} else {
			t.Logf("%s defaults: ExecStart accepted", name)
		}
	}
	// The defaults must set OVNSECD_OPTS to something: an empty one is
	// the native backend without its bridge, which cannot start.
	out := mustRun(t, "sh", "-c", `. /etc/default/ovnsecd; printf %s "$OVNSECD_OPTS"`)
	if !strings.Contains(out, "--ike-daemon=") {
		t.Errorf("/etc/default/ovnsecd sets OVNSECD_OPTS=%q, want a backend chosen (--ike-daemon=...)", out)
	}
}
