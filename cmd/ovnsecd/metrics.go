// Metrics: --metrics-address=HOST:PORT serves Prometheus metrics at
// /metrics (off by default): ovnsec's own (internal/metrics, read from the
// typed status at scrape time), libovsdb's client metrics of the
// Open_vSwitch watcher, and the Go runtime's and the process's. The
// address is opened before anything else starts, so that a bad or busy one
// refuses the start; the server stops when the daemon exits.

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ovnsec/ovnsec/internal/backend/native"
	"github.com/ovnsec/ovnsec/internal/metrics"
)

// metricsPath is where the metrics are served.
const metricsPath = "/metrics"

// checkMetricsAddress checks --metrics-address: HOST:PORT, HOST empty for
// every address of the host.
func checkMetricsAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--metrics-address %q: want HOST:PORT, for example 127.0.0.1:9476 (or :9476 for every address): %v", addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("--metrics-address %q: port %q is not a number from 0 to 65535", addr, port)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		return fmt.Errorf("--metrics-address %q: host %q is neither an IP address nor a host name", addr, host)
	}
	return nil
}

// validHostname reports whether h is a plausible DNS name.
func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return h[0] != '-' && h[0] != '.'
}

// metricsServer is the HTTP server of --metrics-address. A nil
// *metricsServer (metrics off) does nothing.
type metricsServer struct {
	ln   net.Listener
	log  *slog.Logger
	srv  *http.Server
	stop context.CancelFunc
	done sync.WaitGroup
}

// listenMetrics opens --metrics-address; nil when it is not given.
// In an upgrade it takes up the old process's listener (up).
func listenMetrics(c config, log *slog.Logger, up *upgrades) (*metricsServer, error) {
	if c.metricsAddr == "" {
		return nil, nil
	}
	if err := checkMetricsAddress(c.metricsAddr); err != nil {
		return nil, err
	}
	ln, err := up.listen(c.metricsAddr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-address %s: cannot listen: %w (is the port in use, or the address not on this host?)", c.metricsAddr, err)
	}
	return &metricsServer{ln: ln, log: log.With("stage", "metrics")}, nil
}

// serve starts serving s's metrics until ctx ends or Close is called.
func (m *metricsServer) serve(ctx context.Context, s *system) error {
	if m == nil {
		return nil
	}
	reg, err := s.metricsRegistry()
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(metricsPath, promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slogPrintln{m.log},
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       2 * metrics.DefaultTimeout,
	})))
	ctx, m.stop = context.WithCancel(ctx)
	m.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
	}
	m.log.Info("serving Prometheus metrics", "url", "http://"+m.ln.Addr().String()+metricsPath)
	m.done.Add(2)
	go func() {
		defer m.done.Done()
		if err := m.srv.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("metrics server stopped", "err", err)
		}
	}()
	go func() {
		defer m.done.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := m.srv.Shutdown(sctx); err != nil {
			m.srv.Close()
		}
	}()
	return nil
}

// Close stops the server (or closes the listener if it never served) and
// waits for it.
func (m *metricsServer) Close() {
	if m == nil {
		return
	}
	if m.stop == nil {
		m.ln.Close()
		return
	}
	m.stop()
	m.done.Wait()
}

// metricsRegistry is the daemon's own registry (never the default one):
// ovnsec's collector, libovsdb's client metrics, the Go runtime and the
// process.
func (s *system) metricsRegistry() (*prometheus.Registry, error) {
	cfg := metrics.Config{
		Tunnels:      s.rec.LiveView,
		Certificates: s.creds,
		Version:      version,
		Backend:      s.be.Name(),
		Log:          s.log.With("stage", "metrics"),
	}
	if nb, ok := s.be.(interface {
		Metrics(context.Context) native.Metrics
	}); ok {
		cfg.Engine = func(ctx context.Context) metrics.Engine {
			m := nb.Metrics(ctx)
			return metrics.Engine{IKE: m.IKE, HasIKE: m.HasIKE, HookDrops: m.HookDrops, LoopDrops: m.LoopDrops,
				PlaintextDrops: m.PlaintextDrops, PlaintextErr: m.PlaintextErr}
		}
	}
	own, err := metrics.New(cfg)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		own,
		s.watcher.Metrics(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return reg, nil
}

// slogPrintln is promhttp's error logger on slog.
type slogPrintln struct{ log *slog.Logger }

func (l slogPrintln) Println(v ...any) { l.log.Warn("metrics: " + fmt.Sprint(v...)) }
