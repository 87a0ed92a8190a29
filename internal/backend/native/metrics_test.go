// Metrics: the engine's counters, the loop's and the hook's drops and the
// plaintext drops by peer reach Backend.Metrics; a part that cannot count
// says so instead of reporting zeros.

package native

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
	"github.com/ovnsec/ovnsec/internal/datapath/drop"
	"github.com/ovnsec/ovnsec/internal/ike"
)

// countingIKE is a fake engine that keeps counters.
type countingIKE struct {
	*fakeIKE
	stats ike.StatsSnapshot
}

func (c *countingIKE) Stats() ike.StatsSnapshot { return c.stats }

// countingAtt is a fake attachment that counts plaintext drops by peer.
type countingAtt struct {
	*fakeAtt
	byPeer map[netip.Addr]uint64
	err    error
}

func (a *countingAtt) PlaintextDropsByPeer(context.Context) (map[netip.Addr]uint64, error) {
	return a.byPeer, a.err
}

func TestMetrics(t *testing.T) {
	eng := &countingIKE{fakeIKE: newFakeIKE(), stats: ike.StatsSnapshot{IKEEstablished: 3, ChildRekeys: 2,
		AuthFailures: map[ike.ReasonCode]uint64{ike.ReasonCertUntrusted: 1}}}
	att := &countingAtt{fakeAtt: &fakeAtt{}, byPeer: map[netip.Addr]uint64{remote: 7}}
	dev := newChanDev()
	b, err := newBackend(Config{
		Local: local, Bridge: "br-phy",
		NewIKE: func(ike.Config) (IKE, error) { return eng, nil },
		Creds:  fakeCreds{}, Log: slog.New(slog.DiscardHandler),
		Clock: clocktest.New(time.Unix(1700000000, 0)), Sweep: -1,
	}, att, dev, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background(), false) })

	// A frame too short to classify: the loop drops it as malformed.
	dev.in <- []byte{1, 2, 3}
	var m Metrics
	waitUntil(t, "the loop's drop", func() bool {
		m = b.Metrics(context.Background())
		return m.LoopDrops[drop.Malformed] == 1
	})
	if !m.HasIKE || m.IKE.IKEEstablished != 3 || m.IKE.ChildRekeys != 2 || m.IKE.AuthFailures[ike.ReasonCertUntrusted] != 1 {
		t.Errorf("IKE counters %+v (has %v)", m.IKE, m.HasIKE)
	}
	if m.PlaintextErr != nil || len(m.PlaintextDrops) != 1 || m.PlaintextDrops[remote] != 7 {
		t.Errorf("plaintext drops %v, %v", m.PlaintextDrops, m.PlaintextErr)
	}
	if m.HookDrops.Total() != 0 || m.LoopDrops.Total() != 1 {
		t.Errorf("drops: hook %v, loop %v", m.HookDrops, m.LoopDrops)
	}

	att.byPeer, att.err = nil, errors.New("ovs-ofctl: connection refused")
	if m := b.Metrics(context.Background()); m.PlaintextErr == nil || m.PlaintextDrops != nil {
		t.Errorf("a failed dump-flows reads as %v, %v", m.PlaintextDrops, m.PlaintextErr)
	}
}

// TestMetricsWithoutCounters: an engine and an attachment that keep no
// counters give no IKE counters and an error for the plaintext drops.
func TestMetricsWithoutCounters(t *testing.T) {
	r := newRig(t)
	m := r.b.Metrics(context.Background())
	if m.HasIKE {
		t.Errorf("IKE counters from an engine without any: %+v", m.IKE)
	}
	if m.PlaintextErr == nil || m.PlaintextDrops != nil {
		t.Errorf("plaintext drops %v, %v from an attachment that cannot count them", m.PlaintextDrops, m.PlaintextErr)
	}
}

func TestDropCounts(t *testing.T) {
	in := map[string]uint64{}
	var want drop.Counts
	for i, r := range drop.All() {
		in[r.String()] = uint64(i + 1)
		want[r] = uint64(i + 1)
	}
	in["drop_from_the_future"] = 99
	if got := dropCounts(in); got != want {
		t.Errorf("dropCounts = %v, want %v", got, want)
	}
	if got := dropCounts(nil); got.Total() != 0 {
		t.Errorf("dropCounts(nil) = %v", got)
	}
}
