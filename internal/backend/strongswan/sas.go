// What charon reports: the list-conns, list-sas and list-policies queries,
// their event messages decoded into plain structs, and traffic selector
// strings parsed. charon is trusted less than our own code: every field is
// optional and malformed values decode to empty strings, never errors.

package strongswan

import (
	"context"
	"strings"

	"github.com/strongswan/govici/vici"
)

// listConns returns the connections charon holds, by name. b.mu held.
func (b *Backend) listConns(ctx context.Context) (map[ConnName]loadedConn, error) {
	evs, err := b.stream(ctx, "list-conns", "list-conn", nil)
	if err != nil {
		return nil, err
	}
	out := map[ConnName]loadedConn{}
	for _, ev := range evs {
		for _, c := range decodeListConn(ev) {
			out[c.Name] = c
		}
	}
	return out, nil
}

// listSAs returns charon's IKE_SAs, optionally only those of one
// connection. b.mu held.
func (b *Backend) listSAs(ctx context.Context, ike ConnName) ([]ikeSA, error) {
	in := vici.NewMessage()
	if err := in.Set("noblock", "yes"); err != nil {
		return nil, err
	}
	if ike != "" {
		if err := in.Set("ike", string(ike)); err != nil {
			return nil, err
		}
	}
	evs, err := b.stream(ctx, "list-sas", "list-sa", in)
	if err != nil {
		return nil, err
	}
	var out []ikeSA
	for _, ev := range evs {
		out = append(out, decodeListSA(ev)...)
	}
	return out, nil
}

// listPolicies returns charon's trap, drop and bypass policies. b.mu held.
func (b *Backend) listPolicies(ctx context.Context) ([]policy, error) {
	evs, err := b.stream(ctx, "list-policies", "list-policy", msgOf("trap", "yes", "drop", "yes", "pass", "yes"))
	if err != nil {
		return nil, err
	}
	var out []policy
	for _, ev := range evs {
		out = append(out, decodeListPolicy(ev)...)
	}
	return out, nil
}

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
