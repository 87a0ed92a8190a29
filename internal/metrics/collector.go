// Collector: one scrape reads the reconciler's live view, the engine's
// counters and the certificate files' expiry, and turns them into
// Prometheus metrics. Only accumulator state is kept between scrapes.

package metrics

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/datapath/drop"
	"github.com/ovnsec/ovnsec/internal/ike"
	"github.com/ovnsec/ovnsec/internal/reconcile"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// DefaultTimeout bounds the reads of one scrape.
const DefaultTimeout = 5 * time.Second

// Config says where a Collector reads from.
type Config struct {
	// Tunnels returns every tracked tunnel with its status read now, and
	// the backend's error (reconcile.Reconciler.LiveView). Required.
	Tunnels func(context.Context) ([]reconcile.TunnelView, error)
	// Engine returns the native backend's counters; nil for a backend
	// that keeps none (strongSwan).
	Engine func(context.Context) Engine
	// Certificates reads the certificate files the tunnels name (the
	// daemon's creds.Store: cached, read again only when a file changed);
	// nil exports no certificate expiry.
	Certificates CertSource
	// Version and Backend label ovnsec_build_info.
	Version, Backend string
	// Timeout bounds one scrape's reads; default DefaultTimeout.
	Timeout time.Duration
	Log     *slog.Logger
}

// CertSource reads certificate files by path (creds.Store).
type CertSource interface {
	Certificates(path string) ([]*x509.Certificate, error)
}

// Engine is the native backend's counters (native.Backend.Metrics).
type Engine struct {
	// IKE are the IKE engine's counters, when HasIKE.
	IKE    ike.StatsSnapshot
	HasIKE bool
	// HookDrops and LoopDrops are the drops of the ESP hook and of the
	// frame loop, over all peers.
	HookDrops, LoopDrops drop.Counts
	// PlaintextDrops are br-phy's plaintext drops by peer; nil with
	// PlaintextErr when they could not be read.
	PlaintextDrops map[netip.Addr]uint64
	PlaintextErr   error
}

// Collector is a prometheus.Collector of ovnsecd's metrics. It is safe
// for concurrent scrapes.
type Collector struct {
	cfg Config
	log *slog.Logger

	buildInfo, sourceUp                                 *prometheus.Desc
	tunnelUp, tunnelState, tunnelReason, tunnelChildren *prometheus.Desc
	espPackets, espBytes, espDrops                      *prometheus.Desc
	plaintext                                           *prometheus.Desc
	ikeEstablished, ikeRekeys, childRekeys, authFails   *prometheus.Desc
	ikeMessages, ikeDropped, ikeAuthErrors, ikeRetrans  *prometheus.Desc
	ikeCookies, datapathDrops                           *prometheus.Desc
	certExpiry                                          *prometheus.Desc

	mu        sync.Mutex // one scrape at a time: the accumulators
	esp       map[string]*tunnelESP
	plain     map[netip.Addr]*monotonic
	lastError map[string]string // by source, to log changes only
}

// Sources named by ovnsec_metrics_source_up.
const (
	sourceStatus      = "backend_status"
	sourcePlaintext   = "plaintext_drops"
	sourceCertificate = "certificates"
)

// New returns a Collector reading from cfg.
func New(cfg Config) (*Collector, error) {
	if cfg.Tunnels == nil {
		return nil, fmt.Errorf("metrics: Config.Tunnels is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &Collector{
		cfg: cfg, log: cfg.Log,
		buildInfo: d("ovnsec_build_info", "ovnsecd's version and IPsec backend (--ike-daemon); always 1.", "version", "backend"),
		sourceUp: d("ovnsec_metrics_source_up", "1 when this scrape could read the source (backend_status: the backend answered; "+
			"plaintext_drops: br-phy's drop counters; certificates: every certificate file), else 0.", "source"),
		tunnelUp: d("ovnsec_tunnel_up", "1 when the tunnel is up (IKE SA and every Child SA established), else 0.",
			"tunnel", "remote_ip", "type"),
		tunnelState: d("ovnsec_tunnel_state", "1 for the tunnel's current state (as tunnels/show's Status line), 0 for the others.",
			"tunnel", "state"),
		tunnelReason: d("ovnsec_tunnel_reason", "1 for the reason code of a tunnel that is not up (absent when it is up).",
			"tunnel", "code"),
		tunnelChildren: d("ovnsec_tunnel_child_sas", "Child SA pairs installed for the tunnel.", "tunnel"),
		espPackets: d("ovnsec_esp_packets_total", "ESP packets of the tunnel's Child SAs (in: opened, out: sealed), summed over its SAs across rekeys.",
			"tunnel", "direction"),
		espBytes: d("ovnsec_esp_bytes_total", "ESP payload bytes of the tunnel's Child SAs, summed over its SAs across rekeys.",
			"tunnel", "direction"),
		espDrops: d("ovnsec_esp_drops_total", "Packets the tunnel's Child SAs dropped, by reason, summed over its SAs across rekeys.",
			"tunnel", "reason"),
		plaintext: d("ovnsec_plaintext_dropped_total", "Plaintext tunnel packets from a protected peer that br-phy dropped (native backend).",
			"remote_ip"),
		ikeEstablished: d("ovnsec_ike_sa_established_total", "IKE SAs established by IKE_AUTH, as initiator or responder (native backend)."),
		ikeRekeys:      d("ovnsec_ike_sa_rekeys_total", "IKE SA rekeys completed (native backend)."),
		childRekeys:    d("ovnsec_child_sa_rekeys_total", "Child SA rekeys completed (native backend)."),
		authFails: d("ovnsec_ike_auth_failures_total", "Failed IKE_AUTH exchanges by reason code: our check of the peer failed, or the peer refused us (peer_refused_auth) (native backend).",
			"reason"),
		ikeMessages: d("ovnsec_ike_messages_total", "IKE datagrams received and sent by the engine (native backend).", "direction"),
		ikeDropped:  d("ovnsec_ike_dropped_total", "IKE datagrams the engine dropped, by reason (native backend).", "reason"),
		ikeAuthErrors: d("ovnsec_ike_auth_errors_total", "IKE messages that failed their integrity check, plus peers that failed authentication "+
			"(those also in ovnsec_ike_auth_failures_total) (native backend)."),
		ikeRetrans:    d("ovnsec_ike_retransmits_total", "IKE requests retransmitted (native backend)."),
		ikeCookies:    d("ovnsec_ike_cookies_sent_total", "IKE_SA_INIT requests answered with a COOKIE (native backend)."),
		datapathDrops: d("ovnsec_datapath_drops_total", "Frames the native data path dropped, by part (esp_hook, frame_loop) and reason, over all peers.", "path", "reason"),
		certExpiry:    d("ovnsec_certificate_expiry_timestamp_seconds", "When the first certificate of the file to expire does (Unix time), for every certificate file a tunnel uses.", "path"),
		esp:           map[string]*tunnelESP{},
		plain:         map[netip.Addr]*monotonic{},
		lastError:     map[string]string{},
	}, nil
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.buildInfo, c.sourceUp, c.tunnelUp, c.tunnelState, c.tunnelReason, c.tunnelChildren,
		c.espPackets, c.espBytes, c.espDrops, c.plaintext,
		c.ikeEstablished, c.ikeRekeys, c.childRekeys, c.authFails,
		c.ikeMessages, c.ikeDropped, c.ikeAuthErrors, c.ikeRetrans, c.ikeCookies, c.datapathDrops,
		c.certExpiry,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()

	ch <- prometheus.MustNewConstMetric(c.buildInfo, prometheus.GaugeValue, 1, c.cfg.Version, c.cfg.Backend)
	views, berr := c.cfg.Tunnels(ctx)
	c.source(ch, sourceStatus, berr)
	c.collectTunnels(ch, views, berr)
	if c.cfg.Engine != nil {
		c.collectEngine(ch, c.cfg.Engine(ctx))
	}
	if c.cfg.Certificates != nil {
		c.collectCertificates(ch, views)
	}
}

// source exports whether a source could be read, and logs when that
// changes.
func (c *Collector) source(ch chan<- prometheus.Metric, name string, err error) {
	up, msg := 1.0, ""
	if err != nil {
		up, msg = 0, err.Error()
	}
	ch <- prometheus.MustNewConstMetric(c.sourceUp, prometheus.GaugeValue, up, name)
	if c.lastError[name] == msg {
		return
	}
	if err != nil {
		c.log.Warn("metrics: cannot read a source; its series are missing or stale until it can", "source", name, "err", err)
	} else {
		c.log.Info("metrics: source readable again", "source", name)
	}
	c.lastError[name] = msg
}

func (c *Collector) collectTunnels(ch chan<- prometheus.Metric, views []reconcile.TunnelView, berr error) {
	doc := reconcile.NewDocument(views, berr)
	present := make(map[string]bool, len(doc.Tunnels))
	for i, t := range doc.Tunnels {
		present[t.Name] = true
		up := 0.0
		if t.State == backend.StateUp {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.tunnelUp, prometheus.GaugeValue, up, t.Name, t.RemoteIP, string(t.Type))
		for _, s := range backend.States() {
			v := 0.0
			if s == t.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.tunnelState, prometheus.GaugeValue, v, t.Name, s.String())
		}
		if t.Code != backend.CodeNone {
			ch <- prometheus.MustNewConstMetric(c.tunnelReason, prometheus.GaugeValue, 1, t.Name, string(t.Code))
		}
		ch <- prometheus.MustNewConstMetric(c.tunnelChildren, prometheus.GaugeValue, float64(len(t.Children)), t.Name)

		acc := c.esp[t.Name]
		if acc == nil {
			acc = newTunnelESP()
			c.esp[t.Name] = acc
		}
		// A tunnel the backend said nothing about this time keeps its
		// last totals: its SAs are not known to be gone.
		if views[i].HasStatus {
			acc.update(t.Children)
		}
		tot := acc.total()
		counter := func(d *prometheus.Desc, v uint64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
		}
		counter(c.espPackets, tot.packetsIn, t.Name, "in")
		counter(c.espPackets, tot.packetsOut, t.Name, "out")
		counter(c.espBytes, tot.bytesIn, t.Name, "in")
		counter(c.espBytes, tot.bytesOut, t.Name, "out")
		for _, r := range childDropReasons {
			counter(c.espDrops, tot.drops[r], t.Name, r)
		}
		for _, r := range sortedKeys(tot.drops) {
			if !isChildDropReason(r) {
				counter(c.espDrops, tot.drops[r], t.Name, r)
			}
		}
	}
	for name := range c.esp {
		if !present[name] {
			delete(c.esp, name)
		}
	}
}

func (c *Collector) collectEngine(ch chan<- prometheus.Metric, e Engine) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	if e.HasIKE {
		s := e.IKE
		counter(c.ikeEstablished, s.IKEEstablished)
		counter(c.ikeRekeys, s.IKERekeys)
		counter(c.childRekeys, s.ChildRekeys)
		for _, code := range ike.ReasonCodes() {
			counter(c.authFails, s.AuthFailures[code], string(code))
		}
		counter(c.ikeMessages, s.Received, "received")
		counter(c.ikeMessages, s.Sent, "sent")
		for _, d := range []struct {
			reason string
			n      uint64
		}{
			{"unexpected", s.Dropped}, {"decode_error", s.DecodeErrors}, {"unknown_spi", s.UnknownSPI},
			{"half_open_full", s.HalfOpenFull}, {"init_replay", s.InitReplays}, {"stray_retransmit", s.StrayRetransmits},
		} {
			counter(c.ikeDropped, d.n, d.reason)
		}
		counter(c.ikeAuthErrors, s.AuthErrors)
		counter(c.ikeRetrans, s.Retransmits)
		counter(c.ikeCookies, s.CookiesSent)
	}
	for _, r := range drop.All() {
		counter(c.datapathDrops, e.HookDrops[r], "esp_hook", r.String())
		counter(c.datapathDrops, e.LoopDrops[r], "frame_loop", r.String())
	}

	c.source(ch, sourcePlaintext, e.PlaintextErr)
	if e.PlaintextErr != nil {
		return // the previous readings stay for the next scrape
	}
	for addr := range c.plain {
		if _, ok := e.PlaintextDrops[addr]; !ok {
			delete(c.plain, addr) // the peer's rules are gone
		}
	}
	for _, addr := range sortedAddrs(e.PlaintextDrops) {
		m := c.plain[addr]
		if m == nil {
			m = &monotonic{}
			c.plain[addr] = m
		}
		counter(c.plaintext, m.observe(e.PlaintextDrops[addr]), addr.String())
	}
}

// collectCertificates exports the expiry of every certificate file the
// tunnels name: the local certificate and the CA bundle (CA-signed) or
// the pinned peer certificate (self-signed). The private key is no
// certificate.
func (c *Collector) collectCertificates(ch chan<- prometheus.Metric, views []reconcile.TunnelView) {
	paths := map[string]bool{}
	for _, v := range views {
		t := v.Tunnel
		switch t.Auth {
		case tunnel.AuthCASigned:
			paths[t.Certificate], paths[t.CACert] = true, true
		case tunnel.AuthSelfSigned:
			paths[t.Certificate], paths[t.RemoteCert] = true, true
		}
	}
	delete(paths, "")
	var firstErr error
	for _, p := range sortedKeys(paths) {
		certs, err := c.cfg.Certificates.Certificates(p)
		if err == nil && len(certs) == 0 {
			err = fmt.Errorf("certificate file %s holds no certificate", p)
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		first := certs[0].NotAfter
		for _, cert := range certs[1:] {
			if cert.NotAfter.Before(first) {
				first = cert.NotAfter
			}
		}
		ch <- prometheus.MustNewConstMetric(c.certExpiry, prometheus.GaugeValue, float64(first.Unix()), p)
	}
	c.source(ch, sourceCertificate, firstErr)
}

// childDropReasons are the drop reasons a Child SA counts, by the names
// of internal/datapath/drop; every tunnel exports them, zero or not.
var childDropReasons = []string{
	drop.Replay.String(), drop.Auth.String(), drop.Malformed.String(),
	drop.Policy.String(), drop.Expired.String(), drop.SeqOverflow.String(),
}

func isChildDropReason(r string) bool {
	for _, c := range childDropReasons {
		if c == r {
			return true
		}
	}
	return false
}

// childDropReason names a Child SA drop key as internal/datapath/drop
// does: the native backend's status names them "replay", "auth",
// "malformed", "policy", "lifetime" and "seq-overflow"; a name that
// already is a drop reason, or unknown, stays as it is.
func childDropReason(k string) string {
	switch k {
	case "replay":
		return drop.Replay.String()
	case "auth":
		return drop.Auth.String()
	case "malformed":
		return drop.Malformed.String()
	case "policy":
		return drop.Policy.String()
	case "lifetime":
		return drop.Expired.String()
	case "seq-overflow":
		return drop.SeqOverflow.String()
	}
	return k
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func sortedAddrs(m map[netip.Addr]uint64) []netip.Addr {
	as := make([]netip.Addr, 0, len(m))
	for a := range m {
		as = append(as, a)
	}
	sort.Slice(as, func(i, j int) bool { return as[i].Less(as[j]) })
	return as
}
