// Collector: tunnel states and reasons, ESP counters that stay monotonic
// across rekeys and status gaps, engine counters with every label from the
// enums, plaintext drops across an OVS counter reset, certificate expiry,
// and an exposition that promtool accepts.

package metrics

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/datapath/drop"
	"github.com/ovnsec/ovnsec/internal/ike"
	"github.com/ovnsec/ovnsec/internal/reconcile"
	"github.com/ovnsec/ovnsec/internal/testenv"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// fakeSource serves views, engine counters and certificates that a test
// changes between scrapes.
type fakeSource struct {
	mu     sync.Mutex
	views  []reconcile.TunnelView
	berr   error
	engine Engine
	certs  map[string][]*x509.Certificate
}

func (f *fakeSource) tunnels(context.Context) ([]reconcile.TunnelView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]reconcile.TunnelView(nil), f.views...), f.berr
}

func (f *fakeSource) eng(context.Context) Engine {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.engine
}

func (f *fakeSource) Certificates(path string) ([]*x509.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.certs[path]
	if !ok {
		return nil, fmt.Errorf("read certificate %s: no such file", path)
	}
	return c, nil
}

func newTestCollector(t *testing.T, f *fakeSource, native bool) (*Collector, *prometheus.Registry) {
	t.Helper()
	cfg := Config{Tunnels: f.tunnels, Certificates: f, Version: "1.2.3", Backend: "native"}
	if native {
		cfg.Engine = f.eng
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	return c, reg
}

// scrape gathers reg as "name{l=v,...}" -> value (labels in name order).
func scrape(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
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
			}
		}
	}
	return out
}

// series lists the keys of got that start with prefix.
func series(got map[string]float64, prefix string) []string {
	var ks []string
	for k := range got {
		if strings.HasPrefix(k, prefix) {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}

func want(t *testing.T, got map[string]float64, key string, v float64) {
	t.Helper()
	g, ok := got[key]
	if !ok {
		t.Errorf("%s missing; have %s", key, strings.Join(series(got, key[:strings.IndexByte(key, '{')]), " "))
		return
	}
	if g != v {
		t.Errorf("%s = %v, want %v", key, g, v)
	}
}

func view(name, remote string, up bool, children ...backend.ChildSAStatus) reconcile.TunnelView {
	t := tunnel.Tunnel{Name: name, Version: 1, State: tunnel.StateConfigured, Type: tunnel.TypeGeneve,
		RemoteIP: remote, Auth: tunnel.AuthPSK}
	v := reconcile.TunnelView{Tunnel: t, HasStatus: true, Applied: 1, Current: true,
		Status: backend.TunnelStatus{Name: name, Version: 1, Phase: backend.PhaseUp, Children: children}}
	if !up {
		v.Status.Phase, v.Status.Code, v.Status.Reason = backend.PhaseDown, backend.Code(ike.ReasonPeerSilent), "peer silent"
	}
	return v
}

func child(name, in string, pin, bin, pout, bout uint64, drops map[string]uint64) backend.ChildSAStatus {
	return backend.ChildSAStatus{Name: name, InSPI: in, OutSPI: "o" + in, PacketsIn: pin, BytesIn: bin,
		PacketsOut: pout, BytesOut: bout, Drops: drops}
}

func TestCollectorTunnels(t *testing.T) {
	f := &fakeSource{views: []reconcile.TunnelView{
		view("ovn-a", "192.0.2.2", true, child("ovn-a-in-1", "1", 10, 1000, 20, 2000, map[string]uint64{"replay": 2, "lifetime": 1})),
		view("ovn-b", "192.0.2.3", false),
	}}
	_, reg := newTestCollector(t, f, false)
	got := scrape(t, reg)

	want(t, got, `ovnsec_build_info{backend=native,version=1.2.3}`, 1)
	want(t, got, `ovnsec_metrics_source_up{source=backend_status}`, 1)
	want(t, got, `ovnsec_tunnel_up{remote_ip=192.0.2.2,tunnel=ovn-a,type=geneve}`, 1)
	want(t, got, `ovnsec_tunnel_up{remote_ip=192.0.2.3,tunnel=ovn-b,type=geneve}`, 0)
	for _, s := range backend.States() {
		a, b := 0.0, 0.0
		if s == backend.StateUp {
			a = 1
		}
		if s == backend.StateDown {
			b = 1
		}
		want(t, got, fmt.Sprintf(`ovnsec_tunnel_state{state=%s,tunnel=ovn-a}`, s), a)
		want(t, got, fmt.Sprintf(`ovnsec_tunnel_state{state=%s,tunnel=ovn-b}`, s), b)
	}
	if r := series(got, "ovnsec_tunnel_reason{"); len(r) != 1 || r[0] != `ovnsec_tunnel_reason{code=peer_silent,tunnel=ovn-b}` {
		t.Errorf("reasons %v, want only ovn-b's peer_silent", r)
	}
	want(t, got, `ovnsec_tunnel_child_sas{tunnel=ovn-a}`, 1)
	want(t, got, `ovnsec_tunnel_child_sas{tunnel=ovn-b}`, 0)
	want(t, got, `ovnsec_esp_packets_total{direction=in,tunnel=ovn-a}`, 10)
	want(t, got, `ovnsec_esp_packets_total{direction=out,tunnel=ovn-a}`, 20)
	want(t, got, `ovnsec_esp_bytes_total{direction=in,tunnel=ovn-a}`, 1000)
	want(t, got, `ovnsec_esp_bytes_total{direction=out,tunnel=ovn-a}`, 2000)
	want(t, got, `ovnsec_esp_packets_total{direction=in,tunnel=ovn-b}`, 0)
	// The native status's drop names become drop.Reason names.
	want(t, got, `ovnsec_esp_drops_total{reason=drop_replay,tunnel=ovn-a}`, 2)
	want(t, got, `ovnsec_esp_drops_total{reason=drop_expired,tunnel=ovn-a}`, 1)
	want(t, got, `ovnsec_esp_drops_total{reason=drop_auth,tunnel=ovn-a}`, 0)
	if n := len(series(got, "ovnsec_esp_drops_total{")); n != 2*len(childDropReasons) {
		t.Errorf("%d drop series, want %d per tunnel", n, len(childDropReasons))
	}
	// strongSwan-like: no engine, so no engine series at all.
	for _, p := range []string{"ovnsec_ike_", "ovnsec_child_sa_", "ovnsec_plaintext_", "ovnsec_datapath_"} {
		if s := series(got, p); len(s) != 0 {
			t.Errorf("without an engine: %v", s)
		}
	}

	// The backend does not answer: its state is unknown, not up.
	f.views = []reconcile.TunnelView{{Tunnel: f.views[0].Tunnel}}
	f.berr = errors.New("charon unreachable")
	got = scrape(t, reg)
	want(t, got, `ovnsec_metrics_source_up{source=backend_status}`, 0)
	want(t, got, `ovnsec_tunnel_up{remote_ip=192.0.2.2,tunnel=ovn-a,type=geneve}`, 0)
	want(t, got, `ovnsec_tunnel_state{state=unknown,tunnel=ovn-a}`, 1)
	want(t, got, `ovnsec_tunnel_reason{code=backend_unreachable,tunnel=ovn-a}`, 1)
	// Its SAs are not known to be gone: the totals stay.
	want(t, got, `ovnsec_esp_packets_total{direction=in,tunnel=ovn-a}`, 10)
	if s := series(got, "ovnsec_tunnel_up{remote_ip=192.0.2.3"); len(s) != 0 {
		t.Errorf("a removed tunnel is still exported: %v", s)
	}
}

// TestCollectorESPAcrossRekeys: the per-tunnel counters sum the SAs a
// tunnel had, never go backwards, and count an SA once even when one
// reading misses it.
func TestCollectorESPAcrossRekeys(t *testing.T) {
	f := &fakeSource{}
	_, reg := newTestCollector(t, f, false)
	in := `ovnsec_esp_packets_total{direction=in,tunnel=ovn-a}`
	bytesOut := `ovnsec_esp_bytes_total{direction=out,tunnel=ovn-a}`
	auth := `ovnsec_esp_drops_total{reason=drop_auth,tunnel=ovn-a}`
	last := map[string]float64{}
	step := func(what string, wantIn float64, children ...backend.ChildSAStatus) map[string]float64 {
		t.Helper()
		f.views = []reconcile.TunnelView{view("ovn-a", "192.0.2.2", true, children...)}
		got := scrape(t, reg)
		if got[in] != wantIn {
			t.Errorf("%s: packets in %v, want %v", what, got[in], wantIn)
		}
		for _, k := range []string{in, bytesOut, auth} {
			if got[k] < last[k] {
				t.Errorf("%s: %s went backwards: %v -> %v", what, k, last[k], got[k])
			}
		}
		last = got
		return got
	}
	step("first SA", 100, child("c", "1", 100, 1e4, 50, 5e3, map[string]uint64{"auth": 1}))
	step("rekeyed: old and new SA", 160, child("c", "1", 150, 1.5e4, 60, 6e3, map[string]uint64{"auth": 1}), child("c", "2", 10, 1e3, 5, 500, nil))
	got := step("old SA deleted", 180, child("c", "2", 30, 3e3, 40, 4e3, nil))
	want(t, got, bytesOut, 6e3+4e3)
	want(t, got, auth, 1)
	// A reading that misses the SA (a status read half done), then has it
	// again: counted once.
	step("SA missing from one reading", 180)
	step("SA back", 190, child("c", "2", 40, 4e3, 45, 4.5e3, nil))
	// The same SPIs with smaller counters: another SA, added on.
	step("new SA under the same SPIs", 192, child("c", "2", 2, 200, 1, 100, nil))
	// A version change re-creates the SAs under new names.
	step("new version", 192+7, child("c2", "3", 7, 700, 7, 700, nil))

	// The tunnel goes: its series go, and a new tunnel of that name starts
	// from zero (a counter reset for rate()).
	f.views = nil
	if s := series(scrape(t, reg), "ovnsec_esp_"); len(s) != 0 {
		t.Errorf("series of a removed tunnel: %v", s)
	}
	f.views = []reconcile.TunnelView{view("ovn-a", "192.0.2.2", true, child("c", "9", 3, 300, 3, 300, nil))}
	want(t, scrape(t, reg), in, 3)
}

func TestTunnelESPRemembersFewGone(t *testing.T) {
	acc := newTunnelESP()
	for i := range 3 * goneMemory {
		acc.update([]backend.ChildSAStatus{child("c", fmt.Sprint(i), 1, 1, 1, 1, nil)})
	}
	acc.update(nil)
	if len(acc.gone) != goneMemory || len(acc.live) != 0 {
		t.Errorf("%d gone remembered, %d live", len(acc.gone), len(acc.live))
	}
	if tot := acc.total(); tot.packetsIn != 3*goneMemory {
		t.Errorf("total %+v, want %d packets", tot, 3*goneMemory)
	}
}

func TestMonotonic(t *testing.T) {
	var m monotonic
	for _, s := range []struct{ in, want uint64 }{{5, 5}, {9, 9}, {2, 11}, {3, 12}, {0, 12}, {4, 16}} {
		if got := m.observe(s.in); got != s.want {
			t.Fatalf("observe(%d) = %d, want %d", s.in, got, s.want)
		}
	}
}

func TestCollectorEngine(t *testing.T) {
	peer := netip.MustParseAddr("192.0.2.2")
	f := &fakeSource{engine: Engine{
		HasIKE: true,
		IKE: ike.StatsSnapshot{Received: 40, Sent: 41, DecodeErrors: 2, AuthErrors: 3, Retransmits: 4, CookiesSent: 5,
			IKEEstablished: 6, IKERekeys: 7, ChildRekeys: 8,
			AuthFailures: map[ike.ReasonCode]uint64{ike.ReasonCertUntrusted: 2, ike.ReasonPeerRefusedAuth: 1}},
		PlaintextDrops: map[netip.Addr]uint64{peer: 10},
	}}
	f.engine.HookDrops[drop.Auth] = 11
	f.engine.LoopDrops[drop.NoPeer] = 12
	_, reg := newTestCollector(t, f, true)
	got := scrape(t, reg)
	want(t, got, `ovnsec_ike_sa_established_total{}`, 6)
	want(t, got, `ovnsec_ike_sa_rekeys_total{}`, 7)
	want(t, got, `ovnsec_child_sa_rekeys_total{}`, 8)
	want(t, got, `ovnsec_ike_auth_failures_total{reason=cert_untrusted}`, 2)
	want(t, got, `ovnsec_ike_auth_failures_total{reason=peer_refused_auth}`, 1)
	if n := len(series(got, "ovnsec_ike_auth_failures_total{")); n != len(ike.ReasonCodes()) {
		t.Errorf("%d auth failure series, want one per reason code (%d)", n, len(ike.ReasonCodes()))
	}
	want(t, got, `ovnsec_ike_messages_total{direction=received}`, 40)
	want(t, got, `ovnsec_ike_messages_total{direction=sent}`, 41)
	want(t, got, `ovnsec_ike_dropped_total{reason=decode_error}`, 2)
	want(t, got, `ovnsec_ike_auth_errors_total{}`, 3)
	want(t, got, `ovnsec_ike_retransmits_total{}`, 4)
	want(t, got, `ovnsec_ike_cookies_sent_total{}`, 5)
	want(t, got, `ovnsec_datapath_drops_total{path=esp_hook,reason=drop_auth}`, 11)
	want(t, got, `ovnsec_datapath_drops_total{path=frame_loop,reason=drop_no_peer}`, 12)
	if n := len(series(got, "ovnsec_datapath_drops_total{")); n != 2*len(drop.All()) {
		t.Errorf("%d datapath drop series, want %d", n, 2*len(drop.All()))
	}
	key := `ovnsec_plaintext_dropped_total{remote_ip=192.0.2.2}`
	want(t, got, key, 10)
	want(t, got, `ovnsec_metrics_source_up{source=plaintext_drops}`, 1)

	// ovs-vswitchd restarts: OVS's counter starts again; ours does not.
	f.engine.PlaintextDrops = map[netip.Addr]uint64{peer: 3}
	want(t, scrape(t, reg), key, 13)
	// ovs-ofctl fails: no plaintext series this time, the source says so,
	// and the next reading carries on.
	f.engine.PlaintextDrops, f.engine.PlaintextErr = nil, errors.New("ovs-ofctl: connection refused")
	got = scrape(t, reg)
	want(t, got, `ovnsec_metrics_source_up{source=plaintext_drops}`, 0)
	if s := series(got, "ovnsec_plaintext_dropped_total"); len(s) != 0 {
		t.Errorf("plaintext series without a reading: %v", s)
	}
	f.engine.PlaintextDrops, f.engine.PlaintextErr = map[netip.Addr]uint64{peer: 5}, nil
	want(t, scrape(t, reg), key, 15)
	// The peer's rules go: its series goes.
	f.engine.PlaintextDrops = map[netip.Addr]uint64{}
	if s := series(scrape(t, reg), "ovnsec_plaintext_dropped_total"); len(s) != 0 {
		t.Errorf("plaintext series of a peer without rules: %v", s)
	}
}

func TestCollectorCertificates(t *testing.T) {
	at := func(d time.Duration) *x509.Certificate {
		return &x509.Certificate{NotAfter: time.Unix(1_900_000_000, 0).Add(d)}
	}
	f := &fakeSource{certs: map[string][]*x509.Certificate{
		"/etc/ovs/cert.pem": {at(0), at(-time.Hour)}, // chain: the intermediate expires first
		"/etc/ovs/ca.pem":   {at(time.Hour)},
		"/etc/ovs/peer.pem": {at(2 * time.Hour)},
	}}
	ca := view("ovn-a", "192.0.2.2", true)
	ca.Tunnel.Auth, ca.Tunnel.Certificate, ca.Tunnel.PrivateKey, ca.Tunnel.CACert = tunnel.AuthCASigned, "/etc/ovs/cert.pem", "/etc/ovs/key.pem", "/etc/ovs/ca.pem"
	self := view("ovn-b", "192.0.2.3", true)
	self.Tunnel.Auth, self.Tunnel.Certificate, self.Tunnel.PrivateKey, self.Tunnel.RemoteCert = tunnel.AuthSelfSigned, "/etc/ovs/cert.pem", "/etc/ovs/key.pem", "/etc/ovs/peer.pem"
	psk := view("ovn-c", "192.0.2.4", true)
	f.views = []reconcile.TunnelView{ca, self, psk}
	_, reg := newTestCollector(t, f, false)
	got := scrape(t, reg)
	want(t, got, `ovnsec_certificate_expiry_timestamp_seconds{path=/etc/ovs/cert.pem}`, 1_900_000_000-3600)
	want(t, got, `ovnsec_certificate_expiry_timestamp_seconds{path=/etc/ovs/ca.pem}`, 1_900_000_000+3600)
	want(t, got, `ovnsec_certificate_expiry_timestamp_seconds{path=/etc/ovs/peer.pem}`, 1_900_000_000+7200)
	if n := len(series(got, "ovnsec_certificate_expiry_timestamp_seconds")); n != 3 {
		t.Errorf("%d certificate series, want 3 (no private key)", n)
	}
	want(t, got, `ovnsec_metrics_source_up{source=certificates}`, 1)

	delete(f.certs, "/etc/ovs/ca.pem")
	got = scrape(t, reg)
	want(t, got, `ovnsec_metrics_source_up{source=certificates}`, 0)
	if _, ok := got[`ovnsec_certificate_expiry_timestamp_seconds{path=/etc/ovs/ca.pem}`]; ok {
		t.Error("expiry of an unreadable file exported")
	}
}

func TestNewNeedsTunnels(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New accepted a Config without Tunnels")
	}
}

// TestExpositionPromtool: a full scrape in the text format passes
// `promtool check metrics` (names, types, help, units).
func TestExpositionPromtool(t *testing.T) {
	bins := testenv.NeedCommands(t, "promtool")
	if bins == nil {
		return
	}
	f := &fakeSource{
		views: []reconcile.TunnelView{view("ovn-a", "192.0.2.2", true, child("c", "1", 1, 2, 3, 4, map[string]uint64{"auth": 1}))},
		engine: Engine{HasIKE: true, PlaintextDrops: map[netip.Addr]uint64{netip.MustParseAddr("192.0.2.2"): 1},
			IKE: ike.StatsSnapshot{AuthFailures: map[ike.ReasonCode]uint64{}}},
		certs: map[string][]*x509.Certificate{"/c.pem": {{NotAfter: time.Unix(1_900_000_000, 0)}}},
	}
	f.views[0].Tunnel.Auth, f.views[0].Tunnel.Certificate, f.views[0].Tunnel.CACert = tunnel.AuthCASigned, "/c.pem", "/c.pem"
	_, reg := newTestCollector(t, f, true)
	text := exposition(t, reg)
	checkMetrics(t, bins[0], text)
}

// exposition renders reg in the text format.
func exposition(t *testing.T, reg prometheus.Gatherer) []byte {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// checkMetrics runs `promtool check metrics` on text and fails t on any
// complaint.
func checkMetrics(t *testing.T, promtool string, text []byte) {
	t.Helper()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("promtool check metrics: %v\n%s\n--- exposition:\n%s", err, out, text)
	}
}
