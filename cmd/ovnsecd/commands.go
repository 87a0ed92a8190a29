// Commands: the ovs-appctl interface of ovnsecd, in ovs-monitor-ipsec's
// names and reply formats, plus the status line and reason that upstream
// lacks.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ovnsec/ovnsec/internal/reconcile"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

func (s *system) registerCommands() {
	s.ctl.Register("tunnels/show", 0, 1, "[--format=text|json]", s.cmdTunnelsShow)
	for _, name := range []string{"ipsec/status", "xfrm/policies", "xfrm/state"} {
		s.ctl.Register(name, 0, 0, "", func(ctx context.Context, _ []string) (string, error) {
			return s.be.Report(ctx, name)
		})
	}
	s.ctl.Register("refresh", 0, 0, "", func(context.Context, []string) (string, error) {
		s.rec.Refresh()
		return "", nil
	})
	s.ctl.Register("exit", 0, 1, "[--no-cleanup]", func(_ context.Context, args []string) (string, error) {
		cleanup := true
		if len(args) == 1 {
			if args[0] != "--no-cleanup" {
				return "unrecognized parameter: " + args[0], nil
			}
			cleanup = false
		}
		s.requestExit(cleanup)
		return "", nil
	})
	s.ctl.Register("upgrade", 0, 0, "", func(context.Context, []string) (string, error) {
		if err := s.upgrade(); err != nil {
			return "", err
		}
		return "the new ovnsecd is ready; this one hands its SAs over and exits\n", nil
	})
	s.registerMemoryCommands()
	s.registerEnrollCommands()
}

func (s *system) cmdTunnelsShow(ctx context.Context, args []string) (string, error) {
	format := "text"
	if len(args) == 1 {
		f, ok := strings.CutPrefix(args[0], "--format=")
		if !ok || (f != "text" && f != "json") {
			return "", fmt.Errorf("unrecognized parameter %q: use --format=text or --format=json", args[0])
		}
		format = f
	}
	views, berr := s.rec.LiveView(ctx)
	if format == "json" {
		b, err := json.MarshalIndent(reconcile.NewDocument(views, berr), "", "  ")
		if err != nil {
			return "", fmt.Errorf("tunnels/show: %w", err)
		}
		return string(b) + "\n", nil
	}
	return renderShow(views, berr), nil
}

// renderShow prints every tunnel in ovs-monitor-ipsec's layout, with
// ovnsec's additions (destination port, problems, status and reason, backend
// details) placed after the upstream label lines.
func renderShow(views []reconcile.TunnelView, backendErr error) string {
	if len(views) == 0 {
		return tunnel.NoTunnels
	}
	var b strings.Builder
	for _, v := range views {
		b.WriteString(tunnel.Render(v.Tunnel))
		b.WriteString(tunnel.RenderExtras(v.Tunnel))
		fmt.Fprintf(&b, "  Status:         %s\n", v.Summary(backendErr))
		for _, d := range v.Status.Details {
			fmt.Fprintf(&b, "  %s\n", d)
		}
		b.WriteString("Kernel policies installed:\n")
		b.WriteString("Kernel security associations installed:\n")
		b.WriteString("IPsec connections that are active:\n")
		for _, c := range v.Status.Conns {
			if c.Active {
				fmt.Fprintf(&b, "  %s\n", c.Line)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
