// The nonce of an IKE SA rekey answer (CREATE_CHILD_SA rekeying the IKE
// SA) must be 16 to 256 bytes and at least half the PRF's key size (RFC
// 7296 §2.10); otherwise the answer is refused and the IKE SA stays.

package ike

import (
	"crypto/rand"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/ovnsec/ovnsec/internal/ike/message"
	"github.com/ovnsec/ovnsec/internal/ike/suite"
)

func TestRekeyIKEAnswerNonce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		prop     string // IKE proposal of both sides ("" = default)
		nonceLen int
		want     string // in the warning; "" = the rekey goes through
	}{
		{"valid", "", 32, ""},
		{"valid-16-sha256", "", 16, ""},
		{"short", "", 8, "peer's nonce of 8 bytes is outside 16..256"},
		{"long", "", 257, "peer's nonce of 257 bytes is outside 16..256"},
		{"half-prf-sha512", "aes256gcm16-prfsha512-x25519", 16, "peer's nonce of 16 bytes is shorter than half the 64-byte key of PRF_HMAC_SHA2_512"},
		{"valid-32-sha512", "aes256gcm16-prfsha512-x25519", 32, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuf
			w := newFakeWorld(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) }, nil)
			pa, pb := fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false)
			if tc.prop != "" {
				pa.IKEProposals, pb.IKEProposals = []string{tc.prop}, []string{tc.prop}
			}
			w.add(pa, pb)
			w.waitUp()
			before := w.a.e.Status("peer")
			// The peer never sees the rekey request; we answer it ourselves.
			w.net.setFilter(func(netip.AddrPort, netip.AddrPort, []byte) bool { return false })
			if err := w.a.e.RekeyIKE("peer"); err != nil {
				t.Fatal(err)
			}
			settle()
			p := w.a.e.peer("peer")
			p.mu.Lock()
			sa := p.ike
			r := sa.pend
			if r == nil || r.exch != message.CREATE_CHILD_SA {
				p.unlock()
				t.Fatalf("no IKE SA rekey request pending: %+v", r)
			}
			// A well-formed answer (selected proposal with the responder's
			// new SPI, a key share of the group) but for the nonce.
			sel, _, ok := choose(p.cfg.ike, offer(p.cfg.ike, make([]byte, 8), sa.chosen.DH, true).Proposals, sa.chosen.DH, true)
			if !ok {
				p.unlock()
				t.Fatal("cannot build the selected proposal")
			}
			sel.SPI = []byte{1, 2, 3, 4, 5, 6, 7, 8}
			dh, err := suite.NewDH(sa.chosen.DH, rand.Reader)
			if err != nil {
				p.unlock()
				t.Fatal(err)
			}
			nonce := make([]byte, tc.nonceLen)
			_, _ = rand.Read(nonce)
			ps := []message.Payload{
				&message.SA{Proposals: []message.Proposal{sel}},
				&message.Nonce{Data: nonce},
				&message.KE{Group: dh.Group(), Data: dh.Public()},
			}
			r.timer.Stop() // as receive does before handing over the answer
			sa.pend = nil
			r.onResp(&message.Message{}, nil, ps)
			sa.next()
			same := p.ike == sa && sa.state == stateEstablished && sa.rekeyedBy == nil
			p.unlock()
			after := w.a.e.Status("peer")
			if tc.want == "" {
				if same || after.SPIr != message.SPI(sel.SPI) || after.Rekeys != before.Rekeys+1 {
					t.Fatalf("valid answer not taken: before %v/%v rekeys %d, after %v/%v rekeys %d", before.SPIi, before.SPIr, before.Rekeys, after.SPIi, after.SPIr, after.Rekeys)
				}
				return
			}
			if !same || after.SPIi != before.SPIi || after.SPIr != before.SPIr || after.Rekeys != before.Rekeys || !after.Up() {
				t.Fatalf("answer with a %d-byte nonce replaced the IKE SA: before %v/%v rekeys %d, after %v/%v rekeys %d (%s)", tc.nonceLen, before.SPIi, before.SPIr, before.Rekeys, after.SPIi, after.SPIr, after.Rekeys, after.State)
			}
			if got := logs.lines("IKE SA rekey answer unacceptable", tc.want); len(got) != 1 {
				t.Fatalf("want one warning with %q, got %q", tc.want, logs.lines("IKE SA rekey"))
			}
		})
	}
}

// TestCheckNonce: the rule every exchange applies to the peer's nonce.
func TestCheckNonce(t *testing.T) {
	for _, tc := range []struct {
		n    int
		prfs []message.PRFID
		ok   bool
	}{
		{16, nil, true}, {15, nil, false}, {256, nil, true}, {257, nil, false},
		{16, []message.PRFID{message.PRF_HMAC_SHA2_256}, true},
		{23, []message.PRFID{message.PRF_HMAC_SHA2_384}, false},
		{24, []message.PRFID{message.PRF_HMAC_SHA2_384}, true},
		{31, []message.PRFID{message.PRF_HMAC_SHA2_512}, false},
		{32, []message.PRFID{message.PRF_HMAC_SHA2_512}, true},
		{16, []message.PRFID{message.PRF_HMAC_SHA2_256, message.PRF_HMAC_SHA2_512}, false},
	} {
		if err := checkNonce(make([]byte, tc.n), tc.prfs...); (err == nil) != tc.ok {
			t.Errorf("%d bytes with %v: %v, want ok=%v", tc.n, tc.prfs, err, tc.ok)
		}
	}
}
