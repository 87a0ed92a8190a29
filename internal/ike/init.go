// IKE_SA_INIT (RFC 7296 §1.2): proposals, key exchange, nonces, NAT
// detection (§2.23), COOKIE (§2.6), INVALID_KE_PAYLOAD retry, and the
// derivation of the IKE SA keys (§2.14), for both roles.

package ike

import (
	"bytes"
	"fmt"
	"net/netip"
	"time"

	"github.com/ovnsec/ovnsec/internal/ike/message"
	"github.com/ovnsec/ovnsec/internal/ike/suite"
)

const (
	nonceLen        = 32
	halfOpenTimeout = 30 * time.Second
)

var ourHashes = []message.HashAlgorithm{message.HashSHA2_256, message.HashSHA2_384, message.HashSHA2_512}

// natHashes returns the NAT_DETECTION_SOURCE_IP and _DESTINATION_IP
// notifications. A forced encapsulation fakes the source hash.
func (sa *ikeSA) natNotifies(spir message.SPI, local, remote netip.AddrPort) ([]message.Payload, error) {
	src := suite.NATDetectionHash(sa.spiI, spir, local.Addr(), local.Port())
	if sa.p.cfg.ForceEncap {
		r, err := randomBytes(sa.p.e.rand, len(src))
		if err != nil {
			return nil, err
		}
		copy(src[:], r)
	}
	dst := suite.NATDetectionHash(sa.spiI, spir, remote.Addr(), remote.Port())
	return []message.Payload{
		notify(message.NAT_DETECTION_SOURCE_IP, src[:]),
		notify(message.NAT_DETECTION_DESTINATION_IP, dst[:]),
	}, nil
}

// detectNAT compares the peer's NAT-D hashes with what we see.
func (sa *ikeSA) detectNAT(ps []message.Payload, spir message.SPI, local, from netip.AddrPort) (supported bool) {
	srcs := message.Notifies(ps, message.NAT_DETECTION_SOURCE_IP)
	dsts := message.Notifies(ps, message.NAT_DETECTION_DESTINATION_IP)
	if len(srcs) == 0 || len(dsts) == 0 {
		return false
	}
	want := suite.NATDetectionHash(sa.spiI, spir, from.Addr(), from.Port())
	sa.natRemote = true
	for _, n := range srcs {
		if bytes.Equal(n.Data, want[:]) {
			sa.natRemote = false
		}
	}
	me := suite.NATDetectionHash(sa.spiI, spir, local.Addr(), local.Port())
	sa.natLocal = true
	for _, n := range dsts {
		if bytes.Equal(n.Data, me[:]) {
			sa.natLocal = false
		}
	}
	return true
}

func (sa *ikeSA) localAP(port Port) netip.AddrPort {
	return netip.AddrPortFrom(sa.p.cfg.Local, sa.p.e.conn.LocalPort(port))
}

// startInit sends (or resends, after COOKIE/INVALID_KE) IKE_SA_INIT.
func (sa *ikeSA) startInit(group message.DHGroup) {
	p := sa.p
	cfg := p.cfg
	sa.state = stateInitSent
	sa.port = PortIKE
	sa.remote = netip.AddrPortFrom(cfg.Remote, cfg.RemotePortIKE)
	var err error
	if sa.ni == nil {
		if sa.ni, err = randomBytes(p.e.rand, nonceLen); err != nil {
			sa.failErr(ReasonInternalError, err)
			return
		}
	}
	if sa.dh, err = suite.NewDH(group, p.e.rand); err != nil {
		sa.failErr(ReasonInternalError, err)
		return
	}
	var ps []message.Payload
	if sa.cookie != nil {
		ps = append(ps, notify(message.COOKIE, sa.cookie))
	}
	ps = append(ps,
		offer(cfg.ike, nil, group, true),
		&message.KE{Group: group, Data: sa.dh.Public()},
		&message.Nonce{Data: sa.ni})
	nat, err := sa.natNotifies(message.SPI{}, sa.localAP(PortIKE), sa.remote)
	if err != nil {
		sa.failErr(ReasonInternalError, err)
		return
	}
	ps = append(ps, nat...)
	if !cfg.NoFragmentation {
		ps = append(ps, notify(message.IKEV2_FRAGMENTATION_SUPPORTED, nil))
	}
	ps = append(ps, notify(message.SIGNATURE_HASH_ALGORITHMS, message.HashAlgorithmsData(ourHashes...)))
	m := &message.Message{Header: sa.header(message.IKE_SA_INIT, 0, false), Payloads: ps}
	b, err := m.Encode(nil)
	if err != nil {
		sa.fail(ReasonInternalError, fmt.Sprintf("encode IKE_SA_INIT: %v", err))
		return
	}
	sa.initReq = b
	sa.nextID = 1
	sa.sendRequest(&request{id: 0, exch: message.IKE_SA_INIT, pkts: [][]byte{b},
		onResp: sa.onInitResponse,
		onTimeout: func() {
			sa.fail(ReasonPeerSilent, fmt.Sprintf("peer silent: no answer to IKE_SA_INIT after %d tries", sa.p.e.cfg.RetransmitTries))
		}})
}

// onInitResponse processes the responder's IKE_SA_INIT answer.
func (sa *ikeSA) onInitResponse(m *message.Message, raw []byte, ps []message.Payload) {
	p := sa.p
	if c := message.Notifies(ps, message.COOKIE); len(c) > 0 {
		if sa.cookie != nil && bytes.Equal(sa.cookie, c[0].Data) {
			sa.fail(ReasonProtocolError, "peer keeps demanding the same COOKIE")
			return
		}
		sa.cookie = append([]byte(nil), c[0].Data...)
		sa.startInit(sa.dh.Group())
		return
	}
	if n := message.Notifies(ps, message.INVALID_KE_PAYLOAD); len(n) > 0 {
		g, err := message.ParseInvalidKE(n[0].Data)
		if err != nil || g == sa.dh.Group() || !p.cfg.offersDH(g) {
			code := ReasonNoProposal
			if err != nil || g == sa.dh.Group() {
				code = ReasonProtocolError // garbled, or the group we sent
			}
			sa.fail(code, fmt.Sprintf("INVALID_KE_PAYLOAD from peer asks for DH group %v, which we do not offer", g))
			return
		}
		sa.log().Info("ike: peer wants another DH group", "group", g)
		sa.startInit(g)
		return
	}
	if n := errorNotify(ps); n != nil {
		sa.fail(notifyCode(n.NotifyType), fmt.Sprintf("%s from peer in IKE_SA_INIT", n.NotifyType))
		return
	}
	if m.SPIr.IsZero() {
		sa.fail(ReasonProtocolError, "peer answered IKE_SA_INIT without a responder SPI")
		return
	}
	saP, _ := m.Find(message.PayloadSA).(*message.SA)
	ke, _ := m.Find(message.PayloadKE).(*message.KE)
	nonce, _ := m.Find(message.PayloadNonce).(*message.Nonce)
	if saP == nil || ke == nil || nonce == nil || len(saP.Proposals) != 1 {
		sa.fail(ReasonProtocolError, "peer's IKE_SA_INIT response lacks SA, KE or Nonce")
		return
	}
	chosen, err := acceptsChosen(p.cfg.ike, saP.Proposals[0], message.ProtoIKE, true)
	if err != nil {
		sa.fail(ReasonProtocolError, fmt.Sprintf("peer's IKE proposal is unacceptable: %v", err))
		return
	}
	if err := checkNonce(nonce.Data, chosen.PRF); err != nil {
		sa.failErr(ReasonProtocolError, err)
		return
	}
	if chosen.DH != sa.dh.Group() || ke.Group != sa.dh.Group() {
		sa.fail(ReasonProtocolError, fmt.Sprintf("peer chose DH group %v but sent a %v key share (ours: %v)", chosen.DH, ke.Group, sa.dh.Group()))
		return
	}
	sa.spiR = m.SPIr
	if err := sa.deriveKeys(chosen, ke.Data, nonce.Data); err != nil {
		sa.failErr(ReasonInternalError, err)
		return
	}
	sa.initRsp = raw
	sa.readCapabilities(ps)
	if sa.detectNAT(ps, sa.spiR, sa.localAP(PortIKE), sa.remote) {
		sa.encap = sa.natLocal || sa.natRemote || p.cfg.ForceEncap
		if sa.encap {
			sa.port = PortNATT
			sa.remote = netip.AddrPortFrom(sa.remote.Addr(), p.cfg.RemotePortNATT)
		}
	}
	sa.sendAuth()
}

// readCapabilities notes fragmentation and signature hash support.
func (sa *ikeSA) readCapabilities(ps []message.Payload) {
	sa.fragOK = !sa.p.cfg.NoFragmentation && hasNotify(ps, message.IKEV2_FRAGMENTATION_SUPPORTED)
	for _, n := range message.Notifies(ps, message.SIGNATURE_HASH_ALGORITHMS) {
		if hs, err := message.ParseHashAlgorithms(n.Data); err == nil {
			sa.peerHashes = append(sa.peerHashes, hs...)
		}
	}
}

// deriveKeys computes g^ir, SKEYSEED and the SK keys, and the SK ciphers
// for our role.
func (sa *ikeSA) deriveKeys(chosen suite.Chosen, peerKE, peerNonce []byte) error {
	gir, err := sa.dh.Shared(peerKE)
	if err != nil {
		return reasonf(ReasonProtocolError, "peer's key share is invalid: %v", err)
	}
	defer clear(gir)
	if sa.initiator {
		sa.nr = append([]byte(nil), peerNonce...)
	} else {
		sa.ni = append([]byte(nil), peerNonce...)
	}
	sa.chosen = chosen
	if sa.prf, err = suite.NewPRF(chosen.PRF); err != nil {
		return err
	}
	keys, err := suite.NewIKEKeys(chosen.Params, gir, sa.ni, sa.nr, sa.spiI, sa.spiR)
	if err != nil {
		return err
	}
	return sa.setKeys(keys)
}

func (sa *ikeSA) setKeys(keys *suite.IKEKeys) error {
	var err error
	sa.keys = keys
	ei, er := keys.Ei, keys.Er
	if !sa.initiator {
		ei, er = er, ei
	}
	if sa.out, err = suite.NewAEAD(sa.chosen.Encr, ei); err != nil {
		return err
	}
	if sa.in, err = suite.NewAEAD(sa.chosen.Encr, er); err != nil {
		return err
	}
	return nil
}

// checkNonce applies RFC 7296 §2.10 to a nonce the peer sent: 16 to 256
// bytes, and at least half the key size of the negotiated PRF (of each
// PRF given: an IKE SA rekey mixes the old SA's and the new one's).
func checkNonce(n []byte, prfs ...message.PRFID) error {
	if len(n) < 16 || len(n) > 256 {
		return fmt.Errorf("peer's nonce of %d bytes is outside 16..256", len(n))
	}
	for _, id := range prfs {
		if prf, err := suite.NewPRF(id); err == nil && 2*len(n) < prf.Size() {
			return fmt.Errorf("peer's nonce of %d bytes is shorter than half the %d-byte key of %s (RFC 7296 §2.10)", len(n), prf.Size(), id)
		}
	}
	return nil
}

func (c *peerConfig) offersDH(g message.DHGroup) bool {
	for _, p := range c.ike {
		for _, d := range p.dh {
			if d == g {
				return true
			}
		}
	}
	return false
}

// reserveHalfOpen takes a half-open slot for a new responder SA of p, if
// neither cap is reached (p.mu held). The global count is taken with a
// compare-and-swap: both reader goroutines create SAs, and the cap is hard.
func (e *Engine) reserveHalfOpen(p *peer) bool {
	if p.halfOpen >= e.cfg.HalfOpenMaxPerAddr {
		return false
	}
	for {
		n := e.halfOpen.Load()
		if n >= int64(e.cfg.HalfOpenMax) {
			return false
		}
		if e.halfOpen.CompareAndSwap(n, n+1) {
			p.halfOpen++
			return true
		}
	}
}

// leaveHalfOpen gives the SA's half-open slot back (p.mu held).
func (sa *ikeSA) leaveHalfOpen() {
	if !sa.halfOpen {
		return
	}
	sa.halfOpen = false
	sa.p.halfOpen--
	sa.p.e.halfOpen.Add(-1)
}

// wantCookie reports whether a new IKE_SA_INIT request from p's address
// must carry a valid COOKIE: above the global threshold, and always when
// the address already has a half-open SA, so that a sender that cannot
// receive at the address it claims holds at most one slot of it.
func (e *Engine) wantCookie(p *peer) bool {
	limit := int64(e.cfg.HalfOpenLimit)
	return limit < 0 || e.halfOpen.Load() >= limit || p.halfOpen > 0
}

// responderSA returns p's responder SA with initiator SPI spii, if any
// (p.mu held).
func (p *peer) responderSA(spii message.SPI) *ikeSA {
	if o := p.ike; o != nil && !o.initiator && o.spiI == spii && o.state != stateDead {
		return o
	}
	for _, o := range p.others {
		if !o.initiator && o.spiI == spii && o.state != stateDead {
			return o
		}
	}
	return nil
}

// handleInitRequest answers an IKE_SA_INIT request (responder). In order:
// retransmissions and replays of a request that made an SA get nothing
// new; then the cookie check (RFC 7296 §2.6); then proposal selection;
// then the half-open caps; only then an SA and the Diffie-Hellman work.
func (e *Engine) handleInitRequest(port Port, b []byte, h message.Header, from netip.AddrPort) {
	v, ok := e.byAddr.Load(from.Addr())
	if !ok {
		e.stats.Dropped.Add(1)
		e.log.Debug("ike: IKE_SA_INIT from unknown peer", "from", from)
		return
	}
	p := v.(*peer)
	m, err := message.Decode(b)
	if err != nil {
		e.stats.DecodeErrors.Add(1)
		return
	}
	p.mu.Lock()
	defer p.unlock()
	if p.removed {
		return
	}
	// The peer (its address) already has an SA with this SPIi: this is
	// a retransmission (RFC 7296 §2.1), answered with the stored response
	// if it is the same request from where the first one came, or a
	// replay, possibly altered (the cookie covers only Ni, IPi and SPIi),
	// which must not make a second SA.
	if o := p.responderSA(h.SPIi); o != nil {
		switch {
		case o.state != stateInitDone || !bytes.Equal(o.initReq, b):
			e.stats.InitReplays.Add(1)
			o.log().Debug("ike: drop IKE_SA_INIT replay", "from", from)
		case port != o.port || from != o.remote:
			e.stats.StrayRetransmits.Add(1)
			o.log().Debug("ike: drop retransmitted IKE_SA_INIT from elsewhere", "from", from, "bound", o.remote)
		default:
			e.send(o.port, o.initRsp, o.remote)
		}
		return
	}
	stateless := func(ps ...message.Payload) {
		r := &message.Message{Header: message.Header{SPIi: h.SPIi, Exchange: message.IKE_SA_INIT, Flags: message.FlagResponse}, Payloads: ps}
		if out, err := r.Encode(nil); err == nil {
			e.send(port, out, from)
		}
	}
	nonce, _ := m.Find(message.PayloadNonce).(*message.Nonce)
	saP, _ := m.Find(message.PayloadSA).(*message.SA)
	ke, _ := m.Find(message.PayloadKE).(*message.KE)
	if nonce == nil || saP == nil || ke == nil || checkNonce(nonce.Data) != nil {
		e.stats.DecodeErrors.Add(1)
		return
	}
	if e.wantCookie(p) {
		now := e.clock.Now()
		got := message.Notifies(m.Payloads, message.COOKIE)
		if len(got) == 0 || !e.cookies.valid(now, got[0].Data, nonce.Data, from.Addr(), h.SPIi) {
			c, err := e.cookies.make(now, nonce.Data, from.Addr(), h.SPIi)
			if err != nil {
				e.log.Warn("ike: cannot make a cookie", "err", err)
				return
			}
			e.stats.CookiesSent.Add(1)
			stateless(notify(message.COOKIE, c))
			return
		}
	}
	sel, chosen, ok := choose(p.cfg.ike, saP.Proposals, ke.Group, true)
	if !ok {
		p.reason = failure{ReasonNoProposal, "NO_PROPOSAL_CHOSEN: no IKE proposal of the peer is acceptable"}
		stateless(notify(message.NO_PROPOSAL_CHOSEN, nil))
		return
	}
	if chosen.DH != ke.Group {
		stateless(notify(message.INVALID_KE_PAYLOAD, message.InvalidKEData(chosen.DH)))
		return
	}
	if err := checkNonce(nonce.Data, chosen.PRF); err != nil {
		e.stats.DecodeErrors.Add(1)
		e.log.Debug("ike: drop IKE_SA_INIT", "peer", p.cfg.Name, "err", err)
		return
	}
	if !e.reserveHalfOpen(p) {
		e.stats.HalfOpenFull.Add(1)
		e.log.Debug("ike: drop IKE_SA_INIT: too many half-open IKE SAs", "peer", p.cfg.Name, "from", from,
			"peer_half_open", p.halfOpen, "half_open", e.halfOpen.Load())
		return
	}
	sa, err := p.newSA(false)
	if err != nil {
		p.halfOpen--
		e.halfOpen.Add(-1)
		return
	}
	sa.halfOpen = true
	sa.spiI = h.SPIi
	sa.state = stateInitDone
	sa.port = port
	sa.remote = from
	sa.initReq = append([]byte(nil), b...)
	fail := func(f failure) {
		p.reason = f
		sa.destroy()
	}
	if sa.nr, err = randomBytes(e.rand, nonceLen); err != nil {
		fail(failureOf(ReasonInternalError, err))
		return
	}
	if sa.dh, err = suite.NewDH(chosen.DH, e.rand); err != nil {
		fail(failureOf(ReasonInternalError, err))
		return
	}
	if err := sa.deriveKeys(chosen, ke.Data, nonce.Data); err != nil {
		fail(failureOf(ReasonInternalError, err))
		return
	}
	sa.readCapabilities(m.Payloads)
	local := sa.localAP(port)
	natOK := sa.detectNAT(m.Payloads, message.SPI{}, local, from)
	ps := []message.Payload{
		&message.SA{Proposals: []message.Proposal{sel}},
		&message.KE{Group: chosen.DH, Data: sa.dh.Public()},
		&message.Nonce{Data: sa.nr},
	}
	if cr := sa.certRequest(); cr != nil {
		ps = append(ps, cr)
	}
	if natOK {
		nat, err := sa.natNotifies(sa.spiR, local, from)
		if err != nil {
			fail(failureOf(ReasonInternalError, err))
			return
		}
		ps = append(ps, nat...)
		sa.encap = sa.natLocal || sa.natRemote || p.cfg.ForceEncap
	}
	if sa.fragOK {
		ps = append(ps, notify(message.IKEV2_FRAGMENTATION_SUPPORTED, nil))
	}
	ps = append(ps, notify(message.SIGNATURE_HASH_ALGORITHMS, message.HashAlgorithmsData(ourHashes...)))
	r := &message.Message{Header: sa.header(message.IKE_SA_INIT, 0, true), Payloads: ps}
	out, err := r.Encode(nil)
	if err != nil {
		fail(failure{ReasonInternalError, fmt.Sprintf("encode IKE_SA_INIT response: %v", err)})
		return
	}
	sa.initRsp = out
	sa.peerNextID = 1
	p.others = append(p.others, sa)
	sa.halfTimer = e.clock.AfterFunc(halfOpenTimeout, func() {
		p.mu.Lock()
		defer p.unlock()
		if sa.state == stateInitDone {
			p.reason = failure{ReasonPeerSilent, "peer did not send IKE_AUTH within 30s of IKE_SA_INIT"}
			sa.destroy()
		}
	})
	e.send(port, out, from)
}
