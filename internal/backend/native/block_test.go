package native

import (
	"strings"
	"testing"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

func TestBlockInvalidTunnel(t *testing.T) {
	r := newRig(t)
	// A protected tunnel turns INVALID: its IKE peer goes, its policy stays.
	if err := r.b.Ensure(ctx, geneveTunnel(1)); err != nil {
		t.Fatal(err)
	}
	bad := geneveTunnel(2)
	bad.State, bad.Reason = tunnel.StateInvalid, ": must choose a authentication method"
	if err := r.b.Block(ctx, bad); err != nil {
		t.Fatal(err)
	}
	if got := r.att.get(); len(got) != 1 || got[0].PeerIP != remote || got[0].Mode != ovsbridge.ModeProtected {
		t.Fatalf("policies after Block = %+v, want the peer still protected", got)
	}
	if len(r.eng.removed) == 0 {
		t.Errorf("the IKE peer of the now invalid tunnel was not removed")
	}
	st, err := r.b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := st[bad.Name]
	if s.Phase != backend.PhaseDown || !strings.Contains(s.Reason, "never sent in clear") {
		t.Errorf("status = %+v", s)
	}
	if names, _ := r.b.Loaded(ctx); len(names) != 1 || names[0] != bad.Name {
		t.Errorf("Loaded = %v", names)
	}
	// Fixed again: Ensure replaces the block with protection.
	if err := r.b.Ensure(ctx, geneveTunnel(3)); err != nil {
		t.Fatal(err)
	}
	if got := r.att.get(); len(got) != 1 {
		t.Fatalf("policies after fix = %+v", got)
	}
	if st, _ := r.b.Status(ctx); strings.Contains(st[bad.Name].Reason, "blocked") {
		t.Errorf("still blocked after Ensure: %+v", st[bad.Name])
	}
	// Remove lifts everything.
	if err := r.b.Remove(ctx, bad.Name); err != nil {
		t.Fatal(err)
	}
	if got := r.att.get(); len(got) != 0 {
		t.Fatalf("policies after Remove = %+v", got)
	}
}

func TestBlockNeedsAnAddress(t *testing.T) {
	r := newRig(t)
	bad := geneveTunnel(1)
	bad.RemoteIP = "flow"
	if err := r.b.Block(ctx, bad); err == nil {
		t.Fatal("Block accepted a tunnel without a remote address")
	}
	// Remove of a blocked-only tunnel lifts its policy.
	ok := geneveTunnel(1)
	ok.State = tunnel.StateInvalid
	if err := r.b.Block(ctx, ok); err != nil {
		t.Fatal(err)
	}
	if len(r.att.get()) != 1 {
		t.Fatalf("no policy for the blocked tunnel")
	}
	if err := r.b.Remove(ctx, ok.Name); err != nil {
		t.Fatal(err)
	}
	if len(r.att.get()) != 0 {
		t.Fatalf("policy left after Remove")
	}
}

func TestPrepareProtectsAllAtOnce(t *testing.T) {
	r := newRig(t)
	a := geneveTunnel(1)
	c := geneveTunnel(1)
	c.Name, c.RemoteIP = "ovn-c-0", "198.51.100.3"
	sets := r.att.sets
	if err := r.b.Prepare(ctx, []tunnel.Tunnel{a, c}); err != nil {
		t.Fatal(err)
	}
	if r.att.sets != sets+1 || len(r.att.get()) != 2 {
		t.Fatalf("Prepare: %d installs, policies %+v; want one install protecting both", r.att.sets-sets, r.att.get())
	}
	if st, _ := r.b.Status(ctx); len(st) != 0 {
		t.Errorf("prepared tunnels reported as configured: %+v", st)
	}
	if err := r.b.Ensure(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got := r.att.get(); len(got) != 2 {
		t.Fatalf("after Ensure of one: policies %+v, want both still protected", got)
	}
	if r.att.sets != sets+1 {
		t.Errorf("Ensure of a prepared tunnel installed br-phy again (%d installs in all): its policy was already in place", r.att.sets-sets)
	}
	if err := r.b.Remove(ctx, c.Name); err != nil {
		t.Fatal(err)
	}
	if got := r.att.get(); len(got) != 1 {
		t.Fatalf("after Remove of the prepared one: %+v", got)
	}
}
