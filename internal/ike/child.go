// Child SAs (RFC 7296 §1.3, §2.9, §2.17): proposing and accepting ESP SAs,
// traffic selector narrowing, transport mode, KEYMAT, and the ChildSA
// records handed to the ChildSAHandler.

package ike

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike/message"
	"github.com/ovnsec/ovnsec/internal/ike/suite"
)

type childState uint8

const (
	childActive   childState = iota + 1
	childRekeying            // a rekey of it is in flight
	childReplaced            // rekeyed; waiting for its Delete
	childDeleting            // Delete sent
)

// childSA is one established Child SA of an IKE SA.
type childSA struct {
	cfg         ChildConfig
	info        ChildSA
	chosen      suite.Chosen
	state       childState
	rekeyTimer  clock.Timer
	expireTimer clock.Timer
	gone        bool
	ni, nr      []byte // nonces of the exchange that created it

	// Set when the peer rekeyed this SA while our own rekey was in flight.
	peerRekey       *childSA
	peerRekeyNonces [2][]byte
}

// pendingChild is a Child SA we proposed and wait to hear about.
type pendingChild struct {
	cfg   ChildConfig
	inSPI esp.SPI
	rekey *childSA // CREATE_CHILD_SA with REKEY_SA
	ni    []byte   // CREATE_CHILD_SA only
	dh    suite.DH // PFS
	ts    [2][]TrafficSelector
}

func (sa *ikeSA) newPendingChild(cfg ChildConfig, create bool, rekey *childSA) (*pendingChild, error) {
	return sa.newPendingChildGroup(cfg, create, rekey, 0)
}

// newPendingChildGroup is newPendingChild with a PFS group other than the
// first configured (after INVALID_KE_PAYLOAD).
func (sa *ikeSA) newPendingChildGroup(cfg ChildConfig, create bool, rekey *childSA, group message.DHGroup) (*pendingChild, error) {
	p := sa.p
	spi, err := p.e.newESPSPI()
	if err != nil {
		return nil, err
	}
	pc := &pendingChild{cfg: cfg, inSPI: spi, rekey: rekey, ts: [2][]TrafficSelector{cfg.LocalTS, cfg.RemoteTS}}
	sa.pending = append(sa.pending, pc)
	if rekey != nil {
		// Keep the negotiated (possibly narrowed) selectors.
		pc.ts = [2][]TrafficSelector{rekey.info.LocalTS, rekey.info.RemoteTS}
	}
	if create {
		if pc.ni, err = randomBytes(p.e.rand, nonceLen); err != nil {
			return nil, err
		}
		if g := p.cfg.esp[0].dh; len(g) > 0 && group == 0 {
			group = g[0]
		}
		if group != 0 {
			if pc.dh, err = suite.NewDH(group, p.e.rand); err != nil {
				return nil, err
			}
		}
	}
	return pc, nil
}

func (sa *ikeSA) releaseChild(pc *pendingChild) {
	if pc != nil {
		sa.p.e.espIn.Delete(pc.inSPI)
		sa.settled(pc)
	}
}

// settled takes pc off the list of proposals awaiting an answer.
func (sa *ikeSA) settled(pc *pendingChild) {
	sa.pending = slices.DeleteFunc(sa.pending, func(x *pendingChild) bool { return x == pc })
}

// payloads is our proposal: [REKEY_SA], [USE_TRANSPORT_MODE], SA, [Ni,
// KEi], TSi, TSr.
func (pc *pendingChild) payloads(sa *ikeSA) []message.Payload {
	var ps []message.Payload
	if pc.rekey != nil {
		ps = append(ps, &message.Notify{Protocol: message.ProtoESP, SPI: spiBytes(pc.rekey.info.InSPI), NotifyType: message.REKEY_SA})
	}
	if pc.cfg.Mode == esp.Transport {
		ps = append(ps, notify(message.USE_TRANSPORT_MODE, nil))
	}
	var first message.DHGroup
	if pc.dh != nil {
		first = pc.dh.Group()
	}
	ps = append(ps, offer(sa.p.cfg.esp, spiBytes(pc.inSPI), first, pc.dh != nil))
	if pc.ni != nil {
		ps = append(ps, &message.Nonce{Data: pc.ni})
		if pc.dh != nil {
			ps = append(ps, &message.KE{Group: pc.dh.Group(), Data: pc.dh.Public()})
		}
	}
	ps = append(ps,
		&message.TrafficSelectors{Selectors: toWire(pc.ts[0])},
		&message.TrafficSelectors{Responder: true, Selectors: toWire(pc.ts[1])})
	return ps
}

// pfsRetryGroup returns the group an INVALID_KE_PAYLOAD answer asks for,
// if we can use it.
func (sa *ikeSA) pfsRetryGroup(pc *pendingChild, ps []message.Payload) (message.DHGroup, bool) {
	n := message.Notifies(ps, message.INVALID_KE_PAYLOAD)
	if len(n) == 0 || pc.dh == nil {
		return 0, false
	}
	g, err := message.ParseInvalidKE(n[0].Data)
	if err != nil || g == pc.dh.Group() {
		return 0, false
	}
	for _, p := range sa.p.cfg.esp {
		if len(p.dh) == 0 && slices.Contains(supportedDH, g) {
			return g, true // we do not insist on a group (see match)
		}
		for _, d := range p.dh {
			if d == g {
				return g, true
			}
		}
	}
	return 0, false
}

// pfsFallbackGroup says whether to retry a CREATE_CHILD_SA refused with
// NO_PROPOSAL_CHOSEN with PFS: when we offered none, the peer may insist
// on it (OVS's strongSwan configuration). The IKE SA's group is tried.
func (sa *ikeSA) pfsFallbackGroup(pc *pendingChild, ps []message.Payload) (message.DHGroup, bool) {
	if pc.dh != nil || !hasNotify(ps, message.NO_PROPOSAL_CHOSEN) {
		return 0, false
	}
	for _, p := range sa.p.cfg.esp {
		if len(p.dh) > 0 {
			return 0, false // we configured PFS groups; the peer refused them
		}
	}
	return sa.chosen.DH, true
}

// finishChild processes the responder's answer to a child we proposed.
func (sa *ikeSA) finishChild(pc *pendingChild, ps []message.Payload) error {
	p := sa.p
	if n := errorNotify(ps); n != nil {
		sa.releaseChild(pc)
		return fmt.Errorf("%s from peer", n.NotifyType)
	}
	saP, _ := message.Find(ps, message.PayloadSA).(*message.SA)
	tsi, _ := message.Find(ps, message.PayloadTSi).(*message.TrafficSelectors)
	tsr, _ := message.Find(ps, message.PayloadTSr).(*message.TrafficSelectors)
	if saP == nil || tsi == nil || tsr == nil || len(saP.Proposals) != 1 {
		sa.releaseChild(pc)
		return errors.New("peer's answer lacks SA, TSi or TSr")
	}
	prop := saP.Proposals[0]
	ours := p.cfg.esp
	if pc.ni == nil {
		ours = withoutDH(ours) // IKE_AUTH
	}
	chosen, err := acceptsChosen(ours, prop, message.ProtoESP, pc.dh != nil)
	if err != nil || len(prop.SPI) != 4 {
		sa.releaseChild(pc)
		if err == nil {
			err = fmt.Errorf("ESP SPI of %d bytes", len(prop.SPI))
		}
		return fmt.Errorf("peer's ESP proposal is unacceptable: %v", err)
	}
	transport := hasNotify(ps, message.USE_TRANSPORT_MODE)
	if (pc.cfg.Mode == esp.Transport) != transport {
		sa.releaseChild(pc)
		sa.sendDeleteESP(pc.inSPI)
		return fmt.Errorf("peer refused %s mode", pc.cfg.Mode)
	}
	local, remote := fromWire(tsi.Selectors), fromWire(tsr.Selectors)
	if transport {
		// Transport mode through a NAT (RFC 7296 §2.23.1): the selectors
		// name the addresses each side sees; use our own view.
		if sa.natLocal {
			local = natSubst(local, p.cfg.Local)
		}
		if sa.natRemote {
			remote = natSubst(remote, sa.remote.Addr())
		}
	}
	if !subsetOf(local, pc.ts[0]) || !subsetOf(remote, pc.ts[1]) {
		sa.releaseChild(pc)
		return fmt.Errorf("peer narrowed traffic selectors to %v/%v, outside what we proposed", local, remote)
	}
	ni, nr := sa.ni, sa.nr
	var gir []byte
	if pc.ni != nil {
		nonce, _ := message.Find(ps, message.PayloadNonce).(*message.Nonce)
		if nonce == nil {
			sa.releaseChild(pc)
			return errors.New("peer's CREATE_CHILD_SA answer lacks a nonce")
		}
		if err := checkNonce(nonce.Data, sa.chosen.PRF); err != nil {
			sa.releaseChild(pc)
			return fmt.Errorf("peer's CREATE_CHILD_SA answer: %w", err)
		}
		ni, nr = pc.ni, nonce.Data
		if pc.dh != nil {
			ke, _ := message.Find(ps, message.PayloadKE).(*message.KE)
			if ke == nil || ke.Group != pc.dh.Group() {
				sa.releaseChild(pc)
				return errors.New("peer's answer lacks the PFS key share")
			}
			if gir, err = pc.dh.Shared(ke.Data); err != nil {
				sa.releaseChild(pc)
				return err
			}
		}
	}
	c, err := sa.makeChild(pc.cfg, chosen, pc.inSPI, esp.SPI(binary.BigEndian.Uint32(prop.SPI)), true, gir, ni, nr, local, remote)
	clear(gir)
	if err != nil {
		sa.releaseChild(pc)
		return err
	}
	c.ni, c.nr = ni, nr
	sa.settled(pc)
	sa.installChild(c, pc.rekey)
	return nil
}

// acceptChild answers a Child SA proposal (IKE_AUTH or CREATE_CHILD_SA).
// ex is nil in IKE_AUTH. It returns the response payloads; on refusal they
// carry the error notification and err says why.
func (sa *ikeSA) acceptChild(ps []message.Payload, ex *childExchange, rekey *childSA) ([]message.Payload, error) {
	p := sa.p
	refuse := func(t message.NotifyType, format string, args ...any) ([]message.Payload, error) {
		return []message.Payload{notify(t, nil)}, fmt.Errorf("%s: %s", t, fmt.Sprintf(format, args...))
	}
	saP, _ := message.Find(ps, message.PayloadSA).(*message.SA)
	tsi, _ := message.Find(ps, message.PayloadTSi).(*message.TrafficSelectors)
	tsr, _ := message.Find(ps, message.PayloadTSr).(*message.TrafficSelectors)
	if saP == nil || tsi == nil || tsr == nil {
		if ex == nil {
			return nil, nil // childless IKE_AUTH
		}
		return refuse(message.INVALID_SYNTAX, "CREATE_CHILD_SA without SA, TSi or TSr")
	}
	transport := hasNotify(ps, message.USE_TRANSPORT_MODE)
	theirI, theirR := fromWire(tsi.Selectors), fromWire(tsr.Selectors)
	if transport {
		// Transport mode through a NAT (RFC 7296 §2.23.1): the initiator
		// names the addresses it sees; substitute the ones we see.
		if sa.natRemote {
			theirI = natSubst(theirI, sa.remote.Addr())
		}
		if sa.natLocal {
			theirR = natSubst(theirR, p.cfg.Local)
		}
	}
	// Prefer a child whose selectors contain the proposal as it is, and
	// only then the first one that overlaps it after narrowing: with
	// ovs-monitor-ipsec's in/out pairs (udp/6081 <-> udp and the reverse)
	// the peer's "in" proposal also overlaps our own "in" child once
	// narrowed to 6081 <-> 6081, which would leave us without an SA for
	// our outbound traffic.
	var cfg *ChildConfig
	var local, remote []TrafficSelector
	modeMismatch := false
	for pass := 0; pass < 2 && cfg == nil; pass++ {
		for i := range p.cfg.children {
			c := &p.cfg.children[i]
			if rekey != nil && c.Name != rekey.cfg.Name {
				continue
			}
			if pass == 0 && !(subsetOf(theirI, c.RemoteTS) && subsetOf(theirR, c.LocalTS)) {
				continue
			}
			r := narrow(theirI, c.RemoteTS)
			l := narrow(theirR, c.LocalTS)
			if len(r) == 0 || len(l) == 0 {
				continue
			}
			if (c.Mode == esp.Transport) != transport {
				modeMismatch = true
				continue
			}
			cfg, local, remote = c, l, r
			break
		}
	}
	if cfg == nil {
		if modeMismatch {
			return refuse(message.NO_PROPOSAL_CHOSEN, "peer asks for the other mode (transport=%v)", transport)
		}
		return refuse(message.TS_UNACCEPTABLE, "no child matches peer's selectors %v === %v", fromWire(tsi.Selectors), fromWire(tsr.Selectors))
	}
	var keGroup message.DHGroup
	var ke *message.KE
	if ex != nil {
		ke, _ = message.Find(ps, message.PayloadKE).(*message.KE)
		if ke != nil {
			keGroup = ke.Group
		}
	}
	ours := p.cfg.esp
	if ex == nil {
		ours = withoutDH(ours) // IKE_AUTH
	}
	sel, chosen, ok := choose(ours, saP.Proposals, keGroup, ke != nil)
	if !ok || len(sel.SPI) != 4 {
		return refuse(message.NO_PROPOSAL_CHOSEN, "no ESP proposal of the peer is acceptable")
	}
	if ex != nil && chosen.DH != 0 && (ke == nil || ke.Group != chosen.DH) {
		return []message.Payload{notify(message.INVALID_KE_PAYLOAD, message.InvalidKEData(chosen.DH))}, fmt.Errorf("INVALID_KE_PAYLOAD: peer's PFS key share is not group %v", chosen.DH)
	}
	inSPI, err := p.e.newESPSPI()
	if err != nil {
		return refuse(message.TEMPORARY_FAILURE, "%v", err)
	}
	outSPI := esp.SPI(binary.BigEndian.Uint32(sel.SPI))
	sel.SPI = spiBytes(inSPI)
	var out []message.Payload
	if transport {
		out = append(out, notify(message.USE_TRANSPORT_MODE, nil))
	}
	out = append(out, &message.SA{Proposals: []message.Proposal{sel}})
	ni, nr := sa.ni, sa.nr
	var gir []byte
	if ex != nil {
		ni, nr = ex.peerNonce, ex.ourNonce
		out = append(out, &message.Nonce{Data: ex.ourNonce})
		if chosen.DH != 0 {
			dh, err := suite.NewDH(chosen.DH, p.e.rand)
			if err == nil {
				gir, err = dh.Shared(ke.Data)
			}
			if err != nil {
				p.e.espIn.Delete(inSPI)
				return refuse(message.INVALID_SYNTAX, "PFS key exchange: %v", err)
			}
			out = append(out, &message.KE{Group: chosen.DH, Data: dh.Public()})
		}
	}
	out = append(out,
		&message.TrafficSelectors{Selectors: toWire(remote)},
		&message.TrafficSelectors{Responder: true, Selectors: toWire(local)})
	c, err := sa.makeChild(*cfg, chosen, inSPI, outSPI, false, gir, ni, nr, local, remote)
	clear(gir)
	if err != nil {
		p.e.espIn.Delete(inSPI)
		return refuse(message.TEMPORARY_FAILURE, "%v", err)
	}
	c.ni, c.nr = ni, nr
	sa.installChild(c, rekey)
	return out, nil
}

// childExchange carries the nonces of a CREATE_CHILD_SA we answer.
type childExchange struct {
	peerNonce, ourNonce []byte
}

// makeChild derives the keys and fills the ChildSA record. initiator says
// whether we initiated the exchange creating it (we then send with I2R).
func (sa *ikeSA) makeChild(cfg ChildConfig, chosen suite.Chosen, inSPI, outSPI esp.SPI, initiator bool, gir, ni, nr []byte, local, remote []TrafficSelector) (*childSA, error) {
	keys, err := suite.DeriveChildKeys(sa.prf, sa.keys.D, chosen.Params, gir, ni, nr)
	if err != nil {
		return nil, err
	}
	defer keys.Zero()
	outRaw, inRaw := keys.EncrI2R, keys.EncrR2I
	if !initiator {
		outRaw, inRaw = inRaw, outRaw
	}
	outKey, err := esp.NewKey(outRaw)
	if err != nil {
		return nil, err
	}
	inKey, err := esp.NewKey(inRaw)
	if err != nil {
		return nil, err
	}
	p := sa.p
	now := sa.now()
	info := ChildSA{
		Peer: p.cfg.Name, Name: cfg.Name, Mode: cfg.Mode,
		InSPI: inSPI, OutSPI: outSPI, InKey: inKey, OutKey: outKey,
		LocalTS: local, RemoteTS: remote,
		Established: now, Initiator: initiator,
		EncrKeyBits: chosen.KeyBits, ESN: chosen.ESN, PFSGroup: chosen.DH,
		IKESPIi: sa.spiI, IKESPIr: sa.spiR, ChildLifetime: p.cfg.ChildLifetime,
		EncapRemoteNAT: sa.natRemote,
	}
	if sa.initiator {
		info.TSi, info.TSr = local, remote
	} else {
		info.TSi, info.TSr = remote, local
	}
	if sa.encap {
		lp := p.e.conn.LocalPort(PortNATT)
		rp := sa.remote.Port()
		if sa.port != PortNATT {
			rp = p.cfg.RemotePortNATT
		}
		info.Local = netip.AddrPortFrom(p.cfg.Local, lp)
		info.Remote = netip.AddrPortFrom(sa.remote.Addr(), rp)
		info.Encap = esp.Encap{Type: esp.EncapUDP, SrcPort: lp, DstPort: rp}
	} else {
		info.Local = netip.AddrPortFrom(p.cfg.Local, 0)
		info.Remote = netip.AddrPortFrom(sa.remote.Addr(), 0)
	}
	return &childSA{cfg: cfg, info: info, chosen: chosen, state: childActive}, nil
}

// installChild adds c to the SA, reports it and arms its rekey timer.
func (sa *ikeSA) installChild(c *childSA, replaces *childSA) {
	p := sa.p
	sa.children = append(sa.children, c)
	sa.armChildTimers(c, p.rekeyAfter(p.cfg.ChildLifetime), p.cfg.ChildLifetime)
	ev := ChildEstablished
	if replaces != nil {
		ev = ChildRekeyed
		c.info.Replaces = replaces.info.InSPI
		replaces.state = childReplaced
	}
	// Strings rather than the values: slog formats other types with
	// fmt ("%+v"), which costs more than the rest of the line.
	in, out, mode, encap := spiText(c.info.InSPI), spiText(c.info.OutSPI), c.cfg.Mode.String(), encapText(c.info.Encap)
	switch {
	case sa.announce != "" && replaces == nil:
		// The Child SA of IKE_AUTH: one line for both SAs (see announceUp).
		sa.log().Info("ike: IKE SA established", "role", sa.announce, "alg", algString(sa.chosen, message.ProtoIKE), "encap", sa.encap,
			"child", c.cfg.Name, "in", in, "out", out, "mode", mode, "esp_encap", encap)
		sa.announce = ""
	case ev == ChildEstablished:
		sa.log().Info("ike: child SA established", "child", c.cfg.Name, "in", in, "out", out, "mode", mode, "encap", encap)
	default:
		sa.log().Info("ike: child SA "+ev.String(), "child", c.cfg.Name, "in", in, "out", out, "mode", mode, "encap", encap)
	}
	p.emit(ev, c.info)
}

// armChildTimers schedules c's rekey in rekeyIn (recorded as its
// RekeyTime) and, should rekeying never succeed, its end in expireIn.
func (sa *ikeSA) armChildTimers(c *childSA, rekeyIn, expireIn time.Duration) {
	p := sa.p
	c.info.RekeyTime = sa.now().Add(rekeyIn)
	c.rekeyTimer = p.e.clock.AfterFunc(rekeyIn, func() {
		p.mu.Lock()
		defer p.unlock()
		if !c.gone && c.state == childActive {
			// The child may have moved to a newer IKE SA.
			if owner := p.ownerOf(c); owner != nil && owner.state == stateEstablished {
				owner.rekeyChild(c)
			}
		}
	})
	// Hard lifetime: if rekeying never succeeded, the SA goes.
	c.expireTimer = p.e.clock.AfterFunc(expireIn, func() {
		p.mu.Lock()
		defer p.unlock()
		if owner := p.ownerOf(c); owner != nil && !c.gone {
			owner.log().Warn("ike: child SA reached its hard lifetime without rekey", "child", c.cfg.Name, "in", c.info.InSPI)
			if owner.state == stateEstablished {
				owner.deleteChildren(c)
			} else {
				owner.dropChild(c)
			}
		}
	})
}

func (p *peer) ownerOf(c *childSA) *ikeSA {
	owns := func(sa *ikeSA) bool { return sa != nil && slices.Contains(sa.children, c) }
	if owns(p.ike) {
		return p.ike
	}
	for _, sa := range p.others {
		if owns(sa) {
			return sa
		}
	}
	return nil
}

// spiText is esp.SPI.String ("0x%08x") without fmt.
func spiText(s esp.SPI) string {
	const digits = "0123456789abcdef"
	b := [10]byte{'0', 'x'}
	for i := range 8 {
		b[9-i] = digits[(s>>(4*i))&0xf]
	}
	return string(b[:])
}

// encapText is esp.Encap.String without fmt.
func encapText(e esp.Encap) string {
	if e.Type != esp.EncapUDP {
		return e.String()
	}
	return "udp " + strconv.Itoa(int(e.SrcPort)) + "->" + strconv.Itoa(int(e.DstPort))
}

// remove forgets c and reports its deletion.
func (c *childSA) remove(sa *ikeSA) {
	if c.gone {
		return
	}
	c.gone = true
	for _, t := range []clock.Timer{c.rekeyTimer, c.expireTimer} {
		if t != nil {
			t.Stop()
		}
	}
	sa.p.e.espIn.Delete(c.info.InSPI)
	sa.p.emit(ChildDeleted, c.info)
}

func (sa *ikeSA) dropChild(c *childSA) {
	c.remove(sa)
	for i, x := range sa.children {
		if x == c {
			sa.children = append(sa.children[:i], sa.children[i+1:]...)
			break
		}
	}
}

func (sa *ikeSA) childByInSPI(s esp.SPI) *childSA {
	for _, c := range sa.children {
		if c.info.InSPI == s {
			return c
		}
	}
	return nil
}

func (sa *ikeSA) childByOutSPI(s esp.SPI) *childSA {
	for _, c := range sa.children {
		if c.info.OutSPI == s {
			return c
		}
	}
	return nil
}

// Traffic selectors.

func (t TrafficSelector) check() error {
	if !t.Start.IsValid() || !t.End.IsValid() || t.Start.Is4() != t.End.Is4() || t.End.Less(t.Start) || t.EndPort < t.StartPort {
		return fmt.Errorf("invalid traffic selector %v", t)
	}
	return nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr()
	b := a.AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	out, _ := netip.AddrFromSlice(b)
	return out
}

func toWire(ts []TrafficSelector) []message.Selector {
	out := make([]message.Selector, 0, len(ts))
	for _, t := range ts {
		typ := message.TS_IPV4_ADDR_RANGE
		if t.Start.Is6() {
			typ = message.TS_IPV6_ADDR_RANGE
		}
		out = append(out, message.Selector{Type: typ, IPProtocol: t.Proto, StartPort: t.StartPort, EndPort: t.EndPort, Start: t.Start, End: t.End})
	}
	return out
}

// fromWire keeps the IP range selectors (others are ignored).
func fromWire(ss []message.Selector) []TrafficSelector {
	var out []TrafficSelector
	for _, s := range ss {
		if s.Type != message.TS_IPV4_ADDR_RANGE && s.Type != message.TS_IPV6_ADDR_RANGE {
			continue
		}
		t := TrafficSelector{Start: s.Start, End: s.End, Proto: s.IPProtocol, StartPort: s.StartPort, EndPort: s.EndPort}
		if t.check() == nil {
			out = append(out, t)
		}
	}
	return out
}

// natSubst replaces the address of single-host selectors by addr.
func natSubst(ts []TrafficSelector, addr netip.Addr) []TrafficSelector {
	out := make([]TrafficSelector, len(ts))
	for i, t := range ts {
		if t.Start == t.End && t.Start.Is4() == addr.Is4() {
			t.Start, t.End = addr, addr
		}
		out[i] = t
	}
	return out
}

// intersect returns the overlap of two selectors.
func intersect(a, b TrafficSelector) (TrafficSelector, bool) {
	if a.Start.Is4() != b.Start.Is4() {
		return TrafficSelector{}, false
	}
	var t TrafficSelector
	switch {
	case a.Proto == 0:
		t.Proto = b.Proto
	case b.Proto == 0 || b.Proto == a.Proto:
		t.Proto = a.Proto
	default:
		return t, false
	}
	t.Start, t.End = a.Start, a.End
	if b.Start.Compare(t.Start) > 0 {
		t.Start = b.Start
	}
	if b.End.Compare(t.End) < 0 {
		t.End = b.End
	}
	t.StartPort, t.EndPort = max(a.StartPort, b.StartPort), min(a.EndPort, b.EndPort)
	if t.End.Less(t.Start) || t.EndPort < t.StartPort {
		return t, false
	}
	return t, true
}

// narrow intersects the peer's selectors with ours (RFC 7296 §2.9).
func narrow(theirs, ours []TrafficSelector) []TrafficSelector {
	var out []TrafficSelector
	for _, o := range ours {
		for _, t := range theirs {
			if x, ok := intersect(t, o); ok && !containsTS(out, x) {
				out = append(out, x)
			}
		}
	}
	return out
}

func containsTS(ts []TrafficSelector, x TrafficSelector) bool {
	for _, t := range ts {
		if t == x {
			return true
		}
	}
	return false
}

// subsetOf reports whether every selector of got lies within one of ours.
func subsetOf(got, ours []TrafficSelector) bool {
	if len(got) == 0 {
		return false
	}
	for _, g := range got {
		ok := false
		for _, o := range ours {
			if x, in := intersect(g, o); in && x == g {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
