// Model: the one typed form of a north-south connection, whichever file
// form it was written in, and the Snapshot a Loader returns.

package nsconf

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// Type is what a connection does with the traffic it selects (type=).
type Type string

const (
	TypeTunnel      Type = "tunnel"      // ESP in tunnel mode between the subnets
	TypeTransport   Type = "transport"   // ESP in transport mode between left and right
	TypePassthrough Type = "passthrough" // not protected: excluded from the other conns
)

// Auth is how the two ends authenticate each other (authby=).
type Auth string

const (
	AuthPSK   Auth = "psk"   // authby=secret: a pre-shared key from a .secrets file or psk:
	AuthCert  Auth = "cert"  // authby=rsasig, ecdsa, rsa-sha2...: certificates (leftcert=)
	AuthNever Auth = "never" // type=passthrough: no IKE at all
)

// Auto is what happens to a loaded connection (auto=). Connections with
// auto=ignore are not loaded at all (Snapshot.Ignored).
type Auto string

const (
	AutoAdd      Auto = "add"      // loaded; answers the peer, never initiates
	AutoStart    Auto = "start"    // initiated at once (auto=up is the same)
	AutoOndemand Auto = "ondemand" // initiated by the first packet (auto=route is the same)
)

// DPDAction is what dead peer detection does when the peer stops answering
// (dpdaction=). Empty when DPD is off (DPDDelay is zero).
type DPDAction string

const (
	DPDHold    DPDAction = "hold"    // keep the routes, drop the traffic, wait for traffic to renegotiate
	DPDClear   DPDAction = "clear"   // remove the SAs; traffic follows FailureShunt
	DPDRestart DPDAction = "restart" // negotiate again at once
)

// FailureShunt is what happens to a covered subnet's traffic while its
// connection is down (failureshunt=). The default is FailDrop: fail closed.
type FailureShunt string

const (
	FailDrop        FailureShunt = "drop"
	FailPassthrough FailureShunt = "passthrough"
)

// Encap is whether ESP travels in UDP 4500 (encapsulation=).
type Encap string

const (
	EncapAuto Encap = "auto" // when NAT is detected (NAT-D)
	EncapYes  Encap = "yes"  // always: for paths that drop ESP
	EncapNo   Encap = "no"   // never
)

// Family is an address family (hostaddrfamily=, clientaddrfamily=).
type Family string

const (
	FamilyNone Family = "" // not known yet (only for a passthrough with neither end set)
	IPv4       Family = "ipv4"
	IPv6       Family = "ipv6"
)

// FamilyOf returns a's family.
func FamilyOf(a netip.Addr) Family {
	switch {
	case a.Is4():
		return IPv4
	case a.Is6():
		return IPv6
	}
	return FamilyNone
}

// LocalKind says how this host's end (left=) is given.
type LocalKind string

const (
	LocalAddr         LocalKind = "address"       // an explicit address: Local.Addr
	LocalDefaultRoute LocalKind = "%defaultroute" // the address of the default route, resolved by the consumer
	LocalAny          LocalKind = "%any"          // any local address, resolved by the consumer
)

// Local is this host's end of a connection (left=). Addr is valid only
// when Kind is LocalAddr: otherwise it is explicitly unset and whoever
// runs the connection resolves it (then calls Snapshot.CheckLocal).
type Local struct {
	Kind LocalKind
	Addr netip.Addr
}

// String is the value as libreswan writes it.
func (l Local) String() string {
	if l.Kind == LocalAddr {
		return l.Addr.String()
	}
	return string(l.Kind)
}

// IDKind is the form of an IKE identity (leftid=, rightid=, secrets ids).
type IDKind string

const (
	IDNone     IDKind = ""          // not given: the end's address is its identity
	IDAddr     IDKind = "address"   // an IP address
	IDFQDN     IDKind = "fqdn"      // @name
	IDEmail    IDKind = "email"     // user@domain
	IDDN       IDKind = "dn"        // C=..., O=..., CN=...
	IDFromCert IDKind = "%fromcert" // the subject of the end's certificate
	IDAny      IDKind = "%any"      // any identity
)

// ID is an IKE identity. Addr is set for IDAddr, Value for IDFQDN (without
// the @), IDEmail and IDDN.
type ID struct {
	Kind  IDKind
	Addr  netip.Addr
	Value string
}

// String is the identity as libreswan writes it ("" when not given).
func (id ID) String() string {
	switch id.Kind {
	case IDAddr:
		return id.Addr.String()
	case IDFQDN:
		return "@" + id.Value
	case IDEmail, IDDN:
		return id.Value
	}
	return string(id.Kind)
}

// Source is where something was written: a file and a 1-based line (0 for
// the file as a whole).
type Source struct {
	File string
	Line int
}

// String is "file:line", or the file alone when Line is 0.
func (s Source) String() string {
	if s.Line <= 0 {
		return s.File
	}
	return s.File + ":" + strconv.Itoa(s.Line)
}

// Hash identifies what a connection means: equal hashes, same connection.
// It covers every field of Conn but the Sources, and is keyed per Loader
// (HMAC-SHA-256) so that it says nothing about the PSK it covers; compare
// hashes from one Loader only.
type Hash [32]byte

// String is the first 8 bytes in hex, enough to tell versions apart in logs.
func (h Hash) String() string { return hex.EncodeToString(h[:8]) }

// Conn is one north-south connection, validated. Left is this host, right
// the remote gateway. Slices are never shared between Conns and must not
// be modified.
type Conn struct {
	Name   string
	Source Source // the conn line, or the YAML interface's name
	Hash   Hash

	Type Type
	Auto Auto
	Auth Auth

	Local  Local      // left=
	Remote netip.Addr // right=; invalid only for a passthrough with right=%any
	// LocalID and RemoteID are leftid= and rightid= (IDNone: the address).
	LocalID, RemoteID ID
	// LocalSubnets and RemoteSubnets are the traffic selectors (leftsubnet(s)=,
	// rightsubnet(s)=), masked, one family per conn. Empty means the end's
	// own address (host-to-host).
	LocalSubnets, RemoteSubnets []netip.Prefix
	// HostFamily is the family of left and right (IKE and ESP packets);
	// ClientFamily that of the subnets (the traffic inside). They differ
	// for IPv6 inside IPv4 and the reverse.
	HostFamily, ClientFamily Family

	// LocalCert (leftcert=) names this host's certificate as written (an
	// NSS nickname for libreswan, a PEM path for the other backends: the
	// backend resolves it); RemoteCA (rightca=) the CA that must have
	// signed the peer's, "%same" for leftcert's. AuthCert only.
	LocalCert, RemoteCA string
	// PSK is the pre-shared key (AuthPSK only), from PSKSource.
	PSK       Secret
	PSKSource Source

	// IKE and ESP are the proposal lists (ike=, esp=) as written, split at
	// commas; empty means the engine's defaults.
	IKE, ESP      []string
	Encapsulation Encap

	IKELifetime time.Duration // ikelifetime=, default 8h
	SALifetime  time.Duration // salifetime=, default 8h
	RekeyMargin time.Duration // rekeymargin=, default 9m (at most half the shorter lifetime)
	// DPDDelay is dpddelay= (0: DPD off); DPDTimeout dpdtimeout= (0: the
	// engine's retransmissions decide); DPDAction is set when DPD is on.
	DPDDelay, DPDTimeout time.Duration
	DPDAction            DPDAction
	FailureShunt         FailureShunt

	// keys says where each key of the conn was written, for messages.
	keys map[string]Source
}

// at returns where key was written, or the conn line.
func (c Conn) at(key string) Source {
	if s, ok := c.keys[key]; ok {
		return s
	}
	return c.Source
}

// Error is one refused thing: a connection (Conn set), a secrets entry, or
// a file. Msg says what is wrong and what to do.
type Error struct {
	Source Source
	Conn   string
	Msg    string
	// Kept reports that the connection stays as it was last loaded (its
	// new version was refused or could not be read).
	Kept bool
}

// Error is "file:line: conn NAME: message".
func (e Error) Error() string {
	s := e.Source.String() + ": "
	if e.Source.File == "" {
		s = ""
	}
	if e.Conn != "" {
		s += "conn " + e.Conn + ": "
	}
	s += e.Msg
	if e.Kept {
		s += " (keeping the connection as last loaded)"
	}
	return s
}

// Snapshot is the north-south configuration as read at one time.
type Snapshot struct {
	Dir string
	// Conns are the connections to run, by name.
	Conns map[string]Conn
	// Ignored are the connections not loaded (auto=ignore, or no auto= in
	// a .conf file, as libreswan) and the nmstate interfaces with state
	// absent or down, each where it is defined.
	Ignored map[string]Source
	// Errors lists what was refused, in file and line order. A refused
	// connection is not in Conns unless Kept.
	Errors []Error
}

// Names returns the connections' names, sorted.
func (s Snapshot) Names() []string {
	names := make([]string, 0, len(s.Conns))
	for n := range s.Conns {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Equal reports whether s and o hold the same connections (by hash), the
// same ignored ones and the same errors.
func (s Snapshot) Equal(o Snapshot) bool {
	if s.Dir != o.Dir || len(s.Conns) != len(o.Conns) || len(s.Ignored) != len(o.Ignored) || !slices.Equal(s.Errors, o.Errors) {
		return false
	}
	for n, c := range s.Conns {
		if oc, ok := o.Conns[n]; !ok || oc.Hash != c.Hash || oc.Source != c.Source {
			return false
		}
	}
	for n, src := range s.Ignored {
		if o.Ignored[n] != src {
			return false
		}
	}
	return true
}

// errorf makes an Error at src about conn.
func errorf(src Source, conn, format string, args ...any) Error {
	return Error{Source: src, Conn: conn, Msg: fmt.Sprintf(format, args...)}
}
