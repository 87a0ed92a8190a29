// Configuration building: turns a tunnel.Tunnel into the VICI load-conn
// message (connection, auth rounds, CHILD_SAs) equivalent to what
// ovs-monitor-ipsec writes into ipsec.conf for charon, and maps the ipsec_*
// custom options onto swanctl.conf keywords. Pure functions, no I/O.

package strongswan

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/strongswan/govici/vici"

	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// The crypto suite ovs-monitor-ipsec configures for charon (§1.7).
const (
	ikeProposal = "aes256gcm16-sha256-modp2048"
	espProposal = "aes256gcm16-modp2048"
)

// connSpec is everything load-conn needs for one tunnel version.
type connSpec struct {
	IKE      ConnName
	Children []childSpec
	Msg      *vici.Message // {<IKE>: {...}}
	// Unsupported lists the custom options that could not be applied.
	Unsupported []string
}

type childSpec struct {
	Name ConnName
	Dir  Direction
}

// pemMaterial is the public certificate data a connection embeds.
type pemMaterial struct {
	LocalCert  []byte   // PEM of Tunnel.Certificate (first certificate)
	RemoteCert []byte   // PEM of Tunnel.RemoteCert (self-signed mode)
	CACerts    [][]byte // PEM of each certificate in Tunnel.CACert
}

// selectors returns the local_ts and remote_ts of a child, as
// ovs-monitor-ipsec's leftprotoport/rightprotoport.
func selectors(typ tunnel.Type, dir Direction, port uint16) (local, remote string) {
	if typ == tunnel.TypeGRE {
		return "dynamic[gre]", "dynamic[gre]"
	}
	p := "dynamic[udp/" + strconv.Itoa(int(port)) + "]"
	if dir == DirIn {
		return p, "dynamic[udp]"
	}
	return "dynamic[udp]", p
}

// buildConn builds the load-conn message for t. Unsupported or invalid
// custom options are left out and listed in connSpec.Unsupported.
func buildConn(t tunnel.Tunnel, mat pemMaterial) (connSpec, error) {
	if t.Name == "" || t.Version <= 0 {
		return connSpec{}, fmt.Errorf("tunnel %q has no name or version %d: nothing to load", t.Name, t.Version)
	}
	if t.State != tunnel.StateConfigured {
		return connSpec{}, fmt.Errorf("tunnel %s is %s, not CONFIGURED: refusing to load it", t.Name, t.State)
	}
	if t.RemoteIP == "" {
		return connSpec{}, fmt.Errorf("tunnel %s has no remote_ip", t.Name)
	}
	switch t.Type {
	case tunnel.TypeGeneve, tunnel.TypeVXLAN:
		if t.DstPort == 0 {
			return connSpec{}, fmt.Errorf("tunnel %s (%s) has no destination port", t.Name, t.Type)
		}
	case tunnel.TypeGRE:
	default:
		return connSpec{}, fmt.Errorf("tunnel %s has type %q, which the strongswan backend cannot protect", t.Name, t.Type)
	}

	spec := connSpec{IKE: ikeConnName(t.Name, t.Version)}
	conn := vici.NewMessage()
	var setErr error
	set := func(m *vici.Message, k string, v any) {
		// Set only fails for Go types we never pass; keep the first error.
		if err := m.Set(k, v); err != nil && setErr == nil {
			setErr = fmt.Errorf("build vici message key %s for %s: %w", k, t.Name, err)
		}
	}
	set(conn, "version", "2")
	if t.LocalIP != "" && t.LocalIP != tunnel.DefaultRoute {
		set(conn, "local_addrs", []string{t.LocalIP})
	}
	set(conn, "remote_addrs", []string{t.RemoteIP})
	set(conn, "proposals", []string{ikeProposal})
	set(conn, "keyingtries", "0") // %forever

	local, remote := vici.NewMessage(), vici.NewMessage()
	switch t.Auth {
	case tunnel.AuthPSK:
		if !t.PSK.IsSet() {
			return connSpec{}, fmt.Errorf("tunnel %s uses PSK authentication but has no psk", t.Name)
		}
		set(local, "auth", "psk")
		set(remote, "auth", "psk")
		set(remote, "id", t.RemoteIP) // ipsec.conf: rightid defaults to right
	case tunnel.AuthSelfSigned, tunnel.AuthCASigned:
		if t.LocalName == "" || t.RemoteName == "" {
			return connSpec{}, fmt.Errorf("tunnel %s: certificate authentication needs local and remote names (local %q, remote %q)", t.Name, t.LocalName, t.RemoteName)
		}
		if len(mat.LocalCert) == 0 {
			return connSpec{}, fmt.Errorf("tunnel %s: no local certificate loaded from %s", t.Name, t.Certificate)
		}
		set(local, "auth", "pubkey")
		set(local, "id", fqdnID(t.LocalName))
		set(local, "certs", []string{string(mat.LocalCert)})
		set(remote, "auth", "pubkey")
		set(remote, "id", fqdnID(t.RemoteName))
		if t.Auth == tunnel.AuthSelfSigned {
			if len(mat.RemoteCert) == 0 {
				return connSpec{}, fmt.Errorf("tunnel %s: no peer certificate loaded from %s", t.Name, t.RemoteCert)
			}
			set(remote, "certs", []string{string(mat.RemoteCert)})
		} else {
			if len(mat.CACerts) == 0 {
				return connSpec{}, fmt.Errorf("tunnel %s: no CA certificate loaded from %s", t.Name, t.CACert)
			}
			cas := make([]string, len(mat.CACerts))
			for i, c := range mat.CACerts {
				cas[i] = string(c)
			}
			set(remote, "cacerts", cas)
		}
	default:
		return connSpec{}, fmt.Errorf("tunnel %s has no authentication method (psk, remote_cert or remote_name)", t.Name)
	}

	children := vici.NewMessage()
	childMsgs := map[ConnName]*vici.Message{}
	for _, name := range childNames(t) {
		p, ok := BelongsTo(string(name), t.Name)
		if !ok {
			return connSpec{}, fmt.Errorf("internal: child name %s does not belong to %s", name, t.Name)
		}
		lts, rts := selectors(t.Type, p.Dir, t.DstPort)
		c := vici.NewMessage()
		set(c, "mode", "transport")
		set(c, "local_ts", []string{lts})
		set(c, "remote_ts", []string{rts})
		set(c, "esp_proposals", []string{espProposal})
		set(c, "start_action", "trap") // ipsec.conf auto=route
		childMsgs[name] = c
		spec.Children = append(spec.Children, childSpec{Name: name, Dir: p.Dir})
	}

	for _, o := range t.CustomOptions {
		target, key, val, err := mapOption(o)
		if err != nil {
			spec.Unsupported = append(spec.Unsupported, err.Error())
			continue
		}
		switch target {
		case targetConn:
			set(conn, key, val)
		case targetChild:
			for _, c := range childMsgs {
				set(c, key, val)
			}
		}
	}

	for _, ch := range spec.Children {
		set(children, string(ch.Name), childMsgs[ch.Name])
	}
	set(conn, "local", local)
	set(conn, "remote", remote)
	set(conn, "children", children)

	spec.Msg = vici.NewMessage()
	set(spec.Msg, string(spec.IKE), conn)
	if setErr != nil {
		return connSpec{}, setErr
	}
	return spec, nil
}

// fqdnID makes charon read a certificate CN as an FQDN identity, whatever
// characters it contains (the "@" prefix forces ID_FQDN).
func fqdnID(name string) string { return "@" + name }

type optTarget int

const (
	targetConn optTarget = iota
	targetChild
)

// mapOption translates one ipsec_* custom option (prefix stripped) into a
// swanctl.conf keyword of the connection or of every child. Keys are
// matched case-insensitively, ignoring '-' and '_', so that the ipsec.conf
// (strongSwan), Libreswan and swanctl spellings all work.
func mapOption(o tunnel.Option) (optTarget, string, any, error) {
	canon := strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(strings.TrimSpace(o.Key)))
	val := strings.TrimSpace(o.Value)
	bad := func(why string) (optTarget, string, any, error) {
		return 0, "", nil, fmt.Errorf("invalid value %q for option ipsec_%s for the strongswan backend: %s", o.Value, o.Key, why)
	}
	switch canon {
	case "forceencaps", "encapsulation", "encap":
		switch strings.ToLower(val) {
		case "yes", "true":
			return targetConn, "encap", "yes", nil
		case "no", "false", "auto":
			return targetConn, "encap", "no", nil
		}
		return bad("want yes or no")
	case "dpddelay":
		if !isDuration(val) {
			return bad("want a time like 30 or 30s, 5m, 1h, 1d")
		}
		return targetConn, "dpd_delay", val, nil
	case "dpdtimeout":
		if !isDuration(val) {
			return bad("want a time like 150 or 150s, 5m")
		}
		return targetConn, "dpd_timeout", val, nil
	case "dpdaction":
		switch strings.ToLower(val) {
		case "none":
			return targetChild, "dpd_action", "none", nil
		case "clear":
			return targetChild, "dpd_action", "clear", nil
		case "hold", "trap":
			return targetChild, "dpd_action", "trap", nil
		case "restart":
			return targetChild, "dpd_action", "restart", nil
		}
		return bad("want none, clear, hold or restart")
	case "replaywindow":
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			return bad("want a packet count")
		}
		return targetChild, "replay_window", strconv.FormatUint(n, 10), nil
	case "ikelifetime", "ikerekeytime":
		if !isDuration(val) {
			return bad("want a time like 3h")
		}
		return targetConn, "rekey_time", val, nil
	case "lifetime", "salifetime", "keylife", "rekeytime":
		if !isDuration(val) {
			return bad("want a time like 1h")
		}
		return targetChild, "rekey_time", val, nil
	case "mobike":
		switch strings.ToLower(val) {
		case "yes", "no":
			return targetConn, "mobike", strings.ToLower(val), nil
		}
		return bad("want yes or no")
	case "fragmentation":
		switch strings.ToLower(val) {
		case "yes", "no", "accept", "force":
			return targetConn, "fragmentation", strings.ToLower(val), nil
		}
		return bad("want yes, no, accept or force")
	case "keyingtries":
		if val == "%forever" {
			return targetConn, "keyingtries", "0", nil
		}
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			return bad("want a number or %forever")
		}
		return targetConn, "keyingtries", strconv.FormatUint(n, 10), nil
	case "ike", "proposals":
		p, ok := proposals(val)
		if !ok {
			return bad("want a comma-separated proposal list like aes256gcm16-sha256-modp2048")
		}
		return targetConn, "proposals", p, nil
	case "esp", "espproposals":
		p, ok := proposals(val)
		if !ok {
			return bad("want a comma-separated proposal list like aes256gcm16-modp2048")
		}
		return targetChild, "esp_proposals", p, nil
	}
	return 0, "", nil, fmt.Errorf("unsupported option ipsec_%s for the strongswan backend", o.Key)
}

// isDuration accepts ipsec.conf / swanctl.conf time values: digits with an
// optional s, m, h or d suffix.
func isDuration(s string) bool {
	if s == "" {
		return false
	}
	if c := s[len(s)-1]; c == 's' || c == 'm' || c == 'h' || c == 'd' {
		s = s[:len(s)-1]
	}
	if s == "" || len(s) > 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// proposals splits an ipsec.conf proposal list ("a-b-c,d-e!") into the
// swanctl list form; the strict-mode "!" is dropped (swanctl is strict).
func proposals(s string) ([]string, bool) {
	s = strings.TrimSuffix(strings.TrimSpace(s), "!")
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, false
		}
		for _, r := range p {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return nil, false
			}
		}
		out = append(out, p)
	}
	return out, len(out) > 0
}
