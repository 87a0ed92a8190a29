// Client metrics: libovsdb's own counters (monitor update messages, table
// updates, disconnects) and its monitors gauge, for every connection of the
// Watcher, exported as one set whose counters never go backwards.
//
// libovsdb v0.8.1 creates its metrics per client and registers them on the
// registry given with client.WithMetricsRegistry with MustRegister: a
// second client on the same registry panics, and a fresh client's counters
// start at zero. The Watcher uses a fresh client per connection, so each
// session gets a registry of its own; Collect adds the counters of the
// sessions that ended to the live session's, and exports the gauges of the
// live session only.

package ovsconf

import (
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// clientMetrics is the Watcher's prometheus.Collector of libovsdb's
// metrics. It is safe for concurrent use.
type clientMetrics struct {
	mu sync.Mutex
	// folded are the counters of sessions no longer gathered, by series.
	folded map[string]*foldedSeries
	// cur is the live session's registry (nil between sessions); prev the
	// last ended one's, still gathered: libovsdb counts a disconnect in a
	// goroutine of its own that can run after Close has returned, so a
	// session is folded only when the next one ends.
	prev, cur *prometheus.Registry
}

// foldedSeries is one counter series of ended sessions.
type foldedSeries struct {
	name, help     string
	labels, values []string
	value          float64
}

func newClientMetrics() *clientMetrics {
	return &clientMetrics{folded: map[string]*foldedSeries{}}
}

// Metrics returns the collector of libovsdb's client metrics of this
// Watcher's connections (libovsdb_update_messages_total,
// libovsdb_table_updates_total, libovsdb_disconnects_total,
// libovsdb_monitors); register it on the daemon's registry. The counters
// sum over all connections since the Watcher was made.
func (w *Watcher) Metrics() prometheus.Collector { return w.metrics }

// newSession returns the registry for a new connection's client.
func (c *clientMetrics) newSession() *prometheus.Registry {
	r := prometheus.NewRegistry()
	c.mu.Lock()
	c.cur = r
	c.mu.Unlock()
	return r
}

// endSession is called once r's client is closed.
func (c *clientMetrics) endSession(r *prometheus.Registry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prev != nil {
		c.fold(c.prev)
	}
	c.prev = r
	if c.cur == r {
		c.cur = nil
	}
}

// fold adds r's counters to folded. Called with c.mu held.
func (c *clientMetrics) fold(r *prometheus.Registry) {
	mfs, _ := r.Gather() // what could be gathered; a broken family is left out
	for _, mf := range mfs {
		if mf.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, m := range mf.GetMetric() {
			k, s := seriesOf(mf, m)
			if f := c.folded[k]; f != nil {
				f.value += m.GetCounter().GetValue()
				continue
			}
			s.value = m.GetCounter().GetValue()
			c.folded[k] = s
		}
	}
}

// seriesOf is m's series key and a foldedSeries without a value.
func seriesOf(mf *dto.MetricFamily, m *dto.Metric) (string, *foldedSeries) {
	s := &foldedSeries{name: mf.GetName(), help: mf.GetHelp()}
	lps := append([]*dto.LabelPair(nil), m.GetLabel()...)
	sort.Slice(lps, func(i, j int) bool { return lps[i].GetName() < lps[j].GetName() })
	var k strings.Builder
	k.WriteString(s.name)
	for _, lp := range lps {
		s.labels = append(s.labels, lp.GetName())
		s.values = append(s.values, lp.GetValue())
		k.WriteString("\xff" + lp.GetName() + "\xff" + lp.GetValue())
	}
	return k.String(), s
}

// Describe implements prometheus.Collector. It describes nothing: the
// metrics are libovsdb's, known once a client made them (an unchecked
// collector).
func (c *clientMetrics) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (c *clientMetrics) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sums := make(map[string]*foldedSeries, len(c.folded))
	for k, f := range c.folded {
		cp := *f
		sums[k] = &cp
	}
	for _, r := range []*prometheus.Registry{c.prev, c.cur} {
		if r == nil {
			continue
		}
		mfs, _ := r.Gather()
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				k, s := seriesOf(mf, m)
				switch mf.GetType() {
				case dto.MetricType_COUNTER:
					if f := sums[k]; f != nil {
						f.value += m.GetCounter().GetValue()
					} else {
						s.value = m.GetCounter().GetValue()
						sums[k] = s
					}
				case dto.MetricType_GAUGE:
					if r == c.cur {
						emit(ch, s, prometheus.GaugeValue, m.GetGauge().GetValue())
					}
				}
			}
		}
	}
	for _, s := range sums {
		emit(ch, s, prometheus.CounterValue, s.value)
	}
}

func emit(ch chan<- prometheus.Metric, s *foldedSeries, t prometheus.ValueType, v float64) {
	d := prometheus.NewDesc(s.name, s.help, s.labels, nil)
	m, err := prometheus.NewConstMetric(d, t, v, s.values...)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err)
	}
	ch <- m
}
