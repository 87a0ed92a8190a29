package native

// Behaviour of a port-translating NAT in front of the peer, through the
// whole backend with a direct-to-NIC Wire: written against the API of
// commit 354e2ea too, so that it shows the failure there.

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
	"github.com/ovnsec/ovnsec/internal/datapath/drop"
	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike"
)

// TestNATPortESPInUDPLeavesOnTheWire: the peer is behind a NAT that mapped
// its 4500 to 44500 (IKE detected it: no forced encapsulation). A tunnel
// packet to the peer must leave sealed as ESP-in-UDP from 4500 to 44500;
// before the fix the leak filter let only UDP to 4500 out, so nothing did.
func TestNATPortESPInUDPLeavesOnTheWire(t *testing.T) {
	r := &rig{eng: newFakeIKE(), att: &fakeAtt{}, dev: newChanDev(), clk: clocktest.New(time.Unix(1700000000, 0))}
	wire := newChanDev()
	b, err := newBackend(Config{
		Local: local, Bridge: "br-phy", RekeyGrace: time.Minute, PeerGrace: 10 * time.Second,
		NewIKE: func(c ike.Config) (IKE, error) {
			r.eng.handler = c.Handler
			if c.Local != local {
				return nil, fmt.Errorf("engine local %v", c.Local)
			}
			return r.eng, nil
		},
		Creds: fakeCreds{},
		Log:   slog.New(slog.DiscardHandler),
		Clock: r.clk, Sweep: -1,
	}, r.att, r.dev, wire, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.b = b
	t.Cleanup(func() { b.Close(ctx, false) })
	if err := b.Ensure(ctx, geneveTunnel(1)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []ike.ChildSA{
		child(t, "ovn-b-0-1", "ovn-b-0-in-1", 0xc0000001, 0xd0000001, 1),
		child(t, "ovn-b-0-1", "ovn-b-0-out-1", 0xc0000002, 0xd0000002, 3),
	} {
		c.Encap = esp.Encap{Type: esp.EncapUDP, SrcPort: esp.NATTPort, DstPort: 44500}
		c.EncapRemoteNAT = true
		r.eng.handler.HandleChildSA(ike.ChildEstablished, c)
	}
	if b.Hook().Table().Outbound(remote) == nil {
		t.Fatal("no outbound SA installed")
	}
	for range 3 {
		r.dev.in <- geneveFrame()
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(wire.writes()) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	w := wire.writes()
	if len(w) != 3 {
		t.Fatalf("%d of 3 sealed frames reached the wire (loop stats %+v)", len(w), b.Loop().Stats())
	}
	for _, f := range w {
		ip := f[14:]
		ihl := int(ip[0]&0x0f) * 4
		udp := ip[ihl:]
		sport, dport := binary.BigEndian.Uint16(udp[0:]), binary.BigEndian.Uint16(udp[2:])
		spi := binary.BigEndian.Uint32(udp[8:])
		if ip[9] != 17 || sport != 4500 || dport != 44500 || spi != 0xd0000002 {
			t.Errorf("on the wire: protocol %d, UDP %d -> %d, SPI %#x; want ESP-in-UDP 4500 -> 44500 under 0xd0000002", ip[9], sport, dport, spi)
		}
	}
	if s := b.Loop().Stats(); s.Drops[drop.Leak] != 0 || len(r.dev.writes()) != 0 {
		t.Errorf("leak drops %d, frames back to the engine port %d", s.Drops[drop.Leak], len(r.dev.writes()))
	}
}
