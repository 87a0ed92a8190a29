// Engine counters for metrics: IKE SAs established, IKE and Child SA
// rekeys, and IKE_AUTH failures by reason code, counted on both sides.

package ike

import (
	"testing"
	"time"
)

// waitStats polls s's counters until ok accepts them.
func waitStats(t *testing.T, s *fakeSide, what string, ok func(StatsSnapshot) bool) StatsSnapshot {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := s.e.Stats()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s: counters %+v", s.ip, what, st)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestStatsEstablishedAndRekeys(t *testing.T) {
	w := newFakeWorld(t, nil, nil)
	pa, pb := fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false)
	for _, p := range []*Peer{&pa, &pb} {
		p.ChildLifetime = 10 * time.Minute
		p.IKELifetime = time.Hour
		p.DPDInterval = -1
	}
	pb.ChildLifetime = 20 * time.Minute // a rekeys the child first
	pb.IKELifetime = 2 * time.Hour      // and the IKE SA
	w.add(pa, pb)
	w.waitUp()
	for _, s := range []*fakeSide{w.a, w.b} {
		st := waitStats(t, s, "after the first IKE_AUTH", func(st StatsSnapshot) bool { return st.IKEEstablished == 1 })
		if st.IKERekeys != 0 || st.ChildRekeys != 0 || len(st.AuthFailures) != 0 {
			t.Fatalf("%s after the first IKE_AUTH: %+v", s.ip, st)
		}
	}

	// One child rekey (started by a), counted by both sides.
	if err := w.a.e.RekeyChild("peer", "c"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*fakeSide{w.a, w.b} {
		waitStats(t, s, "after a child rekey", func(st StatsSnapshot) bool { return st.ChildRekeys == 1 && st.IKERekeys == 0 })
	}

	// The IKE SA reaches its rekey time (a's hour): one IKE rekey on each
	// side, no new IKE_AUTH.
	first := w.a.e.Status("peer")
	w.advance(time.Hour)
	settle()
	if st := w.a.e.Status("peer"); !st.Up() || st.SPIi == first.SPIi {
		t.Fatalf("IKE SA not rekeyed: %+v", st)
	}
	for _, s := range []*fakeSide{w.a, w.b} {
		st := waitStats(t, s, "after the IKE rekey", func(st StatsSnapshot) bool { return st.IKERekeys == 1 })
		if st.IKEEstablished != 1 || len(st.AuthFailures) != 0 {
			t.Errorf("%s after the IKE rekey: %+v", s.ip, st)
		}
		// The child was rekeyed again by its lifetime meanwhile (10 and
		// 20 min within the hour); every rekey is counted, none twice.
		if st.ChildRekeys < 2 {
			t.Errorf("%s: %d child rekeys within an hour of 10-minute children", s.ip, st.ChildRekeys)
		}
	}
}

func TestStatsAuthFailures(t *testing.T) {
	w := newFakeWorld(t, nil, nil)
	pa, pb := fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false)
	pb.Auth.PSK = []byte("another-psk")
	w.add(pa, pb)
	// b (responder) finds the PSK wrong; a is told AUTHENTICATION_FAILED.
	sb := waitStats(t, w.b, "after a PSK mismatch", func(st StatsSnapshot) bool { return st.AuthFailures[ReasonAuthFailed] == 1 })
	sa := waitStats(t, w.a, "after a PSK mismatch", func(st StatsSnapshot) bool { return st.AuthFailures[ReasonPeerRefusedAuth] == 1 })
	for _, x := range []struct {
		st   StatsSnapshot
		code ReasonCode
	}{{sa, ReasonPeerRefusedAuth}, {sb, ReasonAuthFailed}} {
		if len(x.st.AuthFailures) != 1 || x.st.IKEEstablished != 0 {
			t.Errorf("want only %s counted, none established: %+v", x.code, x.st)
		}
	}
	if sb.AuthErrors == 0 {
		t.Errorf("responder's AuthErrors not counted: %+v", sb)
	}
}

// TestStatsAuthFailureCodes: every reason code has its own counter, the
// snapshot lists the ones that occurred, and an unknown code is ignored.
func TestStatsAuthFailureCodes(t *testing.T) {
	e := &Engine{}
	for _, c := range ReasonCodes() {
		e.stats.countAuthFailure(c)
	}
	e.stats.countAuthFailure(ReasonCertUntrusted)
	e.stats.countAuthFailure("no_such_code")
	got := e.Stats().AuthFailures
	if len(got) != len(ReasonCodes()) {
		t.Fatalf("%d codes counted, want %d: %v", len(got), len(ReasonCodes()), got)
	}
	for _, c := range ReasonCodes() {
		want := uint64(1)
		if c == ReasonCertUntrusted {
			want = 2
		}
		if got[c] != want {
			t.Errorf("%s: %d, want %d", c, got[c], want)
		}
	}
	if len((&Engine{}).Stats().AuthFailures) != 0 {
		t.Error("a fresh engine lists auth failures")
	}
}
