// Package tunnel turns a database snapshot into the set of IPsec tunnels
// ovnsecd must protect. It is the one place that knows ovs-monitor-ipsec's
// selection rules, validation order and reason strings. Table does no I/O
// of its own: certificates are read through an injected CertReader
// (FileCertReader reads PEM files with crypto/x509).
package tunnel

import (
	"net/netip"
	"reflect"
	"strconv"
)

// State is a tunnel's configuration state, as tunnels/show prints it.
type State string

const (
	StateInit       State = "INIT"
	StateConfigured State = "CONFIGURED"
	StateInvalid    State = "INVALID"
	StateRemoved    State = "REMOVED"
)

// Type is the tunnel protocol of the Interface.
type Type string

const (
	TypeGeneve Type = "geneve"
	TypeVXLAN  Type = "vxlan"
	TypeGRE    Type = "gre"
)

// AuthMethod is how the peer is authenticated.
type AuthMethod string

const (
	AuthNone       AuthMethod = ""
	AuthPSK        AuthMethod = "psk"         // options:psk
	AuthSelfSigned AuthMethod = "self-signed" // options:remote_cert pins the peer certificate
	AuthCASigned   AuthMethod = "ca-signed"   // options:remote_name, verified against ca_cert
)

// DefaultRoute is ovs-monitor-ipsec's local_ip when options:local_ip is unset.
const DefaultRoute = "%defaultroute"

// Secret is key material that must never be printed. Its String and
// GoString methods redact it; use Reveal to get the bytes for a backend.
type Secret struct{ s string }

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{s: s} }

// Reveal returns the secret for use by a backend. Never log the result.
func (s Secret) Reveal() string { return s.s }

// IsSet reports whether a non-empty secret is held.
func (s Secret) IsSet() bool { return s.s != "" }

// String redacts the secret.
func (s Secret) String() string {
	if s.s == "" {
		return "None"
	}
	return "<redacted>"
}

// GoString redacts the secret in %#v output.
func (s Secret) GoString() string { return s.String() }

// Option is one ipsec_* custom option with the prefix stripped, in the order
// OVSDB returned them (sorted by key, as the OVSDB map is).
type Option struct {
	Key   string
	Value string
}

// Tunnel is one IPsec tunnel as ovs-monitor-ipsec would configure it, plus
// what ovnsec adds (honoured dst_port, certificate problems).
type Tunnel struct {
	Name    string // Interface name; connection names derive from it
	Version int    // starts at 1, bumps on any configuration change
	State   State
	// Reason is the exact ovs-monitor-ipsec reason string, including its
	// leading ": ", when State is INVALID; empty otherwise.
	Reason string

	Type     Type
	LocalIP  string // options:local_ip or DefaultRoute, as written
	RemoteIP string // options:remote_ip, as written
	// Local and Remote are LocalIP and RemoteIP parsed (IPv4-mapped IPv6
	// unmapped); invalid when the option is not an address ("flow",
	// DefaultRoute, empty).
	Local, Remote netip.Addr
	AddressFamily string // "IPv4", "IPv6" or "None"
	// DstPort is the tunnel's UDP destination port (options:dst_port, else
	// the IANA port: 6081 geneve, 4789 vxlan); 0 for GRE.
	DstPort uint16

	Auth        AuthMethod
	Certificate string // global other_config:certificate path
	PrivateKey  string // global other_config:private_key path
	CACert      string // global other_config:ca_cert path
	LocalName   string // CN of Certificate
	RemoteCert  string // options:remote_cert path
	RemoteName  string // options:remote_name, or the CN of RemoteCert
	PSK         Secret
	SKBMark     string // global other_config:ipsec_skb_mark

	CustomOptions []Option

	// Status-only fields: changing them does not bump Version, and
	// SameConfig ignores them (Problems too).
	OFPort   string // number or "Not assigned"
	CFMState string // "Up", "Down" or "Disabled"

	// Problems lists certificate defects found by ovnsec's own checks that
	// ovs-monitor-ipsec would not have caught (expired certificate, key not
	// matching the certificate, CN different from SAN DNS, ...). A tunnel
	// with problems is still CONFIGURED where upstream would configure it,
	// so that behaviour stays compatible; the problems are shown and logged.
	Problems []string
}

// Conns returns the connection names ovs-monitor-ipsec derives for this
// tunnel: "<if>-in-<v>" and "<if>-out-<v>" for UDP tunnels, "<if>-<v>" for GRE.
func (t Tunnel) Conns() []string {
	v := strconv.Itoa(t.Version)
	if t.Type == TypeGRE {
		return []string{t.Name + "-" + v}
	}
	return []string{t.Name + "-in-" + v, t.Name + "-out-" + v}
}

// CredPaths lists the credential files a certificate-authenticated tunnel
// reads: certificate, private key, and the CA bundle (CA-signed) or the
// pinned peer certificate (self-signed); none for PSK.
func (t Tunnel) CredPaths() []string {
	switch t.Auth {
	case AuthSelfSigned:
		return []string{t.Certificate, t.PrivateKey, t.RemoteCert}
	case AuthCASigned:
		return []string{t.Certificate, t.PrivateKey, t.CACert}
	}
	return nil
}

// Options returns CustomOptions parsed: the one interpretation of the
// ipsec_* options every backend uses.
func (t Tunnel) Options() Options { return ParseOptions(t.CustomOptions) }

// SameConfig reports whether t and u configure the same protection: every
// field but the status-only ones (OFPort, CFMState, Problems) is equal.
// Versions alone cannot tell: a tunnel removed and added again restarts at
// version 1. A problem that appears (a certificate about to expire) must
// not make a backend configure the tunnel again.
func (t Tunnel) SameConfig(u Tunnel) bool {
	u.OFPort, u.CFMState, u.Problems = t.OFPort, t.CFMState, t.Problems
	return reflect.DeepEqual(t, u)
}

// ParseAddr is how the tunnel stage reads local_ip and remote_ip: an IP
// address, IPv4-mapped IPv6 unmapped; the zero Addr for anything else.
func ParseAddr(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
