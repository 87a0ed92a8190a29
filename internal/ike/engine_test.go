// Engine against engine over loopback UDP: handshakes, rekeys, deletes,
// liveness and the failure reasons, without root.

package ike

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike/message"
)

type side struct {
	e   *Engine
	rec *Recorder
	ip  netip.Addr
}

func testLogger() *slog.Logger {
	if os.Getenv("IKE_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newSide(t testing.TB, ip string, mod func(*Config)) *side {
	t.Helper()
	s := &side{rec: &Recorder{}, ip: netip.MustParseAddr(ip)}
	cfg := Config{Local: s.ip, PortIKE: -1, PortNATT: -1, Handler: s.rec, Logger: testLogger()}
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

// peerOf returns a PSK peer config on a pointing at b.
func peerOf(a, b *side, name string, initiate bool) Peer {
	pi, pn := b.e.LocalPorts()
	return Peer{
		Name: name, Local: a.ip, Remote: b.ip, RemotePortIKE: pi, RemotePortNATT: pn,
		Auth:    Auth{PSK: []byte("secret-psk-0123456789")},
		LocalID: "host-" + a.ip.String(), RemoteID: "host-" + b.ip.String(),
		Children: []ChildConfig{{Name: "gnv", Mode: esp.Transport}},
		Initiate: initiate,
	}
}

func waitUp(t *testing.T, s *side, name string) PeerStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st := s.e.Status(name)
		if st.Up() && len(st.Children) > 0 {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
	st := s.e.Status(name)
	t.Fatalf("peer %s not up: %+v", name, st)
	return st
}

func TestEnginePSKHandshake(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ikeProp  []string
		respProp []string
		encap    bool
		mode     esp.Mode
		wantAlg  string
	}{
		{name: "default-x25519", wantAlg: "CURVE_25519", mode: esp.Transport},
		{name: "modp2048-invalid-ke", ikeProp: []string{"aes256gcm16-prfsha256-x25519-modp2048"}, respProp: []string{"aes256gcm16-prfsha256-modp2048"}, wantAlg: "MODP_2048", mode: esp.Transport},
		{name: "force-encap-tunnel", encap: true, mode: esp.Tunnel, wantAlg: "CURVE_25519"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newSide(t, "127.0.0.1", nil)
			b := newSide(t, "127.0.0.2", nil)
			pa := peerOf(a, b, "b", true)
			pb := peerOf(b, a, "a", false)
			pa.IKEProposals, pb.IKEProposals = tc.ikeProp, tc.respProp
			pa.ForceEncap = tc.encap
			pa.Children[0].Mode, pb.Children[0].Mode = tc.mode, tc.mode
			if err := b.e.AddPeer(pb); err != nil {
				t.Fatal(err)
			}
			if err := a.e.AddPeer(pa); err != nil {
				t.Fatal(err)
			}
			sa := waitUp(t, a, "b")
			sb := waitUp(t, b, "a")
			if !strings.Contains(sa.Algorithms, tc.wantAlg) {
				t.Errorf("algorithms %s, want %s", sa.Algorithms, tc.wantAlg)
			}
			if sa.SPIi != sb.SPIi || sa.SPIr != sb.SPIr {
				t.Errorf("SPIs differ: %v/%v vs %v/%v", sa.SPIi, sa.SPIr, sb.SPIi, sb.SPIr)
			}
			if sa.Encap != tc.encap || sb.Encap != tc.encap {
				t.Errorf("encap a=%v b=%v, want %v", sa.Encap, sb.Encap, tc.encap)
			}
			if !b.rec.Wait(5*time.Second, func(evs []RecordedEvent) bool { return Count(evs, ChildEstablished) == 1 }) ||
				!a.rec.Wait(5*time.Second, func(evs []RecordedEvent) bool { return Count(evs, ChildEstablished) == 1 }) {
				t.Fatal("no child events")
			}
			ca, cb := a.rec.Events()[0].SA, b.rec.Events()[0].SA
			if ca.InSPI != cb.OutSPI || ca.OutSPI != cb.InSPI {
				t.Errorf("ESP SPIs do not pair: a in %v out %v, b in %v out %v", ca.InSPI, ca.OutSPI, cb.InSPI, cb.OutSPI)
			}
			if !espPairs(t, ca, cb) || !espPairs(t, cb, ca) {
				t.Error("ESP keys do not pair")
			}
			if ca.Mode != tc.mode || (ca.Encap.Type == esp.EncapUDP) != tc.encap {
				t.Errorf("child mode %v encap %v", ca.Mode, ca.Encap)
			}
		})
	}
}

// espPairs seals a packet with from's outbound SA and opens it with to's
// inbound SA: the real proof that both sides derived the same keys.
func espPairs(t testing.TB, from, to ChildSA) bool {
	t.Helper()
	out, err := esp.NewSA(esp.Config{SPI: from.OutSPI, Dir: esp.Outbound, Mode: from.Mode, Key: from.OutKey})
	if err != nil {
		t.Fatal(err)
	}
	in, err := esp.NewSA(esp.Config{SPI: to.InSPI, Dir: esp.Inbound, Mode: to.Mode, Key: to.InKey})
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("hello through the child SA")
	pkt, err := out.Seal(make([]byte, 0, 256), msg, 17)
	if err != nil {
		t.Fatal(err)
	}
	got, nh, err := in.Open(nil, pkt)
	return err == nil && nh == 17 && string(got) == string(msg)
}

func TestEngineChildRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mod    func(a, b *Peer)
		reason string // on the initiator
	}{
		{"ts-unacceptable", func(a, b *Peer) {
			a.Children[0].RemoteTS = []TrafficSelector{PrefixTS(netip.MustParsePrefix("10.9.9.9/32"), 0)}
		}, "child gnv: TS_UNACCEPTABLE from peer"},
		{"mode-mismatch", func(a, b *Peer) { b.Children[0].Mode = esp.Tunnel }, "child gnv: NO_PROPOSAL_CHOSEN from peer"},
		{"esp-proposal", func(a, b *Peer) { a.ESPProposals = []string{"aes128gcm16"} }, "child gnv: NO_PROPOSAL_CHOSEN from peer"},
		{"narrowed-to-port", func(a, b *Peer) {
			b.Children[0].LocalTS = []TrafficSelector{ts("127.0.0.2/32", 17, 6081, 6081)}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newSide(t, "127.0.0.1", nil)
			b := newSide(t, "127.0.0.2", nil)
			pa, pb := peerOf(a, b, "b", true), peerOf(b, a, "a", false)
			tc.mod(&pa, &pb)
			if err := b.e.AddPeer(pb); err != nil {
				t.Fatal(err)
			}
			if err := a.e.AddPeer(pa); err != nil {
				t.Fatal(err)
			}
			if tc.reason == "" {
				st := waitUp(t, a, "b")
				if got := st.Children[0].RemoteTS; len(got) != 1 || got[0].Proto != 17 || got[0].StartPort != 6081 {
					t.Fatalf("not narrowed: %v", got)
				}
				return
			}
			deadline := time.Now().Add(5 * time.Second)
			var st PeerStatus
			for time.Now().Before(deadline) {
				st = a.e.Status("b")
				if st.Up() && st.Reason == tc.reason {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if !st.Up() || len(st.Children) != 0 || st.Reason != tc.reason {
				t.Fatalf("status %+v, want IKE SA up without child, reason %q", st, tc.reason)
			}
		})
	}
}

func TestEngineAuthReasons(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mod     func(a, b *Peer)
		reasonA string
		reasonB string
	}{
		{"wrong psk", func(a, b *Peer) { b.Auth.PSK = []byte("other") }, "AUTHENTICATION_FAILED from peer", "pre-shared key mismatch"},
		{"wrong remote id at responder", func(a, b *Peer) { b.RemoteID = "someone-else" }, "AUTHENTICATION_FAILED from peer", `peer ID "host-127.0.0.1" does not match expected someone-else`},
		{"wrong remote id at initiator", func(a, b *Peer) { a.RemoteID = "someone-else" }, "AUTHENTICATION_FAILED from peer", `peer asked for ID "someone-else"`},
		{"no proposal", func(a, b *Peer) { b.IKEProposals = []string{"aes128gcm16-prfsha256-modp2048"} }, "NO_PROPOSAL_CHOSEN from peer in IKE_SA_INIT", "NO_PROPOSAL_CHOSEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newSide(t, "127.0.0.1", nil)
			b := newSide(t, "127.0.0.2", nil)
			pa, pb := peerOf(a, b, "b", true), peerOf(b, a, "a", false)
			tc.mod(&pa, &pb)
			if err := b.e.AddPeer(pb); err != nil {
				t.Fatal(err)
			}
			if err := a.e.AddPeer(pa); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			var sa, sb PeerStatus
			for time.Now().Before(deadline) {
				sa, sb = a.e.Status("b"), b.e.Status("a")
				if strings.Contains(sa.Reason, tc.reasonA) && strings.Contains(sb.Reason, tc.reasonB) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if !strings.Contains(sa.Reason, tc.reasonA) || !strings.Contains(sb.Reason, tc.reasonB) || sa.Up() || sb.Up() {
				t.Fatalf("a: %q (%s), want %q\nb: %q (%s), want %q", sa.Reason, sa.State, tc.reasonA, sb.Reason, sb.State, tc.reasonB)
			}
		})
	}
}

func TestEnginePFSRekey(t *testing.T) {
	a := newSide(t, "127.0.0.1", nil)
	b := newSide(t, "127.0.0.2", nil)
	pa, pb := peerOf(a, b, "b", true), peerOf(b, a, "a", false)
	pa.ESPProposals = []string{"aes256gcm16-x25519"}
	pb.ESPProposals = []string{"aes256gcm16-modp2048-x25519"}
	if err := b.e.AddPeer(pb); err != nil {
		t.Fatal(err)
	}
	if err := a.e.AddPeer(pa); err != nil {
		t.Fatal(err)
	}
	waitUp(t, a, "b")
	for i, s := range []*side{a, b} {
		name := []string{"b", "a"}[i]
		if err := s.e.RekeyChild(name, "gnv"); err != nil {
			t.Fatal(err)
		}
		want := i + 1
		for _, x := range []*side{a, b} {
			if !x.rec.Wait(5*time.Second, func(evs []RecordedEvent) bool {
				return Count(evs, ChildRekeyed) == want && Count(evs, ChildDeleted) == want
			}) {
				t.Fatalf("rekey %d: %+v", want, x.rec.Events())
			}
		}
	}
	ea, eb := a.rec.Events(), b.rec.Events()
	var ra, rb []ChildSA
	for _, e := range ea {
		if e.Event == ChildRekeyed {
			ra = append(ra, e.SA)
		}
	}
	for _, e := range eb {
		if e.Event == ChildRekeyed {
			rb = append(rb, e.SA)
		}
	}
	for i := range ra {
		if ra[i].PFSGroup != message.CURVE_25519 || rb[i].PFSGroup != message.CURVE_25519 {
			t.Errorf("rekey %d without PFS: %v/%v", i, ra[i].PFSGroup, rb[i].PFSGroup)
		}
		if !espPairs(t, ra[i], rb[i]) || !espPairs(t, rb[i], ra[i]) {
			t.Errorf("rekey %d keys do not pair", i)
		}
	}
	if ea[0].SA.PFSGroup != message.DH_NONE {
		t.Errorf("IKE_AUTH child has PFS group %v", ea[0].SA.PFSGroup)
	}
}

// TestEngineTwoChildren: the second child comes with CREATE_CHILD_SA, with
// OVS-like selectors (Geneve UDP 6081 in and out).
func TestEngineTwoChildren(t *testing.T) {
	a := newSide(t, "127.0.0.1", nil)
	b := newSide(t, "127.0.0.2", nil)
	pa, pb := peerOf(a, b, "b", true), peerOf(b, a, "a", false)
	mk := func(local, remote string) []ChildConfig {
		l, r := ts(local+"/32", 17, 6081, 6081), ts(remote+"/32", 17, 0, 65535)
		l2, r2 := ts(local+"/32", 17, 0, 65535), ts(remote+"/32", 17, 6081, 6081)
		return []ChildConfig{
			{Name: "in", Mode: esp.Transport, LocalTS: []TrafficSelector{l}, RemoteTS: []TrafficSelector{r}},
			{Name: "out", Mode: esp.Transport, LocalTS: []TrafficSelector{l2}, RemoteTS: []TrafficSelector{r2}},
		}
	}
	pa.Children = mk("127.0.0.1", "127.0.0.2")
	pb.Children = mk("127.0.0.2", "127.0.0.1")
	// b's "out" matches a's "in" and vice versa: swap names on b.
	pb.Children[0].Name, pb.Children[1].Name = "out", "in"
	if err := b.e.AddPeer(pb); err != nil {
		t.Fatal(err)
	}
	if err := a.e.AddPeer(pa); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*side{a, b} {
		if !s.rec.Wait(5*time.Second, func(evs []RecordedEvent) bool { return Count(evs, ChildEstablished) == 2 }) {
			t.Fatalf("children: %+v", s.rec.Events())
		}
	}
	st := a.e.Status("b")
	if len(st.Children) != 2 || st.Children[0].Name != "in" || st.Children[1].Name != "out" {
		t.Fatalf("children %+v", st.Children)
	}
	if got := st.Children[0].LocalTS[0]; got.Proto != 17 || got.StartPort != 6081 {
		t.Errorf("child in local TS %v", got)
	}
}

// TestEngineManyPeers: one engine with many peers initiating at once.
func TestEngineManyPeers(t *testing.T) {
	hub := newSide(t, "127.0.0.1", nil)
	const n = 20
	spokes := make([]*side, n)
	for i := range spokes {
		spokes[i] = newSide(t, fmt.Sprintf("127.0.1.%d", i+1), nil)
		name := fmt.Sprintf("spoke%d", i)
		if err := hub.e.AddPeer(peerOf(hub, spokes[i], name, false)); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range spokes {
		if err := s.e.AddPeer(peerOf(s, hub, "hub", true)); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range spokes {
		st := waitUp(t, s, "hub")
		hs := waitUp(t, hub, fmt.Sprintf("spoke%d", i))
		if st.SPIi != hs.SPIi || st.Children[0].InSPI != hs.Children[0].OutSPI {
			t.Errorf("spoke %d does not match the hub", i)
		}
	}
	if !hub.rec.Wait(5*time.Second, func(evs []RecordedEvent) bool { return Count(evs, ChildEstablished) == n }) {
		t.Fatalf("hub events: %d", len(hub.rec.Events()))
	}
}

func TestEngineESPHandOff(t *testing.T) {
	got := make(chan []byte, 1)
	a := newSide(t, "127.0.0.1", nil)
	b := newSide(t, "127.0.0.2", func(c *Config) {
		c.OnESP = func(p []byte, from netip.AddrPort) { got <- append([]byte(nil), p...) }
	})
	_, natt := b.e.LocalPorts()
	pkt := []byte{0, 0, 0x12, 0x34, 0, 0, 0, 1, 'e', 's', 'p'}
	if err := a.e.WriteESP(pkt, netip.AddrPortFrom(b.ip, natt)); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if string(p) != string(pkt) {
			t.Fatalf("got %x", p)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("ESP-in-UDP not handed to OnESP")
	}
	if err := a.e.WriteESP([]byte{0, 0, 0, 0, 1, 2, 3, 4}, netip.AddrPortFrom(b.ip, natt)); err == nil {
		t.Error("a non-ESP marker packet was accepted as ESP")
	}
	// Keepalives and IKE never reach OnESP.
	if err := a.e.conn.WriteTo(PortNATT, []byte{0xff}, netip.AddrPortFrom(b.ip, natt)); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		t.Fatalf("keepalive handed to OnESP: %x", p)
	case <-time.After(50 * time.Millisecond):
	}
}
