// Security leak tests on two OVS hosts (the tutorial setup, native
// backend): operator mistakes and attacks from the audit of issue 12. Each
// case captures on a's underlay while both hosts ping each other's overlay
// address and requires zero tunnel packets in clear: a tunnel that cannot
// be configured is blocked, not sent in plaintext. On the same hosts, ESP
// captured on the wire and sent again later is dropped as a replay, and
// ESP with a flipped byte as an integrity failure, both counted.
package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/test/harness"
)

// secPlaintext matches tunnel packets in clear, including the dst_port
// cases' UDP 6082.
const secPlaintext = "udp port 6081 or udp port 6082 or udp port 4789 or ip proto 47"

func TestSecurityLeakTwoHost(t *testing.T) {
	tutPrereqs(t)
	t.Parallel()
	e := tutUp(t, "secl")
	ca, dir := e.caSigned(t, "ca", e.a.Name, e.b.Name)
	cert := func(h *tutHost) (string, string) {
		return filepath.Join(dir, h.Name+"-cert.pem"), filepath.Join(dir, h.Name+"-privkey.pem")
	}
	psk := tutOpts{"psk": "swordfish"}
	noPKI := func(t *testing.T) {
		for _, h := range []*tutHost{e.a, e.b} {
			h.setGlobal(t, "", "", "")
		}
	}

	t.Run("unreadable ca_cert", func(t *testing.T) {
		t.Cleanup(func() { e.a.delTun(t); e.b.delTun(t); noPKI(t) })
		for _, h := range []*tutHost{e.a, e.b} {
			c, k := cert(h)
			if h == e.a {
				h.setGlobal(t, c, k, filepath.Join(e.certs, "gone", "cacert.pem"))
			} else {
				h.setGlobal(t, c, k, ca)
			}
		}
		e.a.addTun(t, e.b, "geneve", tutOpts{"remote_name": e.b.Name})
		e.b.addTun(t, e.a, "geneve", tutOpts{"remote_name": e.a.Name})
		e.secNoPlaintext(t, "cacert.pem")
	})

	t.Run("local_ip is not br-phy's address", func(t *testing.T) {
		t.Cleanup(func() { e.a.delTun(t); e.b.delTun(t) })
		e.a.addTun(t, e.b, "geneve", psk)
		e.a.vsctl(t, "set", "interface", "tun", "options:local_ip=198.51.100.99")
		e.b.addTun(t, e.a, "geneve", psk)
		e.secNoPlaintext(t, "local_ip 198.51.100.99")
	})

	t.Run("unparseable ipsec_ike on a live tunnel", func(t *testing.T) {
		t.Cleanup(func() { e.a.delTun(t); e.b.delTun(t) })
		e.a.addTun(t, e.b, "geneve", psk)
		e.b.addTun(t, e.a, "geneve", psk)
		e.waitUp(t, "geneve", 45*time.Second, true)
		if ok, out, c := e.pingCapture(); !ok || c.Count(secPlaintext) != 0 {
			t.Fatalf("the live tunnel does not carry ESP only before the change: %s %v", out, tutKinds(c))
		}
		e.a.vsctl(t, "set", "interface", "tun", "options:ipsec_ike=aes256-sha256-modp2048")
		e.secNoPlaintext(t, "aes256-sha256-modp2048")
	})

	t.Run("dst_port with a trailing space", func(t *testing.T) {
		t.Cleanup(func() { e.a.delTun(t); e.b.delTun(t) })
		opts := tutOpts{"psk": "swordfish", "dst_port": `"6082 "`}
		e.a.addTun(t, e.b, "geneve", opts)
		e.b.addTun(t, e.a, "geneve", opts)
		// ovs-vswitchd reads "6082 " as 6082: ovnsec protects that port, and
		// the tunnel works.
		e.waitUp(t, "geneve", 45*time.Second, true)
		c := e.a.Capture("")
		okA, outA := e.a.Ping(e.b.overlay, 3, 0, 2*time.Second)
		okB, outB := e.b.Ping(e.a.overlay, 3, 0, 2*time.Second)
		c.Stop()
		if n := c.Count(secPlaintext); n != 0 {
			t.Errorf("%d tunnel packets in clear:\n%s", n, c.Dump(secPlaintext, 5))
		}
		if !okA || !okB {
			t.Errorf("pings over the dst_port 6082 tunnel: %s / %s", tutTail(outA, 2), tutTail(outB, 2))
		}
		if n := c.Count("ip proto 50"); n < 6 {
			t.Errorf("only %d ESP packets for 6 pings", n)
		}
		d, err := e.a.tunnel("tun")
		if err != nil {
			t.Fatal(err)
		}
		if d.DstPort != 6082 {
			t.Errorf("tunnels/show's JSON view protects dst_port %d, want 6082", d.DstPort)
		}
		// The text must say it too, in the lines an operator reads (a
		// check of the text output itself).
		show, _ := e.a.show()
		if !strings.Contains(show, "Dst port:       6082") || !strings.Contains(show, `ovs-vswitchd reads it as 6082`) {
			t.Errorf("tunnels/show does not say which port is protected and why:\n%s", show)
		}
	})

	t.Run("replayed and corrupted ESP", func(t *testing.T) {
		t.Cleanup(func() { e.a.delTun(t); e.b.delTun(t) })
		e.a.addTun(t, e.b, "geneve", psk)
		e.b.addTun(t, e.a, "geneve", psk)
		e.waitUp(t, "geneve", 45*time.Second, true)
		before := secDrops(t, e.b)
		// Take ESP frames a sends to b off a's wire while a pings b.
		var frames [][]byte
		done := make(chan error, 1)
		go func() {
			done <- e.a.InNetns(func() error {
				var err error
				frames, err = secSniffESP(e.a.Dev, e.b.Underlay.As4(), 3, 10*time.Second)
				return err
			})
		}()
		time.Sleep(200 * time.Millisecond)
		e.a.Ping(e.b.overlay, 5, 0, 2*time.Second)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// Later, after more traffic moved b's window on: send them again,
		// and one more with a flipped bit in its sequence number, which
		// takes it ahead of the window (a replay check alone would accept
		// it) but breaks the ICV that covers it.
		e.a.Ping(e.b.overlay, 3, 0, 2*time.Second)
		bad := append([]byte(nil), frames[0]...)
		ihl := int(bad[14]&0x0f) * 4
		if bad[14+ihl+5]&0x10 != 0 {
			t.Fatalf("sequence number %d too large for the test", binary.BigEndian.Uint32(bad[14+ihl+4:]))
		}
		bad[14+ihl+5] ^= 0x10 // sequence number + 2^20
		if err := e.a.InNetns(func() error { return secSend(e.a.Dev, append(frames, bad)) }); err != nil {
			t.Fatal(err)
		}
		e.waitFor(t, 10*time.Second, false, "b counts the replays and the corrupted packet", func() error {
			after := secDrops(t, e.b)
			if after["replay"] < before["replay"]+uint64(len(frames)) || after["auth"] < before["auth"]+1 {
				return fmt.Errorf("drops before %v, after %v; want replay +%d, auth +1", before, after, len(frames))
			}
			return nil
		})
		if ok, out := e.a.Ping(e.b.overlay, 3, 0, 2*time.Second); !ok {
			t.Errorf("the tunnel stopped working after the replays: %s", out)
		}
	})
}

// secNoPlaintext waits until a shows the tunnel blocked with a reason
// containing why, then pings both ways under a capture on a's underlay and
// fails t on any tunnel packet in clear.
func (e *tutEnv) secNoPlaintext(t *testing.T, why string) {
	t.Helper()
	e.waitFor(t, 30*time.Second, true, "a shows tun blocked", func() error {
		d, err := e.a.tunnel("tun")
		if err != nil {
			return err
		}
		if d.State != backend.StateBlocked || !strings.Contains(d.Detail, why) {
			return fmt.Errorf("Status %s, want blocked naming %q", harness.Status(d), why)
		}
		return nil
	})
	c := e.a.Capture("")
	okA, _ := e.a.Ping(e.b.overlay, 3, 0, time.Second)
	okB, _ := e.b.Ping(e.a.overlay, 3, 0, time.Second)
	c.Stop()
	if n := c.Count(secPlaintext); n != 0 {
		t.Errorf("%d tunnel packets in clear on the underlay:\n%s", n, c.Dump(secPlaintext, 5))
	}
	if okA || okB {
		t.Errorf("pings crossed a blocked tunnel (a->b %v, b->a %v)", okA, okB)
	}
	t.Logf("a: Status %s", e.a.statusOf("tun"))
}

// secDrops sums the drop counters of h's Child SAs by reason ("replay",
// "auth", ...), from the JSON view.
func secDrops(t *testing.T, h *tutHost) map[string]uint64 {
	t.Helper()
	s, err := h.doc()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]uint64{}
	for _, d := range s.Tunnels {
		for _, c := range d.Children {
			for reason, n := range c.Drops {
				m[reason] += n
			}
		}
	}
	return m
}

// secSniffESP reads frames on dev (in the calling thread's namespace)
// until it has n IPv4 ESP frames to dst, and returns them.
func secSniffESP(dev string, dst [4]byte, n int, timeout time.Duration) ([][]byte, error) {
	fd, _, err := secPacketSocket(dev)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, err
	}
	var out [][]byte
	buf := make([]byte, 9000)
	deadline := time.Now().Add(timeout)
	for len(out) < n && time.Now().Before(deadline) {
		m, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			continue
		}
		f := buf[:m]
		if len(f) < 14+20+8 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[14+9] != 50 || [4]byte(f[14+16:14+20]) != dst {
			continue
		}
		out = append(out, append([]byte(nil), f...))
	}
	if len(out) < n {
		return nil, fmt.Errorf("saw %d of %d ESP frames to %v on %s", len(out), n, net.IP(dst[:]), dev)
	}
	return out, nil
}

// secSend transmits frames unchanged on dev.
func secSend(dev string, frames [][]byte) error {
	fd, ifindex, err := secPacketSocket(dev)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for _, f := range frames {
		sa := &unix.SockaddrLinklayer{Ifindex: ifindex, Halen: 6}
		copy(sa.Addr[:], f[0:6])
		if err := unix.Sendto(fd, f, 0, sa); err != nil {
			return fmt.Errorf("send on %s: %w", dev, err)
		}
	}
	return nil
}

func secPacketSocket(dev string) (fd, ifindex int, err error) {
	ifc, err := net.InterfaceByName(dev)
	if err != nil {
		return -1, 0, err
	}
	proto := int(htons(unix.ETH_P_ALL))
	fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, proto)
	if err != nil {
		return -1, 0, fmt.Errorf("packet socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifc.Index}); err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("bind packet socket to %s: %w", dev, err)
	}
	return fd, ifc.Index, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
