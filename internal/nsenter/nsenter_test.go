package nsenter

import (
	"net"
	"os"
	"os/exec"
	"testing"

	"github.com/ovnsec/ovnsec/internal/testenv"
)

func TestPath(t *testing.T) {
	for in, want := range map[string]string{"": "", "a": "/run/netns/a", "/proc/1/ns/net": "/proc/1/ns/net"} {
		if got := Path(in); got != want {
			t.Errorf("Path(%q) = %q, want %q", in, got, want)
		}
	}
}

// A socket made inside Do belongs to that namespace; the caller's
// namespace is untouched afterwards.
func TestDo(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, "ip")
	const ns = "nsenter-t"
	exec.Command("ip", "netns", "del", ns).Run()
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	if out, err := exec.Command("ip", "-n", ns, "addr", "add", "203.0.113.77/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	exec.Command("ip", "-n", ns, "link", "set", "lo", "up").Run()
	own, _ := os.Readlink("/proc/thread-self/ns/net")
	var c net.PacketConn
	if err := Do(ns, func() (err error) {
		c, err = net.ListenPacket("udp4", "203.0.113.77:0")
		return err
	}); err != nil {
		t.Fatalf("listen inside %s: %v", ns, err)
	}
	c.Close()
	if _, err := net.ListenPacket("udp4", "203.0.113.77:0"); err == nil {
		t.Error("the namespace's address is usable outside Do")
	}
	if after, _ := os.Readlink("/proc/thread-self/ns/net"); after != own {
		t.Errorf("caller's namespace changed: %s -> %s", own, after)
	}
	if err := Do("nsenter-missing", func() error { return nil }); err == nil {
		t.Error("Do in a missing namespace succeeded")
	}
}
