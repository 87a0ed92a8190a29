// The alert rules and the Grafana dashboard against promtool and against
// the metrics ovnsecd exports: promtool check and test the rules and the
// example configuration, and every ovnsec_* metric they name is one the
// collector describes.
package alerts_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ovnsec/ovnsec/internal/metrics"
	"github.com/ovnsec/ovnsec/internal/reconcile"
	"github.com/ovnsec/ovnsec/internal/testenv"
)

func promtool(t *testing.T, args ...string) {
	t.Helper()
	bins := testenv.NeedCommands(t, "promtool")
	if bins == nil {
		return
	}
	out, err := exec.Command(bins[0], args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool %s says no SUCCESS:\n%s", strings.Join(args, " "), out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

func TestPromtoolCheckRules(t *testing.T) { promtool(t, "check", "rules", "ovnsec-alerts.yml") }

func TestPromtoolTestRules(t *testing.T) { promtool(t, "test", "rules", "ovnsec-alerts.test.yml") }

func TestPromtoolCheckConfig(t *testing.T) { promtool(t, "check", "config", "prometheus.yml") }

var ovnsecName = regexp.MustCompile(`\bovnsec_[a-z_]+[a-z]\b`)

// describedNames are the metric names the collector describes.
func describedNames(t *testing.T) map[string]bool {
	t.Helper()
	c, err := metrics.New(metrics.Config{Tunnels: func(context.Context) ([]reconcile.TunnelView, error) { return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *prometheus.Desc, 100)
	c.Describe(ch)
	close(ch)
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := map[string]bool{}
	for d := range ch {
		m := fq.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		names[m[1]] = true
	}
	return names
}

// namesIn lists the ovnsec_* metric names a PromQL expression uses.
func namesIn(text string) []string {
	seen := map[string]bool{}
	for _, n := range ovnsecName.FindAllString(text, -1) {
		seen[n] = true
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func TestRulesAndDashboardNameExportedMetrics(t *testing.T) {
	described := describedNames(t)
	rules, err := os.ReadFile("ovnsec-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, line := range strings.Split(string(rules), "\n") {
		if e, ok := strings.CutPrefix(strings.TrimSpace(line), "expr:"); ok {
			exprs = append(exprs, e)
		}
	}
	if len(exprs) < 5 {
		t.Fatalf("found %d alert expressions", len(exprs))
	}
	dash, err := os.ReadFile(filepath.Join("..", "grafana", "ovnsec-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(dash, &d); err != nil {
		t.Fatalf("ovnsec-dashboard.json: %v", err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard without uid, title or panels: %+v", d)
	}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	used := map[string]bool{}
	for _, e := range exprs {
		for _, n := range namesIn(e) {
			used[n] = true
			if !described[n] {
				t.Errorf("%q names %s, which ovnsecd does not export", e, n)
			}
		}
	}
	// The alerts and the dashboard's core panels use these.
	for _, n := range []string{"ovnsec_tunnel_up", "ovnsec_certificate_expiry_timestamp_seconds", "ovnsec_plaintext_dropped_total",
		"ovnsec_esp_bytes_total", "ovnsec_esp_packets_total", "ovnsec_tunnel_state"} {
		if !used[n] {
			t.Errorf("neither the rules nor the dashboard use %s", n)
		}
	}
}
