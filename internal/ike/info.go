// INFORMATIONAL (RFC 7296 §1.4, §2.4): deleting IKE and Child SAs, the
// empty liveness check and detection of a dead peer.

package ike

import (
	"encoding/binary"
	"fmt"

	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike/message"
)

// peerDead returns the timeout action for a request in exch.
func (sa *ikeSA) peerDead(exch message.ExchangeType) func() {
	return func() {
		what := exch.String()
		if exch == message.INFORMATIONAL {
			what = "liveness check"
		}
		sa.fail(ReasonPeerSilent, fmt.Sprintf("peer dead: no answer to %s after %d tries", what, sa.p.e.cfg.RetransmitTries))
	}
}

// checkLiveness sends an empty INFORMATIONAL request.
func (sa *ikeSA) checkLiveness() {
	sa.request(message.INFORMATIONAL, func() ([]message.Payload, error) {
		return []message.Payload{}, nil
	}, func(*message.Message, []byte, []message.Payload) {}, sa.peerDead(message.INFORMATIONAL))
}

// CheckLiveness sends a liveness check to the peer now.
func (e *Engine) CheckLiveness(name string) error {
	p := e.peer(name)
	if p == nil {
		return fmt.Errorf("ike: liveness: no peer %q", name)
	}
	p.mu.Lock()
	defer p.unlock()
	if p.ike == nil || p.ike.state != stateEstablished {
		return fmt.Errorf("ike: liveness: peer %s has no established IKE SA", name)
	}
	p.ike.checkLiveness()
	return nil
}

// DeleteChild deletes the named Child SA (telling the peer).
func (e *Engine) DeleteChild(peerName, child string) error {
	p := e.peer(peerName)
	if p == nil {
		return fmt.Errorf("ike: delete: no peer %q", peerName)
	}
	p.mu.Lock()
	defer p.unlock()
	if p.ike == nil {
		return fmt.Errorf("ike: delete: peer %s has no IKE SA", peerName)
	}
	var cs []*childSA
	for _, c := range p.ike.children {
		if c.cfg.Name == child && (c.state == childActive || c.state == childRekeying) {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return fmt.Errorf("ike: delete: peer %s has no child %q", peerName, child)
	}
	p.ike.deleteChildren(cs...)
	return nil
}

// DeleteIKE deletes the peer's IKE SA and its children (telling the peer);
// the peer stays configured.
func (e *Engine) DeleteIKE(name string) error {
	p := e.peer(name)
	if p == nil {
		return fmt.Errorf("ike: delete: no peer %q", name)
	}
	p.mu.Lock()
	defer p.unlock()
	if p.ike == nil {
		return fmt.Errorf("ike: delete: peer %s has no IKE SA", name)
	}
	sa := p.ike
	sa.state = stateDeleting
	done := func() { sa.destroy() }
	sa.request(message.INFORMATIONAL, func() ([]message.Payload, error) {
		return []message.Payload{&message.Delete{Protocol: message.ProtoIKE}}, nil
	}, func(*message.Message, []byte, []message.Payload) { done() }, done)
	p.reason = failure{ReasonDeleted, "deleted locally"}
	return nil
}

// deleteChildren sends one Delete for cs and forgets them once answered.
func (sa *ikeSA) deleteChildren(cs ...*childSA) {
	for _, c := range cs {
		c.state = childDeleting
		if c.rekeyTimer != nil {
			c.rekeyTimer.Stop()
		}
	}
	sa.request(message.INFORMATIONAL, func() ([]message.Payload, error) {
		d := &message.Delete{Protocol: message.ProtoESP, SPISize: 4}
		for _, c := range cs {
			if !c.gone {
				d.SPIs = append(d.SPIs, spiBytes(c.info.InSPI))
			}
		}
		if len(d.SPIs) == 0 {
			return nil, nil
		}
		return []message.Payload{d}, nil
	}, func(*message.Message, []byte, []message.Payload) {
		for _, c := range cs {
			sa.dropChild(c)
		}
	}, sa.peerDead(message.INFORMATIONAL))
}

// sendDeleteESP tells the peer to delete the SA with our inbound SPI s
// (a Child SA we refused after the peer had set it up).
func (sa *ikeSA) sendDeleteESP(s esp.SPI) {
	sa.request(message.INFORMATIONAL, func() ([]message.Payload, error) {
		return []message.Payload{&message.Delete{Protocol: message.ProtoESP, SPISize: 4, SPIs: [][]byte{spiBytes(s)}}}, nil
	}, func(*message.Message, []byte, []message.Payload) {}, func() {})
}

// respondInformational answers deletes, notifications and liveness checks.
func (sa *ikeSA) respondInformational(ps []message.Payload) ([]message.Payload, func()) {
	p := sa.p
	var out []message.Payload
	var after func()
	var espOut [][]byte
	for _, pl := range ps {
		switch x := pl.(type) {
		case *message.Delete:
			switch x.Protocol {
			case message.ProtoIKE:
				after = func() {
					if p.ike == sa {
						p.reason = failure{ReasonDeleted, "peer deleted the IKE SA"}
					}
					sa.log().Info("ike: peer deleted the IKE SA")
					sa.destroy()
					p.scheduleRetry()
				}
				return nil, after
			case message.ProtoESP:
				for _, s := range x.SPIs {
					if len(s) != 4 {
						continue
					}
					c := sa.childByOutSPI(esp.SPI(binary.BigEndian.Uint32(s)))
					if c == nil {
						continue
					}
					if c.state != childDeleting {
						espOut = append(espOut, spiBytes(c.info.InSPI))
					}
					sa.dropChild(c)
				}
			}
		case *message.Notify:
			if x.NotifyType == message.AUTHENTICATION_FAILED {
				return nil, func() { sa.fail(ReasonPeerRefusedAuth, "AUTHENTICATION_FAILED from peer") }
			}
		}
	}
	if len(espOut) > 0 {
		out = append(out, &message.Delete{Protocol: message.ProtoESP, SPISize: 4, SPIs: espOut})
	}
	return out, after
}
