// Load generation: K workers, each an ovnsec IKE engine on its own local
// address, run full handshakes (IKE_SA_INIT + IKE_AUTH with one Child SA)
// back to back against one responder. Before each new handshake the
// worker deletes its previous IKE SA (one INFORMATIONAL Delete), so the
// responder's state stays at about K SAs whatever its implementation.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike"
)

// loadConfig is one generator run.
type loadConfig struct {
	Locals       []netip.Addr // one engine (identity) per address
	PortIKE      int          // local ports; -1 asks the kernel (tests)
	PortNATT     int
	Remote       netip.Addr
	RemoteIKE    uint16
	RemoteNATT   uint16
	PSK          []byte
	IKEProposal  string
	ESPProposal  string
	Warmup       time.Duration
	Duration     time.Duration
	Timeout      time.Duration // per handshake
	ResponderPID int           // 0: do not measure a responder
	Log          *slog.Logger
	Progress     io.Writer // one line per second; nil for none
}

// result is what one run measured (JSON on stdout).
type result struct {
	Workers          int            `json:"workers"`
	Seconds          float64        `json:"seconds"`
	Completed        int            `json:"completed"`
	Failed           int            `json:"failed"`
	PerSecond        float64        `json:"per_s"`
	P50ms            float64        `json:"p50_ms"`
	P99ms            float64        `json:"p99_ms"`
	MaxMs            float64        `json:"max_ms"`
	GeneratorCPUms   float64        `json:"generator_cpu_ms"`
	ResponderCPUms   float64        `json:"responder_cpu_ms"` // -1: not measured
	ResponderPerHSms float64        `json:"responder_cpu_ms_per_handshake"`
	GeneratorPerHSms float64        `json:"generator_cpu_ms_per_handshake"`
	MachineBusyPct   float64        `json:"machine_busy_pct"` // out of 100 x cores
	Retransmits      uint64         `json:"retransmits"`
	Child            string         `json:"child"` // what the first Child SA looked like
	FailReasons      map[string]int `json:"fail_reasons,omitempty"`
}

func (c *loadConfig) check() error {
	switch {
	case len(c.Locals) == 0:
		return errors.New("no local addresses")
	case !c.Remote.IsValid():
		return errors.New("no responder address (-remote)")
	case len(c.PSK) == 0:
		return errors.New("no pre-shared key (-psk)")
	case c.Duration <= 0:
		return fmt.Errorf("duration %v must be positive", c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("warmup %v must not be negative", c.Warmup)
	case c.Timeout <= 0:
		return fmt.Errorf("handshake timeout %v must be positive", c.Timeout)
	}
	return nil
}

// worker is one initiating engine with its peer template.
type worker struct {
	e    *ike.Engine
	peer ike.Peer
	up   chan ike.ChildSA
}

// peerFor returns the initiator's peer template for one local address.
func peerFor(c *loadConfig, local netip.Addr) ike.Peer {
	return ike.Peer{
		Local: local, Remote: c.Remote,
		RemotePortIKE: c.RemoteIKE, RemotePortNATT: c.RemoteNATT,
		Auth: ike.Auth{PSK: c.PSK},
		Children: []ike.ChildConfig{{Name: "load", Mode: esp.Tunnel,
			LocalTS:  []ike.TrafficSelector{ike.PrefixTS(generatorsInner, 0)},
			RemoteTS: []ike.TrafficSelector{ike.PrefixTS(responderInner, 0)}}},
		IKEProposals: []string{c.IKEProposal}, ESPProposals: []string{c.ESPProposal},
		// ESP-in-UDP as ovnsec's datapath uses it: IKE_AUTH and the
		// Delete travel on the NAT-T port for both responders.
		ForceEncap:  true,
		DPDInterval: -1,
		Initiate:    true,
	}
}

// runLoad starts the engines, runs the workers through warmup and the
// measured window and returns what the window saw.
func runLoad(ctx context.Context, c loadConfig) (result, error) {
	if err := c.check(); err != nil {
		return result{}, fmt.Errorf("ikeload run: %w", err)
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var engines sync.WaitGroup
	defer engines.Wait()
	defer cancel() // engines stop (deleting what is left) before Wait returns
	ws := make([]*worker, len(c.Locals))
	for i, local := range c.Locals {
		w := &worker{up: make(chan ike.ChildSA, 4)}
		e, err := ike.New(ike.Config{Local: local, PortIKE: c.PortIKE, PortNATT: c.PortNATT,
			Logger: c.Log, Handler: ike.HandlerFunc(func(ev ike.ChildEvent, sa ike.ChildSA) {
				if ev != ike.ChildEstablished {
					return
				}
				select {
				case w.up <- sa:
				default:
				}
			})})
		if err != nil {
			return result{}, fmt.Errorf("ikeload run: engine on %s: %w", local, err)
		}
		w.e = e
		w.peer = peerFor(&c, local)
		ws[i] = w
		engines.Add(1)
		go func() {
			defer engines.Done()
			_ = e.Run(ctx)
		}()
	}

	now := time.Now()
	win := window{start: now.Add(c.Warmup), end: now.Add(c.Warmup + c.Duration)}
	tallies := make([]*tally, len(ws))
	var count atomic.Int64 // completions, for the progress lines
	var child sync.Once
	var childDesc string
	// A worker that cannot go on (a configuration error) stops the run.
	rctx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	var wg sync.WaitGroup
	for i, w := range ws {
		t := &tally{count: &count}
		tallies[i] = t
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop(rctx, win, c.Timeout, t, func(sa ike.ChildSA) {
				child.Do(func() { childDesc = describeChild(sa) })
			})
			if t.fatal != nil {
				stopRun()
			}
		}()
	}
	m, err := measure(rctx, win, c.ResponderPID, c.Progress, &count)
	wg.Wait()
	for _, t := range tallies {
		if t.fatal != nil {
			return result{}, fmt.Errorf("ikeload run: %w", t.fatal)
		}
	}
	if err != nil {
		return result{}, err
	}
	s := merge(tallies)
	r := result{Workers: len(ws), Seconds: c.Duration.Seconds(), Completed: s.Completed, Failed: s.Failed,
		PerSecond: float64(s.Completed) / c.Duration.Seconds(),
		P50ms:     ms(s.P50), P99ms: ms(s.P99), MaxMs: ms(s.Max),
		GeneratorCPUms: ms(m.gen), ResponderCPUms: -1, MachineBusyPct: m.busyPct, Child: childDesc}
	if len(s.Reasons) > 0 {
		r.FailReasons = s.Reasons
	}
	if c.ResponderPID > 0 {
		r.ResponderCPUms = ms(m.resp)
	}
	if s.Completed > 0 {
		r.GeneratorPerHSms = r.GeneratorCPUms / float64(s.Completed)
		if c.ResponderPID > 0 {
			r.ResponderPerHSms = r.ResponderCPUms / float64(s.Completed)
		}
	}
	for _, w := range ws {
		st := w.e.Stats()
		r.Retransmits += st.Retransmits
	}
	return r, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// describeChild says what the responder agreed to, for the report.
func describeChild(sa ike.ChildSA) string {
	return fmt.Sprintf("%v, encap %v, AES-GCM-%d, TSi %v TSr %v", sa.Mode, sa.Encap.Type == esp.EncapUDP,
		sa.EncrKeyBits, sa.TSi, sa.TSr)
}

// loop runs handshakes until the window ends, then deletes the last IKE
// SA. A handshake in flight at the end is finished (not counted) so that
// its IKE SA is deleted too and the responder is left without state.
func (w *worker) loop(ctx context.Context, win window, timeout time.Duration, t *tally, first func(ike.ChildSA)) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	prev := ""
	defer func() {
		if prev != "" {
			w.e.RemovePeer(prev)
		}
	}()
	for seq := 0; ctx.Err() == nil && time.Now().Before(win.end); seq++ {
		if prev != "" {
			w.e.RemovePeer(prev) // sends the Delete for the last IKE SA
		}
		p := w.peer
		p.Name = "hs" + strconv.Itoa(seq)
		start := time.Now()
		if err := w.e.AddPeer(p); err != nil {
			t.fatal = err // a configuration error: every handshake would fail
			return
		}
		prev = p.Name
		timer.Reset(timeout)
	wait:
		select {
		case sa := <-w.up:
			if sa.Peer != p.Name {
				goto wait // a late event of an earlier attempt
			}
			end := time.Now()
			t.done(win, start, end)
			first(sa)
		case <-timer.C:
			st := w.e.Status(p.Name)
			t.fail(win, start, fmt.Sprintf("no Child SA within %v (%s: %s)", timeout, st.State, st.Reason))
		case <-ctx.Done():
			return
		}
	}
}

// measured is the CPU time spent inside the window.
type measured struct {
	gen, resp time.Duration
	busyPct   float64
}

// measure samples CPU counters at the window's edges and prints progress
// once a second in between.
func measure(ctx context.Context, win window, respPID int, progress io.Writer, count *atomic.Int64) (measured, error) {
	resp := strconv.Itoa(respPID)
	ncpu := 1
	sample := func() (gen, r time.Duration, busy, total uint64, err error) {
		if gen, err = procCPU("self"); err != nil {
			return
		}
		if respPID > 0 {
			if r, err = procCPU(resp); err != nil {
				return
			}
		}
		busy, total, ncpu, err = machineBusy()
		return
	}
	if !sleepUntil(ctx, win.start) {
		return measured{}, ctx.Err()
	}
	g0, r0, b0, t0, err := sample()
	if err != nil {
		return measured{}, fmt.Errorf("ikeload run: at window start: %w", err)
	}
	for next := win.start.Add(time.Second); next.Before(win.end); next = next.Add(time.Second) {
		if !sleepUntil(ctx, next) {
			return measured{}, ctx.Err()
		}
		if progress != nil {
			fmt.Fprintf(progress, "ikeload: %.0f s, %d handshakes\n", next.Sub(win.start).Seconds(), count.Load())
		}
	}
	if !sleepUntil(ctx, win.end) {
		return measured{}, ctx.Err()
	}
	g1, r1, b1, t1, err := sample()
	if err != nil {
		return measured{}, fmt.Errorf("ikeload run: at window end: %w", err)
	}
	return measured{gen: g1 - g0, resp: r1 - r0,
		busyPct: float64(b1-b0) / float64(max(t1-t0, 1)) * 100 * float64(ncpu)}, nil
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	tm := time.NewTimer(time.Until(t))
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}
