// Configuration: the Engine's Config, the Peer description and its
// authentication, Child SA and proposal settings, with defaults and checks.

package ike

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike/message"
)

// Defaults.
const (
	DefaultIKELifetime   = 4 * time.Hour
	DefaultChildLifetime = time.Hour
	DefaultDPDInterval   = 30 * time.Second
	DefaultHalfOpenLimit = 32
	// DefaultHalfOpenMax and DefaultHalfOpenMaxPerAddr cap the responder
	// IKE SAs waiting for IKE_AUTH: over all peers, and per source
	// address (one peer per address). A legitimate peer has one, two
	// when an attempt of its crosses a retry.
	DefaultHalfOpenMax        = 256
	DefaultHalfOpenMaxPerAddr = 4
	DefaultFragmentSize       = 1280

	// DefaultIKEProposal is what OVS configures for strongSwan and
	// Libreswan (aes256gcm16-sha256-modp2048) with Curve25519 added in
	// front: the initiator sends an x25519 key share, and a responder
	// answers a peer that offers only MODP-2048 with MODP-2048.
	DefaultIKEProposal = "aes256gcm16-prfsha256-x25519-modp2048"
	// DefaultESPProposal is AES-256-GCM-16 without extended sequence numbers.
	DefaultESPProposal = "aes256gcm16-noesn"
)

// Retransmission: the first retry after RetransmitBase, doubling, giving up
// after RetransmitTries transmissions (RFC 7296 §2.1).
const (
	RetransmitBase  = 500 * time.Millisecond
	RetransmitTries = 5
)

// Config configures an Engine.
type Config struct {
	// Local is the address the engine binds its two UDP sockets to.
	Local netip.Addr
	// PortIKE and PortNATT are the local ports (default 500 and 4500; -1
	// asks the kernel for a free port, for tests).
	PortIKE, PortNATT int
	// Handler receives Child SA events; nil discards them.
	Handler ChildSAHandler
	// Clock drives every timer; nil means the system clock.
	Clock clock.Clock
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// HalfOpenLimit is how many responder IKE SAs (IKE_SA_INIT answered,
	// IKE_AUTH not done) may exist over all peers before new IKE_SA_INIT
	// requests must carry a COOKIE (RFC 7296 §2.6). A source address that
	// already has one must always show a cookie for another. 0 means
	// DefaultHalfOpenLimit; -1 demands cookies always.
	HalfOpenLimit int
	// HalfOpenMax and HalfOpenMaxPerAddr are hard caps on those SAs, over
	// all peers and per source address: beyond them IKE_SA_INIT requests
	// are dropped (after the cookie check) and counted in
	// Stats.HalfOpenFull. 0 (or less) means DefaultHalfOpenMax and
	// DefaultHalfOpenMaxPerAddr.
	HalfOpenMax, HalfOpenMaxPerAddr int
	// OnESP, if set, receives ESP-in-UDP datagrams that arrive on the NAT-T
	// port (the buffer is reused after the call returns).
	OnESP func(b []byte, from netip.AddrPort)
	// Rand is the randomness source for SPIs, nonces and keys; nil means
	// crypto/rand.
	Rand io.Reader
	// Conn, if set, replaces the UDP sockets (tests, benchmarks).
	Conn PacketConn
	// RetransmitBase and RetransmitTries override the retransmission
	// schedule (defaults RetransmitBase, RetransmitTries).
	RetransmitBase  time.Duration
	RetransmitTries int
}

// ChildSAHandler learns about Child SAs. Calls are made without engine locks
// held, one at a time per peer, in the order the events happened.
type ChildSAHandler interface {
	HandleChildSA(ev ChildEvent, sa ChildSA)
}

// HandlerFunc adapts a function to ChildSAHandler.
type HandlerFunc func(ev ChildEvent, sa ChildSA)

// HandleChildSA calls f.
func (f HandlerFunc) HandleChildSA(ev ChildEvent, sa ChildSA) { f(ev, sa) }

// ChildEvent says what happened to a Child SA.
type ChildEvent uint8

const (
	// ChildEstablished: a new Child SA (IKE_AUTH or CREATE_CHILD_SA).
	ChildEstablished ChildEvent = iota + 1
	// ChildRekeyed: sa replaces the Child SA with InSPI sa.Replaces; the old
	// one follows with ChildDeleted once the peer confirmed its deletion.
	ChildRekeyed
	// ChildDeleted: remove the SA pair.
	ChildDeleted
)

func (e ChildEvent) String() string {
	switch e {
	case ChildEstablished:
		return "established"
	case ChildRekeyed:
		return "rekeyed"
	case ChildDeleted:
		return "deleted"
	}
	return fmt.Sprintf("ChildEvent(%d)", uint8(e))
}

// ChildSA is one negotiated ESP SA pair.
type ChildSA struct {
	Peer, Name     string
	Mode           esp.Mode
	InSPI, OutSPI  esp.SPI
	InKey, OutKey  esp.Key
	Local, Remote  netip.AddrPort // NAT-T ports when Encap is UDP, else port 0
	Encap          esp.Encap
	TSi, TSr       []TrafficSelector // as negotiated (initiator's, responder's)
	LocalTS        []TrafficSelector
	RemoteTS       []TrafficSelector
	Replaces       esp.SPI // ChildRekeyed: InSPI of the SA this one replaces
	Established    time.Time
	Initiator      bool // we initiated the exchange that created it
	EncrKeyBits    int
	ESN            bool
	PFSGroup       message.DHGroup
	IKESPIi        message.SPI
	IKESPIr        message.SPI
	ChildLifetime  time.Duration
	RekeyTime      time.Time
	EncapRemoteNAT bool // the peer is behind a NAT (or faked it)
}

// TrafficSelector is one selector: an address prefix or range, an IP
// protocol (0 = any) and a port range (0-65535 = any).
type TrafficSelector struct {
	Start, End         netip.Addr
	Proto              uint8
	StartPort, EndPort uint16
}

// PrefixTS returns the selector for prefix p, protocol proto and all ports.
func PrefixTS(p netip.Prefix, proto uint8) TrafficSelector {
	p = p.Masked()
	return TrafficSelector{Start: p.Addr(), End: lastAddr(p), Proto: proto, EndPort: 65535}
}

func (t TrafficSelector) String() string {
	s := t.Start.String()
	if t.End != t.Start {
		s += "-" + t.End.String()
	}
	if t.Proto != 0 {
		s += fmt.Sprintf("[%d", t.Proto)
		if t.StartPort != 0 || t.EndPort != 65535 {
			if t.StartPort == t.EndPort {
				s += fmt.Sprintf("/%d", t.StartPort)
			} else {
				s += fmt.Sprintf("/%d-%d", t.StartPort, t.EndPort)
			}
		}
		s += "]"
	}
	return s
}

// ChildConfig describes one Child SA to negotiate with a peer.
type ChildConfig struct {
	Name string
	Mode esp.Mode // default Transport
	// LocalTS and RemoteTS default to the peer's Local and Remote address.
	LocalTS, RemoteTS []TrafficSelector
}

// Auth is how we authenticate and how we authenticate the peer. Set PSK,
// or Cert (with Key and CAs or PeerCert).
type Auth struct {
	PSK []byte
	// Cert is our chain, end entity first; Key its private key.
	Cert []*x509.Certificate
	Key  crypto.Signer
	// CAs are the trust anchors for the peer's certificate.
	CAs []*x509.Certificate
	// PeerCert, if set, is the only certificate the peer may present
	// (pinned; self-signed certificates as ovs-pki self-sign makes them).
	PeerCert *x509.Certificate
}

func (a *Auth) isPSK() bool { return len(a.PSK) > 0 }

// Peer is one remote IKE endpoint and what to negotiate with it.
type Peer struct {
	Name          string
	Local, Remote netip.Addr
	// RemotePortIKE and RemotePortNATT default to 500 and 4500.
	RemotePortIKE, RemotePortNATT uint16
	Auth                          Auth
	// LocalID and RemoteID are FQDN names ("name" or "@name") or IP
	// addresses; they default to the Local and Remote addresses (what
	// strongSwan uses in OVS's PSK mode).
	LocalID, RemoteID string
	Children          []ChildConfig
	// IKEProposals and ESPProposals use strongSwan's notation, e.g.
	// "aes256gcm16-prfsha256-modp2048" and "aes256gcm16-modp2048" (a DH
	// group in an ESP proposal asks for PFS). Defaults: DefaultIKEProposal,
	// DefaultESPProposal.
	IKEProposals, ESPProposals []string
	// ForceEncap sends a faked NAT_DETECTION_SOURCE_IP so both sides use
	// ESP-in-UDP (strongSwan's encap = yes).
	ForceEncap bool
	// Lifetimes; rekeying starts RekeyMargin (default a tenth) plus up to
	// RekeyJitter (default a tenth of the margin) before expiry.
	IKELifetime, ChildLifetime time.Duration
	RekeyMargin, RekeyJitter   time.Duration
	// DPDInterval: a liveness check is sent when nothing was received for
	// this long; 0 means DefaultDPDInterval, negative disables it.
	DPDInterval time.Duration
	// Initiate makes the engine start (and restart) the IKE SA itself.
	Initiate bool
	// NoFragmentation disables RFC 7383 fragmentation.
	NoFragmentation bool
}

// peerConfig is a checked Peer with parsed proposals and defaults filled.
type peerConfig struct {
	Peer
	ike, esp          []proposal
	children          []ChildConfig
	localID, remoteID identity
}

func (p Peer) check() (*peerConfig, error) {
	if p.Name == "" {
		return nil, errors.New("ike: peer has no name")
	}
	if !p.Remote.IsValid() {
		return nil, fmt.Errorf("ike: peer %s: remote address missing", p.Name)
	}
	if p.Auth.isPSK() == (len(p.Auth.Cert) > 0) {
		return nil, fmt.Errorf("ike: peer %s: set either a PSK or a certificate", p.Name)
	}
	if len(p.Auth.Cert) > 0 {
		if p.Auth.Key == nil {
			return nil, fmt.Errorf("ike: peer %s: certificate without private key", p.Name)
		}
		if len(p.Auth.CAs) == 0 && p.Auth.PeerCert == nil {
			return nil, fmt.Errorf("ike: peer %s: certificate authentication needs CA certificates or a pinned peer certificate", p.Name)
		}
	}
	c := &peerConfig{Peer: p}
	if c.RemoteID == "" {
		c.RemoteID = p.Remote.String()
	}
	if c.LocalID == "" && p.Local.IsValid() {
		c.LocalID = p.Local.String()
	}
	if c.LocalID != "" {
		var err error
		if c.localID, err = parseIdentity(c.LocalID); err != nil {
			return nil, fmt.Errorf("ike: peer %s: LocalID: %w", p.Name, err)
		}
	}
	var err error
	if c.remoteID, err = parseIdentity(c.RemoteID); err != nil {
		return nil, fmt.Errorf("ike: peer %s: RemoteID: %w", p.Name, err)
	}
	if c.RemotePortIKE == 0 {
		c.RemotePortIKE = message.PortIKE
	}
	if c.RemotePortNATT == 0 {
		c.RemotePortNATT = message.PortNATT
	}
	if c.IKELifetime <= 0 {
		c.IKELifetime = DefaultIKELifetime
	}
	if c.ChildLifetime <= 0 {
		c.ChildLifetime = DefaultChildLifetime
	}
	if c.DPDInterval == 0 {
		c.DPDInterval = DefaultDPDInterval
	}
	ikeP := p.IKEProposals
	if len(ikeP) == 0 {
		ikeP = []string{DefaultIKEProposal}
	}
	espP := p.ESPProposals
	if len(espP) == 0 {
		espP = []string{DefaultESPProposal}
	}
	for _, s := range ikeP {
		pr, err := parseProposal(s, message.ProtoIKE)
		if err != nil {
			return nil, fmt.Errorf("ike: peer %s: %w", p.Name, err)
		}
		c.ike = append(c.ike, pr)
	}
	for _, s := range espP {
		pr, err := parseProposal(s, message.ProtoESP)
		if err != nil {
			return nil, fmt.Errorf("ike: peer %s: %w", p.Name, err)
		}
		c.esp = append(c.esp, pr)
	}
	if len(p.Children) == 0 {
		return nil, fmt.Errorf("ike: peer %s: no Child SA configured", p.Name)
	}
	for _, ch := range p.Children {
		if ch.Name == "" {
			return nil, fmt.Errorf("ike: peer %s: child without a name", p.Name)
		}
		if ch.Mode == 0 {
			ch.Mode = esp.Transport
		}
		if ch.Mode != esp.Transport && ch.Mode != esp.Tunnel {
			return nil, fmt.Errorf("ike: peer %s child %s: invalid mode %v", p.Name, ch.Name, ch.Mode)
		}
		if len(ch.LocalTS) == 0 {
			if !p.Local.IsValid() {
				return nil, fmt.Errorf("ike: peer %s child %s: no local traffic selector and no local address", p.Name, ch.Name)
			}
			ch.LocalTS = []TrafficSelector{PrefixTS(netip.PrefixFrom(p.Local, p.Local.BitLen()), 0)}
		}
		if len(ch.RemoteTS) == 0 {
			ch.RemoteTS = []TrafficSelector{PrefixTS(netip.PrefixFrom(p.Remote, p.Remote.BitLen()), 0)}
		}
		for _, ts := range append(append([]TrafficSelector(nil), ch.LocalTS...), ch.RemoteTS...) {
			if err := ts.check(); err != nil {
				return nil, fmt.Errorf("ike: peer %s child %s: %w", p.Name, ch.Name, err)
			}
		}
		c.children = append(c.children, ch)
	}
	return c, nil
}

func (c *peerConfig) rekeyMargin(life time.Duration) time.Duration {
	if c.RekeyMargin > 0 && c.RekeyMargin < life {
		return c.RekeyMargin
	}
	return life / 10
}

func (c *peerConfig) rekeyJitter(margin time.Duration) time.Duration {
	if c.RekeyJitter > 0 {
		return c.RekeyJitter
	}
	return margin / 10
}
