// IKE SA state: message IDs with window size 1, retransmission with
// exponential back-off, cached responses for duplicate requests, SK
// protection and fragmentation of outgoing messages, and the dispatch of
// incoming requests to the exchange handlers.

package ike

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike/message"
	"github.com/ovnsec/ovnsec/internal/ike/suite"
)

type saState uint8

const (
	stateInitSent    saState = iota + 1 // initiator: IKE_SA_INIT request sent
	stateAuthSent                       // initiator: IKE_AUTH request sent
	stateInitDone                       // responder: IKE_SA_INIT answered, waiting for IKE_AUTH
	stateEstablished                    // authenticated
	stateDeleting                       // Delete sent, waiting for the answer
	stateDead                           // gone; ignore everything
)

func (s saState) String() string {
	switch s {
	case stateInitSent:
		return "IKE_SA_INIT sent"
	case stateAuthSent:
		return "IKE_AUTH sent"
	case stateInitDone:
		return "waiting for IKE_AUTH"
	case stateEstablished:
		return "established"
	case stateDeleting:
		return "deleting"
	case stateDead:
		return "deleted"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// ikeSA is one IKE SA. All fields are guarded by p.mu.
type ikeSA struct {
	p         *peer
	state     saState
	initiator bool // we are the original initiator
	spiI      message.SPI
	spiR      message.SPI

	remote     netip.AddrPort // where requests go (IKE or NAT-T port of the peer)
	port       Port           // our port in use
	natLocal   bool           // we are behind a NAT
	natRemote  bool           // the peer is behind a NAT (or faked it)
	encap      bool           // ESP in UDP
	fragOK     bool           // both sides announced RFC 7383
	peerHashes []message.HashAlgorithm

	chosen  suite.Chosen
	prf     suite.PRF
	keys    *suite.IKEKeys
	out, in *suite.AEAD
	ni, nr  []byte
	dh      suite.DH
	initReq []byte // IKE_SA_INIT request as sent / received
	initRsp []byte // IKE_SA_INIT response
	cookie  []byte
	authCh  *pendingChild   // initiator: the child proposed in IKE_AUTH
	pending []*pendingChild // proposed children awaiting an answer

	nextID uint32
	pend   *request
	queue  []func()

	peerNextID uint32
	lastResp   [][]byte
	lastRespID uint32
	haveResp   bool
	respPort   Port
	reasm      message.Reassembler

	children    []*childSA
	created     time.Time
	established time.Time
	lastRecv    time.Time
	halfOpen    bool
	rekeyTimer  clock.Timer
	dpdTimer    clock.Timer
	halfTimer   clock.Timer
	expireTimer clock.Timer // hard lifetime
	aliveTimer  clock.Timer // next NAT keepalive
	rekeyedBy   *ikeSA      // set on the old SA once replaced
	rekeyNonce  []byte      // our nonce in a pending IKE SA rekey (collisions)
	initialCont bool        // the peer sent INITIAL_CONTACT

	logger   *slog.Logger // see log; built for the SPIs in logSPIs
	logSPIs  [2]message.SPI
	announce string // role, while the IKE SA's "established" line is due (announceUp)
}

// request is our outstanding request (window size 1).
type request struct {
	id        uint32
	exch      message.ExchangeType
	pkts      [][]byte
	tries     int
	timer     clock.Timer
	onResp    func(m *message.Message, raw []byte, ps []message.Payload)
	onTimeout func()
}

func (sa *ikeSA) now() time.Time { return sa.p.e.clock.Now() }

// log returns the engine logger with the SA's identity attached. The
// logger is built once and again only when an SPI changed (the responder's
// SPI arrives with the IKE_SA_INIT answer): With formats the attributes,
// which costs more than the line that follows.
func (sa *ikeSA) log() *slog.Logger {
	if sa.logger == nil || sa.logSPIs != [2]message.SPI{sa.spiI, sa.spiR} {
		sa.logger = sa.p.e.log.With("peer", sa.p.cfg.Name, "spi_i", sa.spiI, "spi_r", sa.spiR)
		sa.logSPIs = [2]message.SPI{sa.spiI, sa.spiR}
	}
	return sa.logger
}

// ourSPI is the SPI that names this SA in the engine's table.
func (sa *ikeSA) ourSPI() message.SPI {
	if sa.initiator {
		return sa.spiI
	}
	return sa.spiR
}

func (sa *ikeSA) header(exch message.ExchangeType, id uint32, response bool) message.Header {
	h := message.Header{SPIi: sa.spiI, SPIr: sa.spiR, Exchange: exch, MessageID: id}
	if sa.initiator {
		h.Flags |= message.FlagInitiator
	}
	if response {
		h.Flags |= message.FlagResponse
	}
	return h
}

// protect encodes inner in an SK payload, or SKF fragments if the message
// is too large and fragmentation was negotiated.
func (sa *ikeSA) protect(h message.Header, inner []message.Payload) ([][]byte, error) {
	m := &message.Message{Header: h}
	b, err := m.EncodeSK(nil, inner, sa.out)
	if err != nil {
		return nil, fmt.Errorf("ike: encode %s: %w", h.Exchange, err)
	}
	max := sa.maxMessage()
	if len(b) <= max || !sa.fragOK || h.Exchange == message.IKE_SA_INIT {
		return [][]byte{b}, nil
	}
	m = &message.Message{Header: h}
	frags, err := m.EncodeFragments(inner, sa.out, max)
	if err != nil {
		return nil, fmt.Errorf("ike: fragment %s: %w", h.Exchange, err)
	}
	return frags, nil
}

// maxMessage is the IKE message size that keeps the datagram within
// DefaultFragmentSize (RFC 7383 §2.5.1).
func (sa *ikeSA) maxMessage() int {
	n := DefaultFragmentSize - 8
	if sa.remote.Addr().Is4() {
		n -= 20
	} else {
		n -= 40
	}
	if sa.port == PortNATT {
		n -= message.NonESPMarkerLen
	}
	return n
}

// request sends a new request when the window is free, otherwise queues it.
// build is called when the request can be sent and returns the payloads;
// nil means there is nothing to send any more, an empty slice an empty
// request (liveness check).
func (sa *ikeSA) request(exch message.ExchangeType, build func() ([]message.Payload, error),
	onResp func(m *message.Message, raw []byte, ps []message.Payload), onTimeout func()) {
	do := func() {
		if sa.state == stateDead {
			return
		}
		ps, err := build()
		if err != nil {
			sa.log().Warn("ike: cannot build request", "exchange", exch, "err", err)
			sa.next()
			return
		}
		if ps == nil {
			sa.next() // nothing to do any more (an empty request is non-nil)
			return
		}
		id := sa.nextID
		pkts, err := sa.protect(sa.header(exch, id, false), ps)
		if err != nil {
			sa.log().Warn("ike: cannot encode request", "exchange", exch, "err", err)
			sa.next()
			return
		}
		sa.nextID++
		sa.sendRequest(&request{id: id, exch: exch, pkts: pkts, onResp: onResp, onTimeout: onTimeout})
	}
	if sa.pend != nil {
		sa.queue = append(sa.queue, do)
		return
	}
	do()
}

// sendRequest transmits r and arms its retransmission timer.
func (sa *ikeSA) sendRequest(r *request) {
	sa.pend = r
	sa.transmit(r)
}

func (sa *ikeSA) transmit(r *request) {
	for _, b := range r.pkts {
		sa.p.e.send(sa.port, b, sa.remote)
	}
	r.tries++
	wait := sa.p.e.cfg.RetransmitBase << (r.tries - 1)
	r.timer = sa.p.e.clock.AfterFunc(wait, func() {
		p := sa.p
		p.mu.Lock()
		defer p.unlock()
		if sa.pend != r || sa.state == stateDead {
			return
		}
		if r.tries >= sa.p.e.cfg.RetransmitTries {
			sa.pend = nil
			sa.queue = nil
			if r.onTimeout != nil {
				r.onTimeout()
			}
			return
		}
		sa.p.e.stats.Retransmits.Add(1)
		sa.transmit(r)
	})
}

// next starts the next queued request, if the window is free.
func (sa *ikeSA) next() {
	for sa.pend == nil && len(sa.queue) > 0 && sa.state != stateDead {
		f := sa.queue[0]
		sa.queue = sa.queue[1:]
		f()
	}
}

// receive handles a datagram for this SA (p.mu held).
func (sa *ikeSA) receive(port Port, b []byte, h message.Header, from netip.AddrPort) {
	e := sa.p.e
	if sa.state == stateDead {
		e.stats.Dropped.Add(1)
		return
	}
	m, err := message.Decode(b)
	if err != nil {
		e.stats.DecodeErrors.Add(1)
		sa.log().Debug("ike: drop undecodable message", "from", from, "err", err)
		return
	}
	if h.IsResponse() {
		r := sa.pend
		if r == nil || r.id != h.MessageID || r.exch != h.Exchange {
			e.stats.Dropped.Add(1)
			return
		}
		var ps []message.Payload
		var raw []byte
		if h.Exchange == message.IKE_SA_INIT {
			if !plausibleInitResponse(m) {
				// Unauthenticated junk: keep waiting for the real answer.
				e.stats.Dropped.Add(1)
				return
			}
			ps = m.Payloads
			raw = append([]byte(nil), b...)
		} else {
			var done bool
			ps, done, err = sa.open(m)
			if err != nil {
				e.stats.AuthErrors.Add(1)
				sa.log().Debug("ike: drop response that does not authenticate", "err", err)
				return
			}
			if !done {
				return
			}
		}
		r.timer.Stop()
		sa.pend = nil
		sa.lastRecv = sa.now()
		r.onResp(m, raw, ps)
		sa.next()
		return
	}
	// A request from the peer.
	if sa.keys == nil || h.Exchange == message.IKE_SA_INIT {
		e.stats.Dropped.Add(1)
		return
	}
	if sa.haveResp && h.MessageID == sa.lastRespID {
		// Retransmission of the request we answered last (RFC 7296 §2.1).
		// The answer goes only where the SA is bound (the peer's address
		// and port as the last new request showed them, NAT mapping
		// included): anyone can capture a request and replay it from
		// elsewhere to have us send datagrams there.
		if port != sa.port || from != sa.remote {
			e.stats.StrayRetransmits.Add(1)
			sa.log().Debug("ike: drop retransmitted request from elsewhere", "from", from, "bound", sa.remote)
			return
		}
		// Authenticate it before answering.
		if isFragment(m) {
			f, err := m.OpenFragment(sa.in)
			if err != nil {
				e.stats.AuthErrors.Add(1)
				return
			}
			if f.Number != 1 {
				return // answer once per retransmitted message, on its first fragment
			}
		} else if _, err := m.Decrypt(sa.in); err != nil {
			e.stats.AuthErrors.Add(1)
			return
		}
		for _, pkt := range sa.lastResp {
			e.send(sa.respPort, pkt, sa.remote)
		}
		return
	}
	if h.MessageID != sa.peerNextID {
		e.stats.Dropped.Add(1)
		return
	}
	ps, done, err := sa.open(m)
	if err != nil {
		e.stats.AuthErrors.Add(1)
		sa.log().Debug("ike: drop request that does not authenticate", "exchange", h.Exchange, "err", err)
		return
	}
	if !done {
		return
	}
	sa.lastRecv = sa.now()
	if port != sa.port || from != sa.remote {
		// The peer moved to the NAT-T port or its NAT mapping changed.
		sa.port, sa.remote = port, from
	}
	sa.peerNextID++
	resp, after := sa.handleRequest(h, ps)
	pkts, err := sa.protect(sa.header(h.Exchange, h.MessageID, true), resp)
	if err != nil {
		sa.log().Warn("ike: cannot encode response", "exchange", h.Exchange, "err", err)
		return
	}
	sa.lastResp, sa.lastRespID, sa.haveResp, sa.respPort = pkts, h.MessageID, true, port
	for _, pkt := range pkts {
		e.send(port, pkt, from)
	}
	if after != nil {
		after()
	}
	sa.next()
}

// plausibleInitResponse reports whether an IKE_SA_INIT response is worth
// acting on: a notification, or SA, KE and Nonce with a responder SPI.
func plausibleInitResponse(m *message.Message) bool {
	if m.Find(message.PayloadNotify) != nil && m.Find(message.PayloadSA) == nil {
		return true
	}
	return !m.SPIr.IsZero() && m.Find(message.PayloadSA) != nil && m.Find(message.PayloadKE) != nil && m.Find(message.PayloadNonce) != nil
}

func isFragment(m *message.Message) bool {
	if len(m.Payloads) == 0 {
		return false
	}
	_, ok := m.Payloads[len(m.Payloads)-1].(*message.EncryptedFragment)
	return ok
}

// open authenticates and decrypts m; done is false while a fragmented
// message is incomplete.
func (sa *ikeSA) open(m *message.Message) ([]message.Payload, bool, error) {
	if sa.in == nil {
		return nil, false, fmt.Errorf("no keys")
	}
	if !isFragment(m) {
		ps, err := m.Decrypt(sa.in)
		return ps, err == nil, err
	}
	f, err := m.OpenFragment(sa.in)
	if err != nil {
		return nil, false, err
	}
	sa.reasm.Expire(sa.now().Add(-30 * time.Second))
	next, stream, done, err := sa.reasm.Add(sa.now(), f)
	if err != nil || !done {
		return nil, false, err
	}
	ps, err := message.DecodePayloads(next, stream)
	return ps, err == nil, err
}

// handleRequest processes a decrypted request and returns the response
// payloads and an action to run after the response was sent.
func (sa *ikeSA) handleRequest(h message.Header, ps []message.Payload) ([]message.Payload, func()) {
	switch h.Exchange {
	case message.IKE_AUTH:
		if sa.state != stateInitDone {
			return []message.Payload{notify(message.INVALID_SYNTAX, nil)}, nil
		}
		return sa.respondAuth(ps)
	case message.CREATE_CHILD_SA:
		if sa.state != stateEstablished && sa.state != stateDeleting {
			return []message.Payload{notify(message.TEMPORARY_FAILURE, nil)}, nil
		}
		return sa.respondCreateChild(ps)
	case message.INFORMATIONAL:
		if sa.state != stateEstablished && sa.state != stateDeleting {
			return nil, nil
		}
		return sa.respondInformational(ps)
	}
	return []message.Payload{notify(message.INVALID_SYNTAX, nil)}, nil
}

func notify(t message.NotifyType, data []byte) *message.Notify {
	return &message.Notify{NotifyType: t, Data: data}
}

// errorNotify returns the first error notification in ps.
func errorNotify(ps []message.Payload) *message.Notify {
	for _, p := range ps {
		if n, ok := p.(*message.Notify); ok && n.NotifyType.IsError() {
			return n
		}
	}
	return nil
}

func hasNotify(ps []message.Payload, t message.NotifyType) bool {
	return len(message.Notifies(ps, t)) > 0
}

func randomBytes(r io.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("ike: read randomness: %w", err)
	}
	return b, nil
}

// newIKESPI returns a fresh SPI not used by another SA of the engine.
func (e *Engine) newIKESPI() (message.SPI, error) {
	for {
		var s message.SPI
		if _, err := io.ReadFull(e.rand, s[:]); err != nil {
			return s, fmt.Errorf("ike: read randomness: %w", err)
		}
		if s.IsZero() {
			continue
		}
		return s, nil
	}
}

// newESPSPI returns a fresh inbound ESP SPI (>= 256, unique in the engine).
func (e *Engine) newESPSPI() (esp.SPI, error) {
	for {
		var b [4]byte
		if _, err := io.ReadFull(e.rand, b[:]); err != nil {
			return 0, fmt.Errorf("ike: read randomness: %w", err)
		}
		s := esp.SPI(binary.BigEndian.Uint32(b[:]))
		if s < 256 {
			continue
		}
		if _, loaded := e.espIn.LoadOrStore(s, struct{}{}); loaded {
			continue
		}
		return s, nil
	}
}

func spiBytes(s esp.SPI) []byte { return binary.BigEndian.AppendUint32(nil, uint32(s)) }

// fingerprint names a certificate or key in logs.
func fingerprint(b []byte) string {
	s := sha256.Sum256(b)
	return fmt.Sprintf("%x", s[:8])
}
