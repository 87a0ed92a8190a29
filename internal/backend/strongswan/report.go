// Reports: ipsec/status, xfrm/policies and xfrm/state rendered from what
// charon lists, in the Python dict repr ovs-monitor-ipsec prints, and the
// one-line CHILD_SA form `ipsec status` uses.

package strongswan

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Report answers ipsec/status, xfrm/policies and xfrm/state from charon's
// own view (list-sas), since the kernel's XFRM tables are charon's.
func (b *Backend) Report(ctx context.Context, command string) (string, error) {
	switch command {
	case "ipsec/status", "xfrm/policies", "xfrm/state":
	default:
		return "", fmt.Errorf("unknown report %q for the strongswan backend", command)
	}
	b.mu.Lock()
	sas, err := b.listSAs(ctx, "")
	var pols []policy
	if err == nil && command == "xfrm/policies" {
		pols, err = b.listPolicies(ctx)
	}
	known := make([]string, 0, len(b.tunnels))
	for n := range b.tunnels {
		known = append(known, n)
	}
	b.mu.Unlock()
	if err != nil {
		return "", err
	}
	switch command {
	case "xfrm/policies":
		return xfrmReport(sas, pols, true), nil
	case "xfrm/state":
		return xfrmReport(sas, nil, false), nil
	}
	return activeReport(sas, known), nil
}

// activeReport renders {ifname: {conn: line}} for every installed child.
func activeReport(sas []ikeSA, known []string) string {
	out := map[string]map[string]string{}
	sort.Slice(known, func(i, j int) bool { return len(known[i]) > len(known[j]) })
	for _, sa := range sas {
		for _, c := range sa.Children {
			if !c.installed() {
				continue
			}
			iface := ""
			for _, k := range known {
				if _, ok := BelongsTo(string(c.Name), k); ok {
					iface = k
					break
				}
			}
			if iface == "" {
				p, ok := ParseConnName(string(c.Name))
				if !ok {
					continue
				}
				iface = p.Iface
			}
			if out[iface] == nil {
				out[iface] = map[string]string{}
			}
			out[iface][string(c.Name)] = statusLine(c)
		}
	}
	return pyDictOfDicts(out)
}

// xfrmSelector renders a flow from src to dst in `ip xfrm` selector form;
// the port of the destination selector is the dport, the source's the sport.
func xfrmSelector(src, dst trafficSelector) string {
	var b strings.Builder
	b.WriteString("src ")
	b.WriteString(src.Net)
	b.WriteString(" dst ")
	b.WriteString(dst.Net)
	proto := dst.Proto
	if proto == "" {
		proto = src.Proto
	}
	if proto != "" {
		b.WriteString(" proto ")
		b.WriteString(proto)
	}
	if src.Port != "" {
		b.WriteString(" sport ")
		b.WriteString(src.Port)
	}
	if dst.Port != "" {
		b.WriteString(" dport ")
		b.WriteString(dst.Port)
	}
	return b.String()
}

func tsHost(ts trafficSelector) string {
	h, _, _ := strings.Cut(ts.Net, "/")
	return h
}

// statusLine renders a CHILD_SA the way `ipsec status` prints it.
func statusLine(c childSA) string {
	var b strings.Builder
	b.WriteString(string(c.Name))
	b.WriteString("{")
	b.WriteString(c.UniqueID)
	b.WriteString("}:  ")
	b.WriteString(c.State)
	b.WriteString(", ")
	b.WriteString(strings.ToUpper(c.Mode))
	if c.Encap {
		b.WriteString("-in-UDP")
	}
	if c.ReqID != "" {
		b.WriteString(", reqid ")
		b.WriteString(c.ReqID)
	}
	if c.SPIIn != "" || c.SPIOut != "" {
		b.WriteString(", ")
		b.WriteString(strings.ToUpper(c.Protocol))
		b.WriteString(" SPIs: ")
		b.WriteString(c.SPIIn)
		b.WriteString("_i ")
		b.WriteString(c.SPIOut)
		b.WriteString("_o")
	}
	return b.String()
}

func algString(encr, keySize, integ string) string {
	s := encr
	if keySize != "" {
		s += "-" + keySize
	}
	if integ != "" {
		s += "/" + integ
	}
	return s
}

// tsPairs calls f for every parsable (local, remote) selector pair.
func tsPairs(local, remote []string, f func(l, r trafficSelector)) {
	for _, lraw := range local {
		l, ok := parseTS(lraw)
		if !ok {
			continue
		}
		for _, rraw := range remote {
			if r, ok := parseTS(rraw); ok {
				f(l, r)
			}
		}
	}
}

// xfrmReport renders what charon says it installed, as Python dict reprs
// keyed by IP address like ovs-monitor-ipsec's xfrm/policies and
// xfrm/state. Policies (the trap/drop/bypass policies of list-policies plus
// those of installed CHILD_SAs) are rendered like the first line of
// `ip xfrm policy` and keyed by destination address, once (upstream files
// each line twice under the destination, a known quirk not reproduced).
// States are "sel" lines keyed by both local and remote address.
func xfrmReport(sas []ikeSA, pols []policy, policies bool) string {
	out := map[string][]string{}
	seen := map[string]bool{}
	add := func(k, line string) {
		if k != "" && !seen[k+"\x00"+line] {
			seen[k+"\x00"+line] = true
			out[k] = append(out[k], line)
		}
	}
	if policies {
		for _, p := range pols {
			tsPairs(p.LocalTS, p.RemoteTS, func(l, r trafficSelector) {
				add(tsHost(r), xfrmSelector(l, r))
				add(tsHost(l), xfrmSelector(r, l))
			})
		}
	}
	for _, sa := range sas {
		for _, c := range sa.Children {
			if !c.installed() {
				continue
			}
			for _, lraw := range c.LocalTS {
				l, ok := parseTS(lraw)
				if !ok {
					continue
				}
				for _, rraw := range c.RemoteTS {
					r, ok := parseTS(rraw)
					if !ok {
						continue
					}
					if policies {
						add(tsHost(r), xfrmSelector(l, r))
						add(tsHost(l), xfrmSelector(r, l))
						continue
					}
					alg := algString(c.Encr, c.EncrKeySize, c.Integ)
					outLine := "sel " + xfrmSelector(l, r) + " spi 0x" + c.SPIOut + " " + alg
					inLine := "sel " + xfrmSelector(r, l) + " spi 0x" + c.SPIIn + " " + alg
					add(tsHost(l), outLine)
					add(tsHost(r), outLine)
					add(tsHost(l), inLine)
					add(tsHost(r), inLine)
				}
			}
		}
	}
	return pyDictOfLists(out)
}

// pyStr renders s as Python's repr() of a str does.
func pyStr(s string) string {
	q := byte('\'')
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == rune(q):
			b.WriteByte('\\')
			b.WriteByte(q)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r >= 0x7f && r < 0xa0:
			const hexd = "0123456789abcdef"
			b.WriteString(`\x`)
			b.WriteByte(hexd[r>>4])
			b.WriteByte(hexd[r&0xf])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func pyDictOfLists(m map[string][]string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pyStr(k))
		b.WriteString(": [")
		for j, v := range m[k] {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(pyStr(v))
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return b.String()
}

func pyDictOfDicts(m map[string]map[string]string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pyStr(k))
		b.WriteString(": {")
		for j, k2 := range sortedKeys(m[k]) {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(pyStr(k2))
			b.WriteString(": ")
			b.WriteString(pyStr(m[k][k2]))
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
	return b.String()
}
