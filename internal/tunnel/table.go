// Table: the tunnel stage proper. Each database snapshot goes in; the set of
// IPsec tunnels, each CONFIGURED or INVALID with ovs-monitor-ipsec's exact
// reason, and the log lines upstream would have written come out. The only
// state kept between snapshots is what makes versions work: the last
// accepted global PKI configuration and, per tunnel, its last computed
// configuration, version and status.

package tunnel

import (
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock"
)

// Upstream log and reason texts, verbatim (ovs-monitor-ipsec).
const (
	msgGlobalInvalid = "The cert and key configuration is not valid. The valid configuations are 1): certificate, private_key and ca_cert are not set; or 2): certificate and private_key are all set."

	reasonRemoteIPNotSet = ": 'remote_ip' is not set"
	reasonPSKExclusive   = ": 'certificate', 'private_key', 'ca_cert', 'remote_cert', and 'remote_name' must be unset with PSK"
	reasonNoCertificate  = ": must set 'certificate' as local certificate when using CA-signed certificate or self-signed certificate to authenticate peers"
	reasonNoPrivateKey   = ": must set 'private_key' as local private key when using CA-signed certificate or self-signed certificate to authenticate peers"
	reasonNoPeerAuth     = ": must set 'remote_cert' when using self-signed certificate authentication or 'ca_cert' when using CA-signed certificate authentication"
	reasonNoAuthMethod   = ": must choose a authentication method"
)

// reasonRequired is ovnsec's reason for a tunnel without IPsec options on a
// host where IPsec is required (Table.RequireIPsec).
const reasonRequired = ": IPsec is required on this host (ovnsecd --require-ipsec) but none of 'psk', 'remote_cert', 'remote_name' is set; its tunnel packets are dropped until one is"

// Default UDP destination ports (IANA), as ovs-vswitchd uses them.
const (
	portGeneve uint16 = 6081
	portVXLAN  uint16 = 4789
)

// Table tracks IPsec tunnels across database snapshots. It is not safe for
// concurrent use; one goroutine (the daemon's main loop) owns it.
//
// INVALID tunnels stay in the table and in every Update result, with a
// version that only changes when their configuration does, so that
// tunnels/show can say why a tunnel is not protected. ovs-monitor-ipsec
// instead forgets an INVALID tunnel after one pass and re-creates it at
// version 1 on the next database change; ovnsec's versions therefore differ
// from upstream's only after a tunnel has been INVALID.
type Table struct {
	certs CertReader
	clock clock.Clock

	global  globalConf
	seq     uint64
	seenSeq bool
	tunnels map[string]*entry

	// globalProblems are the problems of the accepted global
	// configuration, as last logged.
	globalProblems []string
	// ignored says why the last Open_vSwitch other_config PKI update was
	// ignored ("" when it was accepted); shown on every tunnel.
	ignored string
	// require makes every gre, geneve and vxlan interface a tunnel, INVALID
	// until it has IPsec options, and says why (RequireIPsec, Require).
	require requireState
}

// RequireIPsec makes the table track every gre, geneve and vxlan
// interface, not only those with IPsec options as upstream does: one
// without psk, remote_cert and remote_name is INVALID (and so, with a
// backend that can block, has its packets dropped) instead of being left
// to carry plaintext. It closes the window in which a tunnel exists but
// its IPsec options do not yet (OVN writes remote_name after creating the
// port, and each chassis learns ipsec=true at its own moment). The reason
// of such a tunnel is reasonRequired, which names ovnsecd --require-ipsec;
// Require names another cause. It may be called between Updates: the next
// Update applies it.
func (t *Table) RequireIPsec(on bool) {
	t.Require(Requirement{On: on, Cause: "ovnsecd --require-ipsec"})
}

// globalConf is the accepted Open_vSwitch:other_config PKI configuration.
type globalConf struct {
	certificate, privateKey, caCert string
	localName                       string
	skbMark                         string

	local      CertInfo // the local certificate, when certificate is set
	ca         CertInfo // the CA certificate, when ca_cert is set and readable
	caProblem  string   // why ca_cert could not be read
	keyProblem string   // why private_key does not fit certificate
}

// conf is everything that makes up a tunnel's configuration. Any change
// bumps the version.
type conf struct {
	fields
	custom []Option // ipsec_* options, prefix stripped, sorted by key
}

// fields are the comparable parts of conf: ovs-monitor-ipsec's conf dict
// and ovnsec's dstPort. A certificate replaced at the same path is not a
// new configuration: the backends take it from internal/creds without
// tearing the tunnel down (ovs-monitor-ipsec re-creates every connection
// on a PKI change).
type fields struct {
	typ                               Type
	localIP, remoteIP                 string
	family                            string
	skbMark                           string
	certificate, privateKey, caCert   string
	localName, remoteCert, remoteName string
	psk                               string

	dstPort uint16
}

func (c conf) equal(d conf) bool {
	return c.fields == d.fields && slices.Equal(c.custom, d.custom)
}

// status is the part of a tunnel that never bumps its version.
type status struct {
	ofport string // number or "Not assigned"
	cfm    string // "Up", "Down" or "Disabled"
}

// pyRepr renders the status as ovs-monitor-ipsec's debug log shows its
// status dict.
func (s status) pyRepr() string {
	if s == (status{}) {
		return "{}"
	}
	port := s.ofport
	if _, err := strconv.Atoi(port); err != nil {
		port = pyStrRepr(port)
	}
	return "{'cfm_state': " + pyStrRepr(s.cfm) + ", 'ofport': " + port + "}"
}

// entry is one tracked tunnel.
type entry struct {
	conf     conf
	version  int
	state    State
	reason   string
	status   status
	own      []string // problems of this tunnel, as last logged
	problems []string // own plus the global ones that apply
}

// NewTable returns an empty table. certs reads certificate files (nil means
// FileCertReader); clk gives the time for validity checks (nil means the
// system clock).
func NewTable(certs CertReader, clk clock.Clock) *Table {
	if certs == nil {
		certs = FileCertReader{}
	}
	return &Table{certs: certs, clock: clock.Or(clk), tunnels: map[string]*entry{}}
}

// Update applies one snapshot and returns every tracked tunnel sorted by
// name, and the log lines to write, in the order upstream writes them.
//
// Tunnels that disappeared are returned once with State REMOVED (version
// bumped) and then forgotten. Calling Update again with the same snapshot
// is cheap and safe: it re-reads the certificates, so a certificate
// replaced on disk bumps the affected versions, and it recomputes
// time-dependent problems (expiry), but it does not repeat the warnings
// upstream writes once per database change; those are tied to s.Seq.
// Problems (ovnsec's own checks) are logged when they first appear: a
// tunnel's own as "Tunnel <name>: <problem>", those of the global
// certificate, key and CA once for all tunnels.
func (t *Table) Update(s Snapshot) (tunnels []Tunnel, events []Event) {
	fresh := !t.seenSeq || s.Seq != t.seq
	t.seenSeq, t.seq = true, s.Seq
	now := t.clock.Now()

	events = t.updateGlobal(s.OtherConfig, fresh, events)
	gp := t.global.problems(now)
	for _, p := range gp {
		if !slices.Contains(t.globalProblems, p) {
			events = append(events, Event{Level: slog.LevelWarn, Msg: p})
		}
	}
	t.globalProblems = gp
	if t.ignored != "" {
		// Already warned about above; shown on every tunnel so that
		// tunnels/show says why the PKI in use is not the configured one.
		gp = append(slices.Clone(gp), t.ignored)
	}

	seen := make(map[string]bool, len(s.Interfaces))
	for _, iface := range s.Interfaces {
		if !(selected(iface) || t.require.on && tunnelType(iface)) || seen[iface.Name] {
			continue
		}
		seen[iface.Name] = true
		events = t.updateTunnel(iface, fresh, now, gp, events)
	}

	var removed []Tunnel
	for _, name := range slices.Sorted(maps.Keys(t.tunnels)) {
		if seen[name] {
			continue
		}
		e := t.tunnels[name]
		e.version++
		e.state, e.reason = StateRemoved, ""
		events = append(events, Event{Level: slog.LevelInfo, Tunnel: name, Msg: "Tunnel " + name + " disappeared from OVSDB"})
		removed = append(removed, e.tunnel(name))
		delete(t.tunnels, name)
	}

	tunnels = make([]Tunnel, 0, len(t.tunnels)+len(removed))
	for name, e := range t.tunnels {
		tunnels = append(tunnels, e.tunnel(name))
	}
	tunnels = append(tunnels, removed...)
	slices.SortFunc(tunnels, func(a, b Tunnel) int { return strings.Compare(a.Name, b.Name) })
	return tunnels, events
}

// selected reports whether ovs-monitor-ipsec would manage iface: a gre,
// geneve or vxlan interface whose options hold any of psk, remote_name or
// remote_cert (presence of the key is enough, even with an empty value).
func selected(iface Interface) bool {
	if !tunnelType(iface) {
		return false
	}
	for _, k := range []string{"psk", "remote_name", "remote_cert"} {
		if _, ok := iface.Options[k]; ok {
			return true
		}
	}
	return false
}

// tunnelType reports whether iface is of a type IPsec can protect.
func tunnelType(iface Interface) bool {
	switch Type(iface.Type) {
	case TypeGRE, TypeGeneve, TypeVXLAN:
		return true
	}
	return false
}

// updateGlobal applies the global acceptance rule: the PKI keys are taken
// only if certificate and private_key are both set and a CN can be read
// from the certificate, or if none of certificate, private_key and ca_cert
// is set. Otherwise the whole update, ipsec_skb_mark included, is ignored
// and the previous configuration stays in effect.
func (t *Table) updateGlobal(oc map[string]string, fresh bool, events []Event) []Event {
	warn := func(msg string) {
		if fresh {
			events = append(events, Event{Level: slog.LevelWarn, Msg: msg})
		}
	}
	cert, key, ca := oc["certificate"], oc["private_key"], oc["ca_cert"]
	g := globalConf{certificate: cert, privateKey: key, caCert: ca, skbMark: oc["ipsec_skb_mark"]}
	valid := false
	cause := "certificate and private_key must be set together"
	switch {
	case cert != "" && key != "":
		info, err := t.certs.ReadCert(cert)
		switch {
		case err != nil:
			warn(err.Error())
			cause = err.Error()
		case info.CN == "":
			warn(noCNMsg(cert))
			cause = noCNMsg(cert)
		default:
			valid = true
			g.local, g.localName = info, info.CN
		}
	case cert == "" && key == "" && ca == "":
		valid = true
	}
	if !valid {
		warn(msgGlobalInvalid)
		still := "no certificate"
		if t.global.certificate != "" {
			still = "certificate " + t.global.certificate
		}
		t.ignored = "Open_vSwitch other_config PKI update ignored (" + cause + "); still using " + still
		return events
	}
	t.ignored = ""
	if cert != "" {
		if km, ok := t.certs.(KeyMatcher); ok {
			if err := km.KeyMatches(cert, key); err != nil {
				g.keyProblem = err.Error()
			}
		}
	}
	if ca != "" {
		info, err := t.certs.ReadCert(ca)
		if err != nil {
			g.caProblem = "ca_cert unusable: " + err.Error()
		} else {
			g.ca = info
		}
	}
	t.global = g
	return events
}

func noCNMsg(path string) string {
	return "No CN in the certificate subject (" + path + ")."
}

// updateTunnel creates or updates the entry for iface and appends the
// events in upstream order.
func (t *Table) updateTunnel(iface Interface, fresh bool, now time.Time, globalProblems []string, events []Event) []Event {
	name := iface.Name
	ev := func(level slog.Level, msg string) {
		events = append(events, Event{Level: level, Tunnel: name, Msg: msg})
	}
	e, known := t.tunnels[name]
	if !known {
		ev(slog.LevelInfo, "Tunnel "+name+" appeared in OVSDB")
		e = &entry{state: StateInit}
		t.tunnels[name] = e
	}

	c, remote, remoteErr := t.tunnelConf(iface)
	if fresh && c.remoteCert != "" {
		if remoteErr != nil {
			ev(slog.LevelWarn, remoteErr.Error())
		} else if remote.CN == "" {
			ev(slog.LevelWarn, noCNMsg(c.remoteCert))
		}
	}
	changed := !known || !e.conf.equal(c)
	if changed {
		e.version++
		e.conf = c
		e.state, e.reason = validate(c)
		if t.require.on && !selected(iface) && e.reason == reasonNoAuthMethod {
			e.reason = t.require.reason
		}
		if e.state == StateInvalid {
			ev(slog.LevelWarn, name+" contains invalid configuration"+e.reason)
		}
	}

	st := statusOf(iface)
	if st != e.status {
		ev(slog.LevelDebug, fmt.Sprintf("%s changed status from %s to %s", name, e.status.pyRepr(), st.pyRepr()))
		e.status = st
	}
	if changed && known {
		// Upstream logs this after the status line, once update_conf
		// has returned.
		ev(slog.LevelInfo, fmt.Sprintf("Tunnel's '%s' configuration changed in OVSDB to %d", name, e.version))
	}

	// Global problems are logged once by Update, not once per tunnel.
	own := tunnelProblems(iface, c, remote, remoteErr, now)
	for _, p := range own {
		if !slices.Contains(e.own, p) {
			ev(slog.LevelWarn, "Tunnel "+name+": "+p)
		}
	}
	e.own = own
	e.problems = own
	if auth := authOf(c); auth == AuthSelfSigned || auth == AuthCASigned {
		e.problems = append(slices.Clone(own), globalProblems...)
	}
	return events
}

// tunnelConf computes iface's configuration from its options and the
// global configuration. When options:remote_cert is set, the remote name
// is the CN read from that certificate (empty if it cannot be read), even
// if options:remote_name is set too.
func (t *Table) tunnelConf(iface Interface) (c conf, remote CertInfo, remoteErr error) {
	o := iface.Options
	g := t.global
	c.fields = fields{
		typ:         Type(iface.Type),
		localIP:     o["local_ip"],
		remoteIP:    o["remote_ip"],
		skbMark:     g.skbMark,
		certificate: g.certificate,
		privateKey:  g.privateKey,
		caCert:      g.caCert,
		localName:   g.localName,
		remoteCert:  o["remote_cert"],
		remoteName:  o["remote_name"],
		psk:         o["psk"],
	}
	if c.localIP == "" {
		c.localIP = DefaultRoute
	}
	c.family = addressFamily(c.remoteIP, c.localIP)
	if c.remoteCert != "" {
		remote, remoteErr = t.certs.ReadCert(c.remoteCert)
		c.remoteName = remote.CN // "" when unreadable
	}
	for _, k := range slices.Sorted(maps.Keys(o)) {
		if key, ok := strings.CutPrefix(k, "ipsec_"); ok {
			c.custom = append(c.custom, Option{Key: key, Value: o[k]})
		}
	}
	c.dstPort, _ = dstPort(c.typ, o)
	return c, remote, remoteErr
}

// dstPort returns the UDP destination port ovs-vswitchd uses for the
// tunnel and, when options:dst_port is not written as that port, a problem
// text. The port must be exactly ovs-vswitchd's, whatever the text says:
// the steering rules that keep the tunnel's packets from crossing in clear
// match on it. ovs-vswitchd reads a present dst_port with C atoi and uses
// the result even when it is 0 (it falls back to the IANA port only when
// the option is absent), so "6082 " and "71618" mean 6082 and "-1" 65535
// to it (vswitchdPort; checked against the real ovs-vswitchd in
// dstport_vswitchd_test.go).
func dstPort(typ Type, o map[string]string) (uint16, string) {
	var def uint16
	switch typ {
	case TypeGeneve:
		def = portGeneve
	case TypeVXLAN:
		def = portVXLAN
	default:
		return 0, "" // GRE has no ports; ovs-vswitchd ignores dst_port
	}
	v, ok := o["dst_port"]
	if !ok {
		return def, ""
	}
	p := vswitchdPort(v)
	if strict, err := strconv.ParseUint(v, 10, 16); err == nil && uint16(strict) == p && p != 0 {
		return p, ""
	}
	if p == 0 {
		return 0, fmt.Sprintf("options:dst_port %q is not a port number 1-65535; ovs-vswitchd reads it as UDP port 0 and sends the tunnel's packets there, which ovnsec blocks: set options:dst_port to a port number, or remove it for the default %d", v, def)
	}
	return p, fmt.Sprintf("options:dst_port %q is not written as a port number; ovs-vswitchd reads it as %d, which is the port ovnsec protects: write options:dst_port=%d", v, p, p)
}

// vswitchdPort is the port ovs-vswitchd makes of a dst_port value: glibc's
// atoi (strtol in base 10: leading white space, an optional sign, then
// digits up to the first other byte; saturating at the 64-bit long's
// limits), truncated to int, then to the 16-bit port.
func vswitchdPort(v string) uint16 {
	i := 0
	for i < len(v) && (v[i] == ' ' || (v[i] >= '\t' && v[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(v) && (v[i] == '+' || v[i] == '-') {
		neg = v[i] == '-'
		i++
	}
	const maxLong = 1<<63 - 1
	var n uint64
	overflow := false
	for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		d := uint64(v[i] - '0')
		if n > (maxLong-d)/10 {
			overflow = true
			continue
		}
		n = n*10 + d
	}
	var long int64
	switch {
	case overflow && neg:
		long = -maxLong - 1
	case overflow:
		long = maxLong
	case neg:
		long = -int64(n)
	default:
		long = int64(n)
	}
	return uint16(int32(long))
}

// addressFamily is upstream's rule: the family of remote_ip ("None" when
// it is not an IP), unless local_ip is an IP of the other family, which
// gives "None" (not an error upstream).
func addressFamily(remoteIP, localIP string) string {
	remote, local := family(remoteIP), family(localIP)
	switch {
	case local == "":
		return orNone(remote)
	case local != remote:
		return "None"
	default:
		return remote
	}
}

func family(s string) string {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return ""
	case a.Is4():
		return "IPv4"
	default:
		return "IPv6"
	}
}

func orNone(s string) string {
	if s == "" {
		return "None"
	}
	return s
}

// validate applies ovs-monitor-ipsec's checks in its order, then ovnsec's
// own: a remote_ip (or local_ip other than %defaultroute) that is not an
// IP address, such as "flow", is rejected because no backend can build
// selectors for it; upstream would write a broken connection instead.
func validate(c conf) (State, string) {
	if c.remoteIP == "" {
		return StateInvalid, reasonRemoteIPNotSet
	}
	switch {
	case c.psk != "":
		if c.certificate != "" || c.privateKey != "" || c.caCert != "" || c.remoteCert != "" || c.remoteName != "" {
			return StateInvalid, reasonPSKExclusive
		}
	case c.remoteName != "":
		if c.certificate == "" {
			return StateInvalid, reasonNoCertificate
		}
		if c.privateKey == "" {
			return StateInvalid, reasonNoPrivateKey
		}
		if c.remoteCert == "" && c.caCert == "" {
			return StateInvalid, reasonNoPeerAuth
		}
	default:
		return StateInvalid, reasonNoAuthMethod
	}
	if family(c.remoteIP) == "" {
		return StateInvalid, fmt.Sprintf(": 'remote_ip' is not a valid IP address (%s)", c.remoteIP)
	}
	if c.localIP != DefaultRoute && family(c.localIP) == "" {
		return StateInvalid, fmt.Sprintf(": 'local_ip' is not a valid IP address (%s)", c.localIP)
	}
	return StateConfigured, ""
}

// statusOf computes the status-only fields exactly as upstream does.
func statusOf(iface Interface) status {
	s := status{ofport: "Not assigned", cfm: "Disabled"}
	if iface.OFPort != nil && *iface.OFPort != -1 {
		s.ofport = strconv.Itoa(*iface.OFPort)
	}
	if iface.CFMFault != nil {
		s.cfm = "Up"
		if *iface.CFMFault {
			s.cfm = "Down"
		}
	}
	return s
}

// authOf names the authentication method the configuration selects, the
// way upstream picks its template: PSK, else a remote name with a pinned
// peer certificate (self-signed, wins even when ca_cert is set too), else a
// remote name verified against ca_cert.
func authOf(c conf) AuthMethod {
	switch {
	case c.psk != "":
		return AuthPSK
	case c.remoteName != "" && c.remoteCert != "":
		return AuthSelfSigned
	case c.remoteName != "":
		return AuthCASigned
	}
	return AuthNone
}

// tunnelProblems lists what ovnsec finds wrong with one tunnel beyond
// upstream's checks. The texts are stable (no current time in them) so
// that a change can be logged once.
func tunnelProblems(iface Interface, c conf, remote CertInfo, remoteErr error, now time.Time) []string {
	var p []string
	if _, msg := dstPort(c.typ, iface.Options); msg != "" {
		p = append(p, msg)
	}
	if r, l := family(c.remoteIP), family(c.localIP); r != "" && l != "" && r != l {
		p = append(p, fmt.Sprintf("local_ip %s and remote_ip %s are of different address families", c.localIP, c.remoteIP))
	}
	if c.remoteCert != "" {
		switch {
		case remoteErr != nil:
			p = append(p, remoteErr.Error())
		case remote.CN == "":
			p = append(p, fmt.Sprintf("certificate %s has no CN in its subject; the peer name is taken from the CN", c.remoteCert))
		default:
			p = append(p, certProblems(c.remoteCert, remote, now)...)
		}
	}
	return p
}

// problems lists what is wrong with the accepted global PKI configuration:
// the local certificate, its private key and the CA certificate. They
// apply to every certificate-authenticated tunnel.
func (g globalConf) problems(now time.Time) []string {
	var p []string
	if g.certificate != "" {
		p = append(p, certProblems(g.certificate, g.local, now)...)
		if g.keyProblem != "" {
			p = append(p, g.keyProblem)
		}
	}
	if g.caCert != "" {
		if g.caProblem != "" {
			p = append(p, g.caProblem)
		} else {
			p = append(p, validityProblems(g.caCert, g.ca, now)...)
		}
	}
	return p
}

// certProblems checks an end-entity certificate used as an IKE identity.
func certProblems(path string, c CertInfo, now time.Time) []string {
	var p []string
	if c.Version != 3 {
		p = append(p, fmt.Sprintf("certificate %s is X.509 v%d; IKE peers expect v3 with the CN repeated as SAN DNS", path, c.Version))
	}
	p = append(p, validityProblems(path, c, now)...)
	if c.CN != "" && !slices.Contains(c.DNSNames, c.CN) {
		p = append(p, fmt.Sprintf("certificate %s: CN %q is not among its SAN DNS names %q; peers that match the IKE identity against subjectAltName will reject it", path, c.CN, c.DNSNames))
	}
	return p
}

// validityProblems checks the certificate's validity window against now.
func validityProblems(path string, c CertInfo, now time.Time) []string {
	switch {
	case !c.NotBefore.IsZero() && now.Before(c.NotBefore):
		return []string{fmt.Sprintf("certificate %s is not valid before %s; check the clock or reissue it", path, c.NotBefore.UTC().Format(time.RFC3339))}
	case !c.NotAfter.IsZero() && now.After(c.NotAfter):
		return []string{fmt.Sprintf("certificate %s expired at %s; renew it", path, c.NotAfter.UTC().Format(time.RFC3339))}
	}
	return nil
}

// tunnel builds the exported view of e.
func (e *entry) tunnel(name string) Tunnel {
	c := e.conf
	return Tunnel{
		Name:          name,
		Version:       e.version,
		State:         e.state,
		Reason:        e.reason,
		Type:          c.typ,
		LocalIP:       c.localIP,
		RemoteIP:      c.remoteIP,
		AddressFamily: c.family,
		Local:         ParseAddr(c.localIP),
		Remote:        ParseAddr(c.remoteIP),
		DstPort:       c.dstPort,
		Auth:          authOf(c),
		Certificate:   c.certificate,
		PrivateKey:    c.privateKey,
		CACert:        c.caCert,
		LocalName:     c.localName,
		RemoteCert:    c.remoteCert,
		RemoteName:    c.remoteName,
		PSK:           NewSecret(c.psk),
		SKBMark:       c.skbMark,
		CustomOptions: slices.Clone(c.custom),
		OFPort:        e.status.ofport,
		CFMState:      e.status.cfm,
		Problems:      slices.Clone(e.problems),
	}
}
