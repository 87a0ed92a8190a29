// Status: folds list-conns, list-sas and the log book into one
// backend.TunnelStatus per tunnel, with a reason an operator can act on.

package strongswan

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// Reasons, kept in one place so that tests and operators see the same text.
const (
	reasonKernelRefused = "IKE_SA established but no CHILD_SA: the kernel refused to install the SA"
	reasonKernelGuess   = reasonKernelRefused + " (no ESP/XFRM support?)"
)

// Status reports every tunnel Ensure was asked for plus every
// ovnsec-shaped connection charon holds. When charon is unreachable every
// known tunnel is reported down with that reason and the error is nil, so
// that status views keep working.
func (b *Backend) Status(ctx context.Context) (map[string]backend.TunnelStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]backend.TunnelStatus{}
	conns, err := b.listConns(ctx)
	var sas []ikeSA
	if err == nil {
		sas, err = b.listSAs(ctx, "")
	}
	if err != nil {
		for name, st := range b.tunnels {
			out[name] = backend.TunnelStatus{
				Name: name, Version: st.t.Version, Phase: backend.PhaseDown,
				Reason:  err.Error(),
				Conns:   notUp(st.children, "charon not reachable"),
				Details: notes(st),
			}
		}
		return out, nil
	}

	now := b.cfg.Now()
	for name, st := range b.tunnels {
		out[name] = b.tunnelStatus(now, st, conns, sas)
	}
	// Connections charon holds for tunnels we were not asked about
	// (leftovers): report them so the reconciler can Remove them.
	for cn, c := range conns {
		iface, v, ok := ownedConn(c)
		if !ok {
			continue
		}
		if _, tracked := b.tunnels[iface]; tracked {
			continue
		}
		ts := tunnel.Tunnel{Name: iface, Version: v, Type: tunnel.TypeGRE}
		var kids []childSpec
		for child := range c.Children {
			p, _ := BelongsTo(string(child), iface)
			kids = append(kids, childSpec{Name: child, Dir: p.Dir})
		}
		if len(kids) == 2 {
			ts.Type = tunnel.TypeGeneve
		}
		st := &tunnelState{t: ts, ike: cn, children: kids, initiated: map[ConnName]time.Time{}}
		s := b.tunnelStatus(now, st, conns, sas)
		s.Details = append(s.Details, "not requested by ovnsec (leftover from an earlier run)")
		if old, ok := out[iface]; !ok || old.Version < v {
			out[iface] = s
		}
	}
	return out, nil
}

// notes are a tunnel's first detail lines: the options left out and why
// renewed credential files are not in use.
func notes(st *tunnelState) []string {
	var d []string
	for _, u := range st.unsupported {
		d = append(d, "warning: "+u+" (not applied)")
	}
	if st.credErr != "" {
		d = append(d, "Credentials: renewed files not applied, new IKE SAs use the previous ones: "+st.credErr)
	}
	return d
}

func notUp(children []childSpec, line string) []backend.ConnStatus {
	var cs []backend.ConnStatus
	for _, c := range children {
		cs = append(cs, backend.ConnStatus{Name: string(c.Name), Line: string(c.Name) + ": " + line})
	}
	return cs
}

// tunnelStatus computes one tunnel's status. Pure apart from the log book.
func (b *Backend) tunnelStatus(now time.Time, st *tunnelState, conns map[ConnName]loadedConn, sas []ikeSA) backend.TunnelStatus {
	ts := backend.TunnelStatus{Name: st.t.Name, Version: st.t.Version, Details: notes(st)}
	if _, ok := conns[st.ike]; !ok {
		ts.Phase = backend.PhaseNotLoaded
		ts.Reason = fmt.Sprintf("charon holds no connection %s (charon restarted or the connection was unloaded); the next Ensure reloads it", st.ike)
		for cn, c := range conns {
			if iface, v, ok := ownedConn(c); ok && iface == st.t.Name {
				ts.Details = append(ts.Details, fmt.Sprintf("charon still holds version %d (%s)", v, cn))
			}
		}
		ts.Conns = notUp(st.children, "not loaded")
		return ts
	}

	var mine []ikeSA
	for _, sa := range sas {
		if sa.Conn == st.ike {
			mine = append(mine, sa)
		}
	}
	for _, sa := range mine {
		ts.Details = append(ts.Details, ikeLine(sa))
		for _, c := range sa.Children {
			ts.Details = append(ts.Details, childLine(c))
		}
	}

	var missing []string
	established, connecting, busy := false, false, false
	for _, ch := range st.children {
		var found *childSA
		for i := range mine {
			for j := range mine[i].Children {
				c := &mine[i].Children[j]
				if c.Name != ch.Name {
					continue
				}
				if c.installed() {
					found = c
				} else if c.inProgress() {
					busy = true
				}
			}
		}
		if found != nil {
			ts.Conns = append(ts.Conns, backend.ConnStatus{Name: string(ch.Name), Active: true, Line: statusLine(*found)})
			continue
		}
		missing = append(missing, string(ch.Name))
		ts.Conns = append(ts.Conns, backend.ConnStatus{Name: string(ch.Name), Line: string(ch.Name) + ": no CHILD_SA installed"})
	}
	for _, sa := range mine {
		switch sa.State {
		case "ESTABLISHED", "REKEYING", "REKEYED":
			established = true
		case "CREATED", "CONNECTING", "PASSIVE":
			connecting = true
		}
	}
	if len(missing) == 0 {
		ts.Phase = backend.PhaseUp
		return ts
	}

	// Why is it not up? Prefer what charon logged.
	var kernel, errs []string
	streaming := false
	for _, sa := range mine {
		saNote, _, s := b.logs.lookup(sa.UniqueID, st.ike)
		streaming = s
		kernel = append(kernel, saNote.Kernel...)
		errs = append(errs, saNote.Errors...)
	}
	_, connNote, s := b.logs.lookup("", st.ike)
	streaming = streaming || s
	var lastInit time.Time
	for _, at := range st.initiated {
		if at.After(lastInit) {
			lastInit = at
		}
	}
	recentInit := !lastInit.IsZero() && now.Sub(lastInit) < b.cfg.RetryInterval
	connFailed := append(append([]string(nil), connNote.Kernel...), connNote.Errors...)
	// Errors logged since the last initiation explain why there is no SA.
	freshFailure := len(connFailed) > 0 && !connNote.At.Before(lastInit) && !connNote.At.Before(st.loadedAt)
	waitingPeer := true
	for _, ch := range st.children {
		if ch.Dir != DirIn {
			for _, m := range missing {
				if m == string(ch.Name) {
					waitingPeer = false
				}
			}
		}
	}
	what := strings.Join(missing, ", ")

	switch {
	case established && len(kernel) > 0:
		ts.Phase = backend.PhaseDown
		ts.Reason = fmt.Sprintf("%s (%s) for %s", reasonKernelRefused, strings.Join(kernelSummary(kernel), "; "), what)
	case established && (busy || recentInit):
		ts.Phase = backend.PhaseConnecting
		ts.Reason = "IKE_SA established, negotiating CHILD_SA " + what
	case established && waitingPeer && now.Sub(st.loadedAt) < b.cfg.PeerGrace:
		ts.Phase = backend.PhaseConnecting
		ts.Reason = "IKE_SA established, waiting for the peer to initiate " + what
	case established && peerRefused(errs):
		ts.Phase = backend.PhaseDown
		ts.Reason = fmt.Sprintf("IKE_SA established but the peer refused CHILD_SA %s (proposals or selectors differ, or the peer's kernel could not install the SA): %s", what, strings.Join(errs, "; "))
	case established && len(errs) > 0:
		ts.Phase = backend.PhaseDown
		ts.Reason = fmt.Sprintf("IKE_SA established but no CHILD_SA %s: %s", what, strings.Join(errs, "; "))
	case established && !streaming:
		ts.Phase = backend.PhaseDown
		ts.Reason = reasonKernelGuess + " for " + what
	case established:
		ts.Phase = backend.PhaseDown
		ts.Reason = "IKE_SA established but no CHILD_SA " + what + " (charon logged no error; see charon's log)"
	case connecting || busy:
		ts.Phase = backend.PhaseConnecting
		ts.Reason = fmt.Sprintf("IKE_SA negotiation with %s under way", st.t.RemoteIP)
		if len(connNote.Errors) > 0 {
			ts.Reason += ": " + strings.Join(connNote.Errors, "; ")
		}
	case freshFailure:
		ts.Phase = backend.PhaseDown
		ts.Reason = "no IKE_SA with " + st.t.RemoteIP + ": " + strings.Join(connFailed, "; ")
	case recentInit || now.Sub(st.loadedAt) < b.cfg.PeerGrace:
		ts.Phase = backend.PhaseConnecting
		ts.Reason = "initiating IKE_SA with " + st.t.RemoteIP
	default:
		ts.Phase = backend.PhaseDown
		ts.Reason = "no IKE_SA with " + st.t.RemoteIP
		if len(connFailed) > 0 {
			ts.Reason += ": " + strings.Join(connFailed, "; ")
		} else {
			ts.Reason += " (peer not answering or not configured?)"
		}
	}
	return ts
}

// kernelSummary orders kernel lines cause first (netlink errors), drops
// per-SPI repetitions when a general line exists, and removes duplicates.
func kernelSummary(lines []string) []string {
	var netlink, general, perSPI []string
	seen := map[string]bool{}
	for _, l := range lines {
		if seen[l] {
			continue
		}
		seen[l] = true
		switch {
		case strings.Contains(l, "netlink error"):
			netlink = append(netlink, l)
		case strings.Contains(l, " SPI "):
			perSPI = append(perSPI, l)
		default:
			general = append(general, l)
		}
	}
	out := append(netlink, general...)
	if len(out) == 0 {
		out = perSPI
	}
	return out
}

// peerRefused reports whether charon logged the peer rejecting a CHILD_SA.
func peerRefused(lines []string) bool {
	for _, l := range lines {
		if strings.Contains(l, "NO_PROPOSAL_CHOSEN notify") || strings.Contains(l, "TS_UNACCEPTABLE notify") {
			return true
		}
	}
	return false
}

func ikeLine(sa ikeSA) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s[%s]: %s", sa.Conn, sa.UniqueID, sa.State)
	if sa.Established != "" {
		if n, err := strconv.Atoi(sa.Established); err == nil {
			fmt.Fprintf(&b, " %s ago", time.Duration(n)*time.Second)
		}
	}
	fmt.Fprintf(&b, ", %s[%s]...%s[%s]", sa.LocalHost, sa.LocalID, sa.RemoteHost, sa.RemoteID)
	if sa.Encr != "" {
		fmt.Fprintf(&b, ", %s/%s/%s", algString(sa.Encr, sa.EncrKeySize, sa.Integ), sa.PRF, sa.DH)
	}
	return b.String()
}

func childLine(c childSA) string {
	s := statusLine(c)
	if c.Encr != "" {
		s += ", " + algString(c.Encr, c.EncrKeySize, c.Integ)
	}
	if len(c.LocalTS) > 0 || len(c.RemoteTS) > 0 {
		s += ", " + strings.Join(c.LocalTS, " ") + " === " + strings.Join(c.RemoteTS, " ")
	}
	return s
}
