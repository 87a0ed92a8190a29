// Package netns builds test hosts in network namespaces: namespaces joined
// by veth pairs, commands run inside them, and a private strongSwan charon
// per host. Tests use it; nothing in the product imports it.
package netns

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/ovnsec/ovnsec/internal/testenv"
)

// Host is one network namespace with one underlay address.
type Host struct {
	t    testing.TB
	Name string // namespace name
	Dev  string // underlay veth inside the namespace
	IP   string // underlay address without prefix length
}

// Run runs a command on the machine and fails the test on error.
func Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Pair creates two namespaces <prefix>-a and <prefix>-b joined by a veth
// pair (<prefix>-va, <prefix>-vb) with ipA/ipB (CIDR notation, e.g.
// "192.0.2.1/24"). Both are deleted when the test ends; a leftover from a
// killed run is deleted first.
func Pair(t testing.TB, prefix, ipA, ipB string) (a, b *Host) {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, "ip")
	hosts := make([]*Host, 2)
	for i, suffix := range []string{"a", "b"} {
		ns := prefix + "-" + suffix
		_ = exec.Command("ip", "netns", "del", ns).Run()
		Run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		hosts[i] = &Host{t: t, Name: ns, Dev: prefix + "-v" + suffix}
	}
	Run(t, "ip", "link", "add", hosts[0].Dev, "netns", hosts[0].Name, "type", "veth",
		"peer", "name", hosts[1].Dev, "netns", hosts[1].Name)
	for i, cidr := range []string{ipA, ipB} {
		h := hosts[i]
		h.IP, _, _ = strings.Cut(cidr, "/")
		Run(t, "ip", "-n", h.Name, "addr", "add", cidr, "dev", h.Dev)
		Run(t, "ip", "-n", h.Name, "link", "set", h.Dev, "up")
		Run(t, "ip", "-n", h.Name, "link", "set", "lo", "up")
	}
	return hosts[0], hosts[1]
}

// Exec runs a command inside the namespace and returns its combined output
// and error.
func (h *Host) Exec(args ...string) (string, error) {
	all := append([]string{"netns", "exec", h.Name}, args...)
	out, err := exec.Command("ip", all...).CombinedOutput()
	return string(out), err
}

// MustExec is Exec that fails the test on error.
func (h *Host) MustExec(args ...string) string {
	h.t.Helper()
	out, err := h.Exec(args...)
	if err != nil {
		h.t.Fatalf("in %s: %s: %v\n%s", h.Name, strings.Join(args, " "), err, out)
	}
	return out
}
