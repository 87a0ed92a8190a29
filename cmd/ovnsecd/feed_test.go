// Tests for the feed loop: a change of SB_Global ipsec re-evaluates the last
// snapshot at once (no database change, no tick), in order with snapshots.

package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/creds"
	"github.com/ovnsec/ovnsec/internal/ovnsb"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// feedHarness runs a feeder on channels the test writes; desired results
// arrive on out. The tick channel never fires.
type feedHarness struct {
	snaps   chan tunnel.Snapshot
	sbs     chan ovnsb.State
	out     chan []tunnel.Tunnel
	remotes chan string
	changed chan creds.Change
}

func startFeeder(t *testing.T, cfg ovnsb.Config, noDrop bool) *feedHarness {
	t.Helper()
	h := &feedHarness{
		snaps: make(chan tunnel.Snapshot), sbs: make(chan ovnsb.State), out: make(chan []tunnel.Tunnel, 16),
		remotes: make(chan string, 16), changed: make(chan creds.Change),
	}
	f := &feeder{
		table:     tunnel.NewTable(tunnel.FileCertReader{}, nil),
		policy:    ovnsb.NewPolicy(cfg),
		setRemote: func(r string) { h.remotes <- r },
		desired:   func(ts []tunnel.Tunnel) { h.out <- ts },
		noDrop:    noDrop,
		log:       slog.New(slog.DiscardHandler),
	}
	f.table.RequireIPsec(cfg.Force)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.run(ctx, h.snaps, h.sbs, nil, h.changed) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return h
}

// next waits for the next desired set (the bound only catches a hang).
func (h *feedHarness) next(t *testing.T, what string) []tunnel.Tunnel {
	t.Helper()
	select {
	case ts := <-h.out:
		return ts
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no desired tunnels from the feed loop", what)
		return nil
	}
}

// none checks that no desired set is pending. The loop handles one input
// at a time and the test's sends are unbuffered, so once the next send was
// taken the previous input has been fully handled.
func (h *feedHarness) none(t *testing.T, what string) {
	t.Helper()
	select {
	case ts := <-h.out:
		t.Fatalf("%s: unexpected desired tunnels %+v", what, ts)
	default:
	}
}

var ovnSnap = tunnel.Snapshot{
	Seq:         1,
	OtherConfig: map[string]string{},
	ExternalIDs: map[string]string{"ovn-remote": "tcp:192.0.2.10:6642"},
	Interfaces: []tunnel.Interface{
		{UUID: "u1", Name: "ovn-ch2-0", Type: "geneve", Options: map[string]string{"remote_ip": "192.0.2.2", "key": "flow"}},
	},
}

func findTunnel(ts []tunnel.Tunnel, name string) (tunnel.Tunnel, bool) {
	for _, t := range ts {
		if t.Name == name {
			return t, true
		}
	}
	return tunnel.Tunnel{}, false
}

func TestFeederFollowsSBAtOnce(t *testing.T) {
	h := startFeeder(t, ovnsb.Config{}, false)
	// A Southbound value before the first snapshot decides nothing yet.
	h.sbs <- ovnsb.State{Value: ovnsb.Off, Remote: "tcp:192.0.2.10:6642"}
	h.snaps <- ovnSnap
	if ts := h.next(t, "first snapshot"); len(ts) != 0 {
		t.Fatalf("ipsec=false: %+v, want no tunnel", ts)
	}
	if r := <-h.remotes; r != "tcp:192.0.2.10:6642" {
		t.Errorf("follower remote %q", r)
	}

	// SB_Global ipsec=true, no snapshot: the last one is re-evaluated.
	h.sbs <- ovnsb.State{Value: ovnsb.On, Remote: "tcp:192.0.2.10:6642"}
	ts := h.next(t, "ipsec=true")
	g, ok := findTunnel(ts, "ovn-ch2-0")
	if !ok || g.State != tunnel.StateInvalid || !strings.Contains(g.Reason, "(OVN SB_Global ipsec=true)") || !strings.Contains(g.Reason, "dropped") {
		t.Fatalf("ipsec=true: %+v", ts)
	}
	// Connection lost: the last value stays, the reason says so.
	h.sbs <- ovnsb.State{Remote: "tcp:192.0.2.10:6642", Why: "not connected"}
	ts = h.next(t, "unknown")
	if g, _ := findTunnel(ts, "ovn-ch2-0"); g.State != tunnel.StateInvalid || !strings.Contains(g.Reason, "when last read") {
		t.Fatalf("unknown after true: %+v", ts)
	}
	// Another unknown state (a further failed attempt) changes nothing:
	// the snapshot sent next gives the only desired set.
	h.sbs <- ovnsb.State{Remote: "tcp:192.0.2.10:6642", Why: "not connected (again)"}
	h.snaps <- ovnSnap
	h.next(t, "snapshot after a second unknown state")
	h.none(t, "a second unknown state")

	// A snapshot with the options: configured (INVALID for want of a
	// certificate, upstream's check), in order after the SB values.
	s2 := ovnSnap
	s2.Seq = 2
	s2.Interfaces = []tunnel.Interface{{UUID: "u2", Name: "ovn-ch2-0", Type: "geneve",
		Options: map[string]string{"remote_ip": "192.0.2.2", "key": "flow", "psk": "x"}}}
	h.snaps <- s2
	ts = h.next(t, "options")
	if g, _ := findTunnel(ts, "ovn-ch2-0"); g.State != tunnel.StateConfigured {
		t.Fatalf("psk arrived: %+v", ts)
	}
	// Back to no options and ipsec=false: nothing required any more.
	h.snaps <- ovnSnap
	h.next(t, "options gone")
	h.sbs <- ovnsb.State{Value: ovnsb.Off, Remote: "tcp:192.0.2.10:6642"}
	ts = h.next(t, "ipsec=false")
	if g, ok := findTunnel(ts, "ovn-ch2-0"); !ok || g.State != tunnel.StateRemoved {
		t.Fatalf("ipsec=false: %+v, want ovn-ch2-0 REMOVED", ts)
	}
	h.none(t, "after ipsec=false")
}

// --require-ipsec: SB values change nothing; the reason keeps its wording.
func TestFeederForced(t *testing.T) {
	h := startFeeder(t, ovnsb.Config{Force: true}, false)
	h.snaps <- ovnSnap
	ts := h.next(t, "first snapshot")
	g, ok := findTunnel(ts, "ovn-ch2-0")
	if !ok || g.State != tunnel.StateInvalid || !strings.Contains(g.Reason, "(ovnsecd --require-ipsec)") {
		t.Fatalf("--require-ipsec: %+v", ts)
	}
	h.sbs <- ovnsb.State{Value: ovnsb.Off} // changes nothing: no desired set of its own
	h.snaps <- ovnSnap
	ts = h.next(t, "snapshot after SB false")
	h.none(t, "SB false under --require-ipsec")
	if g2, _ := findTunnel(ts, "ovn-ch2-0"); g2.State != tunnel.StateInvalid || g2.Reason != g.Reason || g2.Version != g.Version {
		t.Fatalf("--require-ipsec with SB false: %+v", ts)
	}
	if r := <-h.remotes; r != "" {
		t.Errorf("--require-ipsec follows %q", r)
	}
}

// With the strongSwan backend the reason does not claim a drop.
func TestFeederNoDrop(t *testing.T) {
	h := startFeeder(t, ovnsb.Config{}, true)
	h.snaps <- ovnSnap
	h.next(t, "first snapshot")
	h.sbs <- ovnsb.State{Value: ovnsb.On}
	ts := h.next(t, "ipsec=true")
	if g, _ := findTunnel(ts, "ovn-ch2-0"); g.State != tunnel.StateInvalid || strings.Contains(g.Reason, "dropped") || !strings.Contains(g.Reason, "plaintext") {
		t.Fatalf("strongSwan reason: %+v", ts)
	}
}

// A credential file that changes makes the table evaluate the last
// snapshot again at once (its problems), without a database change.
func TestFeederReevaluatesOnCredentialChange(t *testing.T) {
	h := startFeeder(t, ovnsb.Config{Mode: ovnsb.FollowOff}, false)
	snap := tunnel.Snapshot{Seq: 1, OtherConfig: map[string]string{}, Interfaces: []tunnel.Interface{
		{UUID: "u1", Name: "tun", Type: "geneve", Options: map[string]string{"remote_ip": "192.0.2.2", "psk": "x"}},
	}}
	h.snaps <- snap
	if ts := h.next(t, "first snapshot"); len(ts) != 1 {
		t.Fatalf("tunnels %+v", ts)
	}
	h.changed <- creds.Change{Paths: []string{"/etc/ovnsec/cert.pem"}}
	if ts := h.next(t, "after a credential change"); len(ts) != 1 || ts[0].Version != 1 {
		t.Fatalf("after the change: %+v, want the same tunnel at the same version", ts)
	}
}
