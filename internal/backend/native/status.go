// Status stage: the backend's view of each tunnel (phase and reason from
// the IKE engine, SPIs and ESP counters from the installed SAs) and the
// unixctl reports in upstream's shapes.

package native

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike"
)

// Status implements backend.Backend.
func (b *Backend) Status(ctx context.Context) (map[string]backend.TunnelStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]backend.TunnelStatus, len(b.tunnels))
	for name, st := range b.tunnels {
		out[name] = b.tunnelStatusLocked(st)
	}
	b.guardedStatusLocked(out)
	return out, nil
}

func (b *Backend) tunnelStatusLocked(st *tunnelState) backend.TunnelStatus {
	ps := b.eng.Status(st.plan.peer.Name)
	ts := backend.TunnelStatus{Name: st.t.Name, Version: st.t.Version}
	named := installedByName(st)
	var missing []string
	for _, name := range st.plan.children {
		cs := named[name]
		if len(cs) == 0 {
			missing = append(missing, name)
			ts.Conns = append(ts.Conns, backend.ConnStatus{Name: name})
			continue
		}
		ts.Conns = append(ts.Conns, backend.ConnStatus{Name: name, Active: true, Line: statusLine(cs[len(cs)-1])})
	}
	switch {
	case b.broken != nil:
		ts.Phase, ts.Code = backend.PhaseDown, backend.CodeBackendBroken
		ts.Reason = "native backend broken: " + b.broken.Error() + " (restart ovnsecd)"
	case ps.Up() && len(missing) == 0:
		ts.Phase = backend.PhaseUp
	case ps.Up():
		ts.Phase, ts.Code = backend.PhaseConnecting, backend.CodeWaitingForChild
		ts.Reason = "IKE SA established, waiting for Child SA " + strings.Join(missing, ", ")
		if st.installErr != "" {
			ts.Phase, ts.Code = backend.PhaseDown, backend.CodeInstallFailed
			ts.Reason = "IKE SA established but the ESP SA could not be installed: " + st.installErr
		}
	case ps.State == ike.SAConnecting:
		ts.Phase, ts.Code = backend.PhaseConnecting, backend.Code(ps.Code)
		ts.Reason = "IKE negotiation in progress"
		if ps.Reason != "" {
			ts.Reason += " (" + ps.Reason + ")"
		}
	default:
		ts.Phase, ts.Code = backend.PhaseDown, backend.Code(ps.Code)
		ts.Reason = ps.Reason
		if ts.Reason == "" {
			ts.Reason = "IKE SA " + ps.State.String()
		}
	}
	if ts.Phase == backend.PhaseUp || ts.Code == backend.Code(ike.ReasonNone) {
		ts.Code = backend.CodeNone
	}
	ts.IKE = ikeStatus(ps)
	algs := map[string]string{}
	for _, c := range ps.Children {
		algs[c.Name] = c.Algorithms
	}
	for _, c := range sortedChildren(st) {
		ts.Children = append(ts.Children, childStatus(c, algs[c.name]))
	}

	// Text, rendered from the data above.
	ts.Details = append(ts.Details, ikeLine(ts.IKE))
	if st.credErr != "" {
		ts.Details = append(ts.Details, "Credentials: renewed files not applied, new IKE SAs use the previous ones: "+st.credErr)
	}
	for _, c := range ts.Children {
		ts.Details = append(ts.Details, childLine(c))
	}
	if n := b.loop.Hold().Len(st.plan.remote); n > 0 {
		ts.Details = append(ts.Details, fmt.Sprintf("%d frames held waiting for an SA", n))
	}
	if hs := b.hook.Stats(); len(hs.Drops) > 0 {
		var parts []string
		for _, k := range sortedKeys(hs.Drops) {
			parts = append(parts, fmt.Sprintf("%s=%d", k, hs.Drops[k]))
		}
		ts.Details = append(ts.Details, "ESP engine drops (all peers): "+strings.Join(parts, " "))
	}
	return ts
}

// ikeStatus is the IKE SA part of the typed status.
func ikeStatus(ps ike.PeerStatus) *backend.IKESAStatus {
	s := &backend.IKESAStatus{State: ps.State.String(), Rekeys: ps.Rekeys}
	if ps.Up() {
		s.Initiator, s.Established = ps.Initiator, ps.Established
		s.SPIi, s.SPIr = ps.SPIi.String(), ps.SPIr.String()
		s.Algorithms, s.Encap, s.NATLocal, s.NATRemote = ps.Algorithms, ps.Encap, ps.NATLocal, ps.NATRemote
	}
	return s
}

// ikeLine renders the IKE SA as tunnels/show's detail line.
func ikeLine(s *backend.IKESAStatus) string {
	line := "IKE SA: " + s.State
	if s.SPIi != "" {
		line += fmt.Sprintf(", %s, SPIs %s_i %s_r", s.Algorithms, s.SPIi, s.SPIr)
		if s.Encap {
			line += ", UDP-encapsulated"
		}
		if s.NATLocal || s.NATRemote {
			line += fmt.Sprintf(", NAT local=%v remote=%v", s.NATLocal, s.NATRemote)
		}
	}
	return line
}

// sortedChildren returns the installed children in install order.
func sortedChildren(st *tunnelState) []*childState {
	cs := make([]*childState, 0, len(st.children))
	for _, c := range st.children {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].seq < cs[j].seq })
	return cs
}

// installedByName groups the installed children by name, in install order.
func installedByName(st *tunnelState) map[string][]*childState {
	m := map[string][]*childState{}
	for _, c := range sortedChildren(st) {
		m[c.name] = append(m[c.name], c)
	}
	return m
}

// statusLine is the one-line state of an installed child, in the shape
// strongSwan prints it: "<conn>{n}:  INSTALLED, TRANSPORT, ESP SPIs: x_i y_o".
func statusLine(c *childState) string {
	mode := "TRANSPORT"
	if c.encap.Type == esp.EncapUDP {
		mode += "-in-UDP"
	}
	return fmt.Sprintf("%s{%d}:  INSTALLED, %s, ESP SPIs: %08x_i %08x_o", c.name, c.seq, mode, uint32(c.inSPI), uint32(c.outSPI))
}

// childStatus is one installed child's typed status: SPIs, algorithm,
// encapsulation and ESP counters.
func childStatus(c *childState, algs string) backend.ChildSAStatus {
	in, out := c.in.Stats(), c.out.Stats()
	if algs == "" {
		algs = fmt.Sprintf("AES_GCM_16_%d", c.keyBits)
	}
	cs := backend.ChildSAStatus{
		Name: c.name, InSPI: fmt.Sprintf("%08x", uint32(c.inSPI)), OutSPI: fmt.Sprintf("%08x", uint32(c.outSPI)),
		Algorithm: algs, Encap: c.encap.String(), Established: c.established,
		PacketsIn: in.PacketsIn, BytesIn: in.BytesIn, PacketsOut: out.PacketsOut, BytesOut: out.BytesOut,
	}
	for _, d := range []struct {
		name string
		n    uint64
	}{
		{"replay", in.DropReplay}, {"auth", in.DropAuth}, {"malformed", in.DropMalformed},
		{"policy", in.DropPolicy + out.DropPolicy}, {"lifetime", in.DropLifetime + out.DropLifetime},
		{"seq-overflow", out.DropSeqOverflow},
	} {
		if d.n != 0 {
			if cs.Drops == nil {
				cs.Drops = map[string]uint64{}
			}
			cs.Drops[d.name] = d.n
		}
	}
	return cs
}

// childDropOrder is the order drop reasons are printed in.
var childDropOrder = []string{"replay", "auth", "malformed", "policy", "lifetime", "seq-overflow"}

// childLine renders a child as tunnels/show's detail line.
func childLine(c backend.ChildSAStatus) string {
	var drops []string
	for _, k := range childDropOrder {
		if n := c.Drops[k]; n != 0 {
			drops = append(drops, fmt.Sprintf("%s=%d", k, n))
		}
	}
	dropText := "none"
	if len(drops) > 0 {
		dropText = strings.Join(drops, " ")
	}
	return fmt.Sprintf("%s: ESP SPIs %s_i %s_o, %s, encap %s, in %d pkts/%d bytes, out %d pkts/%d bytes, drops %s",
		c.Name, c.InSPI, c.OutSPI, c.Algorithm, c.Encap, c.PacketsIn, c.BytesIn, c.PacketsOut, c.BytesOut, dropText)
}

// Report implements backend.Backend: "ipsec/status" is upstream's Python
// dict {ifname: {conn: line}} of installed children ({} when none);
// "xfrm/state" and "xfrm/policies" render the native SA table in the
// shape of upstream's {ip: [lines]} (there is no kernel XFRM state).
func (b *Backend) Report(ctx context.Context, command string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch command {
	case "ipsec/status":
		m := map[string]map[string]string{}
		for name, st := range b.tunnels {
			for cn, cs := range installedByName(st) {
				if m[name] == nil {
					m[name] = map[string]string{}
				}
				m[name][cn] = statusLine(cs[len(cs)-1])
			}
		}
		return pyDictOfDicts(m), nil
	case "xfrm/state", "xfrm/policies":
		m := map[string][]string{}
		for _, st := range b.tunnels {
			r := st.plan.remote.String()
			l := b.cfg.Local.String()
			for _, c := range sortedChildren(st) {
				if command == "xfrm/state" {
					m[r] = append(m[r],
						fmt.Sprintf("src %s dst %s proto esp spi 0x%08x mode transport encap %v", r, l, uint32(c.inSPI), c.encap),
						fmt.Sprintf("src %s dst %s proto esp spi 0x%08x mode transport encap %v", l, r, uint32(c.outSPI), c.encap))
				} else {
					m[r] = append(m[r], fmt.Sprintf("src %s dst %s proto %s dir out+in tmpl esp transport (%s)", l, r, st.plan.policy.Proto, c.name))
				}
			}
		}
		return pyDictOfLists(m), nil
	}
	return "", fmt.Errorf("unknown report %q for the native backend (ipsec/status, xfrm/state, xfrm/policies)", command)
}

// pyStr renders s as a Python str literal (repr).
func pyStr(s string) string {
	q := byte('\'')
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		q = '"'
	}
	var sb strings.Builder
	sb.WriteByte(q)
	for _, r := range s {
		switch {
		case r == '\\':
			sb.WriteString(`\\`)
		case r == rune(q):
			sb.WriteByte('\\')
			sb.WriteByte(q)
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\t':
			sb.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&sb, `\x%02x`, r)
		default:
			sb.WriteRune(r)
		}
	}
	sb.WriteByte(q)
	return sb.String()
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func pyDictOfDicts(m map[string]map[string]string) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(pyStr(k) + ": {")
		for j, k2 := range sortedKeys(m[k]) {
			if j > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(pyStr(k2) + ": " + pyStr(m[k][k2]))
		}
		sb.WriteByte('}')
	}
	sb.WriteByte('}')
	return sb.String()
}

func pyDictOfLists(m map[string][]string) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(pyStr(k) + ": [")
		for j, v := range m[k] {
			if j > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(pyStr(v))
		}
		sb.WriteByte(']')
	}
	sb.WriteByte('}')
	return sb.String()
}
