// What charon reports: the list-conns, list-sas and list-policies queries
// and the decoding of their event messages into plain structs, with
// govici's vici.UnmarshalMessage and `vici` struct tags, plus charon's
// traffic selector strings. charon is trusted less than our own code: a
// missing field decodes to its zero value, and a field of the wrong shape
// (a list where a string belongs, a string where a section belongs) makes
// the whole reply an error naming the section, never a panic.

package strongswan

import (
	"context"
	"errors"
	"fmt"
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
		cs, err := decodeListConn(ev)
		if err != nil {
			return nil, fmt.Errorf("decode charon's list-conns reply: %w", err)
		}
		for _, c := range cs {
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
		sas, err := decodeListSA(ev)
		if err != nil {
			return nil, fmt.Errorf("decode charon's list-sas reply: %w", err)
		}
		out = append(out, sas...)
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
		ps, err := decodeListPolicy(ev)
		if err != nil {
			return nil, fmt.Errorf("decode charon's list-policies reply: %w", err)
		}
		out = append(out, ps...)
	}
	return out, nil
}

// ikeSA is one IKE_SA from list-sas: the fields charon lists in the IKE_SA's
// section, decoded by vici.UnmarshalMessage through the vici tags.
type ikeSA struct {
	Conn        ConnName  // IKE connection (peer config) name: the section's key
	UniqueID    string    `vici:"uniqueid"`
	State       string    `vici:"state"` // CREATED, CONNECTING, ESTABLISHED, PASSIVE, REKEYING, REKEYED, DELETING, DESTROYING
	LocalHost   string    `vici:"local-host"`
	RemoteHost  string    `vici:"remote-host"`
	LocalID     string    `vici:"local-id"`
	RemoteID    string    `vici:"remote-id"`
	Initiator   bool      `vici:"initiator"` // "yes", "no" or absent
	SPIi        string    `vici:"initiator-spi"`
	SPIr        string    `vici:"responder-spi"`
	LocalPort   string    `vici:"local-port"`
	RemotePort  string    `vici:"remote-port"`
	NATLocal    bool      `vici:"nat-local"`
	NATRemote   bool      `vici:"nat-remote"`
	NATAny      bool      `vici:"nat-any"` // also set when UDP encapsulation is forced
	Encr        string    `vici:"encr-alg"`
	EncrKeySize string    `vici:"encr-keysize"`
	Integ       string    `vici:"integ-alg"`
	PRF         string    `vici:"prf-alg"`
	DH          string    `vici:"dh-group"`
	Established string    `vici:"established"` // seconds, as charon printed it
	Children    []childSA // the child-sas section, in charon's order
}

// childSA is one CHILD_SA inside an IKE_SA.
type childSA struct {
	Name        ConnName `vici:"name"` // CHILD_SA config name
	UniqueID    string   `vici:"uniqueid"`
	ReqID       string   `vici:"reqid"`
	State       string   `vici:"state"` // CREATED, ROUTED, INSTALLING, INSTALLED, UPDATING, REKEYING, REKEYED, RETRYING, DELETING, DESTROYING
	Mode        string   `vici:"mode"`
	Protocol    string   `vici:"protocol"`
	Encap       bool     `vici:"encap"` // "yes", "no" or absent
	SPIIn       string   `vici:"spi-in"`
	SPIOut      string   `vici:"spi-out"`
	Encr        string   `vici:"encr-alg"`
	EncrKeySize string   `vici:"encr-keysize"`
	Integ       string   `vici:"integ-alg"`
	LocalTS     []string `vici:"local-ts"`
	RemoteTS    []string `vici:"remote-ts"`
	BytesIn     string   `vici:"bytes-in"`
	PacketsIn   string   `vici:"packets-in"`
	BytesOut    string   `vici:"bytes-out"`
	PacketsOut  string   `vici:"packets-out"`
	InstallTime string   `vici:"install-time"` // seconds since installed
}

// ikeSASection is the shape of one IKE_SA section of a list-sa event. The
// CHILD_SAs are keyed by charon ("<name>-<unique id>"), hence the map.
type ikeSASection struct {
	SA       ikeSA              `vici:",inline"`
	ChildSAs map[string]childSA `vici:"child-sas"`
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
	Mode     string   `vici:"mode"`
	LocalTS  []string `vici:"local-ts"`
	RemoteTS []string `vici:"remote-ts"`
}

// connSection is the shape of one connection section of a list-conn
// event. Map keys must be plain strings: govici's reflection panics on a
// named key type such as ConnName.
type connSection struct {
	Children map[string]loadedChild `vici:"children"`
}

// unmarshal is vici.UnmarshalMessage with a guard: govici's reflection
// panics on some shapes (a section-typed field meeting a string, for one),
// which this package's types avoid; should another such case exist, input
// from charon still yields an error rather than a crash of ovnsecd.
func unmarshal(m *vici.Message, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errDecodePanic, r)
		}
	}()
	return vici.UnmarshalMessage(m, v)
}

// errDecodePanic marks a panic of govici's decoder turned into an error.
var errDecodePanic = errors.New("govici panicked decoding charon's message")

// shapeOf names the VICI element type of a message value, for errors.
func shapeOf(v any) string {
	switch v.(type) {
	case nil:
		return "nothing"
	case string:
		return "a value"
	case []string:
		return "a list"
	case *vici.Message:
		return "a section"
	}
	return fmt.Sprintf("a %T", v)
}

// sections calls f with every top-level section of an event message, in
// charon's order; anything else at the top level is an error.
func sections(ev *vici.Message, what string, f func(name string, sec *vici.Message) error) error {
	if ev == nil {
		return nil
	}
	for _, name := range ev.Keys() {
		v := ev.Get(name)
		sec, ok := v.(*vici.Message)
		if !ok || sec == nil {
			return fmt.Errorf("%s %q is %s, not a section", what, name, shapeOf(v))
		}
		if err := f(name, sec); err != nil {
			return fmt.Errorf("%s %q: %w", what, name, err)
		}
	}
	return nil
}

// keysOf returns the keys of the section m holds under key, in charon's
// order (the Go maps vici.UnmarshalMessage fills have none); nil when
// there is no such section.
func keysOf(m *vici.Message, key string) []string {
	sec, ok := m.Get(key).(*vici.Message)
	if !ok || sec == nil {
		return nil
	}
	return sec.Keys()
}

// decodeListSA decodes one list-sa event (normally one IKE_SA). The
// CHILD_SAs keep charon's order, which is their order of creation.
func decodeListSA(ev *vici.Message) ([]ikeSA, error) {
	var out []ikeSA
	err := sections(ev, "IKE_SA", func(name string, sec *vici.Message) error {
		var s ikeSASection
		if err := unmarshal(sec, &s); err != nil {
			return err
		}
		sa := s.SA
		sa.Conn = ConnName(name)
		for _, k := range keysOf(sec, "child-sas") {
			sa.Children = append(sa.Children, s.ChildSAs[k])
		}
		out = append(out, sa)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// decodeListConn decodes one list-conn event.
func decodeListConn(ev *vici.Message) ([]loadedConn, error) {
	var out []loadedConn
	err := sections(ev, "connection", func(name string, sec *vici.Message) error {
		var s connSection
		if err := unmarshal(sec, &s); err != nil {
			return err
		}
		c := loadedConn{Name: ConnName(name), Children: make(map[ConnName]loadedChild, len(s.Children))}
		for k, ch := range s.Children {
			c.Children[ConnName(k)] = ch
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
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
	Child    ConnName `vici:"child"`
	IKE      ConnName `vici:"ike"`
	Mode     string   `vici:"mode"`
	LocalTS  []string `vici:"local-ts"`
	RemoteTS []string `vici:"remote-ts"`
}

// decodeListPolicy decodes one list-policy event (one section per policy,
// keyed "<ike>/<child>").
func decodeListPolicy(ev *vici.Message) ([]policy, error) {
	var out []policy
	err := sections(ev, "policy", func(_ string, sec *vici.Message) error {
		var p policy
		if err := unmarshal(sec, &p); err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
