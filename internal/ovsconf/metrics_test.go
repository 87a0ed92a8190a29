// Client metrics: libovsdb's counters summed over the Watcher's sessions,
// never going backwards across reconnects; its gauge from the live
// session only; and the real thing against ovsdb-server.

package ovsconf

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// gathered is every series of reg as "name{l="v",...}" -> value.
func gathered(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, lp.GetName()+"="+lp.GetValue())
			}
			k := mf.GetName() + "{" + strings.Join(ls, ",") + "}"
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[k] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[k] = m.GetGauge().GetValue()
			default:
				t.Fatalf("%s: unexpected type %v", k, mf.GetType())
			}
		}
	}
	return out
}

// fakeClient registers metrics shaped as libovsdb's on r, as a client
// made with client.WithMetricsRegistry(r) does.
type fakeClient struct {
	updates     *prometheus.CounterVec
	disconnects prometheus.Counter
	monitors    prometheus.Gauge
}

func newFakeClient(r prometheus.Registerer) *fakeClient {
	c := &fakeClient{
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "libovsdb_update_messages_total", Help: "updates",
			ConstLabels: prometheus.Labels{"primary_model": "Open_vSwitch"}}, []string{"database"}),
		disconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "libovsdb_disconnects_total", Help: "disconnects",
			ConstLabels: prometheus.Labels{"primary_model": "Open_vSwitch"}}),
		monitors: prometheus.NewGauge(prometheus.GaugeOpts{Name: "libovsdb_monitors", Help: "monitors",
			ConstLabels: prometheus.Labels{"primary_model": "Open_vSwitch"}}),
	}
	r.MustRegister(c.updates, c.disconnects, c.monitors)
	return c
}

const (
	updatesKey     = "libovsdb_update_messages_total{database=Open_vSwitch,primary_model=Open_vSwitch}"
	disconnectsKey = "libovsdb_disconnects_total{primary_model=Open_vSwitch}"
	monitorsKey    = "libovsdb_monitors{primary_model=Open_vSwitch}"
)

func TestClientMetricsAcrossSessions(t *testing.T) {
	c := newClientMetrics()
	if got := gathered(t, c); len(got) != 0 {
		t.Fatalf("before any session: %v", got)
	}

	r1 := c.newSession()
	s1 := newFakeClient(r1)
	s1.updates.WithLabelValues("Open_vSwitch").Add(5)
	s1.monitors.Set(1)
	if got := gathered(t, c); got[updatesKey] != 5 || got[monitorsKey] != 1 || got[disconnectsKey] != 0 {
		t.Fatalf("first session: %v", got)
	}
	c.endSession(r1)
	// libovsdb counts the disconnect after Close returned.
	s1.disconnects.Inc()
	s1.monitors.Set(0)
	got := gathered(t, c)
	if got[updatesKey] != 5 || got[disconnectsKey] != 1 {
		t.Fatalf("between sessions: %v", got)
	}
	if _, ok := got[monitorsKey]; ok {
		t.Errorf("a gauge of an ended session is exported: %v", got)
	}

	// A new client starts its counters at zero; the sums do not.
	r2 := c.newSession()
	s2 := newFakeClient(r2) // a second client's MustRegister does not panic
	s2.updates.WithLabelValues("Open_vSwitch").Add(2)
	s2.monitors.Set(1)
	if got := gathered(t, c); got[updatesKey] != 7 || got[disconnectsKey] != 1 || got[monitorsKey] != 1 {
		t.Fatalf("second session: %v", got)
	}
	c.endSession(r2)
	s2.disconnects.Inc()
	r3 := c.newSession()
	newFakeClient(r3)
	c.endSession(r3)                                    // folds r2; r1 was folded when r2 ended
	s1.updates.WithLabelValues("Open_vSwitch").Add(100) // too late: folded
	if got := gathered(t, c); got[updatesKey] != 7 || got[disconnectsKey] != 2 {
		t.Fatalf("after three sessions: %v", got)
	}
	if len(c.folded) != 2 || c.prev != r3 || c.cur != nil {
		t.Errorf("state: %d folded series, prev %p (r3 %p), cur %p", len(c.folded), c.prev, r3, c.cur)
	}
}

// TestWatcherMetrics: the real libovsdb client against ovsdb-server:
// its monitors gauge while connected, and the disconnect of a server
// restart (a new client) counted into the Watcher's collector. libovsdb
// v0.8.1 counts update messages only for monitor v1 "update"
// notifications; ovsdb-server answers its monitor_cond_since with
// "update3", so libovsdb_update_messages_total does not move (checked
// here, so that a libovsdb that starts counting them is noticed).
func TestWatcherMetrics(t *testing.T) {
	o := newOVSDBServer(t)
	o.start()
	o.ctl("init")
	w := watch(t, o.remote(), WithBackoff(50*time.Millisecond, 200*time.Millisecond))
	var seq uint64
	next(t, w, &seq, 5*time.Second, "initial snapshot", func(tunnel.Snapshot) bool { return true })
	o.ctl("add-br", "br-int", "--", "add-port", "br-int", "gnv0", "--",
		"set", "interface", "gnv0", "type=geneve", "options:remote_ip=192.0.2.2", "options:psk=one")
	next(t, w, &seq, 5*time.Second, "gnv0", func(s tunnel.Snapshot) bool { return iface(s, "gnv0") != nil })
	first := gathered(t, w.Metrics())
	if first[monitorsKey] != 1 || first[disconnectsKey] != 0 {
		t.Fatalf("connected: %v", first)
	}
	if first[updatesKey] != 0 {
		t.Logf("libovsdb now counts update3 messages (%v); this test could check that they grow", first[updatesKey])
	}

	for restart := 1; restart <= 2; restart++ {
		o.kill()
		waitFor(t, 2*time.Second, "Connected() == false after the server died", func() bool { return !w.Connected() })
		o.start()
		next(t, w, &seq, 5*time.Second, "snapshot after the restart", func(tunnel.Snapshot) bool { return true })
		var got map[string]float64
		waitFor(t, 2*time.Second, "the disconnect counted", func() bool {
			got = gathered(t, w.Metrics())
			return got[disconnectsKey] == float64(restart)
		})
		if got[monitorsKey] != 1 || got[updatesKey] < first[updatesKey] {
			t.Fatalf("after restart %d (a new client): %v; before: %v", restart, got, first)
		}
	}
}
