package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/testenv"
	"github.com/ovnsec/ovnsec/test/harness"
)

// demoProbeNative reports why ovnsecd refuses the native backend, or "" when
// it accepts the flags (it then keeps running or fails for another reason).
func demoProbeNative(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(buildBinaries(t), "ovnsecd")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	args := append(strings.Fields(nativeArgs), "--rundir="+dir, "--compat-name=false", "unix:"+filepath.Join(dir, "none.sock"))
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if ctx.Err() != nil || err == nil {
		return ""
	}
	for _, refusal := range []string{"not available in this build", "flag provided but not defined"} {
		if strings.Contains(string(out), refusal) {
			for _, l := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(l, "ovnsecd: ") {
					return l
				}
			}
			return refusal
		}
	}
	return ""
}

// TestOVNIPsecEncrypts: with ipsec=true every tunnel comes up and only ESP
// crosses the underlay; with ipsec=false Geneve is back. It needs the
// native backend, and fails under CI when ovnsecd does not have it.
func TestOVNIPsecEncrypts(t *testing.T) {
	ovnPrereqs(t)
	if why := demoProbeNative(t); why != "" {
		testenv.Missing(t, "native backend in ovnsecd (%s)", why)
	}
	e := demoUp(t)
	if e.backend != "native" {
		t.Fatalf("scripts/demo.sh started ovnsecd with %q, not native; see %s/ch1/ovnsecd.out", e.backend, e.vars["DEMO_STATE"])
	}
	e.nbctl(t, "set", "nb_global", ".", "ipsec=true")
	demoEventually(t, 30*time.Second, "ipsec=true on every chassis", func() error { return e.ipsecOn(t) })
	demoEventually(t, 60*time.Second, "every tunnel up", func() error {
		for i, ch := range e.chassis {
			for _, s := range e.tunnelsShow(t, i) {
				if s.State != backend.StateUp {
					return fmt.Errorf("%s %s: Status %s", ch, s.Name, harness.Status(s))
				}
			}
		}
		return nil
	})

	lines := e.capture(t, func() {
		e.pingAll(t)
		e.iperf(t, 2)
	})
	kinds := demoPacketKinds(lines)
	if kinds["esp"] == 0 || kinds["geneve"] != 0 || kinds["other"] != 0 {
		t.Fatalf("ipsec=true: want only ESP (and IKE) between the chassis, got %v:\n%s", kinds, demoHead(lines, 20))
	}

	e.nbctl(t, "set", "nb_global", ".", "ipsec=false")
	demoEventually(t, 30*time.Second, "ipsec=false on every chassis", func() error { return e.ipsecOff(t) })
	lines = e.capture(t, func() { e.pingAll(t) })
	if kinds := demoPacketKinds(lines); kinds["geneve"] == 0 || kinds["esp"] != 0 {
		t.Fatalf("ipsec=false again: want Geneve and no ESP, got %v:\n%s", kinds, demoHead(lines, 20))
	}
}
