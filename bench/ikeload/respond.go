// Responder: ovnsec's IKE engine answering the generator, one configured
// peer per generator address (the engine finds a peer by its address), as
// ovnsecd would run it but without a datapath: established Child SAs are
// counted and dropped.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"sync/atomic"

	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike"
)

// respondConfig is the responder's configuration.
type respondConfig struct {
	Local       netip.Addr
	PortIKE     int // -1 asks the kernel (tests)
	PortNATT    int
	Peers       []netip.Addr // the generator's addresses, in order
	PSK         []byte
	IKEProposal string
	ESPProposal string
	Log         *slog.Logger
	CPUProfile  string // main writes a CPU profile here if set
	MemProfile  string // and a heap profile at exit
}

// responder is a running ovnsec responder.
type responder struct {
	e        *ike.Engine
	peers    []string
	children atomic.Int64 // Child SAs established so far
}

func newResponder(c respondConfig) (*responder, error) {
	switch {
	case !c.Local.IsValid():
		return nil, errors.New("ikeload respond: no local address (-local)")
	case len(c.Peers) == 0:
		return nil, errors.New("ikeload respond: no peer addresses (-peers, -n)")
	case len(c.PSK) == 0:
		return nil, errors.New("ikeload respond: no pre-shared key (-psk)")
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	r := &responder{}
	e, err := ike.New(ike.Config{Local: c.Local, PortIKE: c.PortIKE, PortNATT: c.PortNATT, Logger: c.Log,
		// Cookies off, as for charon (dos_protection = no): the
		// generator never has more than K SAs half open anyway.
		HalfOpenLimit: 1 << 30,
		Handler: ike.HandlerFunc(func(ev ike.ChildEvent, _ ike.ChildSA) {
			if ev == ike.ChildEstablished {
				r.children.Add(1)
			}
		})})
	if err != nil {
		return nil, fmt.Errorf("ikeload respond: %w", err)
	}
	r.e = e
	for i, remote := range c.Peers {
		p := ike.Peer{Name: "p" + strconv.Itoa(i+1), Local: c.Local, Remote: remote,
			Auth: ike.Auth{PSK: c.PSK},
			Children: []ike.ChildConfig{{Name: "load", Mode: esp.Tunnel,
				LocalTS:  []ike.TrafficSelector{ike.PrefixTS(responderInner, 0)},
				RemoteTS: []ike.TrafficSelector{ike.PrefixTS(generatorsInner, 0)}}},
			IKEProposals: []string{c.IKEProposal}, ESPProposals: []string{c.ESPProposal},
			DPDInterval: -1}
		if err := e.AddPeer(p); err != nil {
			return nil, fmt.Errorf("ikeload respond: %w", err)
		}
		r.peers = append(r.peers, p.Name)
	}
	return r, nil
}

// run answers until ctx ends.
func (r *responder) run(ctx context.Context) error { return r.e.Run(ctx) }

// report writes one line: Child SAs established so far and how many peers
// have an IKE SA up or being set up now (state that should not grow).
func (r *responder) report(w io.Writer) {
	var up, connecting int
	for _, n := range r.peers {
		switch r.e.Status(n).State {
		case ike.SAEstablished:
			up++
		case ike.SAConnecting:
			connecting++
		}
	}
	st := r.e.Stats()
	fmt.Fprintf(w, "responder: children=%d established=%d connecting=%d received=%d sent=%d dropped=%d unknown_spi=%d auth_errors=%d\n",
		r.children.Load(), up, connecting, st.Received, st.Sent, st.Dropped, st.UnknownSPI, st.AuthErrors)
}
