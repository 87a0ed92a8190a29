// The Engine: sockets, the receive loop, dispatch of datagrams to IKE SAs,
// peer management and the public API (New, Run, AddPeer, RemovePeer,
// Initiate, Status).

package ike

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/ike/message"
)

// Engine runs IKEv2 for a set of peers on one local address.
type Engine struct {
	cfg   Config
	conn  PacketConn
	clock clock.Clock
	log   *slog.Logger
	rand  io.Reader

	mu     sync.Mutex // guards peers (control path only)
	peers  map[string]*peer
	byAddr sync.Map // netip.Addr -> *peer, for IKE_SA_INIT requests
	sas    sync.Map // message.SPI (ours) -> *ikeSA
	espIn  sync.Map // esp.SPI (ours, inbound) -> struct{}

	halfOpen atomic.Int64 // responder SAs waiting for IKE_AUTH (see reserveHalfOpen)
	sendBufs sync.Pool    // *[]byte: IKE messages behind the non-ESP marker
	cookies  cookieJar
	events   eventQueue
	stats    Stats
	closed   atomic.Bool
	// suspended: Suspend ran; nothing is received, sent or deleted any
	// more (the SAs were handed to the next process).
	suspended atomic.Bool
}

// Stats counts what the engine dropped or did; read with Engine.Stats.
type Stats struct {
	Received, Sent, Dropped, DecodeErrors, AuthErrors, UnknownSPI, Retransmits, CookiesSent atomic.Uint64
	// HalfOpenFull: IKE_SA_INIT requests dropped because the half-open
	// SAs reached Config.HalfOpenMax or Config.HalfOpenMaxPerAddr.
	HalfOpenFull atomic.Uint64
	// InitReplays: IKE_SA_INIT requests dropped because an SA of the peer
	// already has their SPIi but they are not a retransmission of its
	// request (a replay, possibly altered).
	InitReplays atomic.Uint64
	// StrayRetransmits: retransmitted requests not answered because they
	// came from an address or port other than the SA's.
	StrayRetransmits atomic.Uint64
	// IKEEstablished counts IKE SAs established by IKE_AUTH, as initiator
	// or responder (rekeys are not counted here).
	IKEEstablished atomic.Uint64
	// IKERekeys and ChildRekeys count completed rekeys of IKE SAs and of
	// Child SAs, whichever side started them.
	IKERekeys, ChildRekeys atomic.Uint64
	// Restored counts IKE SAs taken up from an earlier process (Restore).
	Restored atomic.Uint64
	// AuthFailures counts failed IKE_AUTH exchanges by reason code, in
	// ReasonCodes order: our check of the peer failed (auth_failed,
	// cert_untrusted, identity_mismatch, ...) or the peer refused us
	// (peer_refused_auth).
	AuthFailures [numReasonCodes]atomic.Uint64
}

// countAuthFailure adds one IKE_AUTH failure for code.
func (s *Stats) countAuthFailure(code ReasonCode) {
	if i, ok := reasonIndex(code); ok {
		s.AuthFailures[i].Add(1)
	}
}

// StatsSnapshot is a copy of Stats.
type StatsSnapshot struct {
	Received, Sent, Dropped, DecodeErrors, AuthErrors, UnknownSPI, Retransmits, CookiesSent uint64
	HalfOpenFull, InitReplays, StrayRetransmits                                             uint64
	IKEEstablished, IKERekeys, ChildRekeys, Restored                                        uint64
	// AuthFailures holds the codes that occurred (no zero entries).
	AuthFailures map[ReasonCode]uint64
}

// Stats returns the current counters.
func (e *Engine) Stats() StatsSnapshot {
	s := &e.stats
	snap := StatsSnapshot{
		Received: s.Received.Load(), Sent: s.Sent.Load(), Dropped: s.Dropped.Load(),
		DecodeErrors: s.DecodeErrors.Load(), AuthErrors: s.AuthErrors.Load(), UnknownSPI: s.UnknownSPI.Load(),
		Retransmits: s.Retransmits.Load(), CookiesSent: s.CookiesSent.Load(),
		HalfOpenFull: s.HalfOpenFull.Load(), InitReplays: s.InitReplays.Load(), StrayRetransmits: s.StrayRetransmits.Load(),
		IKEEstablished: s.IKEEstablished.Load(), IKERekeys: s.IKERekeys.Load(), ChildRekeys: s.ChildRekeys.Load(),
		Restored:     s.Restored.Load(),
		AuthFailures: map[ReasonCode]uint64{},
	}
	for i, c := range reasonCodes {
		if n := s.AuthFailures[i].Load(); n != 0 {
			snap.AuthFailures[c] = n
		}
	}
	return snap
}

// New binds the sockets. Call Run to process packets.
func New(cfg Config) (*Engine, error) {
	e := &Engine{cfg: cfg, clock: cfg.Clock, log: cfg.Logger, rand: cfg.Rand, peers: map[string]*peer{}}
	if e.clock == nil {
		e.clock = clock.Real{}
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.rand == nil {
		e.rand = rand.Reader
	}
	if e.cfg.RetransmitBase <= 0 {
		e.cfg.RetransmitBase = RetransmitBase
	}
	if e.cfg.RetransmitTries <= 0 {
		e.cfg.RetransmitTries = RetransmitTries
	}
	if e.cfg.HalfOpenLimit == 0 {
		e.cfg.HalfOpenLimit = DefaultHalfOpenLimit
	}
	if e.cfg.HalfOpenMax <= 0 {
		e.cfg.HalfOpenMax = DefaultHalfOpenMax
	}
	if e.cfg.HalfOpenMaxPerAddr <= 0 {
		e.cfg.HalfOpenMaxPerAddr = DefaultHalfOpenMaxPerAddr
	}
	if err := e.cookies.init(e.rand, e.clock.Now()); err != nil {
		return nil, err
	}
	e.events.init()
	if cfg.Conn != nil {
		e.conn = cfg.Conn
		return e, nil
	}
	if !cfg.Local.IsValid() {
		return nil, errors.New("ike: Config.Local address is required")
	}
	pi, pn := cfg.PortIKE, cfg.PortNATT
	if pi == 0 {
		pi = message.PortIKE
	}
	if pn == 0 {
		pn = message.PortNATT
	}
	c, err := listenUDP(cfg.Local, pi, pn)
	if err != nil {
		return nil, err
	}
	e.conn = c
	return e, nil
}

// LocalPorts returns the bound IKE and NAT-T ports.
func (e *Engine) LocalPorts() (ike, natt uint16) {
	return e.conn.LocalPort(PortIKE), e.conn.LocalPort(PortNATT)
}

// Run processes packets and events until ctx ends, then deletes all IKE
// SAs (telling the peers) and closes the sockets.
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, p := range []Port{PortIKE, PortNATT} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.readLoop(p)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.events.run(e.cfg.Handler)
	}()
	<-ctx.Done()
	if !e.suspended.Load() {
		e.mu.Lock()
		peers := make([]*peer, 0, len(e.peers))
		for _, p := range e.peers {
			peers = append(peers, p)
		}
		e.mu.Unlock()
		for _, p := range peers {
			p.shutdown(true)
		}
	}
	e.closed.Store(true)
	err := e.conn.Close()
	e.events.close()
	wg.Wait()
	return err
}

func (e *Engine) readLoop(port Port) {
	buf := make([]byte, 65536)
	for {
		n, from, err := e.conn.ReadFrom(port, buf)
		if err != nil {
			if e.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			e.log.Warn("ike: read failed", "port", port, "err", err)
			continue
		}
		e.receive(port, buf[:n], from)
	}
}

// receive handles one datagram. It never panics on input: malformed
// packets are counted and dropped.
func (e *Engine) receive(port Port, b []byte, from netip.AddrPort) {
	if e.suspended.Load() {
		return // the SAs belong to the next process now
	}
	e.stats.Received.Add(1)
	if port == PortNATT {
		if len(b) == 1 && b[0] == 0xff {
			return // NAT keepalive (RFC 3948 §2.3)
		}
		ike, ok := message.StripNonESPMarker(b)
		if !ok {
			if e.cfg.OnESP != nil {
				e.cfg.OnESP(b, from)
			} else {
				e.stats.Dropped.Add(1)
			}
			return
		}
		b = ike
	}
	h, err := message.ParseHeader(b)
	if err != nil {
		e.stats.DecodeErrors.Add(1)
		return
	}
	if h.Exchange == message.IKE_SA_INIT && !h.IsResponse() && h.SPIr.IsZero() {
		e.handleInitRequest(port, b, h, from)
		return
	}
	ours := h.SPIi
	if h.IsInitiator() {
		ours = h.SPIr
	}
	v, ok := e.sas.Load(ours)
	if !ok {
		e.stats.UnknownSPI.Add(1)
		return
	}
	sa := v.(*ikeSA)
	p := sa.p
	p.mu.Lock()
	defer p.unlock()
	if sa.spiI != h.SPIi || (!sa.spiR.IsZero() && sa.spiR != h.SPIr) {
		e.stats.UnknownSPI.Add(1)
		return
	}
	sa.receive(port, b, h, from)
}

// AddPeer adds (or replaces) a peer. If the peer initiates, negotiation
// starts at once.
func (e *Engine) AddPeer(cfg Peer) error {
	c, err := cfg.check()
	if err != nil {
		return err
	}
	if !c.Local.IsValid() {
		c.Local = e.cfg.Local
	}
	if !c.Local.IsValid() || c.Local.IsUnspecified() {
		return fmt.Errorf("ike: peer %s: local address unknown (set Peer.Local, or Config.Local to a specific address)", c.Name)
	}
	if c.LocalID == "" {
		c.LocalID = c.Local.String()
		c.localID, _ = parseIdentity(c.LocalID)
	}
	e.mu.Lock()
	old := e.peers[c.Name]
	if o, ok := e.byAddr.Load(c.Remote); ok && o.(*peer).cfg.Name != c.Name {
		e.mu.Unlock()
		return fmt.Errorf("ike: peer %s: remote %s already belongs to peer %s", c.Name, c.Remote, o.(*peer).cfg.Name)
	}
	p := &peer{e: e, cfg: c}
	if old != nil {
		e.byAddr.CompareAndDelete(old.cfg.Remote, old)
	}
	e.peers[c.Name] = p
	e.byAddr.Store(c.Remote, p)
	e.mu.Unlock()
	if old != nil {
		old.shutdown(true)
	}
	if c.Initiate {
		p.mu.Lock()
		p.initiate()
		p.unlock()
	}
	return nil
}

// RemovePeer deletes the peer's SAs (telling the peer) and forgets it.
func (e *Engine) RemovePeer(name string) {
	e.mu.Lock()
	p := e.peers[name]
	if p != nil {
		delete(e.peers, name)
		e.byAddr.CompareAndDelete(p.cfg.Remote, p)
	}
	e.mu.Unlock()
	if p != nil {
		p.shutdown(true)
	}
}

// UpdateCredentials replaces the certificates, key and trust anchors the
// peer's future IKE SAs authenticate with (a certificate renewed or a CA
// bundle changed under the same path). Established IKE and Child SAs are
// kept: they were authenticated when they were made, and rekeying them does
// not authenticate again. A peer that uses a PSK cannot switch to
// certificates here (that is a new configuration: AddPeer).
func (e *Engine) UpdateCredentials(name string, a Auth) error {
	switch {
	case a.isPSK():
		return fmt.Errorf("ike: peer %s: UpdateCredentials takes certificates, not a PSK", name)
	case len(a.Cert) == 0 || a.Key == nil:
		return fmt.Errorf("ike: peer %s: UpdateCredentials needs a certificate chain and its private key", name)
	case len(a.CAs) == 0 && a.PeerCert == nil:
		return fmt.Errorf("ike: peer %s: certificate authentication needs CA certificates or a pinned peer certificate", name)
	}
	p := e.peer(name)
	if p == nil {
		return fmt.Errorf("ike: update credentials: no peer %q", name)
	}
	p.mu.Lock()
	defer p.unlock()
	if p.cfg.Auth.isPSK() {
		return fmt.Errorf("ike: peer %s authenticates with a PSK; give it a new configuration to use certificates", name)
	}
	p.cfg.Auth = Auth{Cert: slices.Clone(a.Cert), Key: a.Key, CAs: slices.Clone(a.CAs), PeerCert: a.PeerCert}
	return nil
}

// Initiate starts an IKE SA with the peer unless one exists or is being
// set up.
func (e *Engine) Initiate(name string) error {
	p := e.peer(name)
	if p == nil {
		return fmt.Errorf("ike: initiate: no peer %q", name)
	}
	p.mu.Lock()
	defer p.unlock()
	p.initiate()
	return nil
}

func (e *Engine) peer(name string) *peer {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.peers[name]
}

// WriteESP sends an ESP-in-UDP datagram (RFC 3948) from the engine's NAT-T
// socket, which the datapath shares with IKE: incoming ESP-in-UDP arrives
// through Config.OnESP.
func (e *Engine) WriteESP(b []byte, dst netip.AddrPort) error {
	if len(b) < 8 || b[0]|b[1]|b[2]|b[3] == 0 {
		return fmt.Errorf("ike: WriteESP to %s: not an ESP packet (SPI must be nonzero)", dst)
	}
	return e.conn.WriteTo(PortNATT, b, dst)
}

// send writes one IKE message (with the non-ESP marker on the NAT-T port).
func (e *Engine) send(port Port, b []byte, dst netip.AddrPort) {
	if port == PortNATT {
		bp, _ := e.sendBufs.Get().(*[]byte)
		if bp == nil {
			bp = new([]byte)
		}
		n := message.NonESPMarkerLen + len(b)
		buf := slices.Grow((*bp)[:0], n)[:n]
		clear(buf[:message.NonESPMarkerLen]) // RFC 3948 §2.2
		copy(buf[message.NonESPMarkerLen:], b)
		defer func() {
			if cap(buf) <= 2*DefaultFragmentSize { // keep no jumbo buffers
				*bp = buf
				e.sendBufs.Put(bp)
			}
		}()
		b = buf
	}
	if err := e.conn.WriteTo(port, b, dst); err != nil {
		if !e.closed.Load() {
			e.log.Debug("ike: send failed", "dst", dst, "err", err)
		}
		return
	}
	e.stats.Sent.Add(1)
}

// eventQueue delivers Child SA events in order on one goroutine, outside
// all engine locks.
type eventQueue struct {
	mu     sync.Mutex
	q      []event
	wake   chan struct{}
	closed bool
}

type event struct {
	ev ChildEvent
	sa ChildSA
}

func (q *eventQueue) init() { q.wake = make(chan struct{}, 1) }

func (q *eventQueue) push(evs []event) {
	if len(evs) == 0 {
		return
	}
	q.mu.Lock()
	q.q = append(q.q, evs...)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *eventQueue) run(h ChildSAHandler) {
	var spare []event // the last batch's backing array, handed back to push
	for {
		q.mu.Lock()
		evs := q.q
		q.q = spare
		closed := q.closed
		q.mu.Unlock()
		for _, ev := range evs {
			if h != nil {
				h.HandleChildSA(ev.ev, ev.sa)
			}
		}
		clear(evs) // the events hold keys
		spare = evs[:0]
		if closed && len(evs) == 0 {
			return
		}
		if len(evs) == 0 {
			<-q.wake
		}
	}
}
