// Status: folds `ipsec status`, pluto's log (when followed) and the
// reconciliation trackers into one backend.TunnelStatus per tunnel, with
// a reason an operator can act on.

package libreswan

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
)

// CodeAuthFailed is the reason code of an IKE SA that failed to
// authenticate (the IKE engine's and the strongSwan backend's value).
const CodeAuthFailed backend.Code = "auth_failed"

// reasonKernelRefused starts the reason of a tunnel whose Child SA the
// kernel would not install (this kernel has XFRM but no ESP).
const reasonKernelRefused = "IKE SA established but no Child SA: the kernel refused to install the SA"

// Status reports every tunnel the backend holds. When pluto does not
// answer, each is reported down with that reason and the error is nil, so
// that status views keep working.
func (b *Backend) Status(ctx context.Context) (map[string]backend.TunnelStatus, error) {
	ps, err := b.status(ctx)
	now := b.cfg.Clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.logs != nil {
		if lerr := b.logs.update(now); lerr != nil && !errors.Is(lerr, context.Canceled) {
			b.log.Debug("cannot read pluto's log", "file", b.cfg.PlutoLog, "err", lerr)
		}
	}
	out := make(map[string]backend.TunnelStatus, len(b.tunnels))
	for name, st := range b.tunnels {
		if err != nil {
			ts := backend.TunnelStatus{Name: name, Version: st.t.Version, Phase: backend.PhaseDown,
				Reason: err.Error(), Code: backend.CodeUnknown, Details: b.notesLocked(st)}
			var u *UnreachableError
			if errors.As(err, &u) {
				ts.Code = backend.CodeBackendUnreachable
			}
			for _, c := range st.t.Conns() {
				ts.Conns = append(ts.Conns, backend.ConnStatus{Name: c, Line: c + ": pluto not reachable"})
			}
			out[name] = ts
			continue
		}
		out[name] = b.tunnelStatusLocked(now, st, ps)
	}
	return out, nil
}

// notesLocked are a tunnel's first detail lines: options left out, the
// last configuration failure, drop conns that did not load. mu held.
func (b *Backend) notesLocked(st *tunnelState) []string {
	var d []string
	for _, r := range st.refused {
		d = append(d, "warning: "+r+" (not applied)")
	}
	if st.lastErr != "" {
		d = append(d, "Last error: "+st.lastErr)
	}
	if b.markErr != "" && st.t.SKBMark != "" {
		d = append(d, "warning: ipsec_skb_mark drop connections not loaded: "+b.markErr)
	}
	return d
}

// tunnelStatusLocked computes one tunnel's status. mu held.
func (b *Backend) tunnelStatusLocked(now time.Time, st *tunnelState, ps plutoStatus) backend.TunnelStatus {
	t := st.t
	ts := backend.TunnelStatus{Name: t.Name, Version: t.Version, Details: b.notesLocked(st)}
	conns := t.Conns()
	var missing, notLoaded []string
	recent := false
	for _, c := range conns {
		if line := ps.Active[c]; line != "" {
			ts.Conns = append(ts.Conns, backend.ConnStatus{Name: c, Active: true, Line: line})
			continue
		}
		missing = append(missing, c)
		switch {
		case !ps.Loaded[c]:
			notLoaded = append(notLoaded, c)
			ts.Conns = append(ts.Conns, backend.ConnStatus{Name: c, Line: c + ": not loaded"})
		default:
			ts.Conns = append(ts.Conns, backend.ConnStatus{Name: c, Line: c + ": loaded, no Child SA"})
		}
		if at, ok := st.added[c]; ok && now.Sub(at) < b.cfg.Interval {
			recent = true
		}
		if at, ok := st.started[c]; ok && now.Sub(at) < b.cfg.Interval {
			recent = true
		}
	}
	// The SAs of this tunnel's conns, as pluto lists them. pluto shares
	// one IKE SA among the conns to a peer, under whichever conn made it:
	// an established IKE SA of any conn to the same remote counts.
	var ike *plutoState
	halfOpen := false
	remote := t.Remote.String()
	for i := range ps.States {
		s := &ps.States[i]
		p, mine := belongsTo(s.Conn, t.Name)
		mine = mine && p.Version == t.Version
		samePeer := ps.Peers[s.Conn] == remote
		if mine {
			ts.Details = append(ts.Details, s.Line)
		}
		switch {
		case s.IKEEstablished() && (mine || samePeer):
			if ike == nil || s.Serial > ike.Serial {
				ike = s
			}
			if !mine {
				ts.Details = append(ts.Details, s.Line)
			}
		case mine && !s.ChildEstablished() && !s.ESP:
			halfOpen = true
		}
	}
	if ike != nil {
		ts.IKE = &backend.IKESAStatus{State: "established", SPIi: fmt.Sprintf("#%d", ike.Serial)}
	} else if halfOpen {
		ts.IKE = &backend.IKESAStatus{State: "connecting"}
	}
	what := strings.Join(missing, ", ")
	var kernel, failures []string
	for _, c := range missing {
		if n, ok := b.logs.note(c); ok {
			if n.Kernel != "" {
				kernel = append(kernel, n.Kernel)
			}
			if n.Error != "" {
				failures = append(failures, n.Error)
			}
		}
	}
	if ike != nil && len(kernel) == 0 && b.logs.lastKernel() != "" {
		// The kernel is one for every conn: it refused another's SA, so
		// the peer's refusal of ours (TS_UNACCEPTABLE when its kernel
		// failed, or our own failure as responder) has the same cause.
		kernel = append(kernel, b.logs.lastKernel())
	}
	switch {
	case len(missing) == 0:
		ts.Phase = backend.PhaseUp
	case len(notLoaded) == len(conns):
		ts.Phase, ts.Code = backend.PhaseNotLoaded, backend.CodeNotLoaded
		ts.Reason = fmt.Sprintf("pluto holds no connection %s (pluto restarted, or the connection was deleted); it is loaded again", strings.Join(notLoaded, ", "))
	case ike != nil && len(kernel) > 0:
		ts.Phase, ts.Code = backend.PhaseDown, backend.CodeKernelRefused
		ts.Reason = fmt.Sprintf("%s (%s) for %s", reasonKernelRefused, strings.Join(dedup(kernel), "; "), what)
	case ike != nil && recent:
		ts.Phase, ts.Code = backend.PhaseConnecting, backend.CodeWaitingForChild
		ts.Reason = "IKE SA established, negotiating Child SA " + what
	case ike != nil && len(failures) > 0:
		ts.Phase, ts.Code = backend.PhaseDown, backend.CodeWaitingForChild
		ts.Reason = fmt.Sprintf("IKE SA established but no Child SA %s: %s", what, strings.Join(dedup(failures), "; "))
	case ike != nil:
		ts.Phase, ts.Code = backend.PhaseDown, backend.CodeKernelRefused
		ts.Reason = reasonKernelRefused + " (no ESP/XFRM support?) for " + what
		if b.logs == nil {
			ts.Reason += "; ovnsecd --pluto-log=<pluto's log file> shows pluto's own reason"
		}
	case len(failures) > 0:
		ts.Phase, ts.Code = backend.PhaseDown, failureCode(failures)
		ts.Reason = fmt.Sprintf("no IKE SA with %s: %s", t.RemoteIP, strings.Join(dedup(failures), "; "))
	case recent || halfOpen:
		ts.Phase, ts.Code = backend.PhaseConnecting, backend.CodeNegotiating
		ts.Reason = "IKE SA negotiation with " + t.RemoteIP + " under way"
		if onlyInbound(missing) && !halfOpen {
			ts.Reason = "waiting for the peer " + t.RemoteIP + " to initiate " + what
		}
	default:
		ts.Phase, ts.Code = backend.PhaseDown, backend.CodeUnknown
		ts.Reason = "no IKE SA with " + t.RemoteIP + " (peer not answering or not configured?)"
	}
	return ts
}

// onlyInbound reports whether every missing conn is an "-in-" half,
// which this side only adds and the peer initiates.
func onlyInbound(missing []string) bool {
	for _, c := range missing {
		if !strings.Contains(c, "-in-") {
			return false
		}
	}
	return len(missing) > 0
}

// failureCode is CodeAuthFailed when a line says authentication failed.
func failureCode(lines []string) backend.Code {
	for _, l := range lines {
		if strings.Contains(l, "AUTHENTICATION_FAILED") || strings.Contains(strings.ToLower(l), "authentication failed") {
			return CodeAuthFailed
		}
	}
	return backend.CodeUnknown
}

func dedup(lines []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lines {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

// Loaded lists the interfaces whose conns pluto holds: tunnels the backend
// holds and leftovers of conns it (or a previous run) wrote.
func (b *Backend) Loaded(ctx context.Context) ([]string, error) {
	ps, err := b.status(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range b.names(ps) {
		if len(b.connsOf(n, ps)) > 0 {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}
