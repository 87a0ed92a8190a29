package native

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike"
)

// savedB is a handover for geneveTunnel(1) whose child ovn-b-0-out-1
// (inbound SPI 0xc0000002) had sent 3 packets.
func savedB() *Handover {
	return &Handover{Version: handoverVersion, Local: local.String(), Tunnels: []SavedTunnel{{
		Name: "ovn-b-0", Config: configID(geneveTunnel(1)),
		SA:  ike.SavedSA{Peer: "ovn-b-0-1", Children: []ike.SavedChild{{Info: ike.ChildSA{InSPI: 0xc0000002}}}},
		ESP: map[esp.SPI]ESPResume{0xc0000002: {Out: esp.Resume{LastSeq: 3}}},
	}}}
}

// held reports whether the frame pushed into the rig's device is still
// unread after a moment: the loop would have read it at once.
func held(r *rig) bool {
	time.Sleep(50 * time.Millisecond)
	return len(r.dev.in) == 1
}

// A backend on handed-over sockets reads nothing until the saved SAs are
// installed again: a frame queued meanwhile is then sealed under the
// resumed SA, not dropped for want of one.
func TestInheritedSocketsHeldUntilSAsInstalled(t *testing.T) {
	r := newRigWith(t, func(c *Config) { c.Inherited = &Sockets{} })
	r.dev.in <- geneveFrame()
	if !held(r) {
		t.Fatal("the engine port was read before Resume")
	}
	r.b.Resume(savedB())
	if !held(r) {
		t.Fatal("the engine port was read before the saved SAs were taken up")
	}
	if err := r.b.Ensure(ctx, geneveTunnel(1)); err != nil {
		t.Fatal(err)
	}
	if len(r.eng.restored) != 1 {
		t.Fatalf("restored %v, want the saved SA", r.eng.restored)
	}
	if !held(r) {
		t.Fatal("the engine port was read before the restored Child SA was installed")
	}
	r.eng.handler.HandleChildSA(ike.ChildEstablished, child(t, "ovn-b-0-1", "ovn-b-0-out-1", 0xc0000002, 0xd0000002, 3))
	waitUntil(t, "the queued frame sealed", func() bool { return len(r.dev.writes()) == 1 })
	if seq := binary.BigEndian.Uint32(r.dev.writes()[0][14+20+4:]); seq != 3+esp.ResumeMargin+1 {
		t.Fatalf("sequence number %d, want %d", seq, 3+esp.ResumeMargin+1)
	}
}

// Saved SAs no tunnel takes up (removed while the processes changed over)
// hold the engine port for HandoverHold at most.
func TestInheritedSocketsHeldAtMostHandoverHold(t *testing.T) {
	r := newRigWith(t, func(c *Config) { c.Inherited = &Sockets{} })
	r.dev.in <- geneveFrame()
	r.b.Resume(savedB())
	r.clk.Advance(HandoverHold - time.Millisecond)
	if !held(r) {
		t.Fatal("the engine port was read before HandoverHold")
	}
	r.clk.Advance(time.Millisecond)
	waitUntil(t, "the engine port read after HandoverHold", func() bool { return len(r.dev.in) == 0 })
}

// Nothing saved (the old process could not write it): read at once.
func TestInheritedSocketsNothingSaved(t *testing.T) {
	r := newRigWith(t, func(c *Config) { c.Inherited = &Sockets{} })
	r.dev.in <- geneveFrame()
	r.b.Resume(nil)
	waitUntil(t, "the engine port read", func() bool { return len(r.dev.in) == 0 })
}

// A held backend still closes: its readers return.
func TestInheritedSocketsCloseWhileHeld(t *testing.T) {
	r := newRigWith(t, func(c *Config) { c.Inherited = &Sockets{} })
	done := make(chan error, 1)
	go func() { done <- r.b.Close(ctx, false) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs while the engine port is held")
	}
}
