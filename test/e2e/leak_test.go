// Leak tests: the security promise of ipsec=true under stress. One demo
// cluster (scripts/demo.sh, native backend) and one underlay capture for
// the whole test; every phase requires zero plaintext Geneve (and zero
// other non-ESP, non-IKE packets) between the chassis once ovnsecd has
// learnt ipsec=true from OVN's SB_Global: the ipsec=true switch-over (with
// ovn-controller lagging, so that no tunnel port has IPsec options yet),
// kill -9 of ovnsecd and its restart, an ovs-vswitchd restart, forged
// plaintext Geneve, Child and IKE SA rekeys under 10 ms pings with short
// lifetimes, and the peer's ovnsecd stopped past the Child SA's hard
// lifetime. After ipsec=false, plaintext Geneve flows again.
//
// The tests of this package that use the demo cluster (its ovd-* names are
// fixed) hold its lock (/tmp/ovnsec-ovd.lock, demoUp) from before
// `scripts/demo.sh up` to after `make demo-down` in t.Cleanup, so they
// run one after the other and never while scripts/demo.sh or bench/ovn.sh
// uses the cluster: another user is waited for, never torn down.
package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/testenv"
	"github.com/ovnsec/ovnsec/internal/tunnel"
	"github.com/ovnsec/ovnsec/test/harness"
)

// leakState is the demo's state directory for this test: the daemons'
// sockets live there, so another cluster's leftovers cannot reach ours.
const leakState = "/tmp/ovnsec-leak-demo"

// leakEnv is the demo cluster plus what the leak phases share.
type leakEnv struct {
	*demoEnv
	cap *leakCapture
	// protected is when every tunnel port was seen with remote_name.
	protected time.Time
	// forgedMark identifies the injected packets in the capture.
	forgedMark string
	forged     []byte // the IP packet replayed (plaintext Geneve ch1 -> ch2)
	// ready: IPsec is on and every tunnel was up; afterSwitch is when the
	// switch-over phase ended.
	ready       bool
	afterSwitch time.Time
}

func (l *leakEnv) rundir(i int) string { return filepath.Join(l.vars["DEMO_STATE"], l.chassis[i]) }

// ctl is chassis i's current ovnsecd control socket (it changes with the pid).
func (l *leakEnv) ctl(i int) string {
	b, err := os.ReadFile(filepath.Join(l.rundir(i), "ovnsecd.pid"))
	if err != nil {
		return l.ctls[i]
	}
	return filepath.Join(l.rundir(i), "ovnsecd."+strings.TrimSpace(string(b))+".ctl")
}

// show is chassis i's tunnels/show, its JSON view.
func (l *leakEnv) show(i int) (harness.Show, error) {
	s, err := harness.ShowCtl(l.ctl(i))
	if err != nil {
		return s, fmt.Errorf("%s: %w", l.chassis[i], err)
	}
	return s, nil
}

// showText is chassis i's tunnels/show as text, for the logs.
func (l *leakEnv) showText(i int) (string, error) {
	return demoRun(10*time.Second, "ovs-appctl", "--timeout=5", "-t", l.ctl(i), "tunnels/show")
}

// allUp checks that every chassis lists all its tunnels as up.
func (l *leakEnv) allUp() error {
	for i, ch := range l.chassis {
		s, err := l.show(i)
		if err != nil {
			return err
		}
		if len(s.Tunnels) != len(l.chassis)-1 {
			return fmt.Errorf("%s lists %d tunnels", ch, len(s.Tunnels))
		}
		for _, d := range s.Tunnels {
			if d.State != backend.StateUp {
				return fmt.Errorf("%s %s v%d: Status %s", ch, d.Name, d.Version, harness.Status(d))
			}
		}
	}
	return nil
}

// leaks returns the plaintext packets between from and to, forged ones
// left out.
func (l *leakEnv) leaks(from, to time.Time) []leakPkt {
	l.cap.flush()
	var leaks []leakPkt
	for _, p := range leakPlaintext(l.cap.between(from, to)) {
		if l.forgedMark == "" || !strings.Contains(p.line, l.forgedMark) {
			leaks = append(leaks, p)
		}
	}
	return leaks
}

// noLeak fails unless the capture holds no plaintext between from and to.
func (l *leakEnv) noLeak(t *testing.T, what string, from, to time.Time) {
	t.Helper()
	leaks := l.leaks(from, to)
	c := leakCount(l.cap.between(from, to))
	t.Logf("%s: underlay %.1f s: ESP %d, IKE %d, plaintext %d", what, to.Sub(from).Seconds(), c["esp"], c["ike"], len(leaks))
	var geneve, other []leakPkt
	for _, p := range leaks {
		if p.kind == "geneve" {
			geneve = append(geneve, p)
		} else {
			other = append(other, p)
		}
	}
	if len(geneve) > 0 {
		t.Errorf("%s: %d plaintext Geneve packets between the chassis while IPsec is required (first at %s, last at %s):\n%s",
			what, len(geneve), leakStamp(geneve[0].at), leakStamp(geneve[len(geneve)-1].at), leakLines(geneve, 10))
	}
	if len(other) > 0 {
		// ICMP "protocol 50 unreachable" means ESP reached a chassis' host
		// stack: br-phy did not steer that peer's traffic at that moment,
		// the same hole plaintext Geneve would leave by.
		t.Errorf("%s: %d other non-ESP, non-IKE packets between the chassis (first at %s):\n%s", what, len(other), leakStamp(other[0].at), leakLines(other, 6))
	}
	if c["esp"] == 0 {
		t.Errorf("%s: no ESP on the underlay at all: the capture or the traffic is broken", what)
	}
}

func leakStamp(t time.Time) string { return fmt.Sprintf("%d.%06d", t.Unix(), t.Nanosecond()/1000) }

// TestLeak runs the leak phases on one cluster. Later phases need the
// earlier ones' state (IPsec on, tunnels up), so a failed switch-over ends
// the test.
func TestLeak(t *testing.T) {
	ovnPrereqs(t)
	if why := demoProbeNative(t); why != "" {
		testenv.Missing(t, "native backend in ovnsecd (%s)", why)
	}
	t.Setenv("DEMO_STATE", leakState)
	start := time.Now()
	e := demoUp(t)
	if e.backend != "native" {
		t.Fatalf("scripts/demo.sh started ovnsecd with %q, not native", e.backend)
	}
	if e.vars["DEMO_STATE"] != leakState {
		t.Fatalf("demo state %q, want %q", e.vars["DEMO_STATE"], leakState)
	}
	t.Logf("demo up in %.1f s", time.Since(start).Seconds())
	l := &leakEnv{demoEnv: e, cap: startLeakCapture(t, e.underlayNS)}
	t.Cleanup(func() { // before the teardown: keep the daemons' logs of a failed run (OVNSEC_KEEP_LOGS=1: of any run)
		if !t.Failed() && os.Getenv("OVNSEC_KEEP_LOGS") != "1" {
			return
		}
		dir := filepath.Join(os.TempDir(), "ovnsec-leak-logs")
		os.RemoveAll(dir)
		for i, ch := range l.chassis {
			os.MkdirAll(filepath.Join(dir, ch), 0o755)
			for _, f := range []string{"ovnsecd.log", "ovnsecd.out", "ovs-vswitchd.log", "ovn-controller.log"} {
				if b, err := os.ReadFile(filepath.Join(l.rundir(i), f)); err == nil {
					os.WriteFile(filepath.Join(dir, ch, f), b, 0o644)
				}
			}
		}
		t.Logf("daemon logs kept in %s", dir)
	})

	t.Run("switch-over", l.switchOver)
	if !l.ready {
		return
	}
	t.Run("forged-geneve", l.forgedGeneve)
	t.Run("ovnsecd-kill-9", l.killOvnsecd)
	t.Run("ovnsecd-sigterm-restart", l.termRestartOvnsecd)
	t.Run("ovnsecd-hup-upgrade", l.hupUpgrade)
	t.Run("ovnsecd-restart-fd-store", l.restartWithFDStore)
	t.Run("vswitchd-restart", l.restartVswitchd)
	t.Run("rekey-and-peer-stopped", l.rekeys)
	end := time.Now()
	l.noLeak(t, "whole test after the switch-over", l.afterSwitch, end)
	t.Run("switch-back", l.switchBack)
	t.Run("switch-over-racing", l.switchOverRacing)
	t.Run("switch-over-required", l.requiredSwitchOver)
	t.Logf("leak test: %.1f s in all", time.Since(start).Seconds())
}

// switchOver: ipsec=true with the default ovnsecd (no --require-ipsec),
// 10 ms pings on every VM pair. ovn-controller is paused on every chassis
// before ipsec=true reaches the Southbound, so no tunnel port gets IPsec
// options until ovnsecd has reacted: the order of events is fixed (the two
// daemons otherwise race to react to the same Southbound update, which
// would make the result depend on the machine's speed), and it is the
// order in which a lagging ovn-controller (a busy chassis, a big cluster)
// puts them anyway. ovnsecd must learn ipsec=true from SB_Global itself and
// drop every tunnel's packets; from then on, through ovn-controller
// writing remote_name into every port, until every tunnel is up and
// carries the pings, the underlay must show no plaintext at all. Only
// before ovnsecd's drop rules are in place (its reaction to the Southbound
// update) is plaintext expected; it is counted and logged.
func (l *leakEnv) switchOver(t *testing.T) {
	l.pingAll(t)
	l.captureForged(t)
	var pings []*leakPing
	for i := range l.vmNS {
		for j := range l.vmIPs {
			if i < j {
				pings = append(pings, startLeakPing(t, l.vmNS[i], l.vmIPs[j], fmt.Sprintf("vm%d->vm%d", i+1, j+1)))
			}
		}
	}
	time.Sleep(time.Second)
	resume := l.pauseOVNControllers(t)
	set := time.Now()
	l.nbctl(t, "--wait=sb", "set", "nb_global", ".", "ipsec=true")
	sbSet := time.Now() // SB_Global ipsec=true by now (ovn-northd has committed it)
	t.Logf("SB_Global ipsec=true %.2f s after ovn-nbctl set nb_global . ipsec=true (ovn-controller paused on every chassis)", sbSet.Sub(set).Seconds())

	// Every tunnel listed INVALID for want of IPsec options, IPsec being
	// required by SB_Global, and its packets blocked by the backend.
	if err := leakWait(30*time.Second, l.allBlockedBySB); err != nil {
		t.Errorf("ovnsecd did not block every tunnel within 30 s of SB_Global ipsec=true while the ports had no IPsec options yet: %v", err)
	} else {
		t.Logf("every tunnel blocked by ovnsecd at most %.2f s after SB_Global ipsec=true", time.Since(sbSet).Seconds())
	}
	// Datapath flows cached from before the drop rules are revalidated
	// away: from here on every tunnel packet meets the new rules.
	l.revalidatorWait(t)
	blocked := time.Now()
	for _, p := range l.tunnelsAll(t) {
		if p.options["remote_name"] != "" {
			t.Errorf("%s already has remote_name although ovn-controller is paused: the test order is broken", p.name)
		}
	}
	time.Sleep(2 * time.Second) // the pings run against the blocked tunnels
	resumed := time.Now()
	resume()

	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := l.remoteNames(t); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("remote_name not on every tunnel port 30 s after ovn-controller resumed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	l.protected = time.Now()
	t.Logf("every tunnel port has remote_name %.2f s after ovn-controller resumed", l.protected.Sub(resumed).Seconds())
	demoEventually(t, 60*time.Second, "every tunnel up", l.allUp)
	up := time.Now()
	time.Sleep(2 * time.Second)
	for _, p := range pings {
		r := p.stop()
		t.Logf("%s across the switch-over: %v; %d replies before the drop rules, %d while blocked, %d after every tunnel was up",
			p.what, r, len(r.replies)-r.repliesAfter(blocked), r.repliesAfter(blocked)-r.repliesAfter(resumed), r.repliesAfter(up))
		// A reply within the first second after the drop rules can only
		// answer a request that crossed before them (the capture below
		// checks that nothing crossed after them).
		if n := r.repliesAfter(blocked.Add(time.Second)) - r.repliesAfter(resumed); n > 0 {
			t.Errorf("%s: %d replies while every tunnel was blocked and had no IPsec options", p.what, n)
		}
		if r.repliesAfter(up) == 0 {
			t.Errorf("%s: no reply after every tunnel was up", p.what)
		}
	}
	l.cap.flush()
	before := leakPlaintext(l.cap.between(sbSet, blocked))
	t.Logf("plaintext between SB_Global ipsec=true and ovnsecd's drop rules on every chassis (ovnsecd's reaction, not yet protected): %d packets", len(before))
	l.ready = true
	end := time.Now()
	l.noLeak(t, "switch-over, from ovnsecd's drop rules through remote_name until every tunnel is up", blocked, end)
	l.noLeak(t, "switch-over, after remote_name on every port (no reaction window)", l.protected, end)
	l.afterSwitch = end
}

// switchBack: ipsec=false. ovnsecd follows SB_Global back to false and
// ovn-controller takes the IPsec options away: ovnsecd lists no tunnel, the
// chassis send plaintext Geneve again (what OVN was told to do), and every
// VM pair reaches the other.
func (l *leakEnv) switchBack(t *testing.T) {
	l.nbctl(t, "--wait=sb", "set", "nb_global", ".", "ipsec=false")
	demoEventually(t, 30*time.Second, "ipsec=false on every chassis", l.ipsecOffEverywhere)
	from := time.Now()
	p := startLeakPing(t, l.vmNS[0], l.vmIPs[1], "vm1->vm2")
	l.pingAll(t)
	time.Sleep(time.Second)
	r := p.stop()
	l.cap.flush()
	c := leakCount(l.cap.between(from, time.Now()))
	t.Logf("after ipsec=false: underlay geneve %d, esp %d; vm1->vm2 %v", c["geneve"], c["esp"], r)
	if c["geneve"] == 0 {
		t.Errorf("no plaintext Geneve between the chassis after ipsec=false: the tunnels carry nothing")
	}
	if r.received == 0 {
		t.Errorf("vm1->vm2 after ipsec=false: no reply: %v", r)
	}
}

// switchOverRacing: ipsec=true again, without pausing ovn-controller, to
// measure (not to assert) what remains of the window in the ordinary
// course of events: ovn-controller and ovnsecd react to the same
// Southbound update, ovn-controller by writing remote_name (within about
// 10 ms here), ovnsecd by installing its drop rules (a table update and one
// br-phy table replace, several ovs-ofctl runs), and which one is done first
// depends on the machine. The plaintext each chassis sent after
// SB_Global ipsec=true is logged; switch-over-required shows that
// --require-ipsec leaves none.
func (l *leakEnv) switchOverRacing(t *testing.T) {
	var pings []*leakPing
	for i := range l.vmNS {
		for j := range l.vmIPs {
			if i < j {
				pings = append(pings, startLeakPing(t, l.vmNS[i], l.vmIPs[j], fmt.Sprintf("vm%d->vm%d", i+1, j+1)))
			}
		}
	}
	time.Sleep(time.Second)
	l.nbctl(t, "--wait=sb", "set", "nb_global", ".", "ipsec=true")
	sbSet := time.Now()
	demoEventually(t, 60*time.Second, "every tunnel up", l.allUp)
	up := time.Now()
	time.Sleep(time.Second)
	for _, p := range pings {
		if r := p.stop(); r.repliesAfter(up) == 0 {
			t.Errorf("%s: no reply after every tunnel was up: %v", p.what, r)
		}
	}
	l.cap.flush()
	last := map[string]string{}
	n := 0
	for _, p := range leakPlaintext(l.cap.between(sbSet, time.Now())) {
		last[l.peerOf(p.src)] = fmt.Sprintf("+%.3f s", p.at.Sub(sbSet).Seconds())
		n++
	}
	t.Logf("racing ovn-controller (not asserted): %d plaintext packets after SB_Global ipsec=true; last one per sender: %v", n, last)
}

// ipsecOffEverywhere checks that no tunnel port has remote_name and that no
// ovnsecd lists a tunnel.
func (l *leakEnv) ipsecOffEverywhere() error {
	for i, ch := range l.chassis {
		ports, err := leakTunnelPorts(l.ovsDBs[i])
		if err != nil {
			return err
		}
		for _, p := range ports {
			if _, ok := p.options["remote_name"]; ok {
				return fmt.Errorf("%s %s still has remote_name", ch, p.name)
			}
		}
		if s, err := l.show(i); err != nil || len(s.Tunnels) != 0 {
			return fmt.Errorf("%s: tunnels/show lists %d tunnels (%v)", ch, len(s.Tunnels), err)
		}
	}
	return nil
}

// requiredSwitchOver: with ovnsecd --require-ipsec on every chassis the
// switch-over has no plaintext window at all. ipsec=false first (plaintext
// expected), then every ovnsecd restarted with the flag: its tunnels,
// which have no IPsec options, are listed INVALID and their packets
// dropped. From then on, through ipsec=true until every tunnel is up and
// carries the pings, the underlay must show no plaintext Geneve.
func (l *leakEnv) requiredSwitchOver(t *testing.T) {
	l.nbctl(t, "set", "nb_global", ".", "ipsec=false")
	demoEventually(t, 30*time.Second, "ipsec=false on every chassis", l.ipsecOffEverywhere)
	l.pingAll(t)
	for i := range l.chassis {
		p := l.proc(t, i, "ovnsecd")
		if err := p.kill(syscall.SIGTERM, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		p.argv = append([]string{p.argv[0], "--require-ipsec"}, p.argv[1:]...) // flags before DATABASE
		l.restartOvnsecd(t, i, p)
	}
	demoEventually(t, 30*time.Second, "every tunnel listed INVALID under --require-ipsec", func() error {
		for i, ch := range l.chassis {
			s, err := l.show(i)
			if err != nil {
				return err
			}
			if len(s.Tunnels) != len(l.chassis)-1 {
				return fmt.Errorf("%s lists %d tunnels", ch, len(s.Tunnels))
			}
			for _, d := range s.Tunnels {
				if d.Config != tunnel.StateInvalid {
					return fmt.Errorf("%s %s v%d %s", ch, d.Name, d.Version, d.Config)
				}
				if !strings.Contains(d.Detail, "--require-ipsec") {
					return fmt.Errorf("%s %s: Status %s does not name --require-ipsec", ch, d.Name, harness.Status(d))
				}
			}
		}
		return nil
	})
	required := time.Now()
	var pings []*leakPing
	for i := range l.vmNS {
		for j := range l.vmIPs {
			if i != j {
				pings = append(pings, startLeakPing(t, l.vmNS[i], l.vmIPs[j], fmt.Sprintf("vm%d->vm%d", i+1, j+1)))
			}
		}
	}
	time.Sleep(time.Second)
	set := time.Now()
	l.nbctl(t, "set", "nb_global", ".", "ipsec=true")
	demoEventually(t, 60*time.Second, "every tunnel up", l.allUp)
	up := time.Now()
	t.Logf("every tunnel up %.2f s after ipsec=true", up.Sub(set).Seconds())
	time.Sleep(2 * time.Second)
	for _, p := range pings {
		r := p.stop()
		t.Logf("%s across the required switch-over: %v", p.what, r)
		if n := len(r.replies) - r.repliesAfter(set); n > 0 {
			t.Errorf("%s: %d replies while the tunnels had no IPsec options: they were not blocked", p.what, n)
		}
		if r.repliesAfter(up) == 0 {
			t.Errorf("%s: no reply after every tunnel was up", p.what)
		}
	}
	l.noLeak(t, "switch-over with --require-ipsec (no window)", required, time.Now())
}

// remoteNames checks remote_name on every tunnel port.
func (l *leakEnv) remoteNames(t *testing.T) error {
	for i, ch := range l.chassis {
		ports := l.tunnels(t, i)
		if len(ports) != len(l.chassis)-1 {
			return fmt.Errorf("%s has %d tunnel ports", ch, len(ports))
		}
		for _, p := range ports {
			if p.options["remote_name"] == "" {
				return fmt.Errorf("%s %s has no remote_name", ch, p.name)
			}
		}
	}
	return nil
}

// captureForged records one plaintext Geneve packet ch1 -> ch2 carrying
// vm1's ping to vm2 (ipsec=false), and checks that replaying it from the
// underlay reaches vm2: the forged packet is a valid one.
func (l *leakEnv) captureForged(t *testing.T) {
	file := filepath.Join(t.TempDir(), "geneve.pcap")
	filter := fmt.Sprintf("udp dst port 6081 and src host %s and dst host %s and greater 100", l.chassisIPs[0], l.chassisIPs[1])
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := leakCapturePcap(ctx, l.underlayNS, "ovd-ul2", filter, file, func() {
		demoRun(5*time.Second, "ip", "netns", "exec", l.vmNS[0], "ping", "-c", "2", "-i", "0.2", "-W", "1", l.vmIPs[1])
	})
	if err != nil {
		t.Fatalf("capture a plaintext Geneve packet to forge: %v", err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pkt, err := leakFirstPcapPacket(data)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	id, seq, err := leakInnerICMP(pkt)
	if err != nil {
		t.Fatalf("captured Geneve packet: %v", err)
	}
	l.forged = pkt
	l.forgedMark = fmt.Sprintf("ICMP echo request, id %d, seq %d,", id, seq)
	if n := l.injectSeen(t); n == 0 {
		t.Fatalf("control: the replayed plaintext Geneve packet (%s) did not reach vm2 with ipsec=false; the forged-packet test would prove nothing", l.forgedMark)
	}
}

// leakInnerICMP returns the ICMP id and sequence of an IPv4/UDP/Geneve/
// Ethernet/IPv4/ICMP packet.
func leakInnerICMP(p []byte) (id, seq uint16, err error) {
	if len(p) < 20 || p[0]>>4 != 4 || p[9] != 17 {
		return 0, 0, fmt.Errorf("not IPv4/UDP")
	}
	o := int(p[0]&0xf) * 4
	o += 8 // UDP
	if len(p) < o+8 {
		return 0, 0, fmt.Errorf("short Geneve header")
	}
	o += 8 + int(p[o]&0x3f)*4 // Geneve header and options
	if len(p) < o+14+20+8 || binary.BigEndian.Uint16(p[o+12:]) != 0x0800 {
		return 0, 0, fmt.Errorf("inner frame is not IPv4")
	}
	o += 14
	if p[o+9] != 1 {
		return 0, 0, fmt.Errorf("inner packet is not ICMP")
	}
	o += int(p[o]&0xf) * 4
	if len(p) < o+8 || p[o] != 8 {
		return 0, 0, fmt.Errorf("inner ICMP is not an echo request")
	}
	return binary.BigEndian.Uint16(p[o+4:]), binary.BigEndian.Uint16(p[o+6:]), nil
}

// injectSeen replays the forged packet 20 times from the central netns
// (source address ch1's, spoofed) and returns how many echo requests with
// its id and sequence vm2 received.
func (l *leakEnv) injectSeen(t *testing.T) int {
	t.Helper()
	var out syncBuf
	id, seq, _ := leakInnerICMP(l.forged)
	cmd := exec.Command("ip", "netns", "exec", l.vmNS[1], "tcpdump", "-l", "-n", "-i", l.vmNS[1],
		fmt.Sprintf("icmp[icmptype] = icmp-echo and icmp[4:2] = %d and icmp[6:2] = %d", id, seq))
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "listening on") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := leakSendRaw(l.vars["CENTRAL_NS"], l.forged, 20); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	return strings.Count(out.String(), "ICMP echo request")
}

// dropCount is chassis i's plaintext-drop counter on br-phy.
func (l *leakEnv) dropCount(t *testing.T, i int) uint64 {
	t.Helper()
	out, err := leakOfctl(l.chassisNS[i], l.rundir(i), "ovd-phy", "dump-flows", "cookie="+leakDropCookie+"/-1")
	if err != nil {
		t.Fatal(err)
	}
	n, flows := sumNPackets(out)
	if flows == 0 {
		t.Fatalf("%s: no plaintext-drop rule (cookie %s) on ovd-phy:\n%s", l.chassis[i], leakDropCookie, out)
	}
	return n
}

// forgedGeneve: the replayed plaintext Geneve from "ch1" is dropped at
// ch2's br-phy, counted, and never reaches vm2.
func (l *leakEnv) forgedGeneve(t *testing.T) {
	before := l.dropCount(t, 1)
	seen := l.injectSeen(t)
	after := l.dropCount(t, 1)
	t.Logf("20 forged plaintext Geneve packets (%s) to ch2: vm2 received %d, ch2's plaintext-drop counter +%d", l.forgedMark, seen, after-before)
	if seen != 0 {
		t.Errorf("forged plaintext Geneve reached vm2 %d times with IPsec required", seen)
	}
	if after-before < 20 {
		t.Errorf("ch2's plaintext-drop counter rose by %d, want at least 20", after-before)
	}
}

// proc reads chassis i's daemon binary from its pidfile. Whatever runs
// under the pidfile at the end is stopped by the demo's teardown.
func (l *leakEnv) proc(t *testing.T, i int, binary string) leakProc {
	t.Helper()
	p, err := readLeakProc(filepath.Join(l.rundir(i), binary+".pid"), binary, l.chassisNS[i])
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// restartOvnsecd starts chassis i's ovnsecd again with the command line
// of p and waits for its control socket.
func (l *leakEnv) restartOvnsecd(t *testing.T, i int, p leakProc) {
	t.Helper()
	if _, err := p.start(filepath.Join(l.rundir(i), "ovnsecd.out")); err != nil {
		t.Fatal(err)
	}
	demoEventually(t, 10*time.Second, l.chassis[i]+" ovnsecd answers", func() error {
		np, err := readLeakProc(filepath.Join(l.rundir(i), "ovnsecd.pid"), "ovnsecd", p.ns)
		if err != nil {
			return err
		}
		if np.pid == p.pid {
			return fmt.Errorf("pidfile still names the old pid %d", p.pid)
		}
		_, err = demoRun(5*time.Second, "ovs-appctl", "--timeout=3", "-t", l.ctl(i), "version")
		return err
	})
}

// killOvnsecd: kill -9 of ch2's ovnsecd while vm1 and vm3 ping vm2 every
// 10 ms, restart after 2 s: zero plaintext, traffic back within seconds.
func (l *leakEnv) killOvnsecd(t *testing.T) {
	const victim = 1
	from := time.Now()
	p1 := startLeakPing(t, l.vmNS[0], l.vmIPs[1], "vm1->vm2")
	p3 := startLeakPing(t, l.vmNS[2], l.vmIPs[1], "vm3->vm2")
	p2 := startLeakPing(t, l.vmNS[1], l.vmIPs[2], "vm2->vm3") // from the victim outwards
	time.Sleep(time.Second)
	p := l.proc(t, victim, "ovnsecd")
	killed := time.Now()
	t.Logf("kill -9 ch2's ovnsecd (pid %d) at %s", p.pid, leakStamp(killed))
	if err := p.kill(syscall.SIGKILL, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	restarted := time.Now()
	t.Logf("restart ch2's ovnsecd at %s", leakStamp(restarted))
	l.restartOvnsecd(t, victim, p)
	demoEventually(t, 60*time.Second, "every tunnel up after the restart", l.allUp)
	time.Sleep(2 * time.Second)
	for _, pg := range []*leakPing{p1, p3, p2} {
		r := pg.stop()
		back := r.firstReplyAfter(restarted)
		if back.IsZero() {
			t.Errorf("%s: no reply after ovnsecd's restart: %v", pg.what, r)
			continue
		}
		t.Logf("%s across kill -9 + restart of ch2's ovnsecd: %v; traffic back %.2f s after the restart (%.2f s after the kill)",
			pg.what, r, back.Sub(restarted).Seconds(), back.Sub(killed).Seconds())
		// The restarted side initiates as soon as its peer's ESP finds no SA
		// (the next sweep, within 1 s), whichever address is higher.
		if back.Sub(restarted) > 2*time.Second {
			t.Errorf("%s: traffic back only %.1f s after ovnsecd's restart, want within 2 s", pg.what, back.Sub(restarted).Seconds())
		}
	}
	l.noLeak(t, "ovnsecd kill -9 and restart", from, time.Now())
}

// termRestartOvnsecd: SIGTERM to ch2's ovnsecd and a start right after,
// under 10 ms pings. The stopping ovnsecd saves its SAs and the next one
// takes them up: the peers keep their IKE SAs (same SPIs, nothing
// renegotiated), zero plaintext, and traffic is back as soon as the new
// process has read the database (the pings sent while no ovnsecd runs are
// lost: br-phy drops them, it never lets them through).
func (l *leakEnv) termRestartOvnsecd(t *testing.T) {
	const victim = 1
	demoEventually(t, 60*time.Second, "every tunnel up before the restart", l.allUp)
	spis := func() map[string]string { return l.peerSPIs(t, victim) }
	before := spis()
	from := time.Now()
	p1 := startLeakPing(t, l.vmNS[0], l.vmIPs[1], "vm1->vm2")
	p3 := startLeakPing(t, l.vmNS[2], l.vmIPs[1], "vm3->vm2")
	time.Sleep(time.Second)
	p := l.proc(t, victim, "ovnsecd")
	stopped := time.Now()
	if err := p.kill(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	gone := time.Now()
	l.restartOvnsecd(t, victim, p)
	answering := time.Now()
	demoEventually(t, 30*time.Second, "every tunnel up after the restart", l.allUp)
	time.Sleep(2 * time.Second)
	t.Logf("SIGTERM at %s, old ovnsecd gone %.0f ms later, new one answering %.0f ms after that",
		leakStamp(stopped), gone.Sub(stopped).Seconds()*1000, answering.Sub(gone).Seconds()*1000)
	for _, pg := range []*leakPing{p1, p3} {
		r := pg.stop()
		t.Logf("%s across SIGTERM + start of ch2's ovnsecd: %v", pg.what, r)
		if r.repliesAfter(answering) == 0 {
			t.Errorf("%s: no reply after the restart", pg.what)
		}
	}
	after := spis()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: IKE SA %s before the restart, %s after: the peer negotiated a new one", k, v, after[k])
		}
	}
	if b, err := os.ReadFile(filepath.Join(l.rundir(victim), "ovnsecd.log")); err == nil && !strings.Contains(string(b), "IKE SA taken up from the previous ovnsecd") {
		t.Errorf("ch2's log does not show a restored IKE SA")
	}
	if _, err := os.Stat(filepath.Join(l.rundir(victim), "ovnsecd.handover")); !os.IsNotExist(err) {
		t.Errorf("the handover file (keys) is still there after the restart: %v", err)
	}
	l.noLeak(t, "ovnsecd SIGTERM and restart", from, time.Now())
}

// peerSPIs is every IKE SA the chassis other than victim hold, by
// chassis/tunnel: a peer that negotiated anew shows other SPIs.
func (l *leakEnv) peerSPIs(t *testing.T, victim int) map[string]string {
	t.Helper()
	m := map[string]string{}
	for i := range l.chassis {
		if i == victim {
			continue
		}
		s, err := l.show(i)
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range s.Tunnels {
			if tn.IKE != nil {
				m[l.chassis[i]+"/"+tn.Name] = tn.IKE.SPIi + "/" + tn.IKE.SPIr
			}
		}
	}
	return m
}

// hupUpgrade: ch2's ovnsecd is started from a copy of the binary, the copy
// replaced by a rebuilt binary (another version) and the daemon sent
// SIGHUP, then asked with "ovs-appctl upgrade" once more, under 10 ms
// pings into and out of ch2: the new binary serves, the pidfile and
// control socket follow, not one ping is lost, nothing goes in clear and
// the peers keep their IKE SAs (no new negotiation).
func (l *leakEnv) hupUpgrade(t *testing.T) {
	const victim = 1
	demoEventually(t, 60*time.Second, "every tunnel up before the upgrade", l.allUp)
	dir := filepath.Join(l.rundir(victim), "upgrade")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe, next := filepath.Join(dir, "ovnsecd"), filepath.Join(dir, "ovnsecd.next")
	const nextVersion = "0.1.0-upgrade-test"
	build := exec.Command("go", "build", "-ldflags", "-X main.version="+nextVersion, "-o", next, "./cmd/ovnsecd")
	build.Dir = demoRepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("rebuild ovnsecd: %v\n%s", err, out)
	}
	// ch2's ovnsecd from the copy: a restart (its SAs handed over).
	p := l.proc(t, victim, "ovnsecd")
	if out, err := exec.Command("cp", p.argv[0], exe).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v\n%s", p.argv[0], err, out)
	}
	if err := p.kill(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	p.argv[0] = exe
	l.restartOvnsecd(t, victim, p)
	demoEventually(t, 30*time.Second, "every tunnel up with ch2's ovnsecd from "+exe, l.allUp)
	before := l.peerSPIs(t, victim)

	from := time.Now()
	const count = 600 // 6 s at 10 ms
	pings := []*leakPing{
		startLeakPingN(t, l.vmNS[0], l.vmIPs[1], "vm1->vm2", count),
		startLeakPingN(t, l.vmNS[2], l.vmIPs[1], "vm3->vm2", count),
		startLeakPingN(t, l.vmNS[1], l.vmIPs[0], "vm2->vm1", count),
	}
	time.Sleep(time.Second)
	if err := os.Rename(next, exe); err != nil {
		t.Fatal(err)
	}
	old := l.proc(t, victim, "ovnsecd")
	hupAt := time.Now()
	if err := syscall.Kill(old.pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	served := l.waitNewOvnsecd(t, victim, old.pid, nextVersion)
	t.Logf("SIGHUP at %s: the rebuilt ovnsecd serves %.0f ms later", leakStamp(hupAt), served.Sub(hupAt).Seconds()*1000)

	time.Sleep(time.Second)
	old = l.proc(t, victim, "ovnsecd")
	appctlAt := time.Now()
	out, err := demoRun(90*time.Second, "ovs-appctl", "--timeout=80", "-t", l.ctl(victim), "upgrade")
	if err != nil {
		t.Fatal(err)
	}
	served = l.waitNewOvnsecd(t, victim, old.pid, nextVersion)
	t.Logf("ovs-appctl upgrade (%q): the new ovnsecd serves %.0f ms later", strings.TrimSpace(out), served.Sub(appctlAt).Seconds()*1000)

	for _, pg := range pings {
		r := pg.wait(30 * time.Second)
		t.Logf("%s across two upgrades of ch2's ovnsecd: %v", pg.what, r)
		if r.sent < count || r.lost() != 0 {
			t.Errorf("%s: %d of %d pings lost across the upgrades, want none", pg.what, r.lost(), r.sent)
		}
	}
	after := l.peerSPIs(t, victim)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: IKE SA %s before the upgrades, %s after: the peer negotiated a new one", k, v, after[k])
		}
	}
	if b, err := os.ReadFile(filepath.Join(l.rundir(victim), "ovnsecd.log")); err == nil {
		if n := strings.Count(string(b), "upgrade: this ovnsecd serves now"); n < 2 {
			t.Errorf("ch2's log shows %d completed upgrades, want 2", n)
		}
	}
	if _, err := os.Stat(filepath.Join(l.rundir(victim), "ovnsecd.handover")); !os.IsNotExist(err) {
		t.Errorf("the handover file (keys) is still there after the upgrades: %v", err)
	}
	l.noLeak(t, "ovnsecd upgrades", from, time.Now())
}

// restartWithFDStore: SIGTERM and start of ch2's ovnsecd under a service
// manager that keeps file descriptors across the restart, as systemd does
// with FileDescriptorStoreMax= (the test plays the store: fdStore). The
// stopping ovnsecd stores its engine port, NIC and IKE sockets, the next
// one gets them back as LISTEN_FDS and reads what queued meanwhile once
// the saved SAs are back: at most 1 ping lost (the acceptance bound),
// nothing in clear, no new IKE SA.
func (l *leakEnv) restartWithFDStore(t *testing.T) {
	const victim = 1
	demoEventually(t, 60*time.Second, "every tunnel up before the restart", l.allUp)
	store := newFDStore(t)
	// Once under the store (a restart like the others: SAs handed over).
	p := l.proc(t, victim, "ovnsecd")
	if err := p.kill(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := store.count(); n != 0 {
		t.Fatalf("the store holds %d descriptors from an ovnsecd not started under it", n)
	}
	store.start(t, p, filepath.Join(l.rundir(victim), "ovnsecd.out"))
	store.waitFor(t, "READY=1")
	demoEventually(t, 30*time.Second, "every tunnel up under the store", l.allUp)
	before := l.peerSPIs(t, victim)

	from := time.Now()
	const count = 400
	pings := []*leakPing{
		startLeakPingN(t, l.vmNS[0], l.vmIPs[1], "vm1->vm2", count),
		startLeakPingN(t, l.vmNS[2], l.vmIPs[1], "vm3->vm2", count),
		startLeakPingN(t, l.vmNS[1], l.vmIPs[0], "vm2->vm1", count),
	}
	time.Sleep(time.Second)
	p = l.proc(t, victim, "ovnsecd")
	stopped := time.Now()
	if err := p.kill(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	names := store.names()
	t.Logf("SIGTERM at %s; the store holds %v", leakStamp(stopped), names)
	if len(names) < 3 {
		t.Fatalf("ovnsecd stored %v, want the engine port and both IKE sockets", names)
	}
	store.start(t, p, filepath.Join(l.rundir(victim), "ovnsecd.out"))
	store.waitFor(t, "READY=1")
	t.Logf("the next ovnsecd ready %.0f ms after the SIGTERM", time.Since(stopped).Seconds()*1000)
	for _, pg := range pings {
		r := pg.wait(30 * time.Second)
		t.Logf("%s across SIGTERM + start under a descriptor store: %v", pg.what, r)
		if r.sent < count || r.lost() > 1 {
			t.Errorf("%s: %d of %d pings lost across the restart, want at most 1", pg.what, r.lost(), r.sent)
		}
	}
	after := l.peerSPIs(t, victim)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: IKE SA %s before the restart, %s after: the peer negotiated a new one", k, v, after[k])
		}
	}
	if b, err := os.ReadFile(filepath.Join(l.rundir(victim), "ovnsecd.log")); err == nil && !strings.Contains(string(b), "taken back from the service manager's store") {
		t.Errorf("ch2's log does not show the sockets taken back from the store")
	}
	if n := store.count(); n != 0 {
		t.Errorf("the store still holds %d descriptors after the next ovnsecd took them (FDSTOREREMOVE)", n)
	}
	l.noLeak(t, "ovnsecd SIGTERM and start under a descriptor store", from, time.Now())
}

// waitNewOvnsecd waits until chassis i's pidfile names another process
// than old and its control socket answers with version; it returns when.
func (l *leakEnv) waitNewOvnsecd(t *testing.T, i, old int, version string) time.Time {
	t.Helper()
	var at time.Time
	demoEventually(t, 70*time.Second, l.chassis[i]+" ovnsecd upgraded", func() error {
		np, err := readLeakProc(filepath.Join(l.rundir(i), "ovnsecd.pid"), "ovnsecd", l.chassisNS[i])
		if err != nil {
			return err
		}
		if np.pid == old {
			return fmt.Errorf("pidfile still names the old pid %d", old)
		}
		out, err := demoRun(5*time.Second, "ovs-appctl", "--timeout=3", "-t", l.ctl(i), "version")
		if err != nil {
			return err
		}
		if !strings.Contains(out, version) {
			return fmt.Errorf("version %q, want %s", strings.TrimSpace(out), version)
		}
		if leakAlive(old) {
			return fmt.Errorf("the old ovnsecd (pid %d) still runs", old)
		}
		at = time.Now()
		return nil
	})
	return at
}

// restartVswitchd: ch2's ovs-vswitchd stopped and started again (same
// command line) under 10 ms pings: zero plaintext, traffic back.
func (l *leakEnv) restartVswitchd(t *testing.T) {
	const victim = 1
	from := time.Now()
	p1 := startLeakPing(t, l.vmNS[0], l.vmIPs[1], "vm1->vm2")
	time.Sleep(time.Second)
	p := l.proc(t, victim, "ovs-vswitchd")
	if err := p.kill(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	if _, err := p.start(filepath.Join(l.rundir(victim), "vswitchd.out")); err != nil {
		t.Fatal(err)
	}
	ns, addr := l.chassisNS[victim], l.chassisIPs[victim]+"/24"
	demoEventually(t, 15*time.Second, "ovd-phy back in "+ns, func() error {
		_, err := demoRun(5*time.Second, "ip", "-n", ns, "link", "show", "ovd-phy")
		return err
	})
	out, _ := demoRun(5*time.Second, "ip", "-n", ns, "-4", "addr", "show", "dev", "ovd-phy")
	if !strings.Contains(out, addr) {
		t.Logf("ovd-phy lost its address with the restart; adding %s again (as scripts/demo.sh does at start)", addr)
		if _, err := demoRun(5*time.Second, "ip", "-n", ns, "addr", "add", addr, "dev", "ovd-phy"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := demoRun(5*time.Second, "ip", "-n", ns, "link", "set", "ovd-phy", "up"); err != nil {
		t.Fatal(err)
	}
	demoEventually(t, 60*time.Second, "every tunnel up after the vswitchd restart", l.allUp)
	demoEventually(t, 30*time.Second, "vm1 reaches vm2 after the vswitchd restart", func() error {
		_, err := demoRun(5*time.Second, "ip", "netns", "exec", l.vmNS[0], "ping", "-c1", "-W1", l.vmIPs[1])
		return err
	})
	time.Sleep(time.Second)
	r := p1.stop()
	back := r.firstReplyAfter(restarted)
	t.Logf("vm1->vm2 across the ovs-vswitchd restart on ch2: %v; traffic back %.2f s after the restart", r, back.Sub(restarted).Seconds())
	if back.IsZero() {
		t.Errorf("vm1->vm2: no reply after the vswitchd restart")
	}
	l.noLeak(t, "ovs-vswitchd restart", from, time.Now())
}

// rekeys: short lifetimes on the ch1-ch2 tunnel (set per interface; OVN
// 23.03 does not propagate NB ipsec_* lifetimes, and ovn-controller
// rewrites a tunnel port's options, so it is paused meanwhile), 10 ms
// pings across Child and IKE SA rekeys with zero loss, then ch2's ovnsecd
// stopped past the Child SA's hard lifetime: no plaintext, and the tunnel
// comes back after ovnsecd's restart.
func (l *leakEnv) rekeys(t *testing.T) {
	const (
		childLife = 20 * time.Second
		ikeLife   = 30 * time.Second
		margin    = 5 * time.Second
	)
	pair := []int{0, 1}
	for _, i := range pair {
		c := l.proc(t, i, "ovn-controller")
		if err := syscall.Kill(c.pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Kill(c.pid, syscall.SIGCONT) })
	}
	from := time.Now()
	opts := []string{fmt.Sprintf("options:ipsec_salifetime=%ds", int(childLife.Seconds())),
		fmt.Sprintf("options:ipsec_ikelifetime=%ds", int(ikeLife.Seconds())),
		fmt.Sprintf("options:ipsec_rekeymargin=%ds", int(margin.Seconds()))}
	port := map[int]string{}
	for _, i := range pair {
		peer := l.chassisIPs[1-i]
		for _, p := range l.tunnels(t, i) {
			if p.options["remote_ip"] == peer {
				port[i] = p.name
			}
		}
		if port[i] == "" {
			t.Fatalf("%s has no tunnel port to %s", l.chassis[i], peer)
		}
		args := append([]string{"--timeout=10", "--db=" + l.ovsDBs[i], "set", "Interface", port[i]}, opts...)
		if _, err := demoRun(15*time.Second, "ovs-vsctl", args...); err != nil {
			t.Fatal(err)
		}
	}
	demoEventually(t, 60*time.Second, "ch1-ch2 tunnel up again with the short lifetimes", func() error {
		for _, i := range pair {
			s, err := l.show(i)
			if err != nil {
				return err
			}
			d, _ := s.Tunnel(port[i])
			if want := fmt.Sprintf("%ds", int(childLife.Seconds())); d.Options["salifetime"] != want {
				return fmt.Errorf("%s: tunnels/show lists no salifetime=%s custom option on %s yet (options %v)", l.chassis[i], want, port[i], d.Options)
			}
		}
		return l.allUp()
	})

	// Child and IKE rekeys under 10 ms pings.
	const secs = 2*ikeLife/time.Second - 10 // past a Child rekey and an IKE rekey
	ping := exec.Command("ip", "netns", "exec", l.vmNS[0], "ping", "-D", "-n", "-i", "0.01", "-W", "1",
		"-c", fmt.Sprint(int(secs)*100), l.vmIPs[1])
	var pout syncBuf
	ping.Stdout, ping.Stderr = &pout, &pout
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	ikeSPIs, childSPIs := map[string]bool{}, map[string]map[string]bool{}
	var events []string // when tunnels/show first listed each SA
	done := make(chan error, 1)
	go func() { done <- ping.Wait() }()
poll:
	for {
		select {
		case <-done:
			break poll
		case <-time.After(250 * time.Millisecond):
		}
		s, err := l.show(0)
		if err != nil {
			continue
		}
		d, ok := s.Tunnel(port[0])
		if !ok {
			continue
		}
		now := leakStamp(time.Now())
		if d.IKE != nil && d.IKE.State == "established" {
			if spis := d.IKE.SPIi + "_i " + d.IKE.SPIr + "_r"; !ikeSPIs[spis] {
				ikeSPIs[spis] = true
				events = append(events, now+" IKE SA "+spis)
			}
		}
		for _, c := range d.Children {
			if !strings.Contains(c.Name, "-out-") {
				continue
			}
			if childSPIs[c.Name] == nil {
				childSPIs[c.Name] = map[string]bool{}
			}
			if spis := c.InSPI + "_i " + c.OutSPI + "_o"; !childSPIs[c.Name][spis] {
				childSPIs[c.Name][spis] = true
				events = append(events, now+" "+c.Name+" "+spis)
			}
		}
	}
	r := parseLeakPing(pout.String())
	var childRekeys int
	for name, s := range childSPIs {
		t.Logf("%s on ch1: %d Child SAs seen (%d rekeys)", name, len(s), len(s)-1)
		childRekeys += len(s) - 1
	}
	t.Logf("ch1's IKE SA with ch2: %d seen (%d rekeys)", len(ikeSPIs), len(ikeSPIs)-1)
	t.Logf("vm1->vm2 at 10 ms across the rekeys (%d s): %v", int(secs), r)
	if r.maxGap > 100*time.Millisecond {
		t.Logf("longest gap ended at %s; SAs as first listed on ch1:\n%s", leakStamp(r.gapEnd), strings.Join(events, "\n"))
	}
	if childRekeys == 0 {
		t.Errorf("no Child SA rekey seen in %d s with ipsec_salifetime=%v", int(secs), childLife)
	}
	if len(ikeSPIs) < 2 {
		t.Errorf("no IKE SA rekey seen in %d s with ipsec_ikelifetime=%v", int(secs), ikeLife)
	}
	// The goal is zero loss (measured 0 of 5000 on an idle box). On CI's
	// shared 2 cores a single ping can be lost without any rekey, so the
	// test allows 0.1% and fails on anything like a rekey outage (one run
	// before the fixes lost 1145 pings in a 19.5 s gap); OVNSEC_LEAK_STRICT=1
	// demands zero.
	allowed := r.sent / 1000
	if os.Getenv("OVNSEC_LEAK_STRICT") == "1" {
		allowed = 0
	}
	if r.sent == 0 || r.lost() > allowed {
		t.Errorf("vm1->vm2 lost %d of %d pings across the rekeys, want at most %d", r.lost(), r.sent, allowed)
	} else if r.lost() > 0 {
		t.Logf("vm1->vm2 lost %d of %d pings across the rekeys (goal: none)", r.lost(), r.sent)
	}
	l.noLeak(t, "Child and IKE rekeys", from, time.Now())

	// The peer's ovnsecd stopped (no cleanup) past the Child SA's hard
	// lifetime: ch1 rekeys into the void, its SAs expire; nothing leaks.
	stopFrom := time.Now()
	p1 := startLeakPing(t, l.vmNS[0], l.vmIPs[1], "vm1->vm2")
	p := l.proc(t, 1, "ovnsecd")
	if err := p.kill(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	time.Sleep(childLife + 2*time.Second)
	if out, err := l.showText(0); err != nil {
		t.Errorf("ch1 tunnels/show with ch2's ovnsecd stopped: %v", err)
	} else {
		t.Logf("ch1 after %v without ch2's ovnsecd:\n%s", time.Since(stopped).Round(time.Second), demoHead(strings.Split(out, "\n"), 25))
	}
	restarted := time.Now()
	l.restartOvnsecd(t, 1, p)
	demoEventually(t, 60*time.Second, "every tunnel up after ch2's ovnsecd restart", l.allUp)
	time.Sleep(time.Second)
	rs := p1.stop()
	if n := rs.repliesAfter(stopped.Add(500 * time.Millisecond)); n-rs.repliesAfter(restarted) != 0 {
		t.Errorf("vm1->vm2: %d replies while ch2's ovnsecd was stopped: traffic passed without the engine", n-rs.repliesAfter(restarted))
	}
	back := rs.firstReplyAfter(restarted)
	t.Logf("vm1->vm2 with ch2's ovnsecd stopped %.0f s: %v; traffic back %.2f s after the restart", restarted.Sub(stopped).Seconds(), rs, back.Sub(restarted).Seconds())
	if back.IsZero() {
		t.Errorf("vm1->vm2: no reply after ch2's ovnsecd restart")
	}
	l.noLeak(t, "peer ovnsecd stopped past the hard lifetime", stopFrom, time.Now())
}
