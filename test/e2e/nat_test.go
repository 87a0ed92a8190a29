// NAT-T through a port-translating NAT: host a sits behind a NAT that maps
// its UDP 500 and 4500 to other ports (nat_helpers_test.go), so IKE on b
// detects the NAT (nothing is forced) and b must send its ESP-in-UDP to
// the mapped port. A geneve tunnel with PSK between a and b, ping across
// in both directions; on b's side of the NAT only IKE and ESP-in-UDP
// between b's 4500 and a's mapped port, nothing in clear; tunnels/show on
// both hosts says where the NAT is. Once with the engine writing ESP
// straight onto the NIC (the loop's leak filter decides what leaves), once
// back through br-phy (OVS's to-NIC rule decides).
package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestNATPortTranslated(t *testing.T) {
	natPrereqs(t)
	for _, c := range []struct {
		name string
		args []string
	}{
		{"direct-to-nic", nil},
		{"through-br-phy", []string{"--direct-to-nic=false"}},
	} {
		t.Run(c.name, func(t *testing.T) { testNATPortTranslated(t, c.args...) })
	}
}

func testNATPortTranslated(t *testing.T, ovnsecdArgs ...string) {
	e := natUp(t, "h3n", ovnsecdArgs...)
	viaBridge := len(ovnsecdArgs) > 0
	a, b := e.a, e.b
	aIP, bIP := a.Underlay.String(), b.Underlay.String()
	// Both sides of the NAT are captured from before the tunnel exists
	// until after the pings: nothing in clear at any point.
	capA, capB := a.Capture(""), b.Capture("")
	a.addTun(t, b, "geneve", tutPSK("swordfish"))
	b.addTun(t, a, "geneve", tutPSK("swordfish"))
	took := e.waitUp(t, "geneve", 45*time.Second, true)
	t.Logf("tun up on both hosts %.2f s after add-port", took.Seconds())

	// First traffic may wait for neighbour resolution on the overlay;
	// then every ping must be answered.
	for _, p := range [][2]*tutHost{{a, b}, {b, a}} {
		natPingUntil(t, p[0], p[1], 20*time.Second)
	}
	for _, p := range [][2]*tutHost{{a, b}, {b, a}} {
		if ok, out := p[0].Ping(p[1].overlay, 3, 0, 2*time.Second); !ok {
			t.Errorf("ping %s -> %s across the NAT lost packets:\n%s", p[0].overlay, p[1].overlay, strings.TrimSpace(out))
		}
	}
	capA.Stop()
	capB.Stop()

	// b's side of the NAT: IKE and ESP-in-UDP only, every packet of a's
	// with a mapped source port, and b's ESP-in-UDP to a's mapped port.
	kinds := tutKinds(capB)
	t.Logf("on b's side of the NAT: %v", kinds)
	if kinds["plaintext"] != 0 {
		t.Errorf("%d tunnel packets in clear on b's side of the NAT:\n%s", kinds["plaintext"], capB.Dump(tutPlaintext, 5))
	}
	if kinds["esp"] != 0 || kinds["other"] != 0 {
		t.Errorf("want only UDP (IKE, ESP-in-UDP) on b's side of the NAT, got %v:\n%s", kinds, capB.Dump("ip and not udp", 5))
	}
	if n := capB.Count(fmt.Sprintf("src host %s and udp and not (src port %d or src port %d)", aIP, natMapped500, natMapped4500)); n != 0 {
		t.Errorf("%d packets of a's crossed the NAT untranslated:\n%s", n, capB.Dump("src host "+aIP+" and udp", 5))
	}
	toMapped := fmt.Sprintf("src host %s and udp src port 4500 and dst host %s and udp dst port %d and greater 100", bIP, aIP, natMapped4500)
	fromMapped := fmt.Sprintf("src host %s and udp src port %d and dst host %s and udp dst port 4500 and greater 100", aIP, natMapped4500, bIP)
	if n, m := capB.Count(toMapped), capB.Count(fromMapped); n < 6 || m < 6 {
		t.Errorf("ESP-in-UDP on b's side of the NAT: %d from b to a's port %d, %d back; want at least 6 each (3 pings each way and back):\n%s",
			n, natMapped4500, m, capB.Dump("udp", 12))
	}
	// a's own side: a sends from 4500 to 4500, never in clear.
	if n, m := capA.Count(tutPlaintext), capA.Count(fmt.Sprintf("src host %s and udp src port 4500 and udp dst port 4500 and greater 100", aIP)); n != 0 || m < 6 {
		t.Errorf("a's side of the NAT: %d in clear, %d ESP-in-UDP 4500 -> 4500 from a (want 0 and >= 6):\n%s", n, m, capA.Dump("ip", 12))
	}

	// b's br-phy lets exactly ESP-in-UDP to a's mapped port out towards a.
	flows := b.natFlows(t, "nw_dst="+aIP)
	var mapped, to4500 []string
	for _, f := range flows {
		switch {
		case strings.Contains(f, fmt.Sprintf("tp_src=4500,tp_dst=%d", natMapped4500)):
			mapped = append(mapped, f)
		case strings.Contains(f, "tp_dst=4500") && strings.Contains(f, "actions=output"):
			to4500 = append(to4500, f)
		}
	}
	if len(mapped) != 1 || len(to4500) != 0 {
		t.Errorf("b's br-phy rules towards a: %d to the mapped port (want 1), %d to 4500 (want 0):\n%s",
			len(mapped), len(to4500), strings.Join(flows, "\n"))
	} else if viaBridge && strings.Contains(mapped[0], "n_packets=0,") {
		t.Errorf("through br-phy, yet the rule to a's mapped port counted nothing: %s", mapped[0])
	}

	// tunnels/show says where the NAT is.
	for _, h := range []*tutHost{a, b} {
		if err := h.refresh(); err != nil {
			t.Fatal(err)
		}
	}
	// a is behind the NAT and sends to b's 4500; b sends to a's mapped
	// port. The JSON view's IKE and Child SAs say so as data.
	natWant := map[*tutHost]struct {
		local, remote bool
		encap         string
	}{
		a: {true, false, "udp 4500->4500"},
		b: {false, true, fmt.Sprintf("udp 4500->%d", natMapped4500)},
	}
	for _, h := range []*tutHost{a, b} {
		d, err := h.tunnel("tun")
		if err != nil {
			t.Fatal(err)
		}
		w := natWant[h]
		if d.IKE == nil || !d.IKE.Encap || d.IKE.NATLocal != w.local || d.IKE.NATRemote != w.remote {
			t.Errorf("%s: IKE SA %+v, want UDP-encapsulated with NAT local=%v remote=%v", h.Name, d.IKE, w.local, w.remote)
		}
		if len(d.Children) == 0 {
			t.Errorf("%s: no Child SA listed", h.Name)
		}
		for _, c := range d.Children {
			if c.Encap != w.encap {
				t.Errorf("%s: Child SA %s encap %q, want %q", h.Name, c.Name, c.Encap, w.encap)
			}
		}
	}
	// The text says it too, in the words the README quotes ("...,
	// UDP-encapsulated, NAT local=false remote=true"): a check of the text
	// output itself.
	want := map[*tutHost][]string{
		a: {"UDP-encapsulated", "NAT local=true remote=false", "encap udp 4500->4500"},
		b: {"UDP-encapsulated", "NAT local=false remote=true", fmt.Sprintf("encap udp 4500->%d", natMapped4500)},
	}
	for _, h := range []*tutHost{a, b} {
		show, err := h.show()
		if err != nil {
			t.Fatal(err)
		}
		block := tutStatusBlock(show, "tun")
		t.Logf("%s tunnels/show:\n%s", h.Name, block)
		for _, w := range want[h] {
			if !strings.Contains(block, w) {
				t.Errorf("%s: tunnels/show does not say %q:\n%s", h.Name, w, block)
			}
		}
	}
}
