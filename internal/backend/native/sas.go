// SA stage: turns the IKE engine's Child SA events into ESP SAs in the
// hook: install on establishment (and release the frames held meanwhile),
// make-before-break on rekey, removal on deletion. Keys are erased once the
// ESP SAs are built from them.

package native

import (
	"fmt"
	"net/netip"

	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike"
)

// handleChildSA is the engine's ChildSAHandler. Events arrive one at a
// time, in order.
func (b *Backend) handleChildSA(ev ike.ChildEvent, c ike.ChildSA) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ns := b.nsByPeer[c.Peer]; ns != nil && !b.closed {
		// As for east-west SAs, the keys live until the Child SA is
		// deleted (or could not be installed).
		if err := b.handleNSChildLocked(ns, ev, c); err != nil {
			ns.installErr = err.Error()
			b.log.Error("north-south Child SA", "conn", ns.plan.Name, "event", ev, "err", err)
			zeroKeys(&c)
		} else if ev == ike.ChildDeleted {
			zeroKeys(&c)
		}
		return
	}
	st := b.byPeer[c.Peer]
	if st == nil || b.closed {
		// A removed tunnel or a late event: nothing to install.
		zeroKeys(&c)
		return
	}
	var err error
	switch ev {
	case ike.ChildEstablished, ike.ChildRekeyed:
		// The keys stay alive with the Child SA (a hitless restart saves
		// them, ike.Engine.Suspend); its ChildDeleted erases them.
		if err = b.installLocked(st, ev, c); err != nil {
			zeroKeys(&c)
		}
	case ike.ChildDeleted:
		b.deleteLocked(st, c)
		zeroKeys(&c)
	}
	if err != nil {
		st.installErr = err.Error()
		b.log.Error("install Child SA", "tunnel", st.t.Name, "child", c.Name, "event", ev, "err", err)
	}
	b.openIfTakenLocked()
}

func zeroKeys(c *ike.ChildSA) {
	c.InKey.Zero()
	c.OutKey.Zero()
}

// installLocked builds the ESP SA pair of c and installs it.
func (b *Backend) installLocked(st *tunnelState, ev ike.ChildEvent, c ike.ChildSA) error {
	if c.Mode != esp.Transport {
		return fmt.Errorf("child %s negotiated %v mode; the OVS attachment needs transport mode", c.Name, c.Mode)
	}
	peer := st.plan.remote
	// A Child SA restored from the previous process resumes its ESP
	// sequence numbers and replay window (handover.go).
	resume, restored := b.resumes[c.InSPI]
	delete(b.resumes, c.InSPI)
	mk := func(spi esp.SPI, dir esp.Direction, key esp.Key) (*esp.SA, error) {
		cfg := esp.Config{SPI: spi, Dir: dir, Mode: esp.Transport, Encap: c.Encap, Key: key, ESN: c.ESN, Notify: b.notifySA, Clock: b.cfg.Clock}
		if restored {
			r := resume.In
			if dir == esp.Outbound {
				r = resume.Out
			}
			cfg.Resume = &r
		}
		return esp.NewSA(cfg)
	}
	in, err := mk(c.InSPI, esp.Inbound, c.InKey)
	if err != nil {
		return fmt.Errorf("child %s: %w", c.Name, err)
	}
	out, err := mk(c.OutSPI, esp.Outbound, c.OutKey)
	if err != nil {
		return fmt.Errorf("child %s: %w", c.Name, err)
	}
	carries := st.plan.carries(c)
	var old *childState
	if ev == ike.ChildRekeyed && c.Replaces != 0 {
		old = st.children[c.Replaces]
	}
	answered := old != nil && carries && old.out == b.hook.Table().Outbound(peer) && !c.Initiator
	// ESP-in-UDP (forced or because of a NAT) needs the UDP 4500 rules.
	// They allow UDP from our 4500 to the peer's NAT-T port, which follows
	// the Child SAs (natport.go). A rekey we answered keeps sending under
	// the old SA for a while: its port moves when the new SA takes over
	// (promoteLocked), so the old SA's packets are not dropped meanwhile.
	if !(answered && st.plan.policy.Encap == ovsbridge.EncapUDP4500) {
		if err := b.followEncapLocked(st, c); err != nil {
			return fmt.Errorf("child %s: switch %s to ESP-in-UDP rules: %w", c.Name, peer, err)
		}
	}
	pending := false
	switch {
	case answered:
		// We answered the rekey: the initiator installs its new inbound SA
		// only when our response arrives, so a packet sent under the new
		// outbound SA at once could beat the response and be dropped there.
		// Keep sending under the old SA (still valid at the peer) until the
		// peer deletes the old child or sends under the new one.
		if err = b.hook.AddInbound(peer, in); err != nil {
			break
		}
		if rerr := b.hook.Retire(c.Replaces, b.cfg.RekeyGrace); rerr != nil {
			b.log.Debug("retire replaced inbound SA", "spi", c.Replaces, "err", rerr)
		}
		pending = true
	case old != nil && carries && old.out == b.hook.Table().Outbound(peer):
		err = b.hook.Rekey(peer, in, out, c.Replaces, b.cfg.RekeyGrace)
	default:
		if err = b.hook.AddInbound(peer, in); err != nil {
			break
		}
		if old != nil {
			if rerr := b.hook.Retire(c.Replaces, b.cfg.RekeyGrace); rerr != nil {
				b.log.Debug("retire replaced inbound SA", "spi", c.Replaces, "err", rerr)
			}
		}
		if carries {
			err = b.hook.SetOutbound(peer, out)
		}
	}
	if err != nil {
		return fmt.Errorf("child %s: %w", c.Name, err)
	}
	b.seq++
	if old != nil {
		delete(st.children, c.Replaces) // its inbound SA lives on until the grace period ends
	}
	st.children[c.InSPI] = &childState{
		name: c.Name, inSPI: c.InSPI, outSPI: c.OutSPI, encap: c.Encap, carries: carries,
		in: in, out: out, keyBits: c.EncrKeyBits, established: c.Established, seq: b.seq,
		localTS: c.LocalTS, remoteTS: c.RemoteTS, pendingOut: pending, replaces: c.Replaces,
	}
	st.lastEvent = fmt.Sprintf("child %s %v", c.Name, ev)
	st.installErr = ""
	b.log.Info("Child SA installed", "tunnel", st.t.Name, "child", c.Name, "event", ev,
		"spi_in", c.InSPI, "spi_out", c.OutSPI, "encap", c.Encap, "outbound", carries,
		"local_ts", fmt.Sprint(c.LocalTS), "remote_ts", fmt.Sprint(c.RemoteTS))
	return nil
}

// carries reports whether the child's negotiated selectors cover the
// tunnel packets we send: from us, any source port, to the peer's tunnel
// port (UDP), or GRE. Deciding by selectors rather than by name keeps the
// outbound SA right whichever name the responder matched a proposal to.
func (p *plan) carries(c ike.ChildSA) bool {
	if p.policy.Proto == ovsbridge.ProtoGRE {
		return covers(c.LocalTS, p.local, protoGRE, 0, 65535) && covers(c.RemoteTS, p.remote, protoGRE, 0, 65535)
	}
	port := p.policy.Port()
	return covers(c.LocalTS, p.local, protoUDP, 0, 65535) && covers(c.RemoteTS, p.remote, protoUDP, port, port)
}

// covers reports whether one selector of ts contains address a, protocol
// proto and the ports lo..hi.
func covers(ts []ike.TrafficSelector, a netip.Addr, proto uint8, lo, hi uint16) bool {
	for _, t := range ts {
		if !t.Start.IsValid() || !t.End.IsValid() || a.Less(t.Start) || t.End.Less(a) {
			continue
		}
		if t.Proto != 0 && t.Proto != proto {
			continue
		}
		if t.StartPort <= lo && hi <= t.EndPort {
			return true
		}
	}
	return false
}

// deleteLocked removes the SAs of a deleted child, unless a rekey already
// replaced them (the replaced inbound SA then ends with its grace period).
// If it carried our outbound traffic, another installed carrier takes over,
// else frames to the peer are held until a new SA comes.
func (b *Backend) deleteLocked(st *tunnelState, c ike.ChildSA) {
	cur := st.children[c.InSPI]
	if cur == nil {
		// The peer deleted a child we answered a rekey of: it has the new
		// SAs installed, so their outbound SA takes over now.
		for _, ch := range st.children {
			if ch.pendingOut && ch.replaces == c.InSPI {
				b.promoteLocked(st, ch, "the peer deleted the replaced child")
			}
		}
		return
	}
	delete(st.children, c.InSPI)
	b.hook.RemoveInbound(c.InSPI)
	peer := st.plan.remote
	if o := b.hook.Table().Outbound(peer); o != nil && o == cur.out {
		var next *childState
		for _, ch := range st.children {
			if ch.carries && ch.out.Usable() && (next == nil || ch.seq > next.seq) {
				next = ch
			}
		}
		if next != nil {
			b.portFollowsLocked(st, next)
			if err := b.hook.SetOutbound(peer, next.out); err != nil {
				b.log.Warn("switch outbound SA", "tunnel", st.t.Name, "err", err)
			}
		} else {
			b.hook.RemoveOutbound(peer)
		}
	}
	st.lastEvent = "child " + c.Name + " deleted"
	b.log.Info("Child SA deleted", "tunnel", st.t.Name, "child", c.Name, "spi_in", c.InSPI, "spi_out", c.OutSPI)
}

// promotePending switches to the outbound SA of every child we answered a
// rekey of once the peer has sent under its inbound SA (so it has
// installed the pair) or promoteAfter has passed.
func (b *Backend) promotePending() {
	now := b.cfg.Clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, st := range b.tunnels {
		for _, ch := range st.children {
			switch {
			case !ch.pendingOut:
			case ch.in.Stats().PacketsIn > 0:
				b.promoteLocked(st, ch, "the peer sends under the new SA")
			case now.Sub(ch.established) >= promoteAfter:
				b.promoteLocked(st, ch, "no sign from the peer within "+promoteAfter.String())
			}
		}
	}
}

// promoteLocked makes ch's outbound SA the one towards the peer.
func (b *Backend) promoteLocked(st *tunnelState, ch *childState, why string) {
	ch.pendingOut = false
	b.portFollowsLocked(st, ch)
	if err := b.hook.SetOutbound(st.plan.remote, ch.out); err != nil {
		b.log.Warn("switch to the rekeyed outbound SA", "tunnel", st.t.Name, "child", ch.name, "err", err)
		return
	}
	b.log.Info("Outbound traffic moved to the rekeyed Child SA", "tunnel", st.t.Name, "child", ch.name, "spi_out", ch.outSPI, "because", why)
}
