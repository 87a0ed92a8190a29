// Show: ovnsecd's `tunnels/show --format=json` (reconcile.Document), the
// one way the end-to-end tests and the benchmarks read a tunnel's state,
// reason and SAs. Nothing here parses tunnels/show's text; tests that check
// the text itself (its upstream layout, lines the README quotes) read it
// with Appctl and say so.

package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/reconcile"
	"github.com/ovnsec/ovnsec/internal/unixctl"
)

// showFormat is tunnels/show's argument for the JSON view.
const showFormat = "--format=json"

// Show is one reply of `tunnels/show --format=json`.
type Show struct {
	reconcile.Document
}

// ShowJSON parses a reply of `tunnels/show --format=json`. The text view
// (a reply without --format=json) is refused with an error that says so.
func ShowJSON(out string) (Show, error) {
	trimmed := strings.TrimSpace(out)
	if !strings.HasPrefix(trimmed, "{") {
		return Show{}, fmt.Errorf("tunnels/show reply is not the JSON view (was --format=json passed?): %q", truncate(trimmed, 80))
	}
	var s Show
	dec := json.NewDecoder(strings.NewReader(trimmed))
	if err := dec.Decode(&s.Document); err != nil {
		return Show{}, fmt.Errorf("tunnels/show --format=json: %w in %q", err, truncate(trimmed, 200))
	}
	if dec.More() {
		return Show{}, fmt.Errorf("tunnels/show --format=json: data after the document in %q", truncate(trimmed, 200))
	}
	if s.Tunnels == nil {
		return Show{}, fmt.Errorf("tunnels/show --format=json: no \"tunnels\" list in %q", truncate(trimmed, 200))
	}
	seen := make(map[string]bool, len(s.Tunnels))
	for _, t := range s.Tunnels {
		if t.Name == "" || seen[t.Name] {
			return Show{}, fmt.Errorf("tunnels/show --format=json: tunnel name %q empty or listed twice", t.Name)
		}
		seen[t.Name] = true
	}
	return s, nil
}

// Tunnel returns the tunnel called name, if listed.
func (s Show) Tunnel(name string) (reconcile.TunnelDoc, bool) {
	for _, t := range s.Tunnels {
		if t.Name == name {
			return t, true
		}
	}
	return reconcile.TunnelDoc{}, false
}

// Status renders a tunnel's state, reason code and detail for test
// messages: "up", or "down: <detail> [<code>]".
func Status(t reconcile.TunnelDoc) string {
	s := backend.Summary{State: t.State, Detail: t.Detail}.String()
	if t.Code != backend.CodeNone {
		s += " [" + string(t.Code) + "]"
	}
	return s
}

// ActiveConns counts t's connections with an installed Child SA.
func ActiveConns(t reconcile.TunnelDoc) int {
	n := 0
	for _, c := range t.Conns {
		if c.Active {
			n++
		}
	}
	return n
}

// ShowCtl runs the real `ovs-appctl --timeout=5 -t ctl tunnels/show
// --format=json` and parses its reply.
func ShowCtl(ctl string) (Show, error) {
	var stderr bytes.Buffer
	cmd := exec.Command("ovs-appctl", "--timeout=5", "-t", ctl, "tunnels/show", showFormat)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return Show{}, fmt.Errorf("ovs-appctl -t %s tunnels/show %s: %w: %s%s", ctl, showFormat, err, out, stderr.String())
	}
	return ShowJSON(string(out))
}

// ShowVia asks for the JSON view over an open unixctl connection (for
// pollers that cannot afford a process per call).
func ShowVia(ctx context.Context, c *unixctl.Client) (Show, error) {
	out, err := c.Call(ctx, "tunnels/show", showFormat)
	if err != nil {
		return Show{}, err
	}
	return ShowJSON(out)
}

// Show is the daemon's JSON view through the real ovs-appctl.
func (d *Daemon) Show() (Show, error) { return ShowCtl(d.Ctl()) }

// WaitTunnel polls the JSON view until tunnel name is listed and ok
// accepts it, and returns it; it fails the test after timeout, printing
// the last view.
func (d *Daemon) WaitTunnel(timeout time.Duration, name string, ok func(reconcile.TunnelDoc) bool) reconcile.TunnelDoc {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s, err := d.Show()
		if err == nil {
			if t, found := s.Tunnel(name); found && ok(t) {
				return t
			}
		}
		if time.Now().After(deadline) {
			last := fmt.Sprint(err)
			if err == nil {
				if t, found := s.Tunnel(name); found {
					last = Status(t)
				} else {
					last = "not listed"
				}
			}
			d.t.Fatalf("tunnel %s not as wanted within %v; last: %s", name, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
