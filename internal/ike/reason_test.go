// Reason codes and typed states: every code is listed and snake_case, the
// states read as today's words in String and JSON, and each failure class
// the engine-to-engine harnesses reach reports its code on both sides.

package ike

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/ike/message"
)

// TestReasonCodesListed: ReasonCodes lists every ReasonCode constant of
// reason.go once, each a snake_case word fit for a metrics label.
func TestReasonCodesListed(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "reason.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[ReasonCode]bool{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "ReasonCode" {
				continue
			}
			for _, v := range vs.Values {
				lit, ok := v.(*ast.BasicLit)
				if !ok {
					t.Fatalf("ReasonCode %v is not a literal", vs.Names)
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				declared[ReasonCode(s)] = true
			}
		}
	}
	if len(declared) == 0 {
		t.Fatal("found no ReasonCode constants in reason.go")
	}
	snake := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	listed := map[ReasonCode]bool{}
	for _, c := range ReasonCodes() {
		if listed[c] {
			t.Errorf("%q listed twice", c)
		}
		listed[c] = true
		if !snake.MatchString(string(c)) {
			t.Errorf("%q is not snake_case", c)
		}
		if !declared[c] {
			t.Errorf("%q listed but not a constant of reason.go", c)
		}
	}
	for c := range declared {
		if !listed[c] {
			t.Errorf("%q missing from ReasonCodes", c)
		}
	}
	l := ReasonCodes()
	l[0] = "changed"
	if ReasonCodes()[0] == "changed" {
		t.Error("ReasonCodes returns shared state")
	}
}

// TestStateText: the enums read as the words the status always showed,
// in String and in JSON; the zero PeerStatus is down.
func TestStateText(t *testing.T) {
	for s, want := range map[SAState]string{SADown: "down", SAConnecting: "connecting", SAEstablished: "established", SADeleting: "deleting", 9: "SAState(9)"} {
		b, err := s.MarshalText()
		if s.String() != want || string(b) != want || err != nil {
			t.Errorf("SAState %d: String %q, MarshalText %q %v; want %q", uint8(s), s, b, err, want)
		}
	}
	for s, want := range map[ChildState]string{ChildSAInstalled: "installed", ChildSARekeying: "rekeying", ChildSARekeyed: "rekeyed", ChildSADeleting: "deleting", 0: "ChildState(0)"} {
		b, err := s.MarshalText()
		if s.String() != want || string(b) != want || err != nil {
			t.Errorf("ChildState %d: String %q, MarshalText %q %v; want %q", uint8(s), s, b, err, want)
		}
	}
	if (PeerStatus{}).State != SADown {
		t.Error("the zero PeerStatus is not down")
	}
	b, err := json.Marshal(PeerStatus{State: SAConnecting, Code: ReasonNegotiating, Children: []ChildStatus{{State: ChildSARekeyed}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"State":"connecting"`, `"Code":"negotiating"`, `"State":"rekeyed"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
}

// TestFailureOf: the code travels with the error, wrapped or not, and the
// text is always the error's own.
func TestFailureOf(t *testing.T) {
	inner := reasonf(ReasonCertUntrusted, "peer sent no certificate")
	for _, tc := range []struct {
		err  error
		want failure
	}{
		{inner, failure{ReasonCertUntrusted, "peer sent no certificate"}},
		{fmt.Errorf("child x: %w", inner), failure{ReasonCertUntrusted, "child x: peer sent no certificate"}},
		{errors.New("ike: read randomness: EOF"), failure{ReasonInternalError, "ike: read randomness: EOF"}},
	} {
		if got := failureOf(ReasonInternalError, tc.err); got != tc.want {
			t.Errorf("failureOf(%v) = %+v, want %+v", tc.err, got, tc.want)
		}
	}
	for n, want := range map[message.NotifyType]ReasonCode{
		message.NO_PROPOSAL_CHOSEN: ReasonNoProposal, message.AUTHENTICATION_FAILED: ReasonPeerRefusedAuth,
		message.INVALID_SYNTAX: ReasonPeerError, message.TEMPORARY_FAILURE: ReasonPeerError,
	} {
		if got := notifyCode(n); got != want {
			t.Errorf("notifyCode(%v) = %q, want %q", n, got, want)
		}
	}
}

// wantReason is what one side's status must show: the code, a piece of
// the (unchanged) text it goes with, and whether the IKE SA is up.
type wantReason struct {
	code ReasonCode
	text string
	up   bool
}

func (w wantReason) match(st PeerStatus) bool {
	return st.Code == w.code && strings.Contains(st.Reason, w.text) && st.Up() == w.up
}

// TestReasonCodesHandshake: engine against engine over loopback, each
// failure class with the code both sides report.
func TestReasonCodesHandshake(t *testing.T) {
	ca, other := newCA(t, "test CA"), newCA(t, "other CA")
	idOf := func(s *side) string { return "host-" + s.ip.String() }
	// certs gives both sides certificates of the test CA (trusting it),
	// then lets the case spoil one.
	certs := func(t *testing.T, a, b *side, pa, pb *Peer) {
		for _, x := range []struct {
			s *side
			p *Peer
		}{{a, pa}, {b, pb}} {
			c := issue(t, &ca, idOf(x.s), "ec", time.Now().Add(time.Hour))
			x.p.Auth = Auth{Cert: []*x509.Certificate{c.cert}, Key: c.key, CAs: []*x509.Certificate{ca.cert}}
		}
	}
	withCert := func(p *Peer, c testCert) { p.Auth.Cert, p.Auth.Key = []*x509.Certificate{c.cert}, c.key }
	refused := wantReason{ReasonPeerRefusedAuth, "AUTHENTICATION_FAILED from peer", false}
	for _, tc := range []struct {
		name   string
		mod    func(t *testing.T, a, b *side, pa, pb *Peer)
		wa, wb wantReason // a initiates, b answers
	}{
		{"psk mismatch", func(t *testing.T, a, b *side, pa, pb *Peer) { pb.Auth.PSK = []byte("other") },
			refused, wantReason{ReasonAuthFailed, "pre-shared key mismatch", false}},
		{"psk against certificates", func(t *testing.T, a, b *side, pa, pb *Peer) {
			psk := pa.Auth
			certs(t, a, b, pa, pb)
			pa.Auth = psk
		}, refused, wantReason{ReasonAuthFailed, "we expect a certificate signature", false}},
		{"foreign CA, initiator's certificate", func(t *testing.T, a, b *side, pa, pb *Peer) {
			certs(t, a, b, pa, pb)
			withCert(pa, issue(t, &other, idOf(a), "ec", time.Now().Add(time.Hour)))
		}, refused, wantReason{ReasonCertUntrusted, "certificate not signed by the configured CA", false}},
		{"foreign CA, responder's certificate", func(t *testing.T, a, b *side, pa, pb *Peer) {
			certs(t, a, b, pa, pb)
			withCert(pb, issue(t, &other, idOf(b), "ec", time.Now().Add(time.Hour)))
		}, wantReason{ReasonCertUntrusted, "certificate not signed by the configured CA", false}, refused},
		{"expired certificate", func(t *testing.T, a, b *side, pa, pb *Peer) {
			certs(t, a, b, pa, pb)
			withCert(pa, issue(t, &ca, idOf(a), "ec", time.Now().Add(-time.Minute)))
		}, refused, wantReason{ReasonCertUntrusted, "peer certificate expired", false}},
		{"wrong remote name", func(t *testing.T, a, b *side, pa, pb *Peer) { pb.RemoteID = "someone-else" },
			refused, wantReason{ReasonIdentityMismatch, "does not match expected someone-else", false}},
		{"initiator asks for another name", func(t *testing.T, a, b *side, pa, pb *Peer) { pa.RemoteID = "someone-else" },
			refused, wantReason{ReasonIdentityMismatch, `peer asked for ID "someone-else"`, false}},
		{"CN mismatch", func(t *testing.T, a, b *side, pa, pb *Peer) {
			certs(t, a, b, pa, pb)
			withCert(pa, mkCert(t, &ca, certSpec{cn: "attacker", dns: []string{idOf(a)}}))
		}, refused, wantReason{ReasonIdentityMismatch, `peer certificate CN "attacker" is not the expected remote name`, false}},
		{"SAN mismatch", func(t *testing.T, a, b *side, pa, pb *Peer) {
			certs(t, a, b, pa, pb)
			withCert(pa, issue(t, &ca, "somebody.else", "ec", time.Now().Add(time.Hour)))
		}, refused, wantReason{ReasonIdentityMismatch, "is not a DNS name in its certificate", false}},
		{"no IKE proposal", func(t *testing.T, a, b *side, pa, pb *Peer) {
			pb.IKEProposals = []string{"aes128gcm16-prfsha256-modp2048"}
		},
			wantReason{ReasonNoProposal, "NO_PROPOSAL_CHOSEN from peer in IKE_SA_INIT", false},
			wantReason{ReasonNoProposal, "NO_PROPOSAL_CHOSEN: no IKE proposal of the peer is acceptable", false}},
		{"child selectors refused", func(t *testing.T, a, b *side, pa, pb *Peer) {
			pa.Children[0].RemoteTS = []TrafficSelector{PrefixTS(netip.MustParsePrefix("10.9.9.9/32"), 0)}
		}, wantReason{ReasonChildFailed, "child gnv: TS_UNACCEPTABLE from peer", true}, wantReason{ReasonChildFailed, "TS_UNACCEPTABLE", true}},
		{"no ESP proposal", func(t *testing.T, a, b *side, pa, pb *Peer) { pa.ESPProposals = []string{"aes128gcm16"} },
			wantReason{ReasonChildFailed, "child gnv: NO_PROPOSAL_CHOSEN from peer", true}, wantReason{ReasonChildFailed, "NO_PROPOSAL_CHOSEN", true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newSide(t, "127.0.0.1", nil)
			b := newSide(t, "127.0.0.2", nil)
			pa, pb := peerOf(a, b, "b", true), peerOf(b, a, "a", false)
			tc.mod(t, a, b, &pa, &pb)
			if err := b.e.AddPeer(pb); err != nil {
				t.Fatal(err)
			}
			if err := a.e.AddPeer(pa); err != nil {
				t.Fatal(err)
			}
			// The deadline only bounds a hang: the loop ends as soon as
			// both sides show their reason.
			deadline := time.Now().Add(30 * time.Second)
			var sa, sb PeerStatus
			for {
				sa, sb = a.e.Status("b"), b.e.Status("a")
				if tc.wa.match(sa) && tc.wb.match(sb) || time.Now().After(deadline) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if !tc.wa.match(sa) || !tc.wb.match(sb) {
				t.Fatalf("a: %s %q (%s), want %+v\nb: %s %q (%s), want %+v", sa.Code, sa.Reason, sa.State, tc.wa, sb.Code, sb.Reason, sb.State, tc.wb)
			}
		})
	}
}

// dropExchange makes a filter that drops the IKE messages of exch and
// passes the rest.
func dropExchange(exch message.ExchangeType) func(from, to netip.AddrPort, b []byte) bool {
	return func(from, to netip.AddrPort, b []byte) bool {
		if len(b) > 4 && b[0]|b[1]|b[2]|b[3] == 0 {
			b = b[4:] // non-ESP marker
		}
		h, err := message.ParseHeader(b)
		return err != nil || h.Exchange != exch
	}
}

func dropAll(from, to netip.AddrPort, b []byte) bool { return false }

// wantCodes checks both sides of a fake world now.
func (w *fakeWorld) wantCodes(wa, wb wantReason) {
	w.t.Helper()
	sa, sb := w.a.e.Status("peer"), w.b.e.Status("peer")
	if !wa.match(sa) || !wb.match(sb) {
		w.t.Fatalf("a: %s %q (%s), want %+v\nb: %s %q (%s), want %+v", sa.Code, sa.Reason, sa.State, wa, sb.Code, sb.Reason, sb.State, wb)
	}
}

// waitCodes waits for both sides of a fake world to show their reasons
// (packets in flight are handled by the engines' goroutines).
func (w *fakeWorld) waitCodes(wa, wb wantReason) {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if wa.match(w.a.e.Status("peer")) && wb.match(w.b.e.Status("peer")) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	w.wantCodes(wa, wb)
}

// TestReasonCodesFakeClock: the classes that need time to pass (peer
// silent, hard lifetime) and the plain states, on the in-memory network.
// Once every packet is dropped, the timers run in FakeClock.Advance on the
// test's goroutine, so the outcome does not depend on scheduling.
func TestReasonCodesFakeClock(t *testing.T) {
	none := wantReason{ReasonNone, "", true}
	noDPD := func(p Peer) Peer { p.DPDInterval = -1; return p }

	t.Run("states", func(t *testing.T) {
		w := newFakeWorld(t, nil, nil)
		if st := w.a.e.Status("nobody"); st.Code != ReasonNotConfigured || st.Reason != "peer not configured" || st.Known {
			t.Fatalf("unknown peer: %+v", st)
		}
		w.net.setFilter(dropAll)
		w.add(fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false))
		w.wantCodes(wantReason{ReasonNegotiating, "IKE_SA_INIT sent", false}, wantReason{ReasonWaitingForPeer, "waiting for the peer to initiate", false})
		// An initiating peer without an SA and nothing gone wrong (the
		// moment before its first IKE_SA_INIT).
		p := w.b.e.peer("peer")
		p.mu.Lock()
		p.cfg.Initiate = true
		p.unlock()
		if st := w.b.e.Status("peer"); st.Code != ReasonNotConnected || st.Reason != "not connected yet" {
			t.Fatalf("b: %+v", st)
		}
	})

	t.Run("peer silent in IKE_SA_INIT", func(t *testing.T) {
		w := newFakeWorld(t, nil, nil)
		w.net.setFilter(dropAll)
		w.add(fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false))
		w.clock.Advance(16 * time.Second) // five tries, then given up at 15.5 s
		w.wantCodes(wantReason{ReasonPeerSilent, "peer silent: no answer to IKE_SA_INIT after 5 tries", false},
			wantReason{ReasonWaitingForPeer, "waiting for the peer to initiate", false})
	})

	t.Run("peer silent in IKE_AUTH", func(t *testing.T) {
		w := newFakeWorld(t, nil, nil)
		w.net.setFilter(dropExchange(message.IKE_AUTH))
		w.add(fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false))
		w.waitCodes(wantReason{ReasonNegotiating, "IKE_AUTH sent", false}, wantReason{ReasonWaitingForPeer, "", false})
		if n := w.b.e.halfOpen.Load(); n != 1 { // b made its SA before it answered IKE_SA_INIT
			t.Fatalf("b has %d half-open SAs", n)
		}
		w.net.setFilter(dropAll)
		w.clock.Advance(31 * time.Second) // a gives up at 15.5 s, b's half-open SA expires at 30 s
		w.wantCodes(wantReason{ReasonPeerSilent, "peer silent: no answer to IKE_AUTH after 5 tries", false},
			wantReason{ReasonPeerSilent, "peer did not send IKE_AUTH within 30s of IKE_SA_INIT", false})
	})

	t.Run("peer dead", func(t *testing.T) {
		w := newFakeWorld(t, nil, nil)
		w.add(noDPD(fakePeer(w.a, w.b, true)), noDPD(fakePeer(w.b, w.a, false)))
		w.waitUp()
		w.waitCodes(none, none)
		w.net.setFilter(dropAll)
		if err := w.a.e.CheckLiveness("peer"); err != nil {
			t.Fatal(err)
		}
		w.clock.Advance(16 * time.Second)
		w.wantCodes(wantReason{ReasonPeerSilent, "peer dead: no answer to liveness check after 5 tries", false}, none)
	})

	t.Run("hard lifetime", func(t *testing.T) {
		w := newFakeWorld(t, nil, nil)
		short := func(p Peer) Peer {
			p.IKELifetime, p.RekeyMargin = 10*time.Minute, 5*time.Second
			return noDPD(p)
		}
		w.add(short(fakePeer(w.a, w.b, true)), short(fakePeer(w.b, w.a, false)))
		w.waitUp()
		// The rekeys at about 9:55 go unanswered (retransmitted past 10:00).
		w.net.setFilter(dropAll)
		w.clock.Advance(10*time.Minute + time.Second)
		want := wantReason{ReasonLifetimeExpired, "IKE SA reached its hard lifetime without rekey", false}
		w.wantCodes(want, want)
	})

	t.Run("deleted", func(t *testing.T) {
		w := newFakeWorld(t, nil, nil)
		w.add(fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false))
		w.waitUp()
		if err := w.a.e.DeleteIKE("peer"); err != nil {
			t.Fatal(err)
		}
		if st := w.a.e.Status("peer"); st.Code != ReasonDeleted || st.Reason != "deleted locally" {
			t.Fatalf("a: %+v", st)
		}
		w.waitCodes(wantReason{ReasonDeleted, "deleted locally", false}, wantReason{ReasonDeleted, "peer deleted the IKE SA", false})
	})
}
