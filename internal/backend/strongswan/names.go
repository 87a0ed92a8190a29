// Connection names: how ovnsec names what it loads into charon and how it
// recognises those names again when charon lists them.
//
// Layout (see the package comment in doc.go): one IKE connection per
// tunnel named "<if>-<v>", holding the CHILD_SA configs ovs-monitor-ipsec
// would have written as separate ipsec.conf conns: "<if>-in-<v>" and
// "<if>-out-<v>" for geneve/vxlan, "<if>-<v>" for gre.

package strongswan

import (
	"strconv"
	"strings"

	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// Direction tells which half of a UDP tunnel a child protects.
type Direction string

const (
	DirIn   Direction = "in"  // traffic to our tunnel port
	DirOut  Direction = "out" // traffic to the peer's tunnel port
	DirBoth Direction = ""    // gre: one child for both directions
)

// ConnName is the name of one IKE connection or CHILD_SA config in charon.
type ConnName string

// ParsedName is a connection name split into its parts.
type ParsedName struct {
	Iface   string
	Dir     Direction
	Version int
}

// ParseConnName splits "<if>-in-<v>", "<if>-out-<v>" or "<if>-<v>" from the
// right, so that interface names containing "-in-" or digits stay whole
// (upstream's greedy regex parsed "ovn-424242-in-1" as interface
// "ovn-424242-in"). The version must be a positive decimal without sign or
// leading zero. A name like "x-in-1" is read as interface "x", direction in;
// callers that know the interface name use BelongsTo instead.
func ParseConnName(name string) (ParsedName, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return ParsedName{}, false
	}
	v, ok := parseVersion(name[i+1:])
	if !ok {
		return ParsedName{}, false
	}
	rest := name[:i]
	for _, d := range []Direction{DirIn, DirOut} {
		suffix := "-" + string(d)
		if strings.HasSuffix(rest, suffix) && len(rest) > len(suffix) {
			return ParsedName{Iface: rest[:len(rest)-len(suffix)], Dir: d, Version: v}, true
		}
	}
	return ParsedName{Iface: rest, Dir: DirBoth, Version: v}, true
}

// BelongsTo reports whether name is a connection of interface iface, and
// which version and direction it carries. It is exact for every interface
// name, unlike ParseConnName.
func BelongsTo(name, iface string) (ParsedName, bool) {
	if iface == "" || !strings.HasPrefix(name, iface+"-") {
		return ParsedName{}, false
	}
	rest := name[len(iface)+1:]
	dir := DirBoth
	switch {
	case strings.HasPrefix(rest, "in-"):
		dir, rest = DirIn, rest[len("in-"):]
	case strings.HasPrefix(rest, "out-"):
		dir, rest = DirOut, rest[len("out-"):]
	}
	v, ok := parseVersion(rest)
	if !ok {
		return ParsedName{}, false
	}
	return ParsedName{Iface: iface, Dir: dir, Version: v}, true
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
	if err != nil || v <= 0 {
		return 0, false
	}
	return v, true
}

// ikeConnName is the IKE connection ovnsec loads for a tunnel version.
func ikeConnName(iface string, version int) ConnName {
	return ConnName(iface + "-" + strconv.Itoa(version))
}

// childNames lists the CHILD_SA config names for a tunnel version, in the
// order they are loaded: the ovs-monitor-ipsec connection names.
func childNames(t tunnel.Tunnel) []ConnName {
	names := t.Conns()
	out := make([]ConnName, len(names))
	for i, n := range names {
		out[i] = ConnName(n)
	}
	return out
}
