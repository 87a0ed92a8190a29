package tunnel

// The dst_port ovnsec protects must be the one ovs-vswitchd uses, whatever
// the option's text: this test writes each value with the real ovs-vsctl,
// lets the real ovs-vswitchd (userspace datapath, in a private network
// namespace) make its tunnel port, and reads back the UDP port it listens
// and sends on.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/testenv"
)

// dstPortValues are the audit's values and their neighbours.
var dstPortValues = []string{
	"6082", "06082", "6082 ", " 6082", "+6082", "6082/udp", "71618", "-1", "abc", "0", "",
	"99999999999999999999", "-99999999999999999999", "4294973378", "0x10", "00081", "65535", "65536", "-65530",
	" +7000x", "--1", "+-1", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
}

func TestDstPortMatchesVswitchd(t *testing.T) {
	testenv.Short(t)
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, "ovs-vswitchd", "ovs-appctl", "ip")
	db := testenv.StartOVSDB(t)

	ns := fmt.Sprintf("ovnsec-dp%d", os.Getpid()%100000)
	_ = exec.Command("ip", "netns", "del", ns).Run()
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	pidfile := filepath.Join(db.Dir, "ovs-vswitchd.pid")
	ctl := filepath.Join(db.Dir, "ovs-vswitchd.ctl")
	cmd := exec.Command("ip", "netns", "exec", ns, "ovs-vswitchd", db.Remote, "--disable-system",
		"--pidfile="+pidfile, "--unixctl="+ctl, "--log-file="+filepath.Join(db.Dir, "ovs-vswitchd.log"), "--detach", "--no-chdir")
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+db.Dir, "OVS_LOGDIR="+db.Dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("start ovs-vswitchd: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidfile); err == nil {
			_ = exec.Command("kill", "-9", strings.TrimSpace(string(b))).Run()
		}
	})
	appctl := func(args ...string) string {
		out, err := exec.Command("ovs-appctl", append([]string{"-t", ctl}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ovs-appctl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	db.Vsctl("add-br", "dpbr", "--", "set", "bridge", "dpbr", "datapath_type=netdev")
	for i, v := range dstPortValues {
		typ := "geneve"
		if i%2 == 1 {
			typ = "vxlan"
		}
		name := fmt.Sprintf("dp%d", i)
		db.Vsctl("add-port", "dpbr", name, "--", "set", "interface", name, "type="+typ,
			fmt.Sprintf("options:remote_ip=192.0.2.%d", i+1), "options:dst_port="+strconv.Quote(v))
	}
	// Interface "dpN ofport/odpport: (type: ...)" and listening tunnel
	// ports "genev_sys_6082 (2)" give each interface's UDP port.
	ifRe := regexp.MustCompile(`(?m)^\s+(dp\d+) \d+/(\d+): \((geneve|vxlan)`)
	portRe := regexp.MustCompile(`(?m)^(?:genev|vxlan)_sys_(\d+) \((\d+)\)`)
	var got map[string]uint16
	deadline := time.Now().Add(10 * time.Second)
	for {
		ports := map[string]uint16{}
		for _, m := range portRe.FindAllStringSubmatch(appctl("tnl/ports/show"), -1) {
			p, _ := strconv.Atoi(m[1])
			ports[m[2]] = uint16(p)
		}
		got = map[string]uint16{}
		for _, m := range ifRe.FindAllStringSubmatch(appctl("dpif/show"), -1) {
			if p, ok := ports[m[2]]; ok {
				got[m[1]] = p
			}
		}
		if len(got) == len(dstPortValues) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(got) != len(dstPortValues) {
		t.Fatalf("ovs-vswitchd reported %d of %d tunnel ports:\n%s\n%s", len(got), len(dstPortValues), appctl("dpif/show"), appctl("tnl/ports/show"))
	}
	for i, v := range dstPortValues {
		typ := TypeGeneve
		if i%2 == 1 {
			typ = TypeVXLAN
		}
		ours, problem := dstPort(typ, map[string]string{"dst_port": v})
		theirs := got[fmt.Sprintf("dp%d", i)]
		if ours != theirs {
			t.Errorf("dst_port=%q (%s): ovs-vswitchd uses %d, ovnsec protects %d", v, typ, theirs, ours)
		}
		// A problem is reported unless the text is the port itself.
		strict, err := strconv.ParseUint(v, 10, 16)
		wantProblem := err != nil || uint16(strict) != theirs || theirs == 0
		if wantProblem != (problem != "") {
			t.Errorf("dst_port=%q: problem %q, want one: %v", v, problem, wantProblem)
		}
	}
}
