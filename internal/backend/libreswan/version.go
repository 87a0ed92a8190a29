// Version: which libreswan the ipsec command is, read from
// `ipsec --version` as ovs-monitor-ipsec reads it, and the command set
// that follows from it (libreswan 4: `ipsec auto --add ...`; libreswan 5
// removed `auto`: `ipsec --add ...`).

package libreswan

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Version is the libreswan release behind the ipsec command.
type Version struct {
	Major int
	Full  string // as printed, e.g. "4.10"
}

var versionRE = regexp.MustCompile(`^Libreswan v?([0-9][^\s]*)`)

// ParseVersion reads the output of `ipsec --version`: its first line must
// be "Libreswan [v]<major>[.<minor>...]" (upstream's regex). strongSwan's
// ipsec ("Linux strongSwan U5.9.8/...") is refused by name, since driving
// it with libreswan's commands would configure nothing.
func ParseVersion(out string) (Version, error) {
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	line = strings.TrimSpace(line)
	if strings.Contains(line, "strongSwan") {
		return Version{}, fmt.Errorf("the ipsec command is strongSwan's (%q), not libreswan's: use --ike-daemon=strongswan, or install libreswan", truncate(line, 80))
	}
	m := versionRE.FindStringSubmatch(line)
	if m == nil {
		return Version{}, fmt.Errorf("ipsec --version printed %q, not \"Libreswan <version>\": is libreswan installed?", truncate(line, 80))
	}
	majorText, _, _ := strings.Cut(m[1], ".")
	major, err := strconv.Atoi(majorText)
	if err != nil || major < 0 || major > 1000 {
		return Version{}, fmt.Errorf("ipsec --version printed %q: cannot read the major version %q", truncate(line, 80), majorText)
	}
	return Version{Major: major, Full: m[1]}, nil
}

// HasAuto reports whether control commands go through `ipsec auto`
// (libreswan before 5).
func (v Version) HasAuto() bool { return v.Major < 5 }

// DefaultNSSDir is ovs-monitor-ipsec's --ipsec-d default for this version.
func (v Version) DefaultNSSDir() string {
	if v.Major >= 4 {
		return "/var/lib/ipsec/nss"
	}
	return "/etc/ipsec.d"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
