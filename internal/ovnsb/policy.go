// Policy: whether IPsec is required on every tunnel port of this host,
// decided from ovnsecd's flags, what the Follower knows of SB_Global ipsec
// and, before anything is known of it, the tunnel ports OVN created. It
// fails closed: a value that cannot be read keeps the last one read.

package ovnsb

import (
	"fmt"
	"strings"

	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// Mode is --follow-ovn-ipsec.
type Mode int8

const (
	// FollowAuto follows SB_Global ipsec when there is a Southbound remote
	// (--ovn-sb or Open_vSwitch external_ids:ovn-remote).
	FollowAuto Mode = iota
	// FollowOn follows it even before a remote is known.
	FollowOn
	// FollowOff never follows it.
	FollowOff
)

// ParseMode reads --follow-ovn-ipsec.
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(s) {
	case "auto", "":
		return FollowAuto, nil
	case "true", "yes", "on":
		return FollowOn, nil
	case "false", "no", "off":
		return FollowOff, nil
	}
	return 0, fmt.Errorf("--follow-ovn-ipsec=%q: want auto, true or false", s)
}

func (m Mode) String() string {
	switch m {
	case FollowOn:
		return "true"
	case FollowOff:
		return "false"
	}
	return "auto"
}

// Config is the part of ovnsecd's command line the Policy reads.
type Config struct {
	// Mode is --follow-ovn-ipsec.
	Mode Mode
	// Force is --require-ipsec: IPsec is required, whatever OVN says.
	Force bool
	// Remote is --ovn-sb; "" takes Open_vSwitch external_ids:ovn-remote.
	Remote string
}

// Basis says what a Decision rests on.
type Basis int8

const (
	// BasisNone: IPsec is not required (not following, or nothing says so).
	BasisNone Basis = iota
	// BasisForced: --require-ipsec.
	BasisForced
	// BasisSB: the value read from SB_Global now.
	BasisSB
	// BasisLastKnown: the last value read, the Southbound being unreachable.
	BasisLastKnown
	// BasisInferred: nothing read yet; the OVN tunnel ports' options.
	BasisInferred
)

// Causes named in the reasons of tunnels without IPsec options.
const (
	CauseForced    = "ovnsecd --require-ipsec"
	CauseSB        = "OVN SB_Global ipsec=true"
	CauseLastKnown = "OVN SB_Global ipsec=true when last read; the Southbound database is not reachable now"
	CauseInferred  = "OVN tunnel ports carry IPsec options; SB_Global ipsec is not known yet"
)

// Decision is whether IPsec is required on every tunnel port, and why.
type Decision struct {
	Require bool
	Basis   Basis
	// Cause is the text for the reasons of tunnels without IPsec options
	// (one of the Cause constants) when Require; "" otherwise.
	Cause string
	// Following: SB_Global ipsec is being followed (a Southbound remote is
	// configured, or was, or --follow-ovn-ipsec=true).
	Following bool
}

// String describes d for the log.
func (d Decision) String() string {
	switch {
	case d.Require:
		return "IPsec required on every tunnel port (" + d.Cause + ")"
	case d.Basis == BasisSB:
		return "IPsec not required on tunnel ports without IPsec options (OVN SB_Global ipsec=false)"
	case d.Basis == BasisLastKnown:
		return "IPsec not required on tunnel ports without IPsec options (OVN SB_Global ipsec=false when last read; the Southbound database is not reachable now)"
	case d.Basis == BasisInferred:
		return "IPsec not required on tunnel ports without IPsec options (SB_Global ipsec not known yet and no OVN tunnel port carries IPsec options)"
	case d.Following:
		return "IPsec not required on tunnel ports without IPsec options"
	}
	return "not following OVN SB_Global ipsec"
}

// Policy turns what is known into Decisions. It remembers the last value
// read from SB_Global. Not safe for concurrent use: one goroutine (the
// daemon's main loop, which also owns the tunnel table) owns it.
type Policy struct {
	cfg   Config
	known bool // a value has been read from SB_Global
	last  bool // the last value read
}

// NewPolicy returns a Policy for cfg that knows nothing of SB_Global yet.
func NewPolicy(cfg Config) *Policy { return &Policy{cfg: cfg} }

// Remote is the Southbound remote to follow for a database whose
// Open_vSwitch external_ids are ids: --ovn-sb, else ovn-remote; "" when
// SB_Global ipsec is not to be followed (--follow-ovn-ipsec=false or
// --require-ipsec, which make it irrelevant).
func (p *Policy) Remote(ids map[string]string) string {
	if p.cfg.Force || p.cfg.Mode == FollowOff {
		return ""
	}
	if p.cfg.Remote != "" {
		return p.cfg.Remote
	}
	return strings.TrimSpace(ids["ovn-remote"])
}

// Decide applies what the Follower last reported (sb) to the current
// snapshot s:
//
//   - --require-ipsec: required, always.
//   - --follow-ovn-ipsec=false, or auto without any Southbound remote ever:
//     not required.
//   - SB_Global ipsec read (On or Off): required exactly while it is true.
//   - Unknown (no remote, unreachable, connection lost) after a value was
//     read: the last value read.
//   - Unknown and nothing read yet: required if any OVN tunnel port
//     already carries IPsec options (OVN sets them only with ipsec=true),
//     else not.
func (p *Policy) Decide(sb State, s tunnel.Snapshot) Decision {
	if p.cfg.Force {
		return Decision{Require: true, Basis: BasisForced, Cause: CauseForced}
	}
	if p.cfg.Mode == FollowOff {
		return Decision{}
	}
	if sb.Value != Unknown {
		p.known, p.last = true, sb.Value == On
	}
	following := p.cfg.Mode == FollowOn || p.known || p.Remote(s.ExternalIDs) != ""
	if !following {
		return Decision{}
	}
	d := Decision{Following: true}
	switch {
	case sb.Value != Unknown:
		d.Require, d.Basis = p.last, BasisSB
		if d.Require {
			d.Cause = CauseSB
		}
	case p.known:
		d.Require, d.Basis = p.last, BasisLastKnown
		if d.Require {
			d.Cause = CauseLastKnown
		}
	default:
		d.Require, d.Basis = OVNPortsWithIPsec(s) > 0, BasisInferred
		if d.Require {
			d.Cause = CauseInferred
		}
	}
	return d
}

// OVNPortsWithIPsec counts the tunnel ports ovn-controller made (see
// ovnTunnel) that carry any of psk, remote_cert and remote_name.
func OVNPortsWithIPsec(s tunnel.Snapshot) int {
	n := 0
	for _, i := range s.Interfaces {
		if !ovnTunnel(i) {
			continue
		}
		for _, k := range []string{"psk", "remote_cert", "remote_name"} {
			if _, ok := i.Options[k]; ok {
				n++
				break
			}
		}
	}
	return n
}

// ovnTunnel reports whether i looks like a tunnel port ovn-controller
// created: a geneve, vxlan or stt interface named "ovn<idx>-<chassis>-<n>"
// with options:key=flow, which ovn-controller always sets (encaps.c). The
// reliable mark, Port external_ids:ovn-chassis-id, is on the Port row,
// which the snapshot does not carry.
func ovnTunnel(i tunnel.Interface) bool {
	switch i.Type {
	case "geneve", "vxlan", "stt":
	default:
		return false
	}
	return strings.HasPrefix(i.Name, "ovn") && strings.Contains(i.Name, "-") && i.Options["key"] == "flow"
}
