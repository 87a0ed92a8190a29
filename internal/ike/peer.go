// Peer state: the IKE SAs of one peer under one mutex, starting and
// restarting negotiation, failure reasons, SA teardown, rekey and liveness
// timers, and queued Child SA events.

package ike

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/ike/message"
	"github.com/ovnsec/ovnsec/internal/ike/suite"
)

// peer holds everything about one configured peer. mu guards all of it
// and all of its SAs; the receive path takes only this lock.
type peer struct {
	e   *Engine
	cfg *peerConfig

	mu       sync.Mutex
	ike      *ikeSA   // the current IKE SA (or the one being set up)
	others   []*ikeSA // half-open responder SAs, SAs being replaced
	reason   failure  // why the peer is not up, or what last went wrong
	removed  bool
	events   []event
	retry    clock.Timer
	attempts int
	rekeys   int
	halfOpen int           // of its SAs, how many are responder SAs waiting for IKE_AUTH
	psk      suite.Key     // suite.PSKKey of the PSK for pskPRF, made once
	pskPRF   message.PRFID // (the peer's SAs may negotiate another PRF)
}

// pskKey returns suite.PSKKey(prf, PSK): both AUTH payloads of every IKE
// SA with the peer use it.
func (p *peer) pskKey(prf suite.PRF) suite.Key {
	if p.psk == nil || p.pskPRF != prf.ID() {
		p.psk.Zero()
		p.psk, p.pskPRF = suite.PSKKey(prf, p.cfg.Auth.PSK), prf.ID()
	}
	return p.psk
}

// unlock hands queued events to the delivery goroutine and releases mu.
// Queueing under mu keeps the peer's events in order; the handler runs
// on the delivery goroutine, without any engine lock.
func (p *peer) unlock() {
	if len(p.events) > 0 {
		p.e.events.push(p.events)
		clear(p.events) // push copied them; drop the keys they hold
		p.events = p.events[:0]
	}
	p.mu.Unlock()
}

func (p *peer) emit(ev ChildEvent, c ChildSA) { p.events = append(p.events, event{ev, c}) }

// allSAs returns the current SA and the others.
func (p *peer) allSAs() []*ikeSA {
	out := slices.Clone(p.others)
	if p.ike != nil {
		out = append(out, p.ike)
	}
	return out
}

// initiate starts a new IKE SA unless one is up or in progress.
func (p *peer) initiate() {
	if p.removed {
		return
	}
	if p.ike != nil && p.ike.state != stateDead {
		return
	}
	if p.retry != nil {
		p.retry.Stop()
		p.retry = nil
	}
	sa, err := p.newSA(true)
	if err != nil {
		p.reason = failureOf(ReasonInternalError, err)
		return
	}
	p.ike = sa
	p.attempts++
	sa.startInit(p.cfg.ike[0].dh[0])
}

// newSA makes an IKE SA and registers our SPI.
func (p *peer) newSA(initiator bool) (*ikeSA, error) {
	spi, err := p.e.newIKESPI()
	if err != nil {
		return nil, err
	}
	sa := &ikeSA{p: p, initiator: initiator, created: p.e.clock.Now(), port: PortIKE}
	if initiator {
		sa.spiI = spi
	} else {
		sa.spiR = spi
	}
	if _, loaded := p.e.sas.LoadOrStore(spi, sa); loaded {
		return nil, fmt.Errorf("ike: SPI collision, try again")
	}
	return sa, nil
}

// fail ends the SA with a reason (code and text) shown in Status. The SA
// is removed without telling the peer.
func (sa *ikeSA) fail(code ReasonCode, reason string) {
	p := sa.p
	sa.log().Warn("ike: IKE SA failed", "reason", reason, "code", code)
	if p.ike == sa || p.ike == nil {
		p.reason = failure{code, reason}
	}
	sa.destroy()
	p.scheduleRetry()
}

// failErr is fail with err's text and its code, or def if err carries
// none.
func (sa *ikeSA) failErr(def ReasonCode, err error) {
	f := failureOf(def, err)
	sa.fail(f.code, f.text)
}

// scheduleRetry re-initiates later if we are the initiating side.
func (p *peer) scheduleRetry() {
	if !p.cfg.Initiate || p.removed || (p.ike != nil && p.ike.state != stateDead) || p.retry != nil {
		return
	}
	wait := 5 * time.Second << min(p.attempts, 5)
	if wait > 2*time.Minute {
		wait = 2 * time.Minute
	}
	p.retry = p.e.clock.AfterFunc(wait, func() {
		p.mu.Lock()
		defer p.unlock()
		p.retry = nil
		p.initiate()
	})
}

// destroy forgets the SA and its children locally (no message).
func (sa *ikeSA) destroy() {
	if sa.state == stateDead {
		return
	}
	p := sa.p
	sa.leaveHalfOpen()
	sa.state = stateDead
	// Every timer holds the SA: one left running would keep a dead SA (and
	// its keys and children) in memory until it fires, hours later for the
	// hard lifetime.
	for _, t := range []clock.Timer{sa.rekeyTimer, sa.dpdTimer, sa.halfTimer, sa.expireTimer, sa.aliveTimer} {
		if t != nil {
			t.Stop()
		}
	}
	if sa.pend != nil && sa.pend.timer != nil {
		sa.pend.timer.Stop()
	}
	sa.pend, sa.queue = nil, nil
	for _, c := range sa.children {
		c.remove(sa)
	}
	sa.children = nil
	for _, pc := range sa.pending {
		p.e.espIn.Delete(pc.inSPI)
	}
	sa.pending = nil
	p.e.sas.CompareAndDelete(sa.ourSPI(), sa)
	if sa.keys != nil {
		sa.keys.Zero()
	}
	if p.ike == sa {
		p.ike = nil
	}
	p.others = slices.DeleteFunc(p.others, func(o *ikeSA) bool { return o == sa })
	if p.ike == nil {
		// A duplicate kept from simultaneous initiation takes over when
		// the peer deleted the one we preferred.
		for i, o := range p.others {
			if o.state == stateEstablished && o.rekeyedBy == nil {
				if o.halfTimer != nil {
					o.halfTimer.Stop()
				}
				p.ike = o
				p.others = slices.Delete(p.others, i, i+1)
				break
			}
		}
	}
}

// deleteSA tells the peer (best effort: one INFORMATIONAL with Delete, not
// retransmitted) and destroys the SA; reason, if set, shows in Status.
func (sa *ikeSA) deleteSA(reason failure) {
	if sa.state == stateDead {
		return
	}
	if sa.keys != nil && sa.out != nil && (sa.state == stateEstablished || sa.state == stateDeleting) {
		ps := []message.Payload{&message.Delete{Protocol: message.ProtoIKE}}
		if pkts, err := sa.protect(sa.header(message.INFORMATIONAL, sa.nextID, false), ps); err == nil {
			sa.nextID++
			for _, b := range pkts {
				sa.p.e.send(sa.port, b, sa.remote)
			}
		}
	}
	if reason != (failure{}) && sa.p.ike == sa {
		sa.p.reason = reason
	}
	sa.destroy()
}

// shutdown deletes every SA of the peer; removal stops re-initiation.
func (p *peer) shutdown(remove bool) {
	p.mu.Lock()
	defer p.unlock()
	if remove {
		p.removed = true
		p.psk.Zero()
		p.psk = nil
	}
	if p.retry != nil {
		p.retry.Stop()
		p.retry = nil
	}
	for _, sa := range p.allSAs() {
		sa.deleteSA(failure{ReasonDeleted, "removed"})
	}
}

// established marks the SA up and starts its timers.
func (sa *ikeSA) setEstablished() {
	p := sa.p
	now := sa.now()
	sa.state = stateEstablished
	sa.established = now
	sa.lastRecv = now
	p.e.stats.IKEEstablished.Add(1)
	sa.leaveHalfOpen()
	if sa.halfTimer != nil {
		sa.halfTimer.Stop()
	}
	p.reason = failure{}
	p.attempts = 0
	sa.armRekey(p.cfg.IKELifetime)
	sa.armExpire(p.cfg.IKELifetime)
	sa.armDPD()
	sa.armKeepalive()
	if p.ike == sa {
		return
	}
	old := p.ike
	p.others = slices.DeleteFunc(p.others, func(o *ikeSA) bool { return o == sa })
	if old == nil || old.state == stateDead {
		p.ike = sa
		return
	}
	switch {
	case old.state == stateEstablished && sa.initialCont &&
		(sa.created.Sub(old.established) >= restartGuard || !old.initiator && !sa.initiator):
		// The peer restarted and has no state of the old SA any more.
		// (Every first IKE_AUTH carries INITIAL_CONTACT, so one that
		// follows our SA closely is a crossing initiation, not a restart:
		// the nonce rule below keeps the same SA on both sides then. But
		// a crossing has one SA initiated by each side: when the peer
		// initiated both, it lost the first however soon it came back.)
		old.destroy()
		p.ike = sa
	case old.state == stateDeleting:
		p.others = append(p.others, old)
		p.ike = sa
	case old.state == stateEstablished:
		// Both sides initiated at once and two IKE SAs came up. Both
		// sides keep the same one: the SA with the lowest nonce goes,
		// deleted by its initiator (like rekey collisions, §2.8.1).
		loser, winner := sa, old
		if bytes.Compare(lowNonce(old), lowNonce(sa)) < 0 {
			loser, winner = old, sa
		}
		p.ike = winner
		p.others = append(p.others, loser)
		sa.log().Info("ike: duplicate IKE SA from simultaneous initiation", "keep_spi_i", winner.spiI, "drop_spi_i", loser.spiI)
		if loser.initiator {
			loser.retire()
		} else {
			// Its initiator should delete it; if it does not (strongSwan
			// keeps duplicates), we do, once our IKE_AUTH answer is out.
			loser.halfTimer = p.e.clock.AfterFunc(duplicateGrace, func() {
				p.mu.Lock()
				defer p.unlock()
				if loser.state == stateEstablished {
					loser.retire()
				}
			})
		}
	default:
		// Our own attempt is still in progress; it resolves when done.
		p.others = append(p.others, old)
		p.ike = sa
	}
}

// restartGuard: an IKE SA the peer initiates with INITIAL_CONTACT at least
// this long after ours came up means the peer lost its state (restarted);
// sooner, both sides initiated at about the same time. It covers the late
// initiation of the side that waits for its peer (native backend: 3 s)
// and IKE_SA_INIT retransmissions.
const restartGuard = 15 * time.Second

// duplicateGrace is how long we wait for the peer to delete a duplicate
// IKE SA it initiated before we delete it ourselves.
const duplicateGrace = 2 * time.Second

// lowNonce returns the smaller of the SA's two nonces.
func lowNonce(sa *ikeSA) []byte {
	if bytes.Compare(sa.ni, sa.nr) < 0 {
		return sa.ni
	}
	return sa.nr
}

// jittered returns when to rekey something with lifetime life.
func (p *peer) rekeyAfter(life time.Duration) time.Duration {
	margin := p.cfg.rekeyMargin(life)
	j := p.cfg.rekeyJitter(margin)
	var b [8]byte
	_, _ = io.ReadFull(p.e.rand, b[:])
	var jit time.Duration
	if j > 0 {
		jit = time.Duration(binary.BigEndian.Uint64(b[:]) % uint64(j))
	}
	d := life - margin - jit
	if d <= 0 {
		d = life / 2
	}
	return d
}

// armExpire ends the IKE SA at its hard lifetime if no rekey replaced it.
func (sa *ikeSA) armExpire(life time.Duration) { sa.armExpireAt(life) }

// armExpireAt ends the IKE SA in d if no rekey replaced it.
func (sa *ikeSA) armExpireAt(d time.Duration) {
	if sa.expireTimer != nil {
		sa.expireTimer.Stop()
	}
	sa.expireTimer = sa.p.e.clock.AfterFunc(d, func() {
		p := sa.p
		p.mu.Lock()
		defer p.unlock()
		if sa.state == stateEstablished && sa.rekeyedBy == nil {
			sa.deleteSA(failure{ReasonLifetimeExpired, "IKE SA reached its hard lifetime without rekey"})
			p.scheduleRetry()
		}
	})
}

// armRekey schedules rekeying of the IKE SA. Only one side needs to
// rekey; both schedule it and the collision rules sort it out.
func (sa *ikeSA) armRekey(life time.Duration) { sa.armRekeyAt(sa.p.rekeyAfter(life)) }

// armRekeyAt schedules rekeying of the IKE SA in d.
func (sa *ikeSA) armRekeyAt(d time.Duration) {
	if sa.rekeyTimer != nil {
		sa.rekeyTimer.Stop()
	}
	sa.rekeyTimer = sa.p.e.clock.AfterFunc(d, func() {
		p := sa.p
		p.mu.Lock()
		defer p.unlock()
		if sa.state == stateEstablished && p.ike == sa {
			sa.rekeyIKE()
		}
	})
}

// NATKeepaliveInterval is how often a host behind a NAT sends a NAT
// keepalive to hold the mapping open (RFC 3948 §2.3).
const NATKeepaliveInterval = 20 * time.Second

// armKeepalive sends NAT keepalives while we are behind a NAT.
func (sa *ikeSA) armKeepalive() {
	if !sa.natLocal || sa.state != stateEstablished {
		return
	}
	if sa.aliveTimer != nil {
		sa.aliveTimer.Stop()
	}
	sa.aliveTimer = sa.p.e.clock.AfterFunc(NATKeepaliveInterval, func() {
		p := sa.p
		p.mu.Lock()
		defer p.unlock()
		if sa.state != stateEstablished || sa.port != PortNATT {
			return
		}
		if err := p.e.conn.WriteTo(PortNATT, []byte{0xff}, sa.remote); err == nil {
			p.e.stats.Sent.Add(1)
		}
		sa.armKeepalive()
	})
}

// armDPD schedules the next liveness check.
func (sa *ikeSA) armDPD() {
	iv := sa.p.cfg.DPDInterval
	if iv <= 0 {
		return
	}
	if sa.dpdTimer != nil {
		sa.dpdTimer.Stop()
	}
	wait := iv - sa.now().Sub(sa.lastRecv)
	if wait <= 0 {
		wait = iv
	}
	sa.dpdTimer = sa.p.e.clock.AfterFunc(wait, func() {
		p := sa.p
		p.mu.Lock()
		defer p.unlock()
		if sa.state != stateEstablished {
			return
		}
		if sa.now().Sub(sa.lastRecv) >= iv && sa.pend == nil && len(sa.queue) == 0 {
			sa.checkLiveness()
		}
		sa.armDPD()
	})
}
