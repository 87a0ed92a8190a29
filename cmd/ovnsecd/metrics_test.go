package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/testenv"
	"github.com/ovnsec/ovnsec/test/harness"
)

func TestCheckMetricsAddress(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:9476", ":9476", "0.0.0.0:0", "[::1]:9476", "localhost:9476", "chassis-1.example:65535"} {
		if err := checkMetricsAddress(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for addr, want := range map[string]string{
		"":                "want HOST:PORT",
		"9476":            "want HOST:PORT",
		"127.0.0.1":       "want HOST:PORT",
		"127.0.0.1:70000": "not a number from 0 to 65535",
		"127.0.0.1:http":  "not a number from 0 to 65535",
		"127.0.0.1:-1":    "not a number from 0 to 65535",
		"bad host:9476":   "neither an IP address nor a host name",
		"-x:9476":         "neither an IP address nor a host name",
	} {
		err := checkMetricsAddress(addr)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--metrics-address") {
			t.Errorf("%q: err = %v, want one naming --metrics-address and saying %q", addr, err, want)
		}
	}
}

func TestParseArgsMetricsAddress(t *testing.T) {
	c, err := parseArgs([]string{"--metrics-address=127.0.0.1:9476", "unix:/a.sock"}, &bytes.Buffer{})
	if err != nil || c.metricsAddr != "127.0.0.1:9476" {
		t.Fatalf("parseArgs = %q, %v", c.metricsAddr, err)
	}
	if c, err := parseArgs([]string{"unix:/a.sock"}, &bytes.Buffer{}); err != nil || c.metricsAddr != "" {
		t.Fatalf("metrics are on by default: %q, %v", c.metricsAddr, err)
	}
	if _, err := parseArgs([]string{"unix:/a.sock", "--metrics-address", "9476"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "--metrics-address \"9476\": want HOST:PORT") {
		t.Fatalf("a bad --metrics-address: %v", err)
	}
}

var metricsURLRE = regexp.MustCompile(`msg="serving Prometheus metrics".* url=(http://\S+/metrics)`)

// getMetrics fetches url's exposition.
func getMetrics(url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s\n%s", url, resp.Status, b)
	}
	return string(b), nil
}

// TestMetricsEndpoint: ovnsecd with --metrics-address on a free port,
// against a real ovsdb-server, serves /metrics with the tunnels, libovsdb's
// client metrics and the Go runtime's; promtool accepts it; the server
// goes when the daemon exits.
func TestMetricsEndpoint(t *testing.T) {
	testenv.Short(t)
	t.Parallel()
	bins := testenv.NeedCommands(t, "promtool")
	if bins == nil {
		return
	}
	db := testenv.StartOVSDB(t)
	db.Vsctl("--no-wait", "add-br", "br-ipsec")
	d := startDaemon(t, db, "--metrics-address=127.0.0.1:0")
	var url string
	d.WaitFor("the metrics URL in the log", 5*time.Second, func() bool {
		m := metricsURLRE.FindStringSubmatch(d.Logs())
		if m != nil {
			url = m[1]
		}
		return m != nil
	})

	db.Vsctl("--no-wait", "add-port", "br-ipsec", "gnv0", "--", "set", "interface", "gnv0",
		"type=geneve", "options:remote_ip=192.0.2.2", "options:psk=swordfish")
	var body string
	d.WaitFor("gnv0 in /metrics", 10*time.Second, func() bool {
		var err error
		body, err = getMetrics(url)
		return err == nil && strings.Contains(body, `ovnsec_tunnel_up{remote_ip="192.0.2.2",tunnel="gnv0",type="geneve"} 0`)
	})
	for _, want := range []string{
		// No charon behind the strongSwan backend: not up, and why.
		`ovnsec_tunnel_state{state="up",tunnel="gnv0"} 0`,
		`ovnsec_tunnel_reason{code="`,
		`ovnsec_esp_packets_total{direction="in",tunnel="gnv0"} 0`,
		`ovnsec_metrics_source_up{source="backend_status"} 0`,
		`ovnsec_build_info{backend="strongswan",version="` + version + `"} 1`,
		`libovsdb_monitors{primary_model="Open_vSwitch"} 1`,
		`libovsdb_disconnects_total{primary_model="Open_vSwitch"} 0`,
		"go_goroutines ",
		"process_cpu_seconds_total ",
		`promhttp_metric_handler_requests_total{code="200"} `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The strongSwan backend has no engine counters.
	for _, absent := range []string{"ovnsec_ike_sa_established_total", "ovnsec_plaintext_dropped_total", "ovnsec_datapath_drops_total"} {
		if strings.Contains(body, absent) {
			t.Errorf("/metrics has %s with the strongSwan backend", absent)
		}
	}
	if strings.Contains(body, "swordfish") {
		t.Fatal("/metrics shows the PSK")
	}
	cmd := exec.Command(bins[0], "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	if _, err := getMetrics(strings.TrimSuffix(url, "/metrics") + "/other"); err == nil {
		t.Error("a path other than /metrics is served")
	}

	// exit: the metrics server goes with the daemon.
	if out, err := d.Appctl("exit"); err != nil {
		t.Fatalf("exit: %v %s", err, out)
	}
	select {
	case <-d.Exited():
	case <-time.After(30 * time.Second):
		t.Fatal("ovnsecd did not exit")
	}
	if _, err := getMetrics(url); err == nil {
		t.Error("/metrics still answers after ovnsecd exited")
	}
}

// TestMetricsAddressRefused: an address that cannot be opened refuses the
// start with a message naming it; nothing else starts.
func TestMetricsAddressRefused(t *testing.T) {
	testenv.Short(t)
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	bin := filepath.Join(harness.Binaries(t), "ovnsecd")
	rundir := t.TempDir()
	for _, tc := range []struct{ addr, want string }{
		{busy.Addr().String(), "--metrics-address " + busy.Addr().String() + ": cannot listen"},
		{"192.0.2.1:9476", "cannot listen"}, // not an address of this host
		{"127.0.0.1:99999", "not a number from 0 to 65535"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, bin, "--rundir="+rundir, "--ike-daemon=strongswan",
			"--metrics-address="+tc.addr, "unix:"+filepath.Join(rundir, "db.sock")).CombinedOutput()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), tc.want) {
			t.Errorf("--metrics-address=%s: %v, want exit status 1 saying %q:\n%s", tc.addr, err, tc.want, out)
		}
		if strings.Contains(string(out), "ovnsecd starting") {
			t.Errorf("--metrics-address=%s: the daemon started:\n%s", tc.addr, out)
		}
	}
}
