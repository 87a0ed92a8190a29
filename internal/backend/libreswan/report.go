// Reports: ipsec/status, xfrm/policies and xfrm/state as
// ovs-monitor-ipsec prints them: Python dict reprs of pluto's active
// conns ({ifname: {conn: line}}) and of `ip xfrm policy` / `ip xfrm state`
// lines keyed by address.

package libreswan

import (
	"context"
	"fmt"
	"strings"
)

// Report answers ipsec/status, xfrm/policies and xfrm/state.
func (b *Backend) Report(ctx context.Context, command string) (string, error) {
	switch command {
	case "ipsec/status":
		ps, err := b.status(ctx)
		if err != nil {
			return "", err
		}
		return b.activeReport(ps), nil
	case "xfrm/policies":
		out, err := b.ipXfrm(ctx, "policy")
		if err != nil {
			return "", err
		}
		return pyDictOfLists(xfrmPolicies(out)), nil
	case "xfrm/state":
		out, err := b.ipXfrm(ctx, "state")
		if err != nil {
			return "", err
		}
		return pyDictOfLists(xfrmStates(out)), nil
	}
	return "", fmt.Errorf("unknown report %q for the libreswan backend", command)
}

func (b *Backend) ipXfrm(ctx context.Context, what string) (string, error) {
	argv := []string{"ip", "xfrm", what}
	r, err := b.cfg.Runner.Run(ctx, argv)
	if err != nil || r.Code != 0 {
		return "", orCommandError(err, "get XFRM "+what, argv, r)
	}
	return r.Stdout, nil
}

// activeReport is {ifname: {conn: line}} for every conn with a Child SA,
// in the order pluto lists them.
func (b *Backend) activeReport(ps plutoStatus) string {
	type entry struct{ conn, line string }
	var order []string
	by := map[string][]entry{}
	seen := map[string]bool{}
	b.mu.Lock()
	for _, s := range ps.States {
		if !s.ESP || seen[s.Conn] {
			continue
		}
		seen[s.Conn] = true
		iface := b.ownerLocked(s.Conn)
		if iface == "" {
			p, ok := parseConn(s.Conn)
			if !ok {
				continue
			}
			iface = p.Iface
		}
		if _, ok := by[iface]; !ok {
			order = append(order, iface)
		}
		by[iface] = append(by[iface], entry{s.Conn, s.Line})
	}
	b.mu.Unlock()
	var sb strings.Builder
	sb.WriteByte('{')
	for i, iface := range order {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(pyStr(iface) + ": {")
		for j, e := range by[iface] {
			if j > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(pyStr(e.conn) + ": " + pyStr(e.line))
		}
		sb.WriteByte('}')
	}
	sb.WriteByte('}')
	return sb.String()
}

// keyedLines is an insertion-ordered map of address to lines.
type keyedLines struct {
	order []string
	lines map[string][]string
}

func (k *keyedLines) add(key, line string) {
	if k.lines == nil {
		k.lines = map[string][]string{}
	}
	if _, ok := k.lines[key]; !ok {
		k.order = append(k.order, key)
	}
	k.lines[key] = append(k.lines[key], line)
}

// xfrmPolicies keys every "src A dst B" line by B (twice: upstream files
// each line under the destination twice, a quirk its readers expect).
func xfrmPolicies(out string) keyedLines {
	var k keyedLines
	for _, line := range strings.Split(out, "\n") {
		a := strings.Split(strings.TrimSpace(line), " ")
		if len(a) >= 4 && a[0] == "src" && a[2] == "dst" {
			dst, _, _ := strings.Cut(a[3], "/")
			k.add(dst, line)
			k.add(dst, line)
		}
	}
	return k
}

// xfrmStates keys every "sel src A dst B" line by B and by A.
func xfrmStates(out string) keyedLines {
	var k keyedLines
	for _, line := range strings.Split(out, "\n") {
		a := strings.Split(strings.TrimSpace(line), " ")
		if len(a) >= 5 && a[0] == "sel" && a[1] == "src" && a[3] == "dst" {
			remote, _, _ := strings.Cut(strings.TrimSpace(a[4]), "/")
			local, _, _ := strings.Cut(strings.TrimSpace(a[2]), "/")
			k.add(remote, line)
			k.add(local, line)
		}
	}
	return k
}

func pyDictOfLists(k keyedLines) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i, key := range k.order {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(pyStr(key) + ": [")
		for j, l := range k.lines[key] {
			if j > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(pyStr(l))
		}
		sb.WriteByte(']')
	}
	sb.WriteByte('}')
	return sb.String()
}

// pyStr is Python's repr of an ASCII str: single quotes unless it holds
// one and no double quote; backslash escapes for the quote, backslash and
// control characters.
func pyStr(s string) string {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < ' ' || c >= 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte(q)
	return b.String()
}
