// Tests for the Follower: what it reports without a usable remote, the
// reading of SB_Global rows, and (integration) a real Southbound
// ovsdb-server whose SB_Global ipsec is flipped, restarted and replaced.

package ovnsb

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/ovnsec/ovnsec/internal/ovnsb/sbdb"
	"github.com/ovnsec/ovnsec/internal/ovnsb/sbtest"
	"github.com/ovnsec/ovnsec/internal/testenv"
)

// testLogger logs to the test.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// run starts f and stops it when the test ends.
func run(t *testing.T, f *Follower) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
}

// await reads States until ok accepts one; it fails the test after
// timeout (a bound for a broken follower, not a speed requirement).
func await(t *testing.T, f *Follower, what string, timeout time.Duration, ok func(State) bool) State {
	t.Helper()
	deadline := time.After(timeout)
	var last State
	for {
		select {
		case s, open := <-f.Updates():
			if !open {
				t.Fatalf("%s: updates closed; last %+v", what, last)
			}
			last = s
			if ok(s) {
				return s
			}
		case <-deadline:
			t.Fatalf("%s: not within %v; last state %+v", what, timeout, last)
		}
	}
}

func isValue(v Value) func(State) bool { return func(s State) bool { return s.Value == v } }

func TestFollowerWithoutUsableRemote(t *testing.T) {
	f := New(testLogger(t))
	run(t, f)
	s := await(t, f, "no remote", 5*time.Second, func(State) bool { return true })
	if s.Value != Unknown || !strings.Contains(s.Why, "ovn-remote is not set") {
		t.Errorf("no remote: %+v", s)
	}
	f.SetRemote("ssl:192.0.2.10:6642")
	s = await(t, f, "ssl remote", 5*time.Second, func(s State) bool { return s.Remote != "" })
	if s.Value != Unknown || !strings.Contains(s.Why, "ssl: Southbound remotes are not supported") {
		t.Errorf("ssl remote: %+v", s)
	}
	f.SetRemote("ptcp:6642")
	s = await(t, f, "passive remote", 5*time.Second, func(s State) bool { return s.Remote == "ptcp:6642" })
	if s.Value != Unknown || !strings.Contains(s.Why, "passive") {
		t.Errorf("passive remote: %+v", s)
	}
	f.SetRemote("")
	s = await(t, f, "remote removed", 5*time.Second, func(s State) bool { return s.Remote == "" })
	if s.Value != Unknown {
		t.Errorf("remote removed: %+v", s)
	}
}

func TestValueOf(t *testing.T) {
	rows := func(vals ...bool) map[string]model.Model {
		m := map[string]model.Model{}
		for i, v := range vals {
			m[string(rune('a'+i))] = &sbdb.SBGlobal{UUID: string(rune('a' + i)), Ipsec: v}
		}
		return m
	}
	if s := valueOf(rows(), "r"); s.Value != Unknown || s.Why == "" {
		t.Errorf("no row: %+v", s)
	}
	if s := valueOf(rows(false), "r"); s.Value != Off || s.Remote != "r" || s.Why != "" {
		t.Errorf("false: %+v", s)
	}
	if s := valueOf(rows(true), "r"); s.Value != On {
		t.Errorf("true: %+v", s)
	}
	if s := valueOf(rows(false, true), "r"); s.Value != On {
		t.Errorf("two rows, one true: %+v (must fail closed)", s)
	}
	if s := valueOf(map[string]model.Model{"x": nil, "y": &sbdb.SBGlobal{}}, "r"); s.Value != Off {
		t.Errorf("nil row skipped: %+v", s)
	}
}

// TestFollowerIntegration drives a real ovsdb-server with the OVN
// Southbound schema: ipsec flips are reported, a restart of the server
// makes the value unknown until it is back, a dead first remote of a list
// is skipped, and a new remote replaces the old one.
func TestFollowerIntegration(t *testing.T) {
	testenv.Short(t)
	sb := sbtest.Start(t)
	f := New(testLogger(t), WithBackoff(20*time.Millisecond, 200*time.Millisecond), WithProbeInterval(time.Second))
	run(t, f)
	dead := "unix:" + filepath.Join(sb.Dir, "nobody-listens.sock")
	f.SetRemote(dead + "," + sb.Remote)

	const wait = 20 * time.Second
	s := await(t, f, "initial false", wait, isValue(Off))
	if s.Remote != sb.Remote {
		t.Errorf("read from %q, want %q", s.Remote, sb.Remote)
	}
	sb.SetIPsec(true)
	await(t, f, "ipsec=true", wait, isValue(On))
	sb.Sbctl("set", "SB_Global", ".", "options:foo=bar") // another column: not monitored
	sb.SetIPsec(false)
	await(t, f, "ipsec=false", wait, isValue(Off))
	sb.SetIPsec(true)
	await(t, f, "ipsec=true again", wait, isValue(On))

	sb.Stop()
	s = await(t, f, "server gone", wait, isValue(Unknown))
	if !strings.Contains(s.Why, "not connected") {
		t.Errorf("server gone: %+v", s)
	}
	sb.Start()
	await(t, f, "server back, value read again", wait, isValue(On))

	// Another Southbound: the follower moves to it.
	sb2 := sbtest.Start(t)
	f.SetRemote(sb2.Remote)
	s = await(t, f, "second server", wait, func(s State) bool { return s.Value == Off && s.Remote == sb2.Remote })
	sb.SetIPsec(false) // the old server no longer matters
	sb2.SetIPsec(true)
	s = await(t, f, "second server's ipsec=true", wait, isValue(On))
	if s.Remote != sb2.Remote {
		t.Errorf("value from %q, want %q", s.Remote, sb2.Remote)
	}

	// SB_Global row deleted (a Southbound being rebuilt): unknown.
	sb2.Sbctl("destroy", "SB_Global", ".")
	s = await(t, f, "no SB_Global row", wait, isValue(Unknown))
	if !strings.Contains(s.Why, "no row") {
		t.Errorf("no row: %+v", s)
	}
}

// The Follower never writes: after it has followed a server through
// flips, the database holds exactly what ovn-sbctl wrote.
func TestFollowerReadOnly(t *testing.T) {
	testenv.Short(t)
	sb := sbtest.Start(t)
	before := sb.Sbctl("--columns=ipsec,options,external_ids,nb_cfg", "list", "SB_Global")
	f := New(testLogger(t))
	run(t, f)
	f.SetRemote(sb.Remote)
	await(t, f, "initial false", 20*time.Second, isValue(Off))
	if after := sb.Sbctl("--columns=ipsec,options,external_ids,nb_cfg", "list", "SB_Global"); after != before {
		t.Errorf("SB_Global changed:\n%s\nwas\n%s", after, before)
	}
}
