// Save and restore: an established IKE SA with its Child SAs, handed from
// a stopping process to the next one (a restart or an upgrade), so that
// the peer sees no new IKE SA and traffic does not wait for a handshake.
// The record holds keys: whoever stores it keeps it private (0600) and
// removes it once read; Restore refuses a stale or inconsistent one, and
// the caller then negotiates as usual.

package ike

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike/message"
	"github.com/ovnsec/ovnsec/internal/ike/suite"
)

// savedVersion is the layout of SavedSA; Restore refuses other versions.
const savedVersion = 1

// SavedSA is an established IKE SA and its Child SAs as Suspend saved
// them. It is plain data (JSON-serialisable) and holds key material.
type SavedSA struct {
	Version   int
	Peer      string // the peer name when saved
	Initiator bool   // we initiated the IKE SA
	SPIi      message.SPI
	SPIr      message.SPI
	Remote    netip.AddrPort // where requests go
	NATT      bool           // the SA runs on the NAT-T port
	NATLocal  bool
	NATRemote bool
	Encap     bool
	FragOK    bool
	Hashes    []message.HashAlgorithm
	Chosen    suite.Chosen
	// Keys are SK_d, SK_ai, SK_ar, SK_ei, SK_er, SK_pi and SK_pr.
	Keys       [7][]byte
	NI, NR     []byte
	NextID     uint32 // our next request's message ID
	PeerNextID uint32 // the peer's next request's message ID
	// LastResp is our answer to the peer's last request, for its
	// retransmission (message ID PeerNextID-1).
	LastResp     [][]byte
	HaveResp     bool
	RespNATT     bool
	Created      time.Time
	Established  time.Time
	RekeyAt      time.Time
	ExpireAt     time.Time
	Rekeys       int
	InitialCont  bool
	Children     []SavedChild
	NumChildConf int // how many Child SA configurations the peer had
}

// SavedChild is one Child SA of a SavedSA.
type SavedChild struct {
	// Config is the index of its ChildConfig in Peer.Children.
	Config   int
	Info     ChildSA // without the keys (InKey, OutKey are zero)
	InKey    []byte
	OutKey   []byte
	Chosen   suite.Chosen
	NI, NR   []byte
	ExpireAt time.Time
}

// Zero erases the key material of s.
func (s *SavedSA) Zero() {
	for _, k := range s.Keys {
		clear(k)
	}
	for _, c := range s.Children {
		clear(c.InKey)
		clear(c.OutKey)
	}
}

// Suspend stops the engine without telling any peer: it stops reading and
// answering, stops every timer, and returns each peer's established IKE SA
// (with its active Child SAs) that is not in the middle of an exchange.
// SAs in the middle of one are dropped: the next process negotiates them
// again. Nothing is deleted at the peers and no ChildDeleted event is
// delivered: the ESP SAs stay installed for whoever saves them. Run then
// returns without deleting anything. Suspend is final.
func (e *Engine) Suspend() []SavedSA {
	e.suspended.Store(true)
	e.mu.Lock()
	peers := make([]*peer, 0, len(e.peers))
	for _, p := range e.peers {
		peers = append(peers, p)
	}
	e.mu.Unlock()
	var out []SavedSA
	for _, p := range peers {
		p.mu.Lock()
		if s, ok := p.save(); ok {
			out = append(out, s)
		}
		p.removed = true
		if p.retry != nil {
			p.retry.Stop()
			p.retry = nil
		}
		for _, sa := range p.allSAs() {
			sa.quiesce()
		}
		p.events = nil
		p.mu.Unlock()
	}
	return out
}

// save exports p's current IKE SA if it can be taken up (p.mu held).
func (p *peer) save() (SavedSA, bool) {
	sa := p.ike
	if sa == nil || sa.state != stateEstablished || sa.pend != nil || len(sa.queue) > 0 || sa.rekeyedBy != nil || len(sa.pending) > 0 || sa.keys == nil {
		return SavedSA{}, false
	}
	k := sa.keys
	s := SavedSA{
		Version: savedVersion, Peer: p.cfg.Name, Initiator: sa.initiator, SPIi: sa.spiI, SPIr: sa.spiR,
		Remote: sa.remote, NATT: sa.port == PortNATT, NATLocal: sa.natLocal, NATRemote: sa.natRemote,
		Encap: sa.encap, FragOK: sa.fragOK, Hashes: slices.Clone(sa.peerHashes), Chosen: sa.chosen,
		NI: slices.Clone(sa.ni), NR: slices.Clone(sa.nr), NextID: sa.nextID, PeerNextID: sa.peerNextID,
		HaveResp: sa.haveResp, RespNATT: sa.respPort == PortNATT,
		Created: sa.created, Established: sa.established, Rekeys: p.rekeys, InitialCont: sa.initialCont,
		NumChildConf: len(p.cfg.Children),
	}
	for i, key := range []suite.Key{k.D, k.Ai, k.Ar, k.Ei, k.Er, k.Pi, k.Pr} {
		s.Keys[i] = slices.Clone([]byte(key))
	}
	for _, r := range sa.lastResp {
		s.LastResp = append(s.LastResp, slices.Clone(r))
	}
	life := p.cfg.IKELifetime
	s.ExpireAt = sa.established.Add(life)
	s.RekeyAt = s.ExpireAt.Add(-p.cfg.rekeyMargin(life))
	for _, c := range sa.children {
		if c.gone || c.state != childActive {
			continue
		}
		idx := slices.IndexFunc(p.cfg.Children, func(cc ChildConfig) bool { return cc.Name == c.cfg.Name })
		if idx < 0 || c.info.InKey.Len() == 0 || c.info.OutKey.Len() == 0 {
			continue
		}
		info := c.info
		info.InKey, info.OutKey = esp.Key{}, esp.Key{}
		s.Children = append(s.Children, SavedChild{
			Config: idx, Info: info, InKey: c.info.InKey.Export(), OutKey: c.info.OutKey.Export(),
			Chosen: c.chosen, NI: slices.Clone(c.ni), NR: slices.Clone(c.nr),
			ExpireAt: c.info.Established.Add(p.cfg.ChildLifetime),
		})
	}
	return s, true
}

// quiesce stops the SA without a message and without events (p.mu held).
func (sa *ikeSA) quiesce() {
	if sa.state == stateDead {
		return
	}
	sa.leaveHalfOpen()
	sa.state = stateDead
	for _, t := range []interface{ Stop() bool }{sa.rekeyTimer, sa.dpdTimer, sa.halfTimer, sa.expireTimer, sa.aliveTimer} {
		if t != nil {
			t.Stop()
		}
	}
	if sa.pend != nil && sa.pend.timer != nil {
		sa.pend.timer.Stop()
	}
	sa.pend, sa.queue = nil, nil
	for _, c := range sa.children {
		c.gone = true
		for _, t := range []interface{ Stop() bool }{c.rekeyTimer, c.expireTimer} {
			if t != nil {
				t.Stop()
			}
		}
		sa.p.e.espIn.Delete(c.info.InSPI)
	}
	sa.p.e.sas.CompareAndDelete(sa.ourSPI(), sa)
	if sa.keys != nil {
		sa.keys.Zero()
	}
}

// ErrStale is returned by Restore for a saved SA that cannot be taken up
// any more (expired, another version, or for a peer configured otherwise).
var ErrStale = errors.New("ike: saved SA cannot be restored")

// Restore takes up a saved IKE SA for the configured peer name (added with
// AddPeer, not initiating, with no IKE SA yet): the SA is established with
// its saved SPIs, keys and message IDs, its rekey and expiry at their saved
// times (a rekey that is already due runs soon), and each saved Child SA
// is reported to the handler as ChildEstablished with its keys, so the
// data path installs it again. A peer whose Child SA configurations
// differ in number from the saved ones is refused (ErrStale).
func (e *Engine) Restore(name string, s SavedSA) error {
	if s.Version != savedVersion {
		return fmt.Errorf("%w: layout version %d, want %d", ErrStale, s.Version, savedVersion)
	}
	p := e.peer(name)
	if p == nil {
		return fmt.Errorf("ike: restore: no peer %q", name)
	}
	p.mu.Lock()
	defer p.unlock()
	now := e.clock.Now()
	switch {
	case p.ike != nil:
		return fmt.Errorf("ike: restore %s: the peer already has an IKE SA", name)
	case !now.Before(s.ExpireAt):
		return fmt.Errorf("%w: it expired at %v", ErrStale, s.ExpireAt)
	case s.NumChildConf != len(p.cfg.Children):
		return fmt.Errorf("%w: %d Child SA configurations saved, %d configured", ErrStale, s.NumChildConf, len(p.cfg.Children))
	case s.Remote.Addr() != p.cfg.Remote:
		return fmt.Errorf("%w: saved for %v, configured for %v", ErrStale, s.Remote.Addr(), p.cfg.Remote)
	}
	sa := &ikeSA{p: p, initiator: s.Initiator, spiI: s.SPIi, spiR: s.SPIr, remote: s.Remote, port: PortIKE,
		natLocal: s.NATLocal, natRemote: s.NATRemote, encap: s.Encap, fragOK: s.FragOK,
		peerHashes: slices.Clone(s.Hashes), chosen: s.Chosen,
		ni: slices.Clone(s.NI), nr: slices.Clone(s.NR), nextID: s.NextID, peerNextID: s.PeerNextID,
		haveResp: s.HaveResp, respPort: PortIKE, created: s.Created, established: s.Established,
		lastRecv: now, initialCont: s.InitialCont}
	if s.NATT {
		sa.port = PortNATT
	}
	if s.RespNATT {
		sa.respPort = PortNATT
	}
	for _, r := range s.LastResp {
		sa.lastResp = append(sa.lastResp, slices.Clone(r))
	}
	var err error
	if sa.prf, err = suite.NewPRF(s.Chosen.PRF); err != nil {
		return fmt.Errorf("%w: %v", ErrStale, err)
	}
	keys := &suite.IKEKeys{}
	for i, dst := range []*suite.Key{&keys.D, &keys.Ai, &keys.Ar, &keys.Ei, &keys.Er, &keys.Pi, &keys.Pr} {
		*dst = suite.Key(slices.Clone(s.Keys[i]))
	}
	if err := sa.setKeys(keys); err != nil {
		keys.Zero()
		return fmt.Errorf("%w: %v", ErrStale, err)
	}
	var children []*childSA
	for _, sc := range s.Children {
		c, err := restoreChild(p, sc, now)
		if err != nil {
			keys.Zero()
			for _, c := range children {
				c.info.InKey.Zero()
				c.info.OutKey.Zero()
			}
			return err
		}
		if c != nil {
			children = append(children, c)
		}
	}
	if _, loaded := e.sas.LoadOrStore(sa.ourSPI(), sa); loaded {
		keys.Zero()
		return fmt.Errorf("ike: restore %s: SPI %v is in use", name, sa.ourSPI())
	}
	sa.state = stateEstablished
	p.ike = sa
	p.rekeys = s.Rekeys
	p.reason = failure{}
	e.stats.Restored.Add(1)
	sa.armExpireAt(s.ExpireAt.Sub(now))
	sa.armRekeyAt(max(s.RekeyAt.Sub(now), restoreRekeyFloor))
	sa.armDPD()
	sa.armKeepalive()
	for _, c := range children {
		e.espIn.Store(c.info.InSPI, struct{}{})
		sa.children = append(sa.children, c)
		sa.armChildTimers(c, max(c.info.RekeyTime.Sub(now), restoreRekeyFloor), c.info.Established.Add(p.cfg.ChildLifetime).Sub(now))
		p.emit(ChildEstablished, c.info)
	}
	sa.log().Info("ike: IKE SA restored", "role", map[bool]string{true: "initiator", false: "responder"}[sa.initiator], "children", len(children), "established", s.Established)
	return nil
}

// restoreRekeyFloor delays a rekey that was already due when the SA was
// restored, so the restored SA carries traffic before it is replaced.
const restoreRekeyFloor = time.Second

// restoreChild rebuilds one saved Child SA for p (p.mu held); nil, nil for
// one that expired meanwhile.
func restoreChild(p *peer, sc SavedChild, now time.Time) (*childSA, error) {
	if !now.Before(sc.ExpireAt) {
		return nil, nil
	}
	if sc.Config < 0 || sc.Config >= len(p.cfg.Children) {
		return nil, fmt.Errorf("%w: Child SA configuration %d of %d", ErrStale, sc.Config, len(p.cfg.Children))
	}
	cfg := p.cfg.Children[sc.Config]
	in, err := esp.NewKey(sc.InKey)
	if err != nil {
		return nil, fmt.Errorf("%w: child %s: %v", ErrStale, cfg.Name, err)
	}
	out, err := esp.NewKey(sc.OutKey)
	if err != nil {
		in.Zero()
		return nil, fmt.Errorf("%w: child %s: %v", ErrStale, cfg.Name, err)
	}
	info := sc.Info
	info.Peer, info.Name, info.InKey, info.OutKey = p.cfg.Name, cfg.Name, in, out
	info.ChildLifetime = p.cfg.ChildLifetime
	return &childSA{cfg: cfg, info: info, chosen: sc.Chosen, state: childActive,
		ni: slices.Clone(sc.NI), nr: slices.Clone(sc.NR)}, nil
}
