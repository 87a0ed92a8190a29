// Status: what the engine knows about a peer, for ovnsec's status output
// and tests: typed states, and a reason code with a human reason when the
// IKE SA is not up.

package ike

import (
	"fmt"
	"time"

	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike/message"
)

// SAState is the state of a peer's IKE SA as Status reports it. Its
// text (String, and MarshalText for JSON) is one of "down", "connecting",
// "established", "deleting".
type SAState uint8

const (
	SADown        SAState = iota // no IKE SA
	SAConnecting                 // IKE_SA_INIT or IKE_AUTH in progress
	SAEstablished                // authenticated
	SADeleting                   // Delete sent, waiting for the answer
)

func (s SAState) String() string {
	switch s {
	case SADown:
		return "down"
	case SAConnecting:
		return "connecting"
	case SAEstablished:
		return "established"
	case SADeleting:
		return "deleting"
	}
	return fmt.Sprintf("SAState(%d)", uint8(s))
}

// MarshalText returns the String text.
func (s SAState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ChildState is the state of a Child SA as Status reports it. Its text is
// one of "installed", "rekeying", "rekeyed", "deleting".
type ChildState uint8

const (
	ChildSAInstalled ChildState = iota + 1 // in use
	ChildSARekeying                        // a rekey of it is in flight
	ChildSARekeyed                         // replaced by a rekey; waiting for its Delete
	ChildSADeleting                        // Delete sent
)

func (s ChildState) String() string {
	switch s {
	case ChildSAInstalled:
		return "installed"
	case ChildSARekeying:
		return "rekeying"
	case ChildSARekeyed:
		return "rekeyed"
	case ChildSADeleting:
		return "deleting"
	}
	return fmt.Sprintf("ChildState(%d)", uint8(s))
}

// MarshalText returns the String text.
func (s ChildState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// PeerStatus describes a peer's current IKE SA.
type PeerStatus struct {
	Name        string
	Known       bool // the peer is configured
	State       SAState
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
	// Reason says why the peer is not up (or what last went wrong), and
	// Code classifies it (never empty; ReasonNone when up and nothing
	// went wrong).
	Reason string
	Code   ReasonCode
}

// ChildStatus describes one Child SA.
type ChildStatus struct {
	Name          string
	State         ChildState
	Mode          esp.Mode
	InSPI, OutSPI esp.SPI
	Algorithms    string
	Established   time.Time
	RekeyTime     time.Time
	LocalTS       []TrafficSelector
	RemoteTS      []TrafficSelector
}

// Up reports whether the IKE SA is established.
func (s PeerStatus) Up() bool { return s.State == SAEstablished }

// Status returns the state of the named peer.
func (e *Engine) Status(name string) PeerStatus {
	p := e.peer(name)
	st := PeerStatus{Name: name, State: SADown}
	if p == nil {
		st.Reason, st.Code = "peer not configured", ReasonNotConfigured
		return st
	}
	st.Known = true
	p.mu.Lock()
	defer p.unlock()
	st.Reason, st.Code = p.reason.text, p.reason.code
	st.Rekeys = p.rekeys
	sa := p.ike
	if sa == nil {
		if st.Code == "" {
			if p.cfg.Initiate {
				st.Reason, st.Code = "not connected yet", ReasonNotConnected
			} else {
				st.Reason, st.Code = "waiting for the peer to initiate", ReasonWaitingForPeer
			}
		}
		return st
	}
	switch sa.state {
	case stateEstablished:
		st.State = SAEstablished
		if st.Code == "" {
			st.Code = ReasonNone
		}
	case stateDeleting:
		st.State = SADeleting
		if st.Code == "" {
			st.Code = ReasonDeleted
		}
	case stateDead:
		st.State = SADown
		if st.Code == "" {
			st.Code = ReasonDeleted
		}
	default:
		st.State = SAConnecting
		if st.Code == "" {
			st.Reason, st.Code = sa.state.String(), ReasonNegotiating
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
			cs.State = ChildSAInstalled
		case childRekeying:
			cs.State = ChildSARekeying
		case childReplaced:
			cs.State = ChildSARekeyed
		case childDeleting:
			cs.State = ChildSADeleting
		}
		st.Children = append(st.Children, cs)
	}
	return st
}
