// Metrics end to end: a real Prometheus server (Debian's prometheus) in
// the demo cluster's central namespace scrapes ovnsecd on every chassis,
// with the alert rules of deploy/prometheus loaded; the test reads
// Prometheus' HTTP API as an operator's tools would.
package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/testenv"
	"github.com/ovnsec/ovnsec/test/harness"
)

// promNS is where the test runs Prometheus: ovd-central reaches every
// chassis' underlay address.
const promNS = "ovd-central"

// inNetns runs fn on a thread switched into the named network namespace
// (a socket stays in the namespace it was made in).
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Not unlocked: if switching back fails the thread dies with the
		// goroutine instead of serving others.
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		f, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns back: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// nsHTTP is an HTTP client whose connections are made in ns.
func nsHTTP(ns string) *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := inNetns(ns, func() error {
				var err error
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
}

func httpGet(c *http.Client, u string) ([]byte, error) {
	resp, err := c.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, b)
	}
	return b, nil
}

// promSample is one element of an instant vector.
type promSample struct {
	Metric map[string]string
	Value  float64
}

// promResponse is the envelope of Prometheus' HTTP API.
type promResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

// parsePromVector reads an /api/v1/query answer of result type vector.
func parsePromVector(b []byte) ([]promSample, error) {
	var r promResponse
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("not an API answer: %v: %.200s", err, b)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query failed: %s: %s", r.ErrorType, r.Error)
	}
	var d struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := json.Unmarshal(r.Data, &d); err != nil {
		return nil, fmt.Errorf("query data: %v", err)
	}
	if d.ResultType != "vector" {
		return nil, fmt.Errorf("result type %q, want vector", d.ResultType)
	}
	out := make([]promSample, 0, len(d.Result))
	for _, s := range d.Result {
		vs, ok := s.Value[1].(string)
		if !ok {
			return nil, fmt.Errorf("sample value %v is not a string", s.Value[1])
		}
		v, err := strconv.ParseFloat(vs, 64)
		if err != nil {
			return nil, fmt.Errorf("sample value %q: %v", vs, err)
		}
		out = append(out, promSample{Metric: s.Metric, Value: v})
	}
	return out, nil
}

func TestMetricsParsePromVector(t *testing.T) {
	got, err := parsePromVector([]byte(`{"status":"success","data":{"resultType":"vector","result":[` +
		`{"metric":{"__name__":"ovnsec_tunnel_up","tunnel":"ovn-a"},"value":[1700000000.5,"1"]},` +
		`{"metric":{"tunnel":"ovn-b"},"value":[1700000000.5,"0"]}]}}`))
	if err != nil || len(got) != 2 || got[0].Metric["tunnel"] != "ovn-a" || got[0].Value != 1 || got[1].Value != 0 {
		t.Fatalf("parsePromVector = %+v, %v", got, err)
	}
	for _, bad := range []string{
		`{"status":"error","errorType":"bad_data","error":"parse error"}`,
		`{"status":"success","data":{"resultType":"matrix","result":[]}}`,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,2]}]}}`,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}`,
		`<html>`,
	} {
		if _, err := parsePromVector([]byte(bad)); err == nil {
			t.Errorf("parsePromVector(%s) accepted", bad)
		}
	}
}

// promServer is a Prometheus process in promNS.
type promServer struct {
	t    *testing.T
	base string // http://127.0.0.1:PORT in promNS
	http *http.Client
	cmd  *exec.Cmd
	log  *os.File
}

// startPrometheus runs Debian's prometheus in promNS with its own
// configuration and data directory, scraping targets every second and
// evaluating the repository's alert rules.
func startPrometheus(t *testing.T, bin, promtool string, targets []string) *promServer {
	t.Helper()
	dir := t.TempDir()
	rules, err := filepath.Abs(filepath.Join(demoRepoRoot(), "deploy", "prometheus", "ovnsec-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = strconv.Quote(tg)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %s
scrape_configs:
  - job_name: ovnsecd
    static_configs:
      - targets: [%s]
`, strconv.Quote(rules), strings.Join(quoted, ", "))
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "config", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config:\n%s\n%s", cfg, out)
	}
	// A free port in promNS: its loopback is the namespace's own.
	var port int
	if err := inNetns(promNS, func() error {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		port = l.Addr().(*net.TCPAddr).Port
		return l.Close()
	}); err != nil {
		t.Fatalf("pick a port in %s: %v", promNS, err)
	}
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &promServer{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), http: nsHTTP(promNS), log: logf}
	p.cmd = exec.Command("ip", "netns", "exec", promNS, bin,
		"--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--storage.tsdb.retention.time=1h")
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() { p.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("prometheus log (last lines):\n%s", demoHead(demoTail(strings.Split(string(b), "\n"), 20), 20))
			}
		}
		logf.Close()
	})
	demoEventually(t, 60*time.Second, "prometheus ready", func() error {
		select {
		case <-exited:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("prometheus exited:\n%s", b)
		default:
		}
		_, err := httpGet(p.http, p.base+"/-/ready")
		return err
	})
	return p
}

// query runs an instant query.
func (p *promServer) query(expr string) ([]promSample, error) {
	b, err := httpGet(p.http, p.base+"/api/v1/query?query="+url.QueryEscape(expr))
	if err != nil {
		return nil, err
	}
	return parsePromVector(b)
}

// values maps each sample of expr, keyed by the given labels, to its value.
func (p *promServer) values(expr string, labels ...string) (map[string]float64, error) {
	ss, err := p.query(expr)
	if err != nil {
		return nil, err
	}
	m := map[string]float64{}
	for _, s := range ss {
		var k []string
		for _, l := range labels {
			k = append(k, s.Metric[l])
		}
		m[strings.Join(k, " ")] = s.Value
	}
	return m, nil
}

// firing lists the firing alerts named name as "label=value,..." of keys.
func (p *promServer) firing(name string, keys ...string) ([]string, error) {
	b, err := httpGet(p.http, p.base+"/api/v1/alerts")
	if err != nil {
		return nil, err
	}
	var r promResponse
	if err := json.Unmarshal(b, &r); err != nil || r.Status != "success" {
		return nil, fmt.Errorf("alerts: %v %s", err, b)
	}
	var d struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	if err := json.Unmarshal(r.Data, &d); err != nil {
		return nil, err
	}
	var out []string
	for _, a := range d.Alerts {
		if a.Labels["alertname"] != name || a.State != "firing" {
			continue
		}
		var kv []string
		for _, k := range keys {
			kv = append(kv, k+"="+a.Labels[k])
		}
		out = append(out, strings.Join(kv, ","))
	}
	sort.Strings(out)
	return out, nil
}

// ruleHealth returns every loaded rule's name and health.
func (p *promServer) ruleHealth() (map[string]string, error) {
	b, err := httpGet(p.http, p.base+"/api/v1/rules")
	if err != nil {
		return nil, err
	}
	var r promResponse
	if err := json.Unmarshal(b, &r); err != nil || r.Status != "success" {
		return nil, fmt.Errorf("rules: %v %s", err, b)
	}
	var d struct {
		Groups []struct {
			Rules []struct {
				Name      string `json:"name"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(r.Data, &d); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, g := range d.Groups {
		for _, rule := range g.Rules {
			m[rule.Name] = rule.Health + rule.LastError
		}
	}
	return m, nil
}

// sendForgedGeneve sends n plaintext Geneve datagrams from src to dst
// (port 6081) with a raw socket in ns, as a peer that does not protect
// its tunnel would, or an attacker forging the peer's address.
func sendForgedGeneve(ns string, src, dst netip.Addr, n int) error {
	return inNetns(ns, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
		if err != nil {
			return fmt.Errorf("raw socket: %w", err)
		}
		defer unix.Close(fd)
		payload := append([]byte{0, 0, 0x65, 0x58, 0, 0, 0x01, 0}, make([]byte, 60)...) // Geneve, VNI 1, inner Ethernet
		udpLen := 8 + len(payload)
		pkt := make([]byte, 20+udpLen)
		pkt[0], pkt[8], pkt[9] = 0x45, 64, unix.IPPROTO_UDP // the kernel fills length, ID and checksum
		s4, d4 := src.As4(), dst.As4()
		copy(pkt[12:16], s4[:])
		copy(pkt[16:20], d4[:])
		binary.BigEndian.PutUint16(pkt[20:], 40000)
		binary.BigEndian.PutUint16(pkt[22:], 6081)
		binary.BigEndian.PutUint16(pkt[24:], uint16(udpLen)) // checksum 0: none (IPv4)
		copy(pkt[28:], payload)
		to := &unix.SockaddrInet4{Addr: d4}
		for range n {
			if err := unix.Sendto(fd, pkt, 0, to); err != nil {
				return fmt.Errorf("send forged Geneve: %w", err)
			}
		}
		return nil
	})
}

// dashboardExprs are the alert rules' and the Grafana dashboard's
// queries, with the dashboard's variables replaced.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	root := demoRepoRoot()
	rules, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "ovnsec-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, l := range strings.Split(string(rules), "\n") {
		if e, ok := strings.CutPrefix(strings.TrimSpace(l), "expr:"); ok {
			exprs = append(exprs, strings.TrimSpace(e))
		}
	}
	b, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", "ovnsec-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	vars := strings.NewReplacer(`$job`, `.*`, `$instance`, `.*`, `$__rate_interval`, `1m`)
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, vars.Replace(tg.Expr))
		}
	}
	return exprs
}

var metricNameRE = regexp.MustCompile(`\b((?:ovnsec|libovsdb|go|process)_[a-z_]+[a-z])\b`)

// TestMetricsPrometheus: Prometheus scrapes every chassis of the demo
// cluster; with ipsec=true it finds ovnsec_tunnel_up == 1 for every tunnel
// and ESP packet counters that grow with traffic; every chassis'
// exposition passes promtool; the alert rules load and stay quiet while
// all is well; forged plaintext from a peer is counted by the right
// chassis and fires OvnsecPlaintextDropped; every query of the rules and
// the dashboard is valid and names metrics that exist.
func TestMetricsPrometheus(t *testing.T) {
	ovnPrereqs(t)
	bins := testenv.NeedCommands(t, "prometheus", "promtool")
	if bins == nil {
		return
	}
	if why := demoProbeNative(t); why != "" {
		testenv.Missing(t, "native backend in ovnsecd (%s)", why)
	}
	e := demoUp(t)
	if e.backend != "native" {
		t.Fatalf("scripts/demo.sh started ovnsecd with %q, not native; see %s/ch1/ovnsecd.out", e.backend, e.vars["DEMO_STATE"])
	}
	urls := strings.Fields(e.vars["METRICS_URLS"])
	if len(urls) != len(e.chassis) {
		t.Fatalf("METRICS_URLS %q: want one per chassis (%d)", e.vars["METRICS_URLS"], len(e.chassis))
	}
	targets := make([]string, len(urls))
	instanceOf := map[string]string{} // chassis underlay IP -> Prometheus instance label
	for i, u := range urls {
		pu, err := url.Parse(u)
		if err != nil || pu.Path != "/metrics" {
			t.Fatalf("metrics URL %q: %v", u, err)
		}
		targets[i] = pu.Host
		instanceOf[e.chassisIPs[i]] = pu.Host
	}
	prom := startPrometheus(t, bins[0], bins[1], targets)

	demoEventually(t, 30*time.Second, "every chassis scraped", func() error {
		up, err := prom.values(`up{job="ovnsecd"}`, "instance")
		if err != nil {
			return err
		}
		for _, tg := range targets {
			if up[tg] != 1 {
				return fmt.Errorf("up{instance=%q} = %v (all: %v)", tg, up[tg], up)
			}
		}
		return nil
	})
	health, err := prom.ruleHealth()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"OvnsecTunnelDown", "OvnsecCertificateExpiringSoon", "OvnsecPlaintextDropped"} {
		if health[name] != "ok" && health[name] != "unknown" {
			t.Errorf("alert rule %s: health %q (all: %v)", name, health[name], health)
		}
	}

	e.nbctl(t, "set", "nb_global", ".", "ipsec=true")
	demoEventually(t, 30*time.Second, "ipsec=true on every chassis", func() error { return e.ipsecOn(t) })
	demoEventually(t, 60*time.Second, "every tunnel up in tunnels/show", func() error {
		for i, ch := range e.chassis {
			for _, s := range e.tunnelsShow(t, i) {
				if s.State != backend.StateUp {
					return fmt.Errorf("%s %s: Status %s", ch, s.Name, harness.Status(s))
				}
			}
		}
		return nil
	})
	n := len(e.chassis)
	demoEventually(t, 30*time.Second, "Prometheus: ovnsec_tunnel_up == 1 for every tunnel", func() error {
		ss, err := prom.query(`ovnsec_tunnel_up{job="ovnsecd"}`)
		if err != nil {
			return err
		}
		if len(ss) != n*(n-1) {
			return fmt.Errorf("%d ovnsec_tunnel_up series, want %d", len(ss), n*(n-1))
		}
		peers := map[string]int{}
		for _, s := range ss {
			if s.Value != 1 || s.Metric["type"] != "geneve" || s.Metric["tunnel"] == "" {
				return fmt.Errorf("%v = %v", s.Metric, s.Value)
			}
			if _, ok := instanceOf[s.Metric["remote_ip"]]; !ok || instanceOf[s.Metric["remote_ip"]] == s.Metric["instance"] {
				return fmt.Errorf("%v: remote_ip is no other chassis", s.Metric)
			}
			peers[s.Metric["instance"]]++
		}
		for _, tg := range targets {
			if peers[tg] != n-1 {
				return fmt.Errorf("%s has %d tunnels up, want %d", tg, peers[tg], n-1)
			}
		}
		return nil
	})
	if up, err := prom.values(`ovnsec_tunnel_state{state="up"} == 1`, "instance", "tunnel"); err != nil || len(up) != n*(n-1) {
		t.Errorf("ovnsec_tunnel_state{state=\"up\"} == 1: %v, %v", up, err)
	}

	// ESP counters grow with traffic, on every tunnel and in both
	// directions (every VM pings every other). The scrape after the pings
	// must have seen them: poll until every series passed its old value.
	espKey := []string{"instance", "tunnel", "direction"}
	before, err := prom.values(`ovnsec_esp_packets_total{job="ovnsecd"}`, espKey...)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 2*n*(n-1) {
		t.Fatalf("%d ovnsec_esp_packets_total series, want %d: %v", len(before), 2*n*(n-1), before)
	}
	bytesBefore, err := prom.values(`ovnsec_esp_bytes_total{job="ovnsecd"}`, espKey...)
	if err != nil {
		t.Fatal(err)
	}
	e.pingAll(t)
	e.iperf(t, 2)
	demoEventually(t, 30*time.Second, "ESP packet and byte counters grew on every tunnel", func() error {
		for expr, old := range map[string]map[string]float64{`ovnsec_esp_packets_total{job="ovnsecd"}`: before, `ovnsec_esp_bytes_total{job="ovnsecd"}`: bytesBefore} {
			now, err := prom.values(expr, espKey...)
			if err != nil {
				return err
			}
			for k, v := range old {
				if now[k] <= v {
					return fmt.Errorf("%s{%s}: %v, was %v", expr, k, now[k], v)
				}
			}
		}
		return nil
	})
	// iperf3 vm1 -> vm2 went through ch1's tunnel to ch2: megabytes out.
	if out, err := prom.values(fmt.Sprintf(`ovnsec_esp_bytes_total{instance=%q,direction="out"}`, instanceOf[e.chassisIPs[0]]), "remote_ip", "tunnel"); err != nil {
		t.Error(err)
	} else {
		var biggest float64
		for _, v := range out {
			biggest = max(biggest, v)
		}
		if biggest < 1<<20 {
			t.Errorf("ch1's ESP bytes out after iperf3: %v, want a tunnel with at least 1 MiB", out)
		}
	}
	if v, err := prom.values(`ovnsec_ike_sa_established_total{job="ovnsecd"}`, "instance"); err != nil || len(v) != n {
		t.Errorf("ovnsec_ike_sa_established_total: %v, %v", v, err)
	} else {
		for inst, x := range v {
			if x < 1 {
				t.Errorf("%s: %v IKE SAs established", inst, x)
			}
		}
	}
	if v, err := prom.values(`ovnsec_certificate_expiry_timestamp_seconds{job="ovnsecd"} - time() > 86400`, "instance", "path"); err != nil || len(v) != 2*n {
		t.Errorf("certificate expiry (own certificate and CA on each chassis, more than a day away): %v, %v", v, err)
	}
	if v, err := prom.values(`libovsdb_monitors{job="ovnsecd"}`, "instance"); err != nil || len(v) != n {
		t.Errorf("libovsdb_monitors: %v, %v", v, err)
	}

	// Every chassis' exposition passes promtool.
	for _, u := range urls {
		body, err := httpGet(nsHTTP(promNS), u)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bins[1], "check", "metrics")
		cmd.Stdin = strings.NewReader(string(body))
		if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("promtool check metrics %s: %v\n%s", u, err, out)
		}
	}

	// All is well: no tunnel-down or plaintext alert.
	for _, name := range []string{"OvnsecTunnelDown", "OvnsecPlaintextDropped", "OvnsecMetricsSourceDown", "OvnsecdDown"} {
		if f, err := prom.firing(name, "instance"); err != nil || len(f) != 0 {
			t.Errorf("%s firing with every tunnel up: %v, %v", name, f, err)
		}
	}

	// Forged plaintext Geneve "from ch2" to ch1: ch1's br-phy drops it,
	// counts it under ch2's address, and the alert fires for it.
	ch1, ch2 := netip.MustParseAddr(e.chassisIPs[0]), netip.MustParseAddr(e.chassisIPs[1])
	plainExpr := fmt.Sprintf(`ovnsec_plaintext_dropped_total{instance=%q,remote_ip=%q}`, instanceOf[ch1.String()], ch2.String())
	var plain0 float64
	demoEventually(t, 10*time.Second, "ch1's plaintext drop series for ch2", func() error {
		v, err := prom.values(plainExpr)
		if err != nil || len(v) != 1 {
			return fmt.Errorf("%s: %v, %v", plainExpr, v, err)
		}
		plain0 = v[""]
		return nil
	})
	const forged = 20
	if err := sendForgedGeneve(promNS, ch2, ch1, forged); err != nil {
		t.Fatal(err)
	}
	demoEventually(t, 30*time.Second, "forged plaintext counted by ch1", func() error {
		v, err := prom.values(plainExpr)
		if err != nil {
			return err
		}
		if v[""] < plain0+forged {
			return fmt.Errorf("%s = %v, want at least %v", plainExpr, v[""], plain0+forged)
		}
		return nil
	})
	demoEventually(t, 30*time.Second, "OvnsecPlaintextDropped firing for ch2 on ch1", func() error {
		f, err := prom.firing("OvnsecPlaintextDropped", "instance", "remote_ip")
		if err != nil {
			return err
		}
		want := "instance=" + instanceOf[ch1.String()] + ",remote_ip=" + ch2.String()
		if len(f) != 1 || f[0] != want {
			return fmt.Errorf("firing %v, want [%s]", f, want)
		}
		return nil
	})
	// The tunnels are untouched by the forgery.
	if v, err := prom.values(`ovnsec_tunnel_up == 0`, "instance", "tunnel"); err != nil || len(v) != 0 {
		t.Errorf("tunnels down after the forged packets: %v, %v", v, err)
	}

	// Every query of the rules and the dashboard is valid PromQL to this
	// Prometheus, and every metric it names exists (ovnsec_tunnel_reason
	// only exists while a tunnel is not up).
	names, err := httpGet(prom.http, prom.base+"/api/v1/label/__name__/values")
	if err != nil {
		t.Fatal(err)
	}
	var nr struct {
		Data []string `json:"data"`
	}
	if err := json.Unmarshal(names, &nr); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, nm := range nr.Data {
		have[nm] = true
	}
	for _, expr := range dashboardExprs(t) {
		if _, err := prom.query(expr); err != nil {
			t.Errorf("query %q: %v", expr, err)
		}
		for _, m := range metricNameRE.FindAllStringSubmatch(expr, -1) {
			if !have[m[1]] && m[1] != "ovnsec_tunnel_reason" {
				t.Errorf("query %q names %s, which Prometheus never scraped", expr, m[1])
			}
		}
	}
}
