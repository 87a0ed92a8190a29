package native

import (
	"strings"
	"testing"
	"time"
)

// Without a bridge the backend refuses to configure an OVS tunnel: it
// cannot block its packets, so the tunnel is reported blocked with the
// reason, and nothing is negotiated for it.
func TestBridgelessRefusesOVSTunnels(t *testing.T) {
	r := newRigWith(t, nil)
	r.b.att = bridgeless{}
	err := r.b.Ensure(ctx, geneveTunnel(1))
	if err == nil || !strings.Contains(err.Error(), "without --bridge") {
		t.Fatalf("Ensure without a bridge = %v, want a refusal naming --bridge", err)
	}
	if len(r.eng.peers) != 0 {
		t.Fatalf("IKE peers configured for a tunnel that cannot be protected: %v", r.eng.peers)
	}
}

// The idle engine port of a bridgeless backend reads nothing until closed.
func TestIdleDevice(t *testing.T) {
	d := newIdleDevice()
	done := make(chan error, 1)
	go func() { _, err := d.ReadBatch(nil, nil); done <- err }()
	select {
	case <-done:
		t.Fatal("ReadBatch returned before Close")
	case <-time.After(20 * time.Millisecond):
	}
	d.Close()
	d.Close() // twice is fine
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("ReadBatch after Close returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadBatch still blocked after Close")
	}
}
