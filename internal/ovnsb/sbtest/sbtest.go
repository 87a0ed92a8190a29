// Package sbtest runs a private ovsdb-server with the real OVN_Southbound
// schema for integration tests, driven with the real ovn-sbctl. Like
// internal/testenv it skips locally and fails under CI=true when a
// prerequisite is missing.
package sbtest

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/ovnsec/ovnsec/internal/testenv"
)

// Schema is where Debian's ovn-central installs the Southbound schema.
const Schema = "/usr/share/ovn/ovn-sb.ovsschema"

// SB is a running Southbound ovsdb-server in a temporary directory.
type SB struct {
	*testenv.OVSDB
	t testing.TB
}

// Start creates a Southbound database, starts ovsdb-server on a unix
// socket and creates the SB_Global row (ipsec=false), as ovn-northd would.
// The server is stopped when the test ends; Stop and Start restart it.
func Start(t testing.TB) *SB {
	t.Helper()
	testenv.NeedCommands(t, "ovn-sbctl")
	sb := &SB{OVSDB: testenv.StartSchema(t, Schema, "Debian package ovn-central"), t: t}
	sb.Sbctl("init")
	return sb
}

// Sbctl runs ovn-sbctl against the database; a failure fails the test.
func (sb *SB) Sbctl(args ...string) string {
	sb.t.Helper()
	all := append([]string{"--db=" + sb.Remote, "--timeout=10"}, args...)
	out, err := exec.Command("ovn-sbctl", all...).CombinedOutput()
	if err != nil {
		sb.t.Fatalf("ovn-sbctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// SetIPsec sets SB_Global ipsec, as ovn-northd does from NB_Global ipsec.
func (sb *SB) SetIPsec(on bool) {
	sb.t.Helper()
	v := "false"
	if on {
		v = "true"
	}
	sb.Sbctl("set", "SB_Global", ".", "ipsec="+v)
}
