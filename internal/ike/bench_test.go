// Benchmarks: full PSK handshakes (IKE_SA_INIT + IKE_AUTH with one Child
// SA, then the INFORMATIONAL Delete of the IKE SA, as bench/ikeload runs
// them) per second, engine against engine in one process over the
// in-memory network, with the CPU time both sides spend per handshake.

package ike

import (
	"context"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/esp"
)

// chanHandler passes on the establishment and deletion of Child SAs.
type chanHandler struct{ up, down chan struct{} }

func (c chanHandler) HandleChildSA(ev ChildEvent, _ ChildSA) {
	switch ev {
	case ChildEstablished:
		c.up <- struct{}{}
	case ChildDeleted:
		c.down <- struct{}{}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkHandshakePSK(b *testing.B) {
	for _, prop := range []string{"aes256gcm16-prfsha256-x25519", "aes256gcm16-prfsha256-modp2048"} {
		b.Run(prop, func(b *testing.B) {
			n := newMemNet()
			h := chanHandler{make(chan struct{}, 16), make(chan struct{}, 16)}
			mk := func(ip string, h ChildSAHandler) *Engine {
				e, err := New(Config{Conn: n.conn(netip.MustParseAddr(ip), 500, 4500), Handler: h, Logger: testLogger()})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { e.Run(ctx); close(done) }()
				b.Cleanup(func() { cancel(); <-done })
				return e
			}
			ea := mk("192.0.2.1", h)
			eb := mk("192.0.2.2", nil)
			a, bb := &fakeSide{e: ea, ip: netip.MustParseAddr("192.0.2.1")}, &fakeSide{e: eb, ip: netip.MustParseAddr("192.0.2.2")}
			pa, pb := fakePeer(a, bb, false), fakePeer(bb, a, false)
			pa.IKEProposals, pb.IKEProposals = []string{prop}, []string{prop}
			pa.Children[0].Mode, pb.Children[0].Mode = esp.Transport, esp.Transport
			if err := eb.AddPeer(pb); err != nil {
				b.Fatal(err)
			}
			if err := ea.AddPeer(pa); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if err := ea.Initiate("peer"); err != nil {
					b.Fatal(err)
				}
				select {
				case <-h.up:
				case <-time.After(5 * time.Second):
					b.Fatalf("handshake %d did not complete: %+v", i, ea.Status("peer"))
				}
				// Delete the IKE SA (the responder forgets it before it
				// reads the next IKE_SA_INIT, which comes on the same port).
				if err := ea.DeleteIKE("peer"); err != nil {
					b.Fatal(err)
				}
				select {
				case <-h.down:
				case <-time.After(5 * time.Second):
					b.Fatalf("delete %d did not complete: %+v", i, ea.Status("peer"))
				}
			}
			b.StopTimer()
			if st := eb.Status("peer"); st.Up() {
				b.Fatalf("the responder still has an IKE SA: %+v", st)
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/handshake")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
		})
	}
}
