// Engine tests on the in-memory network with a fake clock: the
// retransmission schedule, duplicate requests, cookies, liveness,
// lifetime-driven rekeying, collisions and simultaneous initiation.

package ike

import (
	"context"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike/message"
)

type fakeSide struct {
	e   *Engine
	rec *Recorder
	ip  netip.Addr
}

type fakeWorld struct {
	t     *testing.T
	net   *memNet
	clock *clocktest.Fake
	a, b  *fakeSide
}

func newFakeWorld(t *testing.T, modA, modB func(*Config)) *fakeWorld {
	w := &fakeWorld{t: t, net: newMemNet(), clock: clocktest.New(time.Unix(1_800_000_000, 0))}
	mk := func(ip string, mod func(*Config)) *fakeSide {
		s := &fakeSide{rec: &Recorder{}, ip: netip.MustParseAddr(ip)}
		cfg := Config{Conn: w.net.conn(s.ip, 500, 4500), Handler: s.rec, Clock: w.clock, Logger: testLogger()}
		if mod != nil {
			mod(&cfg)
		}
		e, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s.e = e
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { e.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		return s
	}
	w.a = mk("192.0.2.1", modA)
	w.b = mk("192.0.2.2", modB)
	return w
}

func fakePeer(from, to *fakeSide, initiate bool) Peer {
	return Peer{
		Name: "peer", Local: from.ip, Remote: to.ip,
		Auth:    Auth{PSK: []byte("fake-world-psk")},
		LocalID: "id-" + from.ip.String(), RemoteID: "id-" + to.ip.String(),
		Children: []ChildConfig{{Name: "c", Mode: esp.Transport}},
		Initiate: initiate,
	}
}

func (w *fakeWorld) add(pa, pb Peer) {
	w.t.Helper()
	first, second := w.b.e, w.a.e
	if pb.Initiate && !pa.Initiate {
		// The responder must know the peer before the first packet.
		first, second = second, first
		pa, pb = pb, pa
	}
	if err := first.AddPeer(pb); err != nil {
		w.t.Fatal(err)
	}
	if err := second.AddPeer(pa); err != nil {
		w.t.Fatal(err)
	}
}

// settle lets the goroutines process in-flight packets.
func settle() { time.Sleep(30 * time.Millisecond) }

// advance moves the fake time forward timer by timer, letting the engines
// exchange packets between timers (as on a fast network).
func (w *fakeWorld) advance(d time.Duration) {
	end := w.clock.Now().Add(d)
	for {
		next, ok := w.clock.Next()
		if !ok || next.After(end) {
			w.clock.Advance(end.Sub(w.clock.Now()))
			time.Sleep(5 * time.Millisecond)
			return
		}
		w.clock.Advance(next.Sub(w.clock.Now()))
		time.Sleep(5 * time.Millisecond)
	}
}

func (w *fakeWorld) waitUp() {
	w.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		sa, sb := w.a.e.Status("peer"), w.b.e.Status("peer")
		if sa.Up() && sb.Up() && len(sa.Children) > 0 && len(sb.Children) > 0 && sa.SPIi == sb.SPIi {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	w.t.Fatalf("not up: a %+v\nb %+v", w.a.e.Status("peer"), w.b.e.Status("peer"))
}

func TestFakeRetransmitSchedule(t *testing.T) {
	w := newFakeWorld(t, nil, nil)
	w.net.setFilter(func(from, to netip.AddrPort, b []byte) bool { return false }) // peer silent
	pa := fakePeer(w.a, w.b, true)
	w.add(pa, fakePeer(w.b, w.a, false))
	count := func() int { settle(); return len(w.net.packets()) }
	// Sent at 0, 0.5, 1.5, 3.5, 7.5 s; given up at 15.5 s.
	for _, step := range []struct {
		advance time.Duration
		want    int
	}{{0, 1}, {499 * time.Millisecond, 1}, {time.Millisecond, 2}, {time.Second, 3}, {2 * time.Second, 4}, {4 * time.Second, 5}, {7999 * time.Millisecond, 5}} {
		w.clock.Advance(step.advance)
		if got := count(); got != step.want {
			t.Fatalf("after +%v: %d packets, want %d", step.advance, got, step.want)
		}
	}
	if st := w.a.e.Status("peer"); st.State != SAConnecting {
		t.Fatalf("gave up too early: %+v", st)
	}
	w.clock.Advance(time.Millisecond)
	settle()
	st := w.a.e.Status("peer")
	if st.Reason != "peer silent: no answer to IKE_SA_INIT after 5 tries" || st.Up() {
		t.Fatalf("status %+v", st)
	}
	if w.a.e.Stats().Retransmits != 4 {
		t.Errorf("retransmits %d", w.a.e.Stats().Retransmits)
	}
	// Initiate re-tries later on its own.
	w.clock.Advance(time.Minute)
	if count() <= 5 {
		t.Error("no new attempt after the retry delay")
	}
}

func TestFakeDuplicateRequest(t *testing.T) {
	w := newFakeWorld(t, nil, nil)
	dropped := 0
	w.net.setFilter(func(from, to netip.AddrPort, b []byte) bool {
		h, err := message.ParseHeader(b)
		if err == nil && h.Exchange == message.IKE_AUTH && h.IsResponse() && dropped == 0 {
			dropped++
			return false
		}
		return true
	})
	w.add(fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false))
	settle()
	if w.a.e.Status("peer").Up() {
		t.Fatal("up although the IKE_AUTH response was lost")
	}
	deadline := time.Now().Add(3 * time.Second)
	for !w.b.e.Status("peer").Up() && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	if !w.b.e.Status("peer").Up() {
		t.Fatal("responder not up")
	}
	w.clock.Advance(RetransmitBase)
	w.waitUp()
	var auths [][]byte
	for _, p := range w.net.packets() {
		b := p.b
		if m, ok := message.StripNonESPMarker(b); ok {
			b = m
		}
		if h, err := message.ParseHeader(b); err == nil && h.Exchange == message.IKE_AUTH && h.IsResponse() {
			auths = append(auths, p.b)
		}
	}
	if len(auths) != 2 || string(auths[0]) != string(auths[1]) {
		t.Fatalf("want the cached response resent unchanged, got %d responses", len(auths))
	}
	if n := Count(w.b.rec.Events(), ChildEstablished); n != 1 {
		t.Errorf("responder processed the request %d times", n)
	}
}

func TestFakeCookie(t *testing.T) {
	w := newFakeWorld(t, nil, func(c *Config) { c.HalfOpenLimit = -1 })
	w.add(fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false))
	w.waitUp()
	if w.b.e.Stats().CookiesSent != 1 {
		t.Errorf("cookies sent %d, want 1", w.b.e.Stats().CookiesSent)
	}
}

func TestFakeHalfOpenLimit(t *testing.T) {
	// With a limit of 1 and one SA stuck before IKE_AUTH, the next
	// IKE_SA_INIT gets a cookie; once the half-open SA expires, none.
	w := newFakeWorld(t, nil, func(c *Config) { c.HalfOpenLimit = 1 })
	w.net.setFilter(func(from, to netip.AddrPort, b []byte) bool {
		if len(b) > 4 && b[0]|b[1]|b[2]|b[3] == 0 {
			b = b[4:]
		}
		h, err := message.ParseHeader(b)
		return err != nil || h.Exchange == message.IKE_SA_INIT
	})
	w.add(fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false))
	settle()
	if w.b.e.halfOpen.Load() != 1 || w.b.e.Stats().CookiesSent != 0 {
		t.Fatalf("half-open %d cookies %d", w.b.e.halfOpen.Load(), w.b.e.Stats().CookiesSent)
	}
	w.a.e.RemovePeer("peer")
	if err := w.a.e.AddPeer(fakePeer(w.a, w.b, true)); err != nil {
		t.Fatal(err)
	}
	settle()
	if w.b.e.Stats().CookiesSent == 0 {
		t.Fatal("no cookie demanded above the half-open limit")
	}
	w.a.e.RemovePeer("peer") // stop retrying
	settle()
	w.clock.Advance(halfOpenTimeout)
	settle()
	if n := w.b.e.halfOpen.Load(); n != 0 {
		t.Errorf("half-open SAs not expired: %d", n)
	}
	if st := w.b.e.Status("peer"); !strings.Contains(st.Reason, "did not send IKE_AUTH") {
		t.Errorf("responder reason %q", st.Reason)
	}
}

func TestFakeDeadPeer(t *testing.T) {
	w := newFakeWorld(t, nil, nil)
	pa := fakePeer(w.a, w.b, false)
	pa.DPDInterval = 10 * time.Second
	w.add(pa, fakePeer(w.b, w.a, true))
	w.waitUp()
	w.net.setFilter(func(from, to netip.AddrPort, b []byte) bool { return false })
	w.clock.Advance(10 * time.Second) // liveness check sent
	settle()
	for i := 0; i < 5; i++ {
		w.clock.Advance(8 * time.Second)
		settle()
	}
	st := w.a.e.Status("peer")
	if st.Up() || !strings.Contains(st.Reason, "peer dead: no answer to liveness check after 5 tries") {
		t.Fatalf("status %+v", st)
	}
	if !w.a.rec.Wait(time.Second, func(evs []RecordedEvent) bool { return Count(evs, ChildDeleted) == 1 }) {
		t.Fatal("child not deleted")
	}
}

func TestFakeLifetimeRekey(t *testing.T) {
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
	first := w.a.e.Status("peer")
	w.advance(9*time.Minute + 30*time.Second) // past 10m - margin - jitter
	for _, s := range []*fakeSide{w.a, w.b} {
		if !s.rec.Wait(2*time.Second, func(evs []RecordedEvent) bool {
			return Count(evs, ChildRekeyed) == 1 && Count(evs, ChildDeleted) == 1
		}) {
			t.Fatalf("child not rekeyed: %+v", s.rec.Events())
		}
	}
	w.advance(50 * time.Minute)
	settle()
	st := w.a.e.Status("peer")
	if !st.Up() || st.SPIi == first.SPIi || st.Rekeys < 2 {
		t.Fatalf("IKE SA not rekeyed: %+v", st)
	}
	w.waitUp()
	// The child's pairing survived everything.
	ea, eb := w.a.rec.Events(), w.b.rec.Events()
	la, lb := ea[len(ea)-1], eb[len(eb)-1]
	if la.Event == ChildDeleted || lb.Event == ChildDeleted {
		la, lb = ea[len(ea)-2], eb[len(eb)-2]
	}
	if !espPairs(t, la.SA, lb.SA) || !espPairs(t, lb.SA, la.SA) {
		t.Error("rekeyed child keys do not pair")
	}
}

func TestFakeCollisions(t *testing.T) {
	for _, tc := range []string{"child", "ike"} {
		t.Run(tc, func(t *testing.T) {
			w := newFakeWorld(t, nil, nil)
			w.add(fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false))
			w.waitUp()
			before := w.a.e.Status("peer")
			// Hold all traffic so both requests cross.
			hold := make(chan struct{})
			w.net.setFilter(func(from, to netip.AddrPort, b []byte) bool { <-hold; return true })
			go func() { settle(); close(hold) }()
			errs := make(chan error, 2)
			for _, s := range []*fakeSide{w.a, w.b} {
				go func() {
					if tc == "child" {
						errs <- s.e.RekeyChild("peer", "c")
					} else {
						errs <- s.e.RekeyIKE("peer")
					}
				}()
			}
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			w.net.setFilter(nil)
			var sa, sb PeerStatus
			deadline := time.Now().Add(3 * time.Second)
			for time.Now().Before(deadline) {
				sa, sb = w.a.e.Status("peer"), w.b.e.Status("peer")
				if len(sa.Children) == 1 && len(sb.Children) == 1 && sa.SPIi == sb.SPIi && sa.SPIi != before.SPIi == (tc == "ike") {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			w.advance(time.Minute)
			if !sa.Up() || !sb.Up() || sa.SPIi != sb.SPIi || sa.SPIr != sb.SPIr {
				t.Fatalf("IKE SAs differ after collision:\na %+v\nb %+v", sa, sb)
			}
			if tc == "ike" && sa.SPIi == before.SPIi {
				t.Errorf("IKE SA not rekeyed")
			}
			if len(sa.Children) != 1 || len(sb.Children) != 1 ||
				sa.Children[0].InSPI != sb.Children[0].OutSPI || sa.Children[0].OutSPI != sb.Children[0].InSPI {
				t.Fatalf("children after collision:\na %+v\nb %+v", sa.Children, sb.Children)
			}
		})
	}
}

func TestFakeSimultaneousInitiation(t *testing.T) {
	w := newFakeWorld(t, nil, nil)
	hold := make(chan struct{})
	w.net.setFilter(func(from, to netip.AddrPort, b []byte) bool { <-hold; return true })
	go func() { settle(); close(hold) }()
	w.add(fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, true))
	settle()
	w.net.setFilter(nil)
	w.waitUp()
	w.advance(halfOpenTimeout)
	sa, sb := w.a.e.Status("peer"), w.b.e.Status("peer")
	if sa.SPIi != sb.SPIi || len(sa.Children) != 1 || len(sb.Children) != 1 || sa.Children[0].InSPI != sb.Children[0].OutSPI {
		t.Fatalf("after simultaneous initiation:\na %+v\nb %+v", sa, sb)
	}
}

// Crossing initiations a second apart: a's IKE SA is up when b's own
// IKE_SA_INIT (a late retransmission) reaches a, with the INITIAL_CONTACT
// every first IKE_AUTH carries. That is no restart of b: a must not
// destroy the SA b still uses; both sides must end on the same SA.
func TestFakeLateCrossingInitiation(t *testing.T) {
	w := newFakeWorld(t, nil, nil)
	var dropB atomic.Bool
	dropB.Store(true)
	w.net.setFilter(func(from, to netip.AddrPort, b []byte) bool {
		// b's IKE_SA_INIT requests (initiator flag, no response flag).
		req := len(b) > 19 && b[18] == 34 && b[19]&0x08 != 0 && b[19]&0x20 == 0
		return !(dropB.Load() && req && from.Addr() == w.b.ip)
	})
	w.add(fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, true))
	deadline := time.Now().Add(5 * time.Second)
	for !w.a.e.Status("peer").Up() {
		if time.Now().After(deadline) {
			t.Fatalf("a's IKE SA not up: %+v", w.a.e.Status("peer"))
		}
		time.Sleep(2 * time.Millisecond)
	}
	settle()
	dropB.Store(false)
	w.advance(time.Second) // b retransmits its IKE_SA_INIT
	w.advance(halfOpenTimeout)
	sa, sb := w.a.e.Status("peer"), w.b.e.Status("peer")
	if !sa.Up() || !sb.Up() || sa.SPIi != sb.SPIi || len(sa.Children) != 1 || len(sb.Children) != 1 || sa.Children[0].InSPI != sb.Children[0].OutSPI {
		t.Fatalf("after a late crossing initiation the sides disagree:\na %+v\nb %+v", sa, sb)
	}
	// Both kept one of the two crossing SAs: no third IKE SA was needed
	// because one side had thrown away the SA the other kept.
	for _, side := range []*fakeSide{w.a, w.b} {
		if n := Count(side.rec.Events(), ChildEstablished); n != 2 {
			t.Errorf("%v: %d Child SAs established, want 2 (one per crossing IKE SA)", side.ip, n)
		}
	}
}

// The peer loses its state (kill -9 and a start) a few seconds after it
// set up the IKE SA, well within restartGuard, and initiates again with
// INITIAL_CONTACT. Both SAs were initiated by the peer, so this is no
// crossing initiation: the old SA is dead at the peer and must go. Kept by
// the nonce rule instead, it made us delete every new SA the peer set up
// until restartGuard had passed (a 35 s outage in the leak test).
func TestFakePeerRestartSoonAfterEstablishment(t *testing.T) {
	w := newFakeWorld(t, nil, nil)
	w.add(fakePeer(w.a, w.b, false), fakePeer(w.b, w.a, true))
	w.waitUp()
	// Which SA the nonce rule keeps is chance: restart several times.
	for round := range 6 {
		old := w.a.e.Status("peer")
		w.advance(3 * time.Second)
		w.b.e.Suspend() // b's process dies: nothing sent
		b2 := &fakeSide{rec: &Recorder{}, ip: w.b.ip}
		e, err := New(Config{Conn: w.net.conn(b2.ip, 500, 4500), Handler: b2.rec, Clock: w.clock, Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		b2.e = e
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { e.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		if err := e.AddPeer(fakePeer(b2, w.a, true)); err != nil {
			t.Fatal(err)
		}
		w.b = b2
		w.waitUp()
		w.advance(time.Minute) // duplicateGrace and more
		sa, sb := w.a.e.Status("peer"), w.b.e.Status("peer")
		if !sa.Up() || !sb.Up() || sa.SPIi != sb.SPIi || sa.SPIi == old.SPIi {
			t.Fatalf("restart %d: the sides disagree or kept the dead SA (old SPIi %s):\na %+v\nb %+v", round, old.SPIi, sa, sb)
		}
		if n := Count(w.b.rec.Events(), ChildDeleted); n != 0 {
			t.Fatalf("restart %d: the restarted peer's new Child SA was deleted %d times", round, n)
		}
	}
}

func TestFakeHardLifetime(t *testing.T) {
	// Every child rekey fails (the PFS groups do not match; IKE_AUTH has
	// no PFS, so the first child comes up): the child must go at its hard
	// lifetime while the IKE SA stays.
	w := newFakeWorld(t, nil, nil)
	pa, pb := fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false)
	pa.ChildLifetime, pa.DPDInterval = 10*time.Minute, -1
	pb.ChildLifetime, pb.DPDInterval = 10*time.Hour, -1
	pa.ESPProposals = []string{"aes256gcm16-x25519"}
	pb.ESPProposals = []string{"aes256gcm16-ecp256"}
	w.add(pa, pb)
	w.waitUp()
	w.advance(9*time.Minute + 59*time.Second)
	if n := Count(w.a.rec.Events(), ChildDeleted); n != 0 {
		t.Fatalf("child deleted before its hard lifetime: %+v", w.a.rec.Events())
	}
	w.advance(2 * time.Second)
	for _, s := range []*fakeSide{w.a, w.b} {
		if !s.rec.Wait(2*time.Second, func(evs []RecordedEvent) bool { return Count(evs, ChildDeleted) == 1 }) {
			t.Fatalf("child not expired: %+v", s.rec.Events())
		}
	}
	if st := w.a.e.Status("peer"); !st.Up() || len(st.Children) != 0 {
		t.Fatalf("status %+v", st)
	}
}

func TestFakeNATTraversal(t *testing.T) {
	// a (192.0.2.1) sits behind a NAT that shows it as 198.51.100.7 with
	// other ports; b knows it only by the public address.
	w := newFakeWorld(t, nil, nil)
	pub := netip.MustParseAddr("198.51.100.7")
	w.net.addNAT(netip.AddrPortFrom(w.a.ip, 500), netip.AddrPortFrom(pub, 40500))
	w.net.addNAT(netip.AddrPortFrom(w.a.ip, 4500), netip.AddrPortFrom(pub, 44500))
	pa, pb := fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false)
	pb.Remote = pub
	pb.RemoteID = pa.LocalID
	w.add(pa, pb)
	var sb PeerStatus
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		sb = w.b.e.Status("peer")
		if sb.Up() && len(sb.Children) == 1 && w.a.e.Status("peer").Up() {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	sa := w.a.e.Status("peer")
	if !sa.NATLocal || sa.NATRemote || !sa.Encap || !sb.NATRemote || sb.NATLocal || !sb.Encap {
		t.Fatalf("NAT detection: a %+v\nb %+v", sa, sb)
	}
	if !w.a.rec.Wait(time.Second, func(evs []RecordedEvent) bool { return len(evs) == 1 }) ||
		!w.b.rec.Wait(time.Second, func(evs []RecordedEvent) bool { return len(evs) == 1 }) {
		t.Fatalf("no child events: a %+v\nb %+v\n%+v %+v", w.a.e.Status("peer"), w.b.e.Status("peer"), w.a.rec.Events(), w.b.rec.Events())
	}
	ca, cb := w.a.rec.Events()[0].SA, w.b.rec.Events()[0].SA
	if ca.Encap.Type != esp.EncapUDP || ca.Remote != netip.MustParseAddrPort("192.0.2.2:4500") || ca.Encap.SrcPort != 4500 {
		t.Errorf("a's child: %+v", ca)
	}
	if cb.Encap.Type != esp.EncapUDP || cb.Remote != netip.AddrPortFrom(pub, 44500) || cb.Encap.DstPort != 44500 {
		t.Errorf("b's child must send to the NAT mapping: %+v", cb)
	}
	// a keeps the NAT mapping open.
	before := len(w.net.packets())
	w.advance(NATKeepaliveInterval + time.Second)
	keepalives := 0
	for _, p := range w.net.packets()[before:] {
		if len(p.b) == 1 && p.b[0] == 0xff && p.from == netip.AddrPortFrom(pub, 44500) {
			keepalives++
		}
	}
	if keepalives != 1 {
		t.Errorf("%d NAT keepalives, want 1", keepalives)
	}
	if !w.b.e.Status("peer").Up() {
		t.Error("keepalive disturbed the peer")
	}
}

func TestFakeInitRetransmission(t *testing.T) {
	// The first IKE_SA_INIT response is lost: the initiator retransmits
	// and the responder answers from its cache with the same SA.
	w := newFakeWorld(t, nil, nil)
	dropped := false
	w.net.setFilter(func(from, to netip.AddrPort, b []byte) bool {
		h, err := message.ParseHeader(b)
		if err == nil && h.Exchange == message.IKE_SA_INIT && h.IsResponse() && !dropped {
			dropped = true
			return false
		}
		return true
	})
	w.add(fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false))
	settle()
	w.clock.Advance(RetransmitBase)
	w.waitUp()
	var resps [][]byte
	for _, p := range w.net.packets() {
		if h, err := message.ParseHeader(p.b); err == nil && h.Exchange == message.IKE_SA_INIT && h.IsResponse() {
			resps = append(resps, p.b)
		}
	}
	if len(resps) != 2 || string(resps[0]) != string(resps[1]) {
		t.Fatalf("want the same IKE_SA_INIT response twice, got %d", len(resps))
	}
	if n := w.b.e.halfOpen.Load(); n != 0 {
		t.Errorf("half-open count %d", n)
	}
}

func TestFakeShutdownDeletes(t *testing.T) {
	w := newFakeWorld(t, nil, nil)
	w.add(fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false))
	w.waitUp()
	w.a.e.RemovePeer("peer")
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && w.b.e.Status("peer").Reason != "peer deleted the IKE SA" {
		time.Sleep(2 * time.Millisecond)
	}
	if st := w.b.e.Status("peer"); st.Up() || st.Reason != "peer deleted the IKE SA" {
		t.Fatalf("b: %+v", st)
	}
	if st := w.a.e.Status("peer"); st.Known {
		t.Errorf("a still knows the peer: %+v", st)
	}
	for _, s := range []*fakeSide{w.a, w.b} {
		if !s.rec.Wait(time.Second, func(evs []RecordedEvent) bool { return Count(evs, ChildDeleted) == 1 }) {
			t.Errorf("no ChildDeleted: %+v", s.rec.Events())
		}
	}
}

// Once both sides forgot the peer, no timer is left: a running timer
// would keep the dead IKE SA, its children and keys in memory until it
// fires (the hard lifetime, hours later).
func TestFakeNoTimerLeak(t *testing.T) {
	w := newFakeWorld(t, nil, nil)
	w.add(fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false))
	w.waitUp()
	if err := w.a.e.RekeyIKE("peer"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Second); w.a.e.Status("peer").Rekeys == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("no IKE rekey: %+v", w.a.e.Status("peer"))
		}
		time.Sleep(2 * time.Millisecond)
	}
	settle()
	if n := w.clock.Pending(); n == 0 {
		t.Fatal("no timers while the tunnel is up: the test would prove nothing")
	}
	w.a.e.RemovePeer("peer")
	w.b.e.RemovePeer("peer")
	settle()
	if n := w.clock.Pending(); n != 0 {
		t.Errorf("%d timers still pending after both sides removed the peer", n)
	}
}

// espInCount counts the inbound ESP SPIs the engine holds.
func espInCount(e *Engine) int {
	n := 0
	e.espIn.Range(func(any, any) bool { n++; return true })
	return n
}

func TestFakeNoSPILeak(t *testing.T) {
	w := newFakeWorld(t, nil, nil)
	pa, pb := fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false)
	w.add(pa, pb)
	w.waitUp()
	for i := 0; i < 3; i++ {
		if err := w.a.e.RekeyChild("peer", "c"); err != nil {
			t.Fatal(err)
		}
		if !w.a.rec.Wait(2*time.Second, func(evs []RecordedEvent) bool { return Count(evs, ChildDeleted) == i+1 }) {
			t.Fatalf("rekey %d: %+v", i, w.a.rec.Events())
		}
	}
	settle()
	if a, b := espInCount(w.a.e), espInCount(w.b.e); a != 1 || b != 1 {
		t.Fatalf("inbound SPIs held: a %d b %d, want 1 each", a, b)
	}
	// A rekey that never gets an answer, then the IKE SA goes.
	w.net.setFilter(func(netip.AddrPort, netip.AddrPort, []byte) bool { return false })
	if err := w.a.e.RekeyChild("peer", "c"); err != nil {
		t.Fatal(err)
	}
	w.advance(20 * time.Second) // dead after 15.5s; a retries after 10s more
	if st := w.a.e.Status("peer"); !strings.HasPrefix(st.Reason, "peer dead") {
		t.Fatalf("status %+v", st)
	}
	if n := espInCount(w.a.e); n != 0 {
		var spis []any
		w.a.e.espIn.Range(func(k, _ any) bool { spis = append(spis, k); return true })
		t.Fatalf("inbound SPIs held after the IKE SA died: %d %v; status %+v; events %+v", n, spis, w.a.e.Status("peer"), w.a.rec.Events())
	}
	w.advance(time.Minute) // a new attempt holds the SPI of its IKE_AUTH child
	w.a.e.RemovePeer("peer")
	if n := espInCount(w.a.e); n != 0 {
		t.Fatalf("inbound SPIs held after RemovePeer: %d", n)
	}
}
