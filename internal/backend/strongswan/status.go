// Status: folds list-conns, list-sas and the log book into one
// backend.TunnelStatus per tunnel, with a reason an operator can act on.

package strongswan

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// CodeAuthFailed is the reason code of a tunnel whose IKE_SA charon could
// not authenticate, either way, as charon logged it (authLine): a
// pre-shared key or signature that does not verify, no trusted key or
// certificate for the peer, no private key for ours. The value is the IKE
// engine's (ike.ReasonAuthFailed), so that both backends count alike.
const CodeAuthFailed backend.Code = "auth_failed"

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
				Code:    errCode(err),
				Conns:   notUp(st.children, "charon not reachable"),
				Details: notes(st),
			}
		}
		return out, nil
	}

	now := b.cfg.Clock.Now()
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

// errCode is the reason code of a failure to ask charon.
func errCode(err error) backend.Code {
	var u *UnreachableError
	if errors.As(err, &u) {
		return backend.CodeBackendUnreachable
	}
	return backend.CodeUnknown
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
		ts.Phase, ts.Code = backend.PhaseNotLoaded, backend.CodeNotLoaded
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
			if c.installed() {
				ts.Children = append(ts.Children, childStatus(now, sa, c))
			}
		}
	}
	ts.IKE = ikeStatus(now, mine)

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
		switch {
		case saEstablished(sa.State):
			established = true
		case sa.State == "CREATED", sa.State == "CONNECTING", sa.State == "PASSIVE":
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
		ts.Phase, ts.Code = backend.PhaseDown, backend.CodeKernelRefused
		ts.Reason = fmt.Sprintf("%s (%s) for %s", reasonKernelRefused, strings.Join(kernelSummary(kernel), "; "), what)
	case established && (busy || recentInit):
		ts.Phase, ts.Code = backend.PhaseConnecting, backend.CodeNegotiating
		ts.Reason = "IKE_SA established, negotiating CHILD_SA " + what
	case established && waitingPeer && now.Sub(st.loadedAt) < b.cfg.PeerGrace:
		ts.Phase, ts.Code = backend.PhaseConnecting, backend.CodeWaitingForChild
		ts.Reason = "IKE_SA established, waiting for the peer to initiate " + what
	case established && peerRefused(errs):
		ts.Phase, ts.Code = backend.PhaseDown, backend.CodeWaitingForChild
		ts.Reason = fmt.Sprintf("IKE_SA established but the peer refused CHILD_SA %s (proposals or selectors differ, or the peer's kernel could not install the SA): %s", what, strings.Join(errs, "; "))
	case established && len(errs) > 0:
		ts.Phase, ts.Code = backend.PhaseDown, backend.CodeWaitingForChild
		ts.Reason = fmt.Sprintf("IKE_SA established but no CHILD_SA %s: %s", what, strings.Join(errs, "; "))
	case established && !streaming:
		ts.Phase, ts.Code = backend.PhaseDown, backend.CodeKernelRefused
		ts.Reason = reasonKernelGuess + " for " + what
	case established:
		ts.Phase, ts.Code = backend.PhaseDown, backend.CodeWaitingForChild
		ts.Reason = "IKE_SA established but no CHILD_SA " + what + " (charon logged no error; see charon's log)"
	case connecting || busy:
		ts.Phase, ts.Code = backend.PhaseConnecting, backend.CodeNegotiating
		ts.Reason = fmt.Sprintf("IKE_SA negotiation with %s under way", st.t.RemoteIP)
		if len(connNote.Errors) > 0 {
			ts.Reason += ": " + strings.Join(connNote.Errors, "; ")
		}
	case freshFailure:
		ts.Phase, ts.Code = backend.PhaseDown, failureCode(connFailed)
		ts.Reason = "no IKE_SA with " + st.t.RemoteIP + ": " + strings.Join(connFailed, "; ")
	case recentInit || now.Sub(st.loadedAt) < b.cfg.PeerGrace:
		ts.Phase, ts.Code = backend.PhaseConnecting, backend.CodeNegotiating
		ts.Reason = "initiating IKE_SA with " + st.t.RemoteIP
	default:
		ts.Phase, ts.Code = backend.PhaseDown, failureCode(connFailed)
		ts.Reason = "no IKE_SA with " + st.t.RemoteIP
		if len(connFailed) > 0 {
			ts.Reason += ": " + strings.Join(connFailed, "; ")
		} else {
			ts.Reason += " (peer not answering or not configured?)"
		}
	}
	return ts
}

// failureCode is the reason code of an IKE_SA that failed with the logged
// lines: CodeAuthFailed when one says authentication failed.
func failureCode(lines []string) backend.Code {
	for _, l := range lines {
		if authLine(l) {
			return CodeAuthFailed
		}
	}
	return backend.CodeUnknown
}

// ikeStatus describes the tunnel's current IKE_SA: the most recently
// established one, else the first charon lists; nil when there is none.
func ikeStatus(now time.Time, sas []ikeSA) *backend.IKESAStatus {
	if len(sas) == 0 {
		return nil
	}
	cur, curAge := sas[0], int64(-1)
	for _, sa := range sas {
		if !saEstablished(sa.State) {
			continue
		}
		age, _ := seconds(sa.Established)
		if curAge < 0 || age < curAge {
			cur, curAge = sa, age
		}
	}
	s := &backend.IKESAStatus{
		State: strings.ToLower(cur.State), Initiator: cur.Initiator, SPIi: cur.SPIi, SPIr: cur.SPIr,
		Encap: cur.NATAny || cur.NATLocal || cur.NATRemote, NATLocal: cur.NATLocal, NATRemote: cur.NATRemote,
	}
	if cur.Encr != "" {
		s.Algorithms = fmt.Sprintf("%s/%s/%s", algString(cur.Encr, cur.EncrKeySize, cur.Integ), cur.PRF, cur.DH)
	}
	if n, ok := seconds(cur.Established); ok {
		s.Established = now.Add(-time.Duration(n) * time.Second)
	}
	return s
}

// childStatus describes an installed CHILD_SA of sa.
func childStatus(now time.Time, sa ikeSA, c childSA) backend.ChildSAStatus {
	s := backend.ChildSAStatus{Name: string(c.Name), InSPI: c.SPIIn, OutSPI: c.SPIOut, Algorithm: algString(c.Encr, c.EncrKeySize, c.Integ), Encap: "none"}
	if c.Encap {
		s.Encap = "udp " + sa.LocalPort + "->" + sa.RemotePort
	}
	if n, ok := seconds(c.InstallTime); ok {
		s.Established = now.Add(-time.Duration(n) * time.Second)
	}
	s.BytesIn, s.PacketsIn = counter(c.BytesIn), counter(c.PacketsIn)
	s.BytesOut, s.PacketsOut = counter(c.BytesOut), counter(c.PacketsOut)
	return s
}

func saEstablished(state string) bool {
	switch state {
	case "ESTABLISHED", "REKEYING", "REKEYED":
		return true
	}
	return false
}

// seconds parses a time in seconds as charon prints it.
func seconds(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > int64(math.MaxInt64/time.Second) {
		return 0, false
	}
	return n, true
}

// counter parses a counter as charon prints it; 0 when it cannot.
func counter(s string) uint64 {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0
	}
	return n
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
