// Decoding of what charon reports: list-sa and list-conn event messages
// into plain structs, and traffic selector strings into xfrm-style
// selectors. charon is trusted less than our own code: every field is
// optional and malformed values decode to empty strings, never errors.
package strongswan

import (
	"sort"
	"strings"

	"github.com/strongswan/govici/vici"
)

// ikeSA is one IKE_SA from list-sas.
type ikeSA struct {
	Conn        ConnName // IKE connection (peer config) name
	UniqueID    string
	State       string // CREATED, CONNECTING, ESTABLISHED, PASSIVE, REKEYING, REKEYED, DELETING, DESTROYING
	LocalHost   string
	RemoteHost  string
	LocalID     string
	RemoteID    string
	Initiator   bool
	Encr        string
	EncrKeySize string
	Integ       string
	PRF         string
	DH          string
	Established string // seconds, as charon printed it
	Children    []childSA
}

// childSA is one CHILD_SA inside an IKE_SA.
type childSA struct {
	Name        ConnName // CHILD_SA config name
	UniqueID    string
	ReqID       string
	State       string // CREATED, ROUTED, INSTALLING, INSTALLED, UPDATING, REKEYING, REKEYED, RETRYING, DELETING, DESTROYING
	Mode        string
	Protocol    string
	Encap       bool
	SPIIn       string
	SPIOut      string
	Encr        string
	EncrKeySize string
	Integ       string
	LocalTS     []string
	RemoteTS    []string
}

// installed reports whether the child is an ESP SA in the kernel.
func (c childSA) installed() bool {
	return c.State == "INSTALLED" && c.SPIIn != "" && c.SPIOut != ""
}

// inProgress reports whether charon is still working on the child.
func (c childSA) inProgress() bool {
	switch c.State {
	case "CREATED", "INSTALLING", "UPDATING", "REKEYING", "RETRYING":
		return true
	}
	return false
}

// loadedConn is one connection from list-conns.
type loadedConn struct {
	Name     ConnName
	Children map[ConnName]loadedChild
}

type loadedChild struct {
	Mode     string
	LocalTS  []string
	RemoteTS []string
}

func str(m *vici.Message, key string) string {
	if m == nil {
		return ""
	}
	s, _ := m.Get(key).(string)
	return s
}

func list(m *vici.Message, key string) []string {
	if m == nil {
		return nil
	}
	l, _ := m.Get(key).([]string)
	return l
}

func sub(m *vici.Message, key string) *vici.Message {
	if m == nil {
		return nil
	}
	s, _ := m.Get(key).(*vici.Message)
	return s
}

// decodeListSA decodes one list-sa event (normally one IKE_SA).
func decodeListSA(ev *vici.Message) []ikeSA {
	var out []ikeSA
	if ev == nil {
		return nil
	}
	for _, name := range ev.Keys() {
		m := sub(ev, name)
		if m == nil {
			continue
		}
		sa := ikeSA{
			Conn:        ConnName(name),
			UniqueID:    str(m, "uniqueid"),
			State:       str(m, "state"),
			LocalHost:   str(m, "local-host"),
			RemoteHost:  str(m, "remote-host"),
			LocalID:     str(m, "local-id"),
			RemoteID:    str(m, "remote-id"),
			Initiator:   str(m, "initiator") == "yes",
			Encr:        str(m, "encr-alg"),
			EncrKeySize: str(m, "encr-keysize"),
			Integ:       str(m, "integ-alg"),
			PRF:         str(m, "prf-alg"),
			DH:          str(m, "dh-group"),
			Established: str(m, "established"),
		}
		children := sub(m, "child-sas")
		if children != nil {
			for _, k := range children.Keys() {
				c := sub(children, k)
				if c == nil {
					continue
				}
				sa.Children = append(sa.Children, childSA{
					Name:        ConnName(str(c, "name")),
					UniqueID:    str(c, "uniqueid"),
					ReqID:       str(c, "reqid"),
					State:       str(c, "state"),
					Mode:        str(c, "mode"),
					Protocol:    str(c, "protocol"),
					Encap:       str(c, "encap") == "yes",
					SPIIn:       str(c, "spi-in"),
					SPIOut:      str(c, "spi-out"),
					Encr:        str(c, "encr-alg"),
					EncrKeySize: str(c, "encr-keysize"),
					Integ:       str(c, "integ-alg"),
					LocalTS:     list(c, "local-ts"),
					RemoteTS:    list(c, "remote-ts"),
				})
			}
		}
		out = append(out, sa)
	}
	return out
}

// decodeListConn decodes one list-conn event.
func decodeListConn(ev *vici.Message) []loadedConn {
	var out []loadedConn
	if ev == nil {
		return nil
	}
	for _, name := range ev.Keys() {
		m := sub(ev, name)
		if m == nil {
			continue
		}
		c := loadedConn{Name: ConnName(name), Children: map[ConnName]loadedChild{}}
		if ch := sub(m, "children"); ch != nil {
			for _, k := range ch.Keys() {
				cm := sub(ch, k)
				if cm == nil {
					continue
				}
				c.Children[ConnName(k)] = loadedChild{
					Mode:     str(cm, "mode"),
					LocalTS:  list(cm, "local-ts"),
					RemoteTS: list(cm, "remote-ts"),
				}
			}
		}
		out = append(out, c)
	}
	return out
}

// ownedConn reports whether a loaded connection has the shape ovnsec gives
// its connections: IKE name "<if>-<v>" with exactly the children
// "<if>-in-<v>"+"<if>-out-<v>" or "<if>-<v>". Connections loaded by anybody
// else (swanctl.conf, other tools) are never touched.
func ownedConn(c loadedConn) (iface string, version int, ok bool) {
	n := string(c.Name)
	i := strings.LastIndexByte(n, '-')
	if i <= 0 {
		return "", 0, false
	}
	v, ok := parseVersion(n[i+1:])
	if !ok {
		return "", 0, false
	}
	iface = n[:i]
	vs := n[i+1:]
	switch len(c.Children) {
	case 1:
		if _, ok := c.Children[c.Name]; ok {
			return iface, v, true
		}
	case 2:
		_, in := c.Children[ConnName(iface+"-in-"+vs)]
		_, out := c.Children[ConnName(iface+"-out-"+vs)]
		if in && out {
			return iface, v, true
		}
	}
	return "", 0, false
}

// trafficSelector is one charon traffic selector ("192.0.2.1/32[udp/6081]").
type trafficSelector struct {
	Net   string // "192.0.2.1/32", "10.0.0.1..10.0.0.9" or "dynamic"
	Proto string // "udp", "gre", "47", "" for any
	Port  string // "6081", "1000-2000", "" for any
}

// parseTS parses charon's printed form: NET, NET[PROTO] or NET[PROTO/PORT].
func parseTS(s string) (trafficSelector, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return trafficSelector{}, false
	}
	open := strings.IndexByte(s, '[')
	if open < 0 {
		if strings.ContainsAny(s, "] \t") {
			return trafficSelector{}, false
		}
		return trafficSelector{Net: s}, true
	}
	if open == 0 || !strings.HasSuffix(s, "]") || strings.Count(s, "[") != 1 || strings.Count(s, "]") != 1 {
		return trafficSelector{}, false
	}
	ts := trafficSelector{Net: s[:open]}
	inner := s[open+1 : len(s)-1]
	proto, port, _ := strings.Cut(inner, "/")
	if strings.ContainsAny(inner, " \t") || strings.Contains(port, "/") {
		return trafficSelector{}, false
	}
	if proto == "0" || proto == "%any" {
		proto = ""
	}
	if port == "0" || port == "%any" {
		port = ""
	}
	ts.Proto, ts.Port = proto, port
	return ts, true
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

// policy is one trap, drop or bypass policy from list-policies.
type policy struct {
	Child    ConnName
	IKE      ConnName
	Mode     string
	LocalTS  []string
	RemoteTS []string
}

// decodeListPolicy decodes one list-policy event.
func decodeListPolicy(ev *vici.Message) []policy {
	var out []policy
	if ev == nil {
		return nil
	}
	for _, name := range ev.Keys() {
		m := sub(ev, name)
		if m == nil {
			continue
		}
		out = append(out, policy{
			Child: ConnName(str(m, "child")), IKE: ConnName(str(m, "ike")), Mode: str(m, "mode"),
			LocalTS: list(m, "local-ts"), RemoteTS: list(m, "remote-ts"),
		})
	}
	return out
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
