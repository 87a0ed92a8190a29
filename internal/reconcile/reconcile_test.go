package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// fakeBackend records calls and reports statuses the test sets.
type fakeBackend struct {
	mu        sync.Mutex
	calls     []string
	ensureErr error
	statusErr error
	status    map[string]backend.TunnelStatus
	loaded    []string
	// upOnEnsure makes an ensured tunnel report PhaseUp at its version.
	upOnEnsure bool
}

func (f *fakeBackend) Name() string { return "fake" }

func (f *fakeBackend) Ensure(_ context.Context, t tunnel.Tunnel) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "ensure "+t.Name+" v"+itoa(t.Version))
	if f.ensureErr != nil {
		return f.ensureErr
	}
	if f.upOnEnsure {
		f.status[t.Name] = backend.TunnelStatus{Name: t.Name, Version: t.Version, Phase: backend.PhaseUp}
	}
	return nil
}

func (f *fakeBackend) Remove(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "remove "+name)
	delete(f.status, name)
	f.loaded = slices.DeleteFunc(f.loaded, func(s string) bool { return s == name })
	return nil
}

func (f *fakeBackend) Loaded(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.loaded), f.statusErr
}

func (f *fakeBackend) Status(context.Context) (map[string]backend.TunnelStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.statusErr != nil {
		return nil, f.statusErr
	}
	m := make(map[string]backend.TunnelStatus, len(f.status))
	for k, v := range f.status {
		m[k] = v
	}
	return m, nil
}

func (f *fakeBackend) Report(context.Context, string) (string, error) { return "{}", nil }
func (f *fakeBackend) Close(context.Context, bool) error              { return nil }

func (f *fakeBackend) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// fakeClock is the test clock; Add moves it on.
type fakeClock struct{ *clocktest.Fake }

func (c fakeClock) Add(d time.Duration) { c.Advance(d) }
func newClock() fakeClock               { return fakeClock{clocktest.New(time.Unix(1_000_000, 0))} }
func geneve(name string, v int) tunnel.Tunnel {
	return tunnel.Tunnel{Name: name, Version: v, State: tunnel.StateConfigured, Type: tunnel.TypeGeneve, RemoteIP: "192.0.2.2"}
}

func newTest(t *testing.T, fb *fakeBackend) (*Reconciler, fakeClock, *bytes.Buffer) {
	t.Helper()
	if fb.status == nil {
		fb.status = map[string]backend.TunnelStatus{}
	}
	clk := newClock()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	return New(fb, log, Options{Clock: clk}), clk, &logs
}

func TestEnsureNewAndVersionBump(t *testing.T) {
	fb := &fakeBackend{upOnEnsure: true}
	r, _, logs := newTest(t, fb)
	ctx := context.Background()

	r.SetDesired([]tunnel.Tunnel{geneve("gnv0", 1)})
	r.Pass(ctx)
	if got := fb.takeCalls(); !slices.Equal(got, []string{"ensure gnv0 v1"}) {
		t.Fatalf("first pass calls = %v", got)
	}
	if !strings.Contains(logs.String(), "Connections for all(1) configured tunnels are Up.") {
		t.Errorf("missing all-up log line; logs:\n%s", logs)
	}

	// An unchanged, healthy tunnel is left alone.
	r.Pass(ctx)
	if got := fb.takeCalls(); len(got) != 0 {
		t.Fatalf("steady state calls = %v, want none", got)
	}

	r.SetDesired([]tunnel.Tunnel{geneve("gnv0", 2)})
	r.Pass(ctx)
	if got := fb.takeCalls(); !slices.Equal(got, []string{"ensure gnv0 v2"}) {
		t.Fatalf("after bump calls = %v", got)
	}
	if !strings.Contains(logs.String(), "gnv0-out-1 is outdated, removing") {
		t.Errorf("missing outdated log; logs:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "Starting ipsec connection gnv0-in-2") {
		t.Errorf("missing start log; logs:\n%s", logs)
	}
}

func TestInvalidIsNotEnsuredAndShowsReason(t *testing.T) {
	fb := &fakeBackend{upOnEnsure: true}
	r, _, _ := newTest(t, fb)
	bad := geneve("gnv1", 1)
	bad.State, bad.Reason = tunnel.StateInvalid, ": 'remote_ip' is not set"
	r.SetDesired([]tunnel.Tunnel{bad})
	r.Pass(context.Background())
	if got := fb.takeCalls(); len(got) != 0 {
		t.Fatalf("calls = %v, want none for an INVALID tunnel", got)
	}
	views, _ := r.View()
	state, reason := summary(views[0], nil)
	if state != "invalid" || !strings.Contains(reason, "'remote_ip' is not set") {
		t.Fatalf("summary = %q %q", state, reason)
	}
}

func TestRemoveDisappearedAndLeftovers(t *testing.T) {
	fb := &fakeBackend{upOnEnsure: true, loaded: []string{"stale0"}}
	r, _, _ := newTest(t, fb)
	ctx := context.Background()
	r.SetDesired([]tunnel.Tunnel{geneve("a", 1), geneve("b", 1)})
	r.Pass(ctx)
	got := fb.takeCalls()
	want := []string{"remove stale0", "ensure a v1", "ensure b v1"}
	if !slices.Equal(got, want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
	r.SetDesired([]tunnel.Tunnel{geneve("b", 1)})
	r.Pass(ctx)
	if got := fb.takeCalls(); !slices.Equal(got, []string{"remove a"}) {
		t.Fatalf("calls = %v, want [remove a]", got)
	}
	// A tunnel turning INVALID is removed from the backend too.
	inv := geneve("b", 2)
	inv.State = tunnel.StateInvalid
	r.SetDesired([]tunnel.Tunnel{inv})
	r.Pass(ctx)
	if got := fb.takeCalls(); !slices.Equal(got, []string{"remove b"}) {
		t.Fatalf("calls = %v, want [remove b]", got)
	}
}

func TestBackoffAfterFailure(t *testing.T) {
	fb := &fakeBackend{ensureErr: errors.New("charon unreachable")}
	r, clk, _ := newTest(t, fb)
	ctx := context.Background()
	r.SetDesired([]tunnel.Tunnel{geneve("gnv0", 1)})

	steps := []struct {
		advance time.Duration
		want    int // Ensure calls expected in this pass
	}{
		{0, 1},                      // first try fails: back-off 1 s
		{500 * time.Millisecond, 0}, // too early
		{600 * time.Millisecond, 1}, // 1.1 s later: retry, fails: back-off 2 s
		{1500 * time.Millisecond, 0},
		{600 * time.Millisecond, 1}, // 2.1 s: retry, back-off 4 s
		{3 * time.Second, 0},
		{1100 * time.Millisecond, 1},
	}
	for i, s := range steps {
		clk.Add(s.advance)
		r.Pass(ctx)
		if got := len(fb.takeCalls()); got != s.want {
			t.Fatalf("step %d: %d ensure calls, want %d", i, got, s.want)
		}
	}
	views, _ := r.View()
	if views[0].Failures != 4 || views[0].LastErr == nil {
		t.Fatalf("view = %+v", views[0])
	}
	state, reason := summary(views[0], nil)
	if state != "error" || !strings.Contains(reason, "charon unreachable") {
		t.Fatalf("summary = %q %q", state, reason)
	}

	// Recovery resets the back-off.
	fb.mu.Lock()
	fb.ensureErr = nil
	fb.upOnEnsure = true
	fb.mu.Unlock()
	clk.Add(time.Minute)
	r.Pass(ctx)
	if got := len(fb.takeCalls()); got != 1 {
		t.Fatalf("recovery: %d calls", got)
	}
	views, _ = r.View()
	if state, _ := summary(views[0], nil); state != "up" {
		t.Fatalf("after recovery state = %q", state)
	}
}

func TestBackoffCap(t *testing.T) {
	r, _, _ := newTest(t, &fakeBackend{})
	for f, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 6: 32 * time.Second, 7: time.Minute, 50: time.Minute} {
		if got := r.backoff(f); got != want {
			t.Errorf("backoff(%d) = %v, want %v", f, got, want)
		}
	}
}

func TestDownTunnelBroughtUpAfterInterval(t *testing.T) {
	fb := &fakeBackend{upOnEnsure: true}
	r, clk, logs := newTest(t, fb)
	ctx := context.Background()
	r.SetDesired([]tunnel.Tunnel{geneve("gnv0", 1)})
	r.Pass(ctx)
	fb.takeCalls()

	fb.mu.Lock()
	fb.status["gnv0"] = backend.TunnelStatus{Name: "gnv0", Version: 1, Phase: backend.PhaseDown, Reason: "peer silent"}
	fb.upOnEnsure = false
	fb.mu.Unlock()

	clk.Add(5 * time.Second)
	r.Pass(ctx)
	if got := fb.takeCalls(); len(got) != 0 {
		t.Fatalf("re-ensured before the interval: %v", got)
	}
	if !strings.Contains(logs.String(), "Connection gnv0-in-1 went down, bringing it up") {
		t.Errorf("missing went-down log; logs:\n%s", logs)
	}
	clk.Add(11 * time.Second)
	r.Pass(ctx)
	if got := fb.takeCalls(); !slices.Equal(got, []string{"ensure gnv0 v1"}) {
		t.Fatalf("calls = %v", got)
	}
	views, _ := r.View()
	state, reason := summary(views[0], nil)
	if state != "down" || reason != "peer silent" {
		t.Fatalf("summary = %q %q", state, reason)
	}
}

func TestNotLoadedIsReloaded(t *testing.T) {
	// A backend restart (charon restarted) loses the connections: the next
	// pass must load them again without a configuration change.
	fb := &fakeBackend{upOnEnsure: true}
	r, _, _ := newTest(t, fb)
	ctx := context.Background()
	r.SetDesired([]tunnel.Tunnel{geneve("gnv0", 1)})
	r.Pass(ctx)
	fb.takeCalls()
	fb.mu.Lock()
	delete(fb.status, "gnv0")
	fb.mu.Unlock()
	r.Pass(ctx)
	if got := fb.takeCalls(); !slices.Equal(got, []string{"ensure gnv0 v1"}) {
		t.Fatalf("calls = %v", got)
	}
}

func TestRefreshForcesEnsure(t *testing.T) {
	fb := &fakeBackend{upOnEnsure: true}
	r, _, _ := newTest(t, fb)
	ctx := context.Background()
	r.SetDesired([]tunnel.Tunnel{geneve("a", 1), geneve("b", 3)})
	r.Pass(ctx)
	fb.takeCalls()
	r.Refresh()
	r.Pass(ctx)
	if got := fb.takeCalls(); !slices.Equal(got, []string{"ensure a v1", "ensure b v3"}) {
		t.Fatalf("calls = %v", got)
	}
	r.Pass(ctx)
	if got := fb.takeCalls(); len(got) != 0 {
		t.Fatalf("refresh is one-shot, got %v", got)
	}
}

func TestBackendUnreachable(t *testing.T) {
	fb := &fakeBackend{statusErr: errors.New("dial unix /run/charon.vici: connect: no such file or directory")}
	r, _, _ := newTest(t, fb)
	r.SetDesired([]tunnel.Tunnel{geneve("gnv0", 1)})
	r.Pass(context.Background())
	views, berr := r.View()
	if berr == nil {
		t.Fatal("backend error not reported")
	}
	state, reason := summary(views[0], berr)
	if state != "unknown" || !strings.Contains(reason, "no such file") {
		t.Fatalf("summary = %q %q", state, reason)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	fb := &fakeBackend{upOnEnsure: true}
	r, _, _ := newTest(t, fb)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	r.SetDesired([]tunnel.Tunnel{geneve("gnv0", 1)})
	deadline := time.After(5 * time.Second)
	for {
		views, _ := r.View()
		if len(views) == 1 && views[0].Applied == 1 {
			break
		}
		select {
		case <-deadline:
			t.Fatal("Run did not ensure the tunnel")
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
}

func TestReAddedTunnelWithSameVersionIsEnsuredAgain(t *testing.T) {
	// A port deleted and added again restarts at version 1 with another
	// configuration; if both updates are coalesced into one pass the
	// backend must still get the new configuration.
	fb := &fakeBackend{upOnEnsure: true}
	r, _, _ := newTest(t, fb)
	ctx := context.Background()
	r.SetDesired([]tunnel.Tunnel{geneve("tun", 1)})
	r.Pass(ctx)
	fb.takeCalls()
	gre := geneve("tun", 1)
	gre.Type = tunnel.TypeGRE
	r.SetDesired([]tunnel.Tunnel{gre})
	r.Pass(ctx)
	if got := fb.takeCalls(); !slices.Equal(got, []string{"ensure tun v1"}) {
		t.Fatalf("calls = %v, want the changed tunnel ensured again", got)
	}
	// A status-only change does not.
	gre.OFPort = "7"
	r.SetDesired([]tunnel.Tunnel{gre})
	r.Pass(ctx)
	if got := fb.takeCalls(); len(got) != 0 {
		t.Fatalf("status-only change caused %v", got)
	}
}

func TestLiveViewReadsBackendNow(t *testing.T) {
	fb := &fakeBackend{}
	r, _, _ := newTest(t, fb)
	r.SetDesired([]tunnel.Tunnel{geneve("gnv0", 1)})
	r.Pass(context.Background())
	fb.mu.Lock()
	fb.status["gnv0"] = backend.TunnelStatus{Name: "gnv0", Version: 1, Phase: backend.PhaseUp}
	fb.mu.Unlock()
	views, _ := r.View()
	if views[0].HasStatus {
		t.Fatal("View should show the status of the last pass")
	}
	views, _ = r.LiveView(context.Background())
	if !views[0].HasStatus || views[0].Status.Phase != backend.PhaseUp {
		t.Fatalf("LiveView = %+v", views[0])
	}
}

// guardingBackend is a fakeBackend that also guards; refuse names the
// tunnels it refuses to guard.
type guardingBackend struct {
	*fakeBackend
	refuse   map[string]error
	guardErr error
}

func (b guardingBackend) Guard(_ context.Context, ts []tunnel.Tunnel) (map[string]error, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name + " v" + itoa(t.Version)
	}
	b.calls = append(b.calls, "guard ["+strings.Join(names, ",")+"]")
	return b.refuse, b.guardErr
}

// The guard comes first in every pass, before removes and ensures, and
// covers CONFIGURED and INVALID tunnels alike; an INVALID tunnel's SAs are
// removed (the guard keeps it blocked).
func TestGuardFirstEveryPass(t *testing.T) {
	fb := &fakeBackend{upOnEnsure: true, status: map[string]backend.TunnelStatus{}}
	clk := newClock()
	r := New(guardingBackend{fakeBackend: fb}, slog.New(slog.DiscardHandler), Options{Clock: clk})
	ctx := context.Background()
	r.SetDesired([]tunnel.Tunnel{geneve("tun", 1)})
	r.Pass(ctx)
	if got := fb.takeCalls(); !slices.Equal(got, []string{"guard [tun v1]", "ensure tun v1"}) {
		t.Fatalf("calls = %v", got)
	}

	bad := geneve("tun", 2)
	bad.RemoteIP, bad.State, bad.Reason = "192.0.2.2", tunnel.StateInvalid, ": must choose a authentication method"
	r.SetDesired([]tunnel.Tunnel{bad})
	r.Pass(ctx)
	if got := fb.takeCalls(); !slices.Equal(got, []string{"guard [tun v2]", "remove tun"}) {
		t.Fatalf("calls = %v, want the guard, then the SAs removed", got)
	}
	r.Pass(ctx)
	if got := fb.takeCalls(); !slices.Equal(got, []string{"guard [tun v2]"}) {
		t.Fatalf("calls = %v", got)
	}
	// Without a remote address OVS has no tunnel: nothing to guard.
	bad.Version, bad.RemoteIP = 3, ""
	r.SetDesired([]tunnel.Tunnel{bad})
	r.Pass(ctx)
	if got := fb.takeCalls(); !slices.Equal(got, []string{"guard []"}) {
		t.Fatalf("calls = %v", got)
	}
	// Fixed: ensured.
	r.SetDesired([]tunnel.Tunnel{geneve("tun", 4)})
	r.Pass(ctx)
	if got := fb.takeCalls(); !slices.Equal(got, []string{"guard [tun v4]", "ensure tun v4"}) {
		t.Fatalf("calls = %v", got)
	}
}

// A failed Ensure of a guarded tunnel shows as blocked; a tunnel the
// backend cannot guard says loudly that its packets are not blocked.
func TestBlockedAndUnguardedSummaries(t *testing.T) {
	fb := &fakeBackend{status: map[string]backend.TunnelStatus{}, ensureErr: errors.New("load CA /ca.pem: no such file")}
	gb := guardingBackend{fakeBackend: fb, refuse: map[string]error{"flow0": errors.New("remote_ip \"flow\" is not an IP address")}}
	r := New(gb, slog.New(slog.DiscardHandler), Options{Clock: newClock()})
	ctx := context.Background()
	flow := geneve("flow0", 1)
	flow.RemoteIP = "flow"
	r.SetDesired([]tunnel.Tunnel{geneve("tun", 1), flow})
	fb.status["tun"] = backend.TunnelStatus{Name: "tun", Version: 1, Phase: backend.PhaseDown, Blocked: true, Reason: "blocked: ..."}
	r.Pass(ctx)
	views, _ := r.View()
	got := map[string][2]string{}
	for _, v := range views {
		s, why := summary(v, nil)
		got[v.Tunnel.Name] = [2]string{s, why}
	}
	if g := got["tun"]; g[0] != "blocked" || !strings.Contains(g[1], "/ca.pem") {
		t.Errorf("tun: %q", g)
	}
	if g := got["flow0"]; g[0] != "error" || !strings.Contains(g[1], "NOT blocked") || !strings.Contains(g[1], "not an IP address") {
		t.Errorf("flow0: %q", g)
	}
	// A guard that could not be installed at all is named on every tunnel.
	fb.status = map[string]backend.TunnelStatus{}
	gb.guardErr = errors.New("ovs-ofctl: connection refused")
	r2 := New(gb, slog.New(slog.DiscardHandler), Options{Clock: newClock()})
	r2.SetDesired([]tunnel.Tunnel{geneve("tun", 1)})
	r2.Pass(ctx)
	views, _ = r2.View()
	if s, why := summary(views[0], nil); s != "error" || !strings.Contains(why, "NOT blocked: ovs-ofctl") {
		t.Errorf("guard failure: %q %q", s, why)
	}
}

func TestInvalidSummaryNamesProblems(t *testing.T) {
	bad := geneve("tun", 1)
	bad.State, bad.Reason = tunnel.StateInvalid, ": must set 'certificate' as local certificate"
	bad.Problems = []string{"Open_vSwitch other_config PKI update ignored (read certificate /x.pem: no such file)"}
	v := TunnelView{Tunnel: bad, HasStatus: true, Status: backend.TunnelStatus{Reason: "blocked: packets dropped"}}
	state, reason := summary(v, nil)
	for _, want := range []string{"must set 'certificate'", "/x.pem", "blocked"} {
		if state != "invalid" || !strings.Contains(reason, want) {
			t.Errorf("summary %q %q lacks %q", state, reason, want)
		}
	}
}

// summary is a view's Status as the two strings tunnels/show prints.
func summary(v TunnelView, backendErr error) (state, reason string) {
	s := v.Summary(backendErr)
	return s.State.String(), s.Detail
}

// The Status line is rendered from typed data: state, code, detail.
func TestSummaryIsTyped(t *testing.T) {
	up := TunnelView{Tunnel: geneve("tun", 1), HasStatus: true, Applied: 1, Current: true,
		Status: backend.TunnelStatus{Version: 1, Phase: backend.PhaseUp}}
	if s := up.Summary(nil); s.State != backend.StateUp || s.Code != backend.CodeNone || s.String() != "up" {
		t.Errorf("up: %+v %q", s, s)
	}
	down := up
	down.Status = backend.TunnelStatus{Version: 1, Phase: backend.PhaseDown, Code: "auth_failed", Reason: "AUTHENTICATION_FAILED from peer"}
	if s := down.Summary(nil); s.State != backend.StateDown || s.Code != "auth_failed" || s.String() != "down: AUTHENTICATION_FAILED from peer" {
		t.Errorf("down: %+v %q", s, s)
	}
	bad := geneve("tun", 2)
	bad.State, bad.Reason = tunnel.StateInvalid, ": 'remote_ip' is not set"
	if s := (TunnelView{Tunnel: bad}).Summary(nil); s.State != backend.StateInvalid || s.Code != backend.CodeConfigInvalid {
		t.Errorf("invalid: %+v", s)
	}
	if s := (TunnelView{Tunnel: geneve("tun", 1)}).Summary(errors.New("charon gone")); s.State != backend.StateUnknown || s.Code != backend.CodeBackendUnreachable {
		t.Errorf("unknown: %+v", s)
	}
	for _, st := range backend.States() {
		var back backend.State
		if txt, _ := st.MarshalText(); back.UnmarshalText(txt) != nil || back != st {
			t.Errorf("state %v does not round-trip through text", st)
		}
	}
}

// Before the first desired set a pass touches nothing: after a restart the
// backend's protection from the previous run (br-phy's drop rules, loaded
// connections) stays until the database has been read.
func TestNoPassBeforeFirstDesiredSet(t *testing.T) {
	fb := &fakeBackend{status: map[string]backend.TunnelStatus{}, loaded: []string{"leftover"}}
	r := New(guardingBackend{fakeBackend: fb}, slog.New(slog.DiscardHandler), Options{Clock: newClock()})
	r.Pass(context.Background())
	if got := fb.takeCalls(); len(got) != 0 {
		t.Fatalf("a pass before SetDesired called the backend: %v", got)
	}
	r.SetDesired(nil)
	r.Pass(context.Background())
	if got := fb.takeCalls(); !slices.Equal(got, []string{"guard []", "remove leftover"}) {
		t.Fatalf("calls = %v", got)
	}
}

// The JSON document carries what tunnels/show says, as data, and never the
// PSK.
func TestDocument(t *testing.T) {
	tn := geneve("tun", 2)
	tn.Auth, tn.PSK, tn.CustomOptions = tunnel.AuthPSK, tunnel.NewSecret("swordfish"), []tunnel.Option{{Key: "encapsulation", Value: "yes"}}
	v := TunnelView{Tunnel: tn, HasStatus: true, Applied: 2, Current: true, Status: backend.TunnelStatus{
		Version: 2, Phase: backend.PhaseDown, Code: "peer_silent", Reason: "peer silent",
		IKE:   &backend.IKESAStatus{State: "down"},
		Conns: []backend.ConnStatus{{Name: "tun-in-2"}, {Name: "tun-out-2"}},
	}}
	d := NewDocument([]TunnelView{v}, nil)
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "swordfish") {
		t.Fatalf("PSK in the document: %s", b)
	}
	var back Document
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	got := back.Tunnels[0]
	if got.State != backend.StateDown || got.Code != "peer_silent" || got.Detail != "peer silent" || got.Options["encapsulation"] != "yes" ||
		got.IKE == nil || got.IKE.State != "down" || len(got.Conns) != 2 || got.Config != tunnel.StateConfigured || got.Version != 2 {
		t.Errorf("round trip: %+v", got)
	}
	if !strings.Contains(string(b), `"state":"down"`) {
		t.Errorf("state not rendered as its word: %s", b)
	}
}
