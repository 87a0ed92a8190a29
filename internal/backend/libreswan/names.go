// Names: the connection names ovs-monitor-ipsec gives a tunnel's conns,
// the NSS nicknames of its certificates, and the character sets accepted
// in anything written into ipsec.conf, so that no database value can add
// a line or a keyword to the file.

package libreswan

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// NSS nicknames, as ovs-monitor-ipsec names them.
const (
	certPrefix    = "ovs_cert_"    // CA and pinned peer certificates
	certKeyPrefix = "ovs_certkey_" // the local certificate with its key
	caNickname    = certPrefix + "cacert"
)

// The drop connections of ipsec_skb_mark (§1.8 of the reference), in the
// order upstream writes them.
var shuntConns = []struct{ name, protoport string }{
	{"prevent_unencrypted_gre", "gre"},
	{"prevent_unencrypted_geneve", "udp/6081"},
	{"prevent_unencrypted_vxlan", "udp/4789"},
}

// isShunt reports whether conn is one of the drop connections.
func isShunt(conn string) bool {
	for _, s := range shuntConns {
		if s.name == conn {
			return true
		}
	}
	return false
}

// safeToken reports whether s is a non-empty run of letters, digits and
// "._-", which ipsec.conf reads as one word and NSS as one nickname.
func safeToken(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// checkName refuses a value written into ipsec.conf as a name or identity
// unless it is a safe token.
func checkName(what, s string) error {
	if !safeToken(s) {
		return fmt.Errorf("%s %q cannot be written into ipsec.conf: only letters, digits, '.', '_' and '-' are accepted", what, s)
	}
	return nil
}

// connNames are the tunnel's connection names (tunnel.Tunnel.Conns).
func connNames(t tunnel.Tunnel) []string { return t.Conns() }

// parsedConn is a connection name split into interface, direction and
// version.
type parsedConn struct {
	Iface   string
	Dir     string // "in", "out" or "" (gre)
	Version int
}

// belongsTo reports whether conn is a connection of interface iface, exact
// for every interface name (upstream's greedy regex once read
// "ovn-424242-in-1" as interface "ovn-424242-in", 2ee0f4485).
func belongsTo(conn, iface string) (parsedConn, bool) {
	rest, ok := strings.CutPrefix(conn, iface+"-")
	if iface == "" || !ok {
		return parsedConn{}, false
	}
	dir := ""
	switch {
	case strings.HasPrefix(rest, "in-"):
		dir, rest = "in", rest[len("in-"):]
	case strings.HasPrefix(rest, "out-"):
		dir, rest = "out", rest[len("out-"):]
	}
	v, ok := parseVersion(rest)
	if !ok {
		return parsedConn{}, false
	}
	return parsedConn{Iface: iface, Dir: dir, Version: v}, true
}

// parseConn splits a connection name from the right when the interface is
// not known: "<if>-in-<v>", "<if>-out-<v>" or "<if>-<v>".
func parseConn(conn string) (parsedConn, bool) {
	i := strings.LastIndexByte(conn, '-')
	if i <= 0 {
		return parsedConn{}, false
	}
	v, ok := parseVersion(conn[i+1:])
	if !ok {
		return parsedConn{}, false
	}
	rest := conn[:i]
	for _, d := range []string{"in", "out"} {
		if s := "-" + d; strings.HasSuffix(rest, s) && len(rest) > len(s) {
			return parsedConn{Iface: rest[:len(rest)-len(s)], Dir: d, Version: v}, true
		}
	}
	return parsedConn{Iface: rest, Version: v}, true
}

func parseVersion(s string) (int, bool) {
	if s == "" || len(s) > 9 || s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.Atoi(s)
	return v, err == nil && v > 0
}
