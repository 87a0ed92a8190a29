package ike

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// A process saves its IKE SA (Suspend) and a new engine on the same
// address takes it up (Restore): the peer sees no Delete and no new IKE
// SA, the restored Child SA pairs with the peer's, and liveness checks and
// rekeys go on between them.
func TestSuspendRestoreKeepsTheIKESA(t *testing.T) {
	w := newFakeWorld(t, nil, nil)
	pa, pb := fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false)
	for _, p := range []*Peer{&pa, &pb} {
		p.ChildLifetime, p.IKELifetime, p.DPDInterval = 10*time.Minute, time.Hour, 30*time.Second
	}
	pb.ChildLifetime, pb.IKELifetime = 20*time.Minute, 2*time.Hour // the restored side rekeys first
	w.add(pa, pb)
	w.waitUp()
	before := w.b.e.Status("peer")
	bEvents := len(w.b.rec.Events())

	saved := w.a.e.Suspend()
	if len(saved) != 1 || len(saved[0].Children) != 1 {
		t.Fatalf("saved %d SAs (%+v), want one with its child", len(saved), saved)
	}
	if Count(w.a.rec.Events(), ChildDeleted) != 0 {
		t.Fatal("Suspend reported the Child SA deleted: the data path would drop it")
	}
	// Through JSON, as the state file carries it.
	raw, err := json.Marshal(saved[0])
	if err != nil {
		t.Fatal(err)
	}
	saved[0].Zero()
	var s SavedSA
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}

	// The next process: a new engine on a's address; its tunnel version
	// (and so the peer's name) may differ.
	rec := &Recorder{}
	e2, err := New(Config{Conn: w.net.conn(w.a.ip, 500, 4500), Handler: rec, Clock: w.clock, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e2.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	pa2 := pa
	pa2.Name, pa2.Initiate = "peer-2", false
	if err := e2.AddPeer(pa2); err != nil {
		t.Fatal(err)
	}
	if err := e2.Restore("peer-2", s); err != nil {
		t.Fatal(err)
	}
	if st := e2.Status("peer-2"); !st.Up() || st.SPIi != before.SPIi || st.SPIr != before.SPIr || len(st.Children) != 1 {
		t.Fatalf("restored status %+v, want the SA of SPIs %v/%v", st, before.SPIi, before.SPIr)
	}
	if !rec.Wait(2*time.Second, func(evs []RecordedEvent) bool { return Count(evs, ChildEstablished) == 1 }) {
		t.Fatalf("no ChildEstablished for the restored child: %+v", rec.Events())
	}
	got := rec.Events()[0].SA
	bEv := w.b.rec.Events()
	var bChild ChildSA
	for _, ev := range bEv {
		if ev.Event == ChildEstablished {
			bChild = ev.SA
		}
	}
	if got.Peer != "peer-2" || !espPairs(t, got, bChild) || !espPairs(t, bChild, got) {
		t.Fatalf("the restored child does not pair with the peer's: %+v", got)
	}

	// A liveness check from b is answered by the new engine.
	w.advance(31 * time.Second)
	settle()
	if st := w.b.e.Status("peer"); !st.Up() || st.SPIi != before.SPIi {
		t.Fatalf("b after a liveness check: %+v", st)
	}
	if len(w.b.rec.Events()) != bEvents {
		t.Fatalf("b saw Child SA events: %+v", w.b.rec.Events()[bEvents:])
	}
	// The restored side rekeys the child, and later the IKE SA.
	w.advance(10 * time.Minute)
	for _, r := range []*Recorder{rec, w.b.rec} {
		if !r.Wait(2*time.Second, func(evs []RecordedEvent) bool { return Count(evs, ChildRekeyed) >= 1 }) {
			t.Fatalf("child not rekeyed after the restore: %+v", r.Events())
		}
	}
	w.advance(time.Hour)
	settle()
	if st := e2.Status("peer-2"); !st.Up() || st.SPIi == before.SPIi || st.Rekeys < 2 {
		t.Fatalf("IKE SA not rekeyed after the restore: %+v", st)
	}
	if st := w.b.e.Status("peer"); !st.Up() {
		t.Fatalf("b after the rekeys: %+v", st)
	}
	if n := e2.Stats().Restored; n != 1 {
		t.Errorf("Restored = %d", n)
	}
}

func TestRestoreRefusesWhatItCannotTakeUp(t *testing.T) {
	w := newFakeWorld(t, nil, nil)
	pa, pb := fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false)
	w.add(pa, pb)
	w.waitUp()
	saved := w.a.e.Suspend()
	if len(saved) != 1 {
		t.Fatalf("saved %d", len(saved))
	}
	e2, err := New(Config{Conn: w.net.conn(w.a.ip, 500, 4500), Handler: &Recorder{}, Clock: w.clock, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	pa2 := pa
	pa2.Initiate = false
	if err := e2.AddPeer(pa2); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		mod  func(s *SavedSA, p *Peer)
		want error
	}{
		"other layout":      {func(s *SavedSA, _ *Peer) { s.Version = 99 }, ErrStale},
		"expired":           {func(s *SavedSA, _ *Peer) { s.ExpireAt = w.clock.Now().Add(-time.Second) }, ErrStale},
		"other remote":      {func(s *SavedSA, _ *Peer) { s.Remote = netip.MustParseAddrPort("192.0.2.9:500") }, ErrStale},
		"other child count": {func(s *SavedSA, _ *Peer) { s.NumChildConf = 2 }, ErrStale},
		"bad child key":     {func(s *SavedSA, _ *Peer) { s.Children[0].InKey = []byte("short") }, ErrStale},
	} {
		s := saved[0]
		s.Children = append([]SavedChild(nil), saved[0].Children...)
		tc.mod(&s, &pa2)
		if err := e2.Restore("peer", s); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
		if st := e2.Status("peer"); st.Up() {
			t.Fatalf("%s: refused restore left an SA: %+v", name, st)
		}
	}
	if err := e2.Restore("nobody", saved[0]); err == nil {
		t.Error("restored for an unknown peer")
	}
	if err := e2.Restore("peer", saved[0]); err != nil {
		t.Fatalf("the unchanged record: %v", err)
	}
	if err := e2.Restore("peer", saved[0]); err == nil {
		t.Error("restored twice into one peer")
	}
}
