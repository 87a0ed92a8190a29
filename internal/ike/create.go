// CREATE_CHILD_SA (RFC 7296 §1.3, §2.8): additional Child SAs, Child SA
// rekeying with REKEY_SA, IKE SA rekeying with new SPIs and KE, optional
// PFS, and simultaneous rekey resolution by the nonce rule of §2.8.1.

package ike

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike/message"
	"github.com/ovnsec/ovnsec/internal/ike/suite"
)

// createChild negotiates an additional Child SA.
func (sa *ikeSA) createChild(cfg ChildConfig) { sa.createChildGroup(cfg, 0) }

func (sa *ikeSA) createChildGroup(cfg ChildConfig, group message.DHGroup) {
	var pc *pendingChild
	sa.request(message.CREATE_CHILD_SA, func() ([]message.Payload, error) {
		var err error
		if pc, err = sa.newPendingChildGroup(cfg, true, nil, group); err != nil {
			return nil, err
		}
		return pc.payloads(sa), nil
	}, func(_ *message.Message, _ []byte, ps []message.Payload) {
		if g, ok := sa.pfsRetryGroup(pc, ps); ok {
			sa.releaseChild(pc)
			sa.createChildGroup(cfg, g)
			return
		}
		if g, ok := sa.pfsFallbackGroup(pc, ps); ok {
			sa.releaseChild(pc)
			sa.createChildGroup(cfg, g)
			return
		}
		if err := sa.finishChild(pc, ps); err != nil {
			sa.p.reason = failure{ReasonChildFailed, fmt.Sprintf("child %s: %v", cfg.Name, err)}
			sa.log().Warn("ike: child SA failed", "child", cfg.Name, "err", err)
		}
	}, sa.peerDead(message.CREATE_CHILD_SA))
}

// RekeyChild starts rekeying the named Child SA of a peer now.
func (e *Engine) RekeyChild(peerName, child string) error {
	p := e.peer(peerName)
	if p == nil {
		return fmt.Errorf("ike: rekey: no peer %q", peerName)
	}
	p.mu.Lock()
	defer p.unlock()
	sa := p.ike
	if sa == nil || sa.state != stateEstablished {
		return fmt.Errorf("ike: rekey: peer %s has no established IKE SA", peerName)
	}
	for _, c := range sa.children {
		if c.cfg.Name == child && c.state == childActive {
			sa.rekeyChild(c)
			return nil
		}
	}
	return fmt.Errorf("ike: rekey: peer %s has no active child %q", peerName, child)
}

// RekeyIKE starts rekeying the peer's IKE SA now.
func (e *Engine) RekeyIKE(peerName string) error {
	p := e.peer(peerName)
	if p == nil {
		return fmt.Errorf("ike: rekey: no peer %q", peerName)
	}
	p.mu.Lock()
	defer p.unlock()
	if p.ike == nil || p.ike.state != stateEstablished {
		return fmt.Errorf("ike: rekey: peer %s has no established IKE SA", peerName)
	}
	p.ike.rekeyIKE()
	return nil
}

// rekeyChild replaces c by a new Child SA and then deletes c.
func (sa *ikeSA) rekeyChild(c *childSA) { sa.rekeyChildGroup(c, 0) }

func (sa *ikeSA) rekeyChildGroup(c *childSA, group message.DHGroup) {
	c.state = childRekeying
	var pc *pendingChild
	sa.request(message.CREATE_CHILD_SA, func() ([]message.Payload, error) {
		if c.gone || c.state != childRekeying {
			return nil, nil // deleted or rekeyed by the peer meanwhile
		}
		var err error
		if pc, err = sa.newPendingChildGroup(c.cfg, true, c, group); err != nil {
			return nil, err
		}
		return pc.payloads(sa), nil
	}, func(_ *message.Message, _ []byte, ps []message.Payload) {
		if g, ok := sa.pfsRetryGroup(pc, ps); ok {
			sa.releaseChild(pc)
			sa.rekeyChildGroup(c, g)
			return
		}
		if g, ok := sa.pfsFallbackGroup(pc, ps); ok {
			sa.log().Info("ike: peer refused a child rekey without PFS; retrying with PFS", "group", g)
			sa.releaseChild(pc)
			sa.rekeyChildGroup(c, g)
			return
		}
		if err := sa.finishChild(pc, ps); err != nil {
			sa.log().Warn("ike: child SA rekey failed", "child", c.cfg.Name, "err", err)
			if c.state == childRekeying {
				c.state = childActive
			}
			// Try again later (TEMPORARY_FAILURE, collisions).
			c.rekeyTimer = sa.p.e.clock.AfterFunc(10*time.Second, func() {
				p := sa.p
				p.mu.Lock()
				defer p.unlock()
				if !c.gone && c.state == childActive && sa.state == stateEstablished {
					sa.rekeyChild(c)
				}
			})
			return
		}
		sa.p.rekeys++
		sa.p.e.stats.ChildRekeys.Add(1)
		newer := sa.children[len(sa.children)-1]
		if c.peerRekey != nil && !c.peerRekey.gone {
			// Both sides rekeyed c at once (RFC 7296 §2.8.1): the SA
			// created with the lowest nonce goes, deleted by its creator;
			// the winner deletes the old SA (as strongSwan does; a Delete
			// of the old SA from the loser would look like a rekey/delete
			// collision to the winner and cost it its new SA).
			if lowest(pc.ni, newer.nr, c.peerRekeyNonces[0], c.peerRekeyNonces[1]) <= 1 {
				sa.log().Info("ike: child SA rekey collision lost; deleting our redundant child", "child", c.cfg.Name, "in", newer.info.InSPI)
				sa.deleteChildren(newer)
				c.rekeyTimer = sa.p.e.clock.AfterFunc(collisionGrace, func() {
					p := sa.p
					p.mu.Lock()
					defer p.unlock()
					if owner := p.ownerOf(c); owner != nil && !c.gone && owner.state == stateEstablished {
						owner.deleteChildren(c) // the winner did not
					}
				})
				return
			}
			sa.log().Info("ike: child SA rekey collision won", "child", c.cfg.Name, "in", newer.info.InSPI)
		}
		sa.deleteChildren(c)
	}, sa.peerDead(message.CREATE_CHILD_SA))
}

// collisionGrace is how long the loser of a rekey collision waits for the
// winner to delete the old Child SA before deleting it itself.
const collisionGrace = 10 * time.Second

// lowest returns the index of the smallest nonce.
func lowest(ns ...[]byte) int {
	best := 0
	for i := range ns {
		if bytes.Compare(ns[i], ns[best]) < 0 {
			best = i
		}
	}
	return best
}

// rekeyIKE replaces the IKE SA: new SPIs, new DH, children move over, and
// the old SA is deleted (RFC 7296 §2.18).
func (sa *ikeSA) rekeyIKE() { sa.rekeyIKEGroup(sa.chosen.DH) }

func (sa *ikeSA) rekeyIKEGroup(group message.DHGroup) {
	p := sa.p
	if sa.rekeyNonce != nil {
		return
	}
	var spi message.SPI
	var dh suite.DH
	var ni []byte
	sa.request(message.CREATE_CHILD_SA, func() ([]message.Payload, error) {
		if sa.state != stateEstablished || p.ike != sa {
			return nil, nil
		}
		var err error
		if spi, err = p.e.newIKESPI(); err != nil {
			return nil, err
		}
		if dh, err = suite.NewDH(group, p.e.rand); err != nil {
			return nil, err
		}
		if ni, err = randomBytes(p.e.rand, nonceLen); err != nil {
			return nil, err
		}
		sa.rekeyNonce = ni
		return []message.Payload{
			offer(p.cfg.ike, spi[:], dh.Group(), true),
			&message.Nonce{Data: ni},
			&message.KE{Group: dh.Group(), Data: dh.Public()},
		}, nil
	}, func(_ *message.Message, _ []byte, ps []message.Payload) {
		sa.log().Debug("ike: IKE SA rekey answered", "rekeyed_by_peer", sa.rekeyedBy != nil)
		sa.rekeyNonce = nil
		if n := message.Notifies(ps, message.INVALID_KE_PAYLOAD); len(n) > 0 {
			if g, err := message.ParseInvalidKE(n[0].Data); err == nil && g != group && p.cfg.offersDH(g) {
				sa.rekeyIKEGroup(g)
				return
			}
		}
		if n := errorNotify(ps); n != nil {
			sa.log().Warn("ike: IKE SA rekey refused", "notify", n.NotifyType)
			sa.armRekey(2 * time.Minute) // retry soon
			return
		}
		saP, _ := message.Find(ps, message.PayloadSA).(*message.SA)
		ke, _ := message.Find(ps, message.PayloadKE).(*message.KE)
		nonce, _ := message.Find(ps, message.PayloadNonce).(*message.Nonce)
		if saP == nil || ke == nil || nonce == nil || len(saP.Proposals) != 1 || len(saP.Proposals[0].SPI) != 8 {
			sa.log().Warn("ike: IKE SA rekey answer lacks SA, KE or Nonce")
			sa.armRekey(2 * time.Minute)
			return
		}
		chosen, err := acceptsChosen(p.cfg.ike, saP.Proposals[0], message.ProtoIKE, true)
		if err == nil && (chosen.DH != dh.Group() || ke.Group != dh.Group()) {
			err = fmt.Errorf("peer chose DH group %v but sent a %v key share (ours: %v)", chosen.DH, ke.Group, dh.Group())
		}
		if err == nil {
			err = checkNonce(nonce.Data, sa.chosen.PRF, chosen.PRF)
		}
		if err != nil {
			// The IKE SA stays as it was; try again later.
			sa.log().Warn("ike: IKE SA rekey answer unacceptable; keeping the current IKE SA", "err", err)
			sa.armRekey(2 * time.Minute)
			return
		}
		n := &ikeSA{p: p, initiator: true, spiI: spi, spiR: message.SPI(saP.Proposals[0].SPI), dh: dh, ni: ni, nr: append([]byte(nil), nonce.Data...)}
		if err := sa.deriveRekeyed(n, chosen, ke.Data); err != nil {
			sa.log().Warn("ike: IKE SA rekey failed", "err", err)
			sa.armRekey(2 * time.Minute)
			return
		}
		if _, loaded := p.e.sas.LoadOrStore(spi, n); loaded {
			return
		}
		if sa.rekeyedBy != nil {
			// We already took the peer's simultaneous rekey (its nonce was
			// higher, §2.8.2): the SA we created is redundant; delete it.
			n.remote, n.port, n.state = sa.remote, sa.port, stateEstablished
			p.others = append(p.others, n)
			sa.log().Info("ike: IKE SA rekey collision lost; deleting the redundant IKE SA", "redundant_spi_i", n.spiI, "redundant_spi_r", n.spiR)
			n.retire() // a request with retransmission: the peer may not know n yet

			return
		}
		sa.handOver(n)
		sa.retire()
	}, sa.peerDead(message.CREATE_CHILD_SA))
}

// deriveRekeyed computes the keys of n, the successor of sa.
func (sa *ikeSA) deriveRekeyed(n *ikeSA, chosen suite.Chosen, peerKE []byte) error {
	gir, err := n.dh.Shared(peerKE)
	if err != nil {
		return err
	}
	defer clear(gir)
	seed := suite.RekeySKEYSEED(sa.prf, sa.keys.D, gir, n.ni, n.nr)
	defer seed.Zero()
	n.chosen = chosen
	if n.prf, err = suite.NewPRF(chosen.PRF); err != nil {
		return err
	}
	keys, err := suite.DeriveIKEKeys(chosen.Params, seed, n.ni, n.nr, n.spiI, n.spiR)
	if err != nil {
		return err
	}
	return n.setKeys(keys)
}

// handOver makes n the peer's IKE SA and moves the children to it.
func (sa *ikeSA) handOver(n *ikeSA) {
	p := sa.p
	n.remote, n.port = sa.remote, sa.port
	n.natLocal, n.natRemote, n.encap, n.fragOK = sa.natLocal, sa.natRemote, sa.encap, sa.fragOK
	n.peerHashes = sa.peerHashes
	n.children = sa.children
	sa.children = nil
	for _, c := range n.children {
		c.info.IKESPIi, c.info.IKESPIr = n.spiI, n.spiR
	}
	n.created = sa.now()
	n.state = stateEstablished
	n.established = n.created
	n.lastRecv = n.created
	sa.rekeyedBy = n
	if p.ike == sa {
		p.ike = n
		p.others = append(p.others, sa)
	}
	p.rekeys++
	p.e.stats.IKERekeys.Add(1)
	n.armRekey(p.cfg.IKELifetime)
	n.armExpire(p.cfg.IKELifetime)
	n.armDPD()
	n.armKeepalive()
	sa.log().Info("ike: IKE SA rekeyed", "new_spi_i", n.spiI, "new_spi_r", n.spiR)
}

// retire deletes a replaced IKE SA (its children already moved).
func (sa *ikeSA) retire() {
	sa.state = stateDeleting
	if sa.rekeyTimer != nil {
		sa.rekeyTimer.Stop()
	}
	if sa.dpdTimer != nil {
		sa.dpdTimer.Stop()
	}
	done := func() { sa.destroy() }
	sa.request(message.INFORMATIONAL, func() ([]message.Payload, error) {
		return []message.Payload{&message.Delete{Protocol: message.ProtoIKE}}, nil
	}, func(_ *message.Message, _ []byte, _ []message.Payload) { done() }, done)
}

// respondCreateChild answers CREATE_CHILD_SA.
func (sa *ikeSA) respondCreateChild(ps []message.Payload) ([]message.Payload, func()) {
	p := sa.p
	if sa.state == stateDeleting || sa.rekeyedBy != nil {
		return []message.Payload{notify(message.TEMPORARY_FAILURE, nil)}, nil
	}
	saP, _ := message.Find(ps, message.PayloadSA).(*message.SA)
	nonce, _ := message.Find(ps, message.PayloadNonce).(*message.Nonce)
	if saP == nil || nonce == nil || len(saP.Proposals) == 0 {
		return []message.Payload{notify(message.INVALID_SYNTAX, nil)}, nil
	}
	if err := checkNonce(nonce.Data, sa.chosen.PRF); err != nil {
		sa.log().Warn("ike: CREATE_CHILD_SA refused", "err", err)
		return []message.Payload{notify(message.INVALID_SYNTAX, nil)}, nil
	}
	nr, err := randomBytes(p.e.rand, nonceLen)
	if err != nil {
		return []message.Payload{notify(message.TEMPORARY_FAILURE, nil)}, nil
	}
	if saP.Proposals[0].Protocol == message.ProtoIKE {
		return sa.respondRekeyIKE(saP, nonce.Data, nr, ps)
	}
	var rekey *childSA
	if rs := message.Notifies(ps, message.REKEY_SA); len(rs) > 0 {
		if len(rs[0].SPI) != 4 {
			return []message.Payload{notify(message.INVALID_SYNTAX, nil)}, nil
		}
		rekey = sa.childByOutSPI(esp.SPI(binary.BigEndian.Uint32(rs[0].SPI)))
		if rekey == nil || rekey.gone {
			return []message.Payload{&message.Notify{Protocol: message.ProtoESP, SPI: rs[0].SPI, NotifyType: message.CHILD_SA_NOT_FOUND}}, nil
		}
	}
	collision := rekey != nil && rekey.state == childRekeying
	out, err := sa.acceptChild(ps, &childExchange{peerNonce: nonce.Data, ourNonce: nr}, rekey)
	if err != nil {
		sa.log().Warn("ike: CREATE_CHILD_SA refused", "err", err)
		return out, nil
	}
	if rekey != nil {
		p.rekeys++
		p.e.stats.ChildRekeys.Add(1)
		newer := sa.children[len(sa.children)-1]
		if collision {
			rekey.peerRekey = newer
			rekey.peerRekeyNonces = [2][]byte{nonce.Data, nr}
		}
	}
	return out, nil
}

// respondRekeyIKE answers an IKE SA rekey.
func (sa *ikeSA) respondRekeyIKE(saP *message.SA, ni, nr []byte, ps []message.Payload) ([]message.Payload, func()) {
	p := sa.p
	ke, _ := message.Find(ps, message.PayloadKE).(*message.KE)
	if ke == nil {
		return []message.Payload{notify(message.INVALID_SYNTAX, nil)}, nil
	}
	if sa.rekeyNonce != nil && bytes.Compare(ni, sa.rekeyNonce) < 0 {
		// Simultaneous IKE SA rekey (§2.8.2): the peer's has the lower
		// nonce and loses; the one we started wins.
		return []message.Payload{notify(message.TEMPORARY_FAILURE, nil)}, nil
	}
	sel, chosen, ok := choose(p.cfg.ike, saP.Proposals, ke.Group, true)
	if !ok || len(sel.SPI) != 8 {
		return []message.Payload{notify(message.NO_PROPOSAL_CHOSEN, nil)}, nil
	}
	if chosen.DH != ke.Group {
		return []message.Payload{notify(message.INVALID_KE_PAYLOAD, message.InvalidKEData(chosen.DH))}, nil
	}
	if err := checkNonce(ni, chosen.PRF); err != nil {
		sa.log().Warn("ike: IKE SA rekey refused", "err", err)
		return []message.Payload{notify(message.INVALID_SYNTAX, nil)}, nil
	}
	spi, err := p.e.newIKESPI()
	if err != nil {
		return []message.Payload{notify(message.TEMPORARY_FAILURE, nil)}, nil
	}
	dh, err := suite.NewDH(chosen.DH, p.e.rand)
	if err != nil {
		return []message.Payload{notify(message.TEMPORARY_FAILURE, nil)}, nil
	}
	n := &ikeSA{p: p, initiator: false, spiI: message.SPI(sel.SPI), spiR: spi, dh: dh, ni: append([]byte(nil), ni...), nr: nr}
	if err := sa.deriveRekeyed(n, chosen, ke.Data); err != nil {
		return []message.Payload{notify(message.INVALID_SYNTAX, nil)}, nil
	}
	if _, loaded := p.e.sas.LoadOrStore(spi, n); loaded {
		return []message.Payload{notify(message.TEMPORARY_FAILURE, nil)}, nil
	}
	sel.SPI = spi[:]
	out := []message.Payload{
		&message.SA{Proposals: []message.Proposal{sel}},
		&message.Nonce{Data: nr},
		&message.KE{Group: chosen.DH, Data: dh.Public()},
	}
	return out, func() {
		sa.handOver(n)
		// The old SA stays until the peer deletes it.
		if sa.rekeyTimer != nil {
			sa.rekeyTimer.Stop()
		}
		if sa.dpdTimer != nil {
			sa.dpdTimer.Stop()
		}
		sa.halfTimer = p.e.clock.AfterFunc(time.Minute, func() {
			p.mu.Lock()
			defer p.unlock()
			sa.destroy()
		})
	}
}
