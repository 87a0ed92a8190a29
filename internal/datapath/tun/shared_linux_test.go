// shared_linux_test.go: an attachment on a socket another component owns
// (the IKE engine's NAT-T socket), with a full tunnel (0.0.0.0/0) in a
// routing table of its own: the gateway and a passthrough subnet stay
// reachable directly, everything else goes through the tunnel, and the
// owner keeps receiving its IKE messages.

package tun

import (
	"context"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/esp/esptest"
	"github.com/ovnsec/ovnsec/internal/testenv"
)

const (
	nsSA, nsSB     = "tuns-a", "tuns-b"
	vethSA, vethSB = "tuns-va", "tuns-vb"
	testTable      = 20051
)

func TestIntegrationSharedSocketFullTunnel(t *testing.T) {
	testenv.Short(t)
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, "ip", "ping")
	for _, ns := range []string{nsSA, nsSB} {
		exec.Command("ip", "netns", "del", ns).Run()
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	run(t, "ip", "link", "add", vethSA, "netns", nsSA, "type", "veth", "peer", "name", vethSB, "netns", nsSB)
	for _, s := range []struct{ ns, dev, addr string }{{nsSA, vethSA, "192.0.2.1/24"}, {nsSB, vethSB, "192.0.2.2/24"}} {
		run(t, "ip", "-n", s.ns, "addr", "add", s.addr, "dev", s.dev)
		run(t, "ip", "-n", s.ns, "link", "set", s.dev, "up")
		run(t, "ip", "-n", s.ns, "link", "set", "lo", "up")
	}
	// A passthrough subnet behind B, reached directly through the veth.
	run(t, "ip", "-n", nsSB, "addr", "add", "198.51.100.2/32", "dev", "lo")
	run(t, "ip", "-n", nsSA, "route", "add", "198.51.100.0/24", "via", "192.0.2.2")

	cfg := esp.Config{Mode: esp.Tunnel, Encap: esp.Encap{Type: esp.EncapUDP, SrcPort: 4500, DstPort: 4500}}
	aOut, aIn, bOut, bIn := esptest.Peers(t, cfg, spiAB, spiBA)

	// A: the owner's socket, and the attachment on it.
	var owner *net.UDPConn
	if err := inNetNS(nsSA, func() (err error) {
		owner, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(underA, 4500)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	A, err := Open(System{NetNS: nsSA, Name: "tuns0", Shared: owner, Table: testTable},
		Config{Table: esp.NewTable(nil), Peers: []Peer{{Addr: underB, Remote: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := A.SetAddrs([]netip.Prefix{netA}); err != nil {
		t.Fatal(err)
	}
	gateway, passthrough := netip.PrefixFrom(underB, 32), netip.MustParsePrefix("198.51.100.0/24")
	if err := A.SetExclusions([]netip.Prefix{gateway, passthrough}); err != nil {
		t.Fatal(err)
	}
	if err := A.Install(underB, aIn, aOut); err != nil {
		t.Fatal(err)
	}
	ikeSeen := make(chan string, 4)
	go func() { // the owner's receive loop: ESP to the attachment, IKE its own
		buf := make([]byte, 65536)
		for {
			n, from, err := owner.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			d := buf[:n]
			if esp.Classify4500(d) == esp.KindIKE {
				ikeSeen <- string(d[4:])
				continue
			}
			A.DeliverESP(d, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()))
		}
	}()
	runAttachment(t, "A", A)

	// B: an ordinary attachment with its own socket.
	B, err := Open(System{NetNS: nsSB, Name: "tuns0", Addr: netB, Local: netip.AddrPortFrom(underB, 4500)},
		Config{Table: esp.NewTable(nil), Peers: []Peer{{Addr: underA, Remote: []netip.Prefix{netA}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := B.Install(underA, bIn, bOut); err != nil {
		t.Fatal(err)
	}
	runAttachment(t, "B", B)

	run(t, "ip", "netns", "exec", nsSA, "ping", "-c", "3", "-i", "0.2", "-W", "2", "203.0.113.2")
	through := A.Stats().TxPackets
	if through < 3 || B.Stats().RxPackets < 3 {
		t.Fatalf("pings through the full tunnel: A sent %d, B opened %d", through, B.Stats().RxPackets)
	}
	// The gateway itself and the passthrough subnet: directly, not
	// through the tunnel (which the catch-all would otherwise capture).
	run(t, "ip", "netns", "exec", nsSA, "ping", "-c", "2", "-i", "0.2", "-W", "2", "192.0.2.2")
	run(t, "ip", "netns", "exec", nsSA, "ping", "-c", "2", "-i", "0.2", "-W", "2", "198.51.100.2")
	if n := A.Stats().TxPackets; n != through {
		t.Errorf("pings to the gateway and the passthrough subnet went into the tunnel (%d packets)", n-through)
	}
	// The owner still gets its IKE messages (non-ESP marker).
	var sock *net.UDPConn
	if err := inNetNS(nsSB, func() (err error) {
		sock, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(underA, 4500)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	if _, err := sock.Write(append([]byte{0, 0, 0, 0}, "an IKE message"...)); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-ikeSeen:
		if m != "an IKE message" {
			t.Errorf("owner got %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Error("the owner of the shared socket did not receive the IKE message")
	}

	rules := run(t, "ip", "-n", nsSA, "rule")
	for _, want := range []string{"20051:\tfrom all lookup 20051", "20050:\tfrom all to 192.0.2.2 lookup main", "20050:\tfrom all to 198.51.100.0/24 lookup main"} {
		if !strings.Contains(rules, want) {
			t.Errorf("ip rule lacks %q:\n%s", want, rules)
		}
	}
	// The process goes (Close, as at exit without cleanup): the device and
	// its routes go, the rules and blackholes stay, so the full tunnel's
	// traffic is dropped, not routed in clear; the gateway stays reachable.
	A.Close()
	if rules := run(t, "ip", "-n", nsSA, "rule"); !strings.Contains(rules, "lookup 20051") {
		t.Errorf("the lookup rule went with the device:\n%s", rules)
	}
	if routes := run(t, "ip", "-n", nsSA, "route", "show", "table", "20051"); !strings.Contains(routes, "blackhole default") {
		t.Errorf("no blackhole for the catch-all after Close:\n%s", routes)
	}
	if out, err := exec.Command("ip", "netns", "exec", nsSA, "ping", "-c", "1", "-W", "1", "203.0.113.2").CombinedOutput(); err == nil {
		t.Errorf("the tunnel's subnet is reachable with the device gone (in clear?):\n%s", out)
	}
	run(t, "ip", "netns", "exec", nsSA, "ping", "-c", "1", "-W", "2", "192.0.2.2")
	// The next process takes the table over; withdrawing removes it all.
	A2, err := Open(System{NetNS: nsSA, Name: "tuns0", Shared: owner, Table: testTable}, Config{Table: esp.NewTable(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if err := A2.Withdraw(); err != nil {
		t.Fatal(err)
	}
	A2.Close()
	if rules := run(t, "ip", "-n", nsSA, "rule"); strings.Contains(rules, "2005") {
		t.Errorf("rules left after Withdraw:\n%s", rules)
	}
	if routes := run(t, "ip", "-n", nsSA, "route", "show", "table", "20051"); strings.TrimSpace(routes) != "" {
		t.Errorf("routes left in table 20051 after Withdraw:\n%s", routes)
	}
	// Closing the attachment leaves the shared socket to its owner.
	if _, err := sock.Write(append([]byte{0, 0, 0, 0}, "still open"...)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ikeSeen:
	case <-time.After(5 * time.Second):
		t.Error("the shared socket stopped receiving when the attachment closed")
	}
}

// runAttachment runs a until the test ends.
func runAttachment(t *testing.T, name string, a *Attachment) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: Run: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s: Run did not stop", name)
		}
	})
}
