package native

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// A stopping backend saves its SAs with where their ESP sequence numbers
// stand; the next one takes them up for the same tunnel (no negotiation),
// and its outbound SA continues past the saved sequence number.
func TestHandoverRoundTrip(t *testing.T) {
	r := newRig(t)
	tt := geneveTunnel(1)
	if err := r.b.Ensure(ctx, tt); err != nil {
		t.Fatal(err)
	}
	c := child(t, "ovn-b-0-1", "ovn-b-0-out-1", 0xc0000002, 0xd0000002, 3)
	r.eng.handler.HandleChildSA(ike.ChildEstablished, c)
	for i := range 3 {
		r.dev.in <- geneveFrame()
		waitUntil(t, "frame sealed", func() bool { return len(r.dev.writes()) == i+1 })
	}
	r.eng.saved = []ike.SavedSA{{Peer: "ovn-b-0-1", Children: []ike.SavedChild{{Info: ike.ChildSA{InSPI: 0xc0000002}}}}}
	path := filepath.Join(t.TempDir(), "ovnsecd.handover")
	n, err := r.b.Suspend(ctx, path)
	if err != nil || n != 1 {
		t.Fatalf("Suspend = %d, %v", n, err)
	}
	if !r.eng.suspended || r.att.detached || len(r.att.get()) != 1 {
		t.Fatalf("suspended %v, detached %v, policies %+v: the engine must stop quietly and br-phy keep its rules", r.eng.suspended, r.att.detached, r.att.get())
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("handover file %v %v, want mode 0600", fi, err)
	}

	h, err := ReadHandover(path)
	if err != nil || h == nil || len(h.Tunnels) != 1 {
		t.Fatalf("ReadHandover = %+v, %v", h, err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("the handover file (keys) outlived its reading")
	}
	if got := h.Tunnels[0].ESP[0xc0000002].Out.LastSeq; got != 3 {
		t.Fatalf("saved outbound sequence number %d, want 3", got)
	}

	r2 := newRigWith(t, func(c *Config) { c.Handover = h })
	if err := r2.b.Ensure(ctx, tt); err != nil {
		t.Fatal(err)
	}
	if len(r2.eng.restored) != 1 || r2.eng.peers["ovn-b-0-1"].Initiate {
		t.Fatalf("restored %v, peer %+v: want the saved SA taken up, no initiation", r2.eng.restored, r2.eng.peers["ovn-b-0-1"])
	}
	// The engine reports the restored child; the ESP SA resumes.
	r2.eng.handler.HandleChildSA(ike.ChildEstablished, child(t, "ovn-b-0-1", "ovn-b-0-out-1", 0xc0000002, 0xd0000002, 3))
	r2.dev.in <- geneveFrame()
	waitUntil(t, "frame sealed after the handover", func() bool { return len(r2.dev.writes()) == 1 })
	w := r2.dev.writes()[0]
	if seq := binary.BigEndian.Uint32(w[14+20+4:]); seq != 3+esp.ResumeMargin+1 {
		t.Fatalf("first sequence number after the handover %d, want %d", seq, 3+esp.ResumeMargin+1)
	}
}

// A tunnel configured otherwise than when saved negotiates afresh.
func TestHandoverNeedsTheSameConfiguration(t *testing.T) {
	saved := func() *Handover {
		return &Handover{Version: handoverVersion, Local: local.String(), Tunnels: []SavedTunnel{{
			Name: "ovn-b-0", Config: configID(geneveTunnel(1)), SA: ike.SavedSA{Peer: "ovn-b-0-1"}, ESP: map[esp.SPI]ESPResume{},
		}}}
	}
	r := newRigWith(t, func(c *Config) { c.Handover = saved() })
	changed := geneveTunnel(1)
	changed.CustomOptions = append(changed.CustomOptions, tunnelOption("encapsulation", "yes"))
	if err := r.b.Ensure(ctx, changed); err != nil {
		t.Fatal(err)
	}
	if len(r.eng.restored) != 0 {
		t.Fatalf("restored %v for a changed tunnel", r.eng.restored)
	}
	// A failed restore falls back to negotiating.
	r2 := newRigWith(t, func(c *Config) { c.Handover = saved() })
	r2.eng.restoreErr = ike.ErrStale
	if err := r2.b.Ensure(ctx, geneveTunnel(1)); err != nil {
		t.Fatal(err)
	}
	if len(r2.eng.initiated) != 1 {
		t.Fatalf("initiated %v after a failed restore, want one initiation", r2.eng.initiated)
	}
}

func tunnelOption(k, v string) tunnel.Option { return tunnel.Option{Key: k, Value: v} }
