// Status: what the engine knows about a peer, for ovnsec's status output
// and tests, including a human reason when the IKE SA is not up.

package ike

import (
	"time"

	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike/message"
)

// PeerStatus describes a peer's current IKE SA.
type PeerStatus struct {
	Name        string
	Known       bool   // the peer is configured
	State       string // "down", "connecting", "established", "deleting"
	Established time.Time
	Initiator   bool // we were the (rekey) initiator of the current IKE SA
	SPIi, SPIr  message.SPI
	Algorithms  string // e.g. AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519
	NATLocal    bool   // we are behind a NAT
	NATRemote   bool   // the peer is behind a NAT (or forces encapsulation)
	Encap       bool   // ESP in UDP
	Port        uint16 // our IKE port in use
	Rekeys      int    // IKE and Child SA rekeys so far
	Children    []ChildStatus
	// Reason says why the peer is not up (or what last went wrong).
	Reason string
}

// ChildStatus describes one Child SA.
type ChildStatus struct {
	Name          string
	State         string // "installed", "rekeying", "rekeyed", "deleting"
	Mode          esp.Mode
	InSPI, OutSPI esp.SPI
	Algorithms    string
	Established   time.Time
	RekeyTime     time.Time
	LocalTS       []TrafficSelector
	RemoteTS      []TrafficSelector
}

// Up reports whether the IKE SA is established.
func (s PeerStatus) Up() bool { return s.State == "established" }

// Status returns the state of the named peer.
func (e *Engine) Status(name string) PeerStatus {
	p := e.peer(name)
	st := PeerStatus{Name: name, State: "down"}
	if p == nil {
		st.Reason = "peer not configured"
		return st
	}
	st.Known = true
	p.mu.Lock()
	defer p.unlock()
	st.Reason = p.reason
	st.Rekeys = p.rekeys
	sa := p.ike
	if sa == nil {
		if st.Reason == "" {
			if p.cfg.Initiate {
				st.Reason = "not connected yet"
			} else {
				st.Reason = "waiting for the peer to initiate"
			}
		}
		return st
	}
	switch sa.state {
	case stateEstablished:
		st.State = "established"
	case stateDeleting:
		st.State = "deleting"
	case stateDead:
		st.State = "down"
	default:
		st.State = "connecting"
		if st.Reason == "" {
			st.Reason = sa.state.String()
		}
	}
	st.Established = sa.established
	st.Initiator = sa.initiator
	st.SPIi, st.SPIr = sa.spiI, sa.spiR
	if sa.keys != nil {
		st.Algorithms = algString(sa.chosen, message.ProtoIKE)
	}
	st.NATLocal, st.NATRemote, st.Encap = sa.natLocal, sa.natRemote, sa.encap
	st.Port = e.conn.LocalPort(sa.port)
	for _, c := range sa.children {
		cs := ChildStatus{Name: c.cfg.Name, Mode: c.cfg.Mode, InSPI: c.info.InSPI, OutSPI: c.info.OutSPI,
			Algorithms: algString(c.chosen, message.ProtoESP), Established: c.info.Established, RekeyTime: c.info.RekeyTime,
			LocalTS: c.info.LocalTS, RemoteTS: c.info.RemoteTS}
		switch c.state {
		case childActive:
			cs.State = "installed"
		case childRekeying:
			cs.State = "rekeying"
		case childReplaced:
			cs.State = "rekeyed"
		case childDeleting:
			cs.State = "deleting"
		}
		st.Children = append(st.Children, cs)
	}
	return st
}
