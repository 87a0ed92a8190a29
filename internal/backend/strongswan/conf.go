// Configuration building: turns a tunnel.Tunnel into the VICI load-conn
// message (connection, auth rounds, CHILD_SAs) equivalent to what
// ovs-monitor-ipsec writes into ipsec.conf for charon, and maps the ipsec_*
// custom options, as internal/tunnel parsed them, onto swanctl.conf
// keywords. Pure functions, no I/O.

package strongswan

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

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

	opts, unsupported := mapOptions(t.Options())
	spec.Unsupported = unsupported
	for _, o := range opts {
		switch o.target {
		case targetConn:
			set(conn, o.key, o.val)
		case targetChild:
			for _, c := range childMsgs {
				set(c, o.key, o.val)
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

// swanOption is one swanctl.conf keyword of the connection or of every
// child.
type swanOption struct {
	target optTarget
	key    string
	val    any
}

// errReported marks an option internal/tunnel already listed in
// Options.Errors (a lifetime below tunnel.MinLifetime): left out, not
// listed twice.
var errReported = errors.New("already reported")

// mapOptions translates a tunnel's parsed ipsec_* custom options into
// swanctl.conf keywords. Like ovs-monitor-ipsec with charon, it applies
// what it can: unknown keys, bad values and options this mapping does not
// cover are left out and returned as unsupported, one sentence each.
func mapOptions(o tunnel.Options) ([]swanOption, []string) {
	var unsupported []string
	for _, u := range o.Unknown {
		unsupported = append(unsupported, fmt.Sprintf("unsupported option ipsec_%s for the strongswan backend", u.Key))
	}
	unsupported = append(unsupported, o.Errors...)
	var out []swanOption
	for _, s := range o.Set {
		opt, err := mapOption(o, s)
		switch {
		case errors.Is(err, errReported):
		case err != nil:
			unsupported = append(unsupported, err.Error())
		default:
			out = append(out, opt)
		}
	}
	return out, unsupported
}

// mapOption translates one recognised option into a swanctl.conf keyword
// and value, from the values internal/tunnel parsed.
func mapOption(o tunnel.Options, s tunnel.SetOption) (swanOption, error) {
	conn := func(k string, v any) (swanOption, error) { return swanOption{targetConn, k, v}, nil }
	child := func(k string, v any) (swanOption, error) { return swanOption{targetChild, k, v}, nil }
	timed := func(target optTarget, k string, d time.Duration) (swanOption, error) {
		v, err := swanTime(s.Spelling, d)
		return swanOption{target, k, v}, err
	}
	switch s.Key {
	case tunnel.OptForceEncap:
		if o.ForceEncap {
			return conn("encap", "yes")
		}
		return conn("encap", "no")
	case tunnel.OptDPDDelay:
		return timed(targetConn, "dpd_delay", o.DPDDelay)
	case tunnel.OptDPDTimeout:
		return timed(targetConn, "dpd_timeout", o.DPDTimeout)
	case tunnel.OptDPDAction:
		if o.DPDAction == "hold" {
			return child("dpd_action", "trap") // swanctl's name for ipsec.conf's hold
		}
		return child("dpd_action", o.DPDAction)
	case tunnel.OptReplayWindow:
		return child("replay_window", strconv.FormatUint(uint64(o.ReplayWindow), 10))
	case tunnel.OptIKELifetime:
		if o.IKELifetime < tunnel.MinLifetime {
			return swanOption{}, errReported
		}
		return timed(targetConn, "rekey_time", o.IKELifetime)
	case tunnel.OptChildLifetime:
		if o.ChildLifetime < tunnel.MinLifetime {
			return swanOption{}, errReported
		}
		return timed(targetChild, "rekey_time", o.ChildLifetime)
	case tunnel.OptMOBIKE:
		return conn("mobike", o.MOBIKE)
	case tunnel.OptFragmentation:
		return conn("fragmentation", o.Fragmentation)
	case tunnel.OptKeyingTries:
		return conn("keyingtries", strconv.Itoa(o.KeyingTries)) // 0: %forever
	case tunnel.OptIKE:
		return conn("proposals", slices.Clone(o.IKEProposals))
	case tunnel.OptESP:
		return child("esp_proposals", slices.Clone(o.ESPProposals))
	}
	return swanOption{}, fmt.Errorf("unsupported option %s for the strongswan backend", s.Spelling)
}

// swanTime renders a time as swanctl.conf takes it: whole seconds, "Ns".
func swanTime(spelling string, d time.Duration) (string, error) {
	if d <= 0 || d%time.Second != 0 {
		return "", fmt.Errorf("invalid value %v for option %s for the strongswan backend: want whole seconds", d, spelling)
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "s", nil
}
