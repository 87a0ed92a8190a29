// Events: the log lines the tunnel stage produces while it turns snapshots
// into tunnels. The text is ovs-monitor-ipsec's, verbatim, where upstream
// logs the same thing, so that existing log scrapers keep working.

package tunnel

import (
	"context"
	"log/slog"
)

// Event is one log line produced by Table.Update.
type Event struct {
	Level  slog.Level // slog.LevelDebug, slog.LevelInfo or slog.LevelWarn
	Tunnel string     // interface name; empty for global (Open_vSwitch) events
	Msg    string     // the complete line, upstream text where upstream has one
}

// Log writes the events to l, each with a "tunnel" attribute when it
// concerns one tunnel.
func Log(ctx context.Context, l *slog.Logger, events []Event) {
	for _, e := range events {
		if e.Tunnel == "" {
			l.Log(ctx, e.Level, e.Msg)
			continue
		}
		l.Log(ctx, e.Level, e.Msg, slog.String("tunnel", e.Tunnel))
	}
}
