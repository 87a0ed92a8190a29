// Values: the parsers of single values (addresses, identities, subnets,
// durations, proposals), shared by the .conf, .secrets and YAML forms.
// Each returns an error that says what is wanted.

package nsconf

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits that keep hostile files from costing much.
const (
	maxSubnets   = 64 // per side of a conn
	maxProposals = 32 // per ike= or esp=
	maxValueLen  = 4096
)

// checkText refuses values that cannot be written back into a libreswan
// file or a log line: control characters and invalid UTF-8.
func checkText(v string) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("not valid UTF-8")
	}
	if len(v) > maxValueLen {
		return fmt.Errorf("longer than %d bytes", maxValueLen)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return fmt.Errorf("control character %q; remove it", r)
		}
	}
	return nil
}

// parseAddr parses an IP address without a zone; IPv4-mapped IPv6
// addresses are unmapped.
func parseAddr(v string) (netip.Addr, error) {
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", v)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q has a zone; write the address without %%%s", v, a.Zone())
	}
	return a.Unmap(), nil
}

// parseLocal parses left=.
func parseLocal(v string) (Local, error) {
	switch v {
	case "%defaultroute":
		return Local{Kind: LocalDefaultRoute}, nil
	case "%any", "%any4", "%any6":
		return Local{Kind: LocalAny}, nil
	}
	a, err := parseAddr(v)
	if err != nil {
		return Local{}, fmt.Errorf("%v; want this host's IP address, %%defaultroute or %%any (names are not resolved)", err)
	}
	if a.IsUnspecified() {
		return Local{Kind: LocalAny}, nil
	}
	return Local{Kind: LocalAddr, Addr: a}, nil
}

// parseRemote parses right=. Only a passthrough may leave it unset
// (%any, 0.0.0.0, ::): the returned address is then invalid.
func parseRemote(v string, passthrough bool) (netip.Addr, error) {
	if v == "%any" || v == "%any4" || v == "%any6" {
		if passthrough {
			return netip.Addr{}, nil
		}
		return netip.Addr{}, fmt.Errorf("%s is only for type=passthrough; want the gateway's IP address", v)
	}
	if strings.HasPrefix(v, "%") {
		return netip.Addr{}, fmt.Errorf("%s is not supported; want the gateway's IP address", v)
	}
	a, err := parseAddr(v)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%v; want the gateway's IP address (names are not resolved)", err)
	}
	if a.IsUnspecified() {
		if passthrough {
			return netip.Addr{}, nil
		}
		return netip.Addr{}, fmt.Errorf("%s is only for type=passthrough; want the gateway's IP address", v)
	}
	if a.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("%s is a multicast address; want the gateway's IP address", v)
	}
	return a, nil
}

// parseID parses an identity (leftid=, rightid=, or a .secrets id; secrets
// also treat %any6, 0.0.0.0 and :: as %any).
func parseID(v string, secrets bool) (ID, error) {
	if err := checkText(v); err != nil {
		return ID{}, err
	}
	const want = "want an IP address, @fqdn, user@domain, a DN (\"CN=...\"), %fromcert or %any"
	switch v {
	case "":
		return ID{}, fmt.Errorf("empty id; %s", want)
	case "%any":
		return ID{Kind: IDAny}, nil
	case "%fromcert":
		if secrets {
			return ID{}, fmt.Errorf("%%fromcert cannot select a secret; %s", want)
		}
		return ID{Kind: IDFromCert}, nil
	case "%any6":
		if secrets {
			return ID{Kind: IDAny}, nil
		}
	}
	if strings.HasPrefix(v, "%") {
		return ID{}, fmt.Errorf("%s is not supported; %s", v, want)
	}
	if name, ok := strings.CutPrefix(v, "@"); ok {
		if name == "" || strings.ContainsAny(name[:1], "#~[") {
			return ID{}, fmt.Errorf("%q: key-id and raw-DER identities (@#, @~, @[) are not supported; %s", v, want)
		}
		if strings.ContainsAny(name, " \t\"") {
			return ID{}, fmt.Errorf("%q: an @fqdn id has no spaces or quotes", v)
		}
		return ID{Kind: IDFQDN, Value: name}, nil
	}
	if strings.Contains(v, "=") {
		dn := strings.TrimSpace(v)
		if strings.HasPrefix(dn, "=") || strings.ContainsRune(dn, '"') {
			return ID{}, fmt.Errorf("%q is not a DN; want attribute=value pairs like \"C=US, O=Example, CN=gw\"", v)
		}
		return ID{Kind: IDDN, Value: dn}, nil
	}
	if a, err := parseAddr(v); err == nil {
		if secrets && a.IsUnspecified() {
			return ID{Kind: IDAny}, nil
		}
		return ID{Kind: IDAddr, Addr: a}, nil
	}
	if i := strings.IndexByte(v, '@'); i > 0 && i < len(v)-1 && !strings.ContainsAny(v, " \t\"") {
		return ID{Kind: IDEmail, Value: v}, nil
	}
	return ID{}, fmt.Errorf("%q: %s (write @%s for a host name)", v, want, v)
}

// sameID reports whether two identities name the same thing.
func sameID(a, b ID) bool {
	if a.Kind != b.Kind {
		return false
	}
	switch a.Kind {
	case IDAddr:
		return a.Addr == b.Addr
	case IDFQDN, IDEmail:
		return strings.EqualFold(strings.TrimSuffix(a.Value, "."), strings.TrimSuffix(b.Value, "."))
	case IDDN:
		return strings.EqualFold(normDN(a.Value), normDN(b.Value))
	}
	return true
}

// normDN removes the spaces around a DN's separators.
func normDN(dn string) string {
	parts := strings.FieldsFunc(dn, func(r rune) bool { return r == ',' || r == '/' })
	for i, p := range parts {
		k, v, _ := strings.Cut(p, "=")
		parts[i] = strings.TrimSpace(k) + "=" + strings.TrimSpace(v)
	}
	return strings.Join(parts, ",")
}

// parseSubnets parses leftsubnet(s)= and rightsubnet(s)=: one or more
// prefixes or addresses, separated by commas or spaces, optionally in
// braces ({a b}, libreswan's leftsubnets form).
func parseSubnets(v string) ([]netip.Prefix, error) {
	s := strings.TrimSpace(v)
	if inner, ok := strings.CutPrefix(s, "{"); ok {
		inner, ok = strings.CutSuffix(inner, "}")
		if !ok {
			return nil, fmt.Errorf("%q: unbalanced braces; write {a b} or a,b", v)
		}
		s = inner
	}
	items := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if len(items) == 0 {
		return nil, fmt.Errorf("no subnet; want a prefix like 10.1.0.0/16 or 2001:db8::/64")
	}
	if len(items) > maxSubnets {
		return nil, fmt.Errorf("%d subnets; at most %d per side (split the conn)", len(items), maxSubnets)
	}
	out := make([]netip.Prefix, 0, len(items))
	for _, it := range items {
		p, err := parseSubnet(it)
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, p) {
			return nil, fmt.Errorf("%s is listed twice; remove one", p)
		}
		out = append(out, p)
	}
	return out, nil
}

// parseSubnet parses one prefix or address (a single-address prefix).
func parseSubnet(v string) (netip.Prefix, error) {
	if strings.HasPrefix(v, "%") || strings.HasPrefix(v, "vhost:") || strings.HasPrefix(v, "vnet:") {
		return netip.Prefix{}, fmt.Errorf("%q: virtual and special subnets (%%priv, vhost:, vnet:) are not supported; want a prefix like 10.1.0.0/16", v)
	}
	if !strings.Contains(v, "/") {
		a, err := parseAddr(v)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a subnet; want a prefix like 10.1.0.0/16 or 2001:db8::/64", v)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a subnet; want a prefix like 10.1.0.0/16 or 2001:db8::/64", v)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q is an IPv4-mapped IPv6 prefix; write the IPv4 prefix", v)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", v, m)
	}
	return p, nil
}

// maxDuration bounds every time value read.
const maxDuration = 365 * 24 * time.Hour

// parseDuration parses libreswan's time syntax: a whole number of seconds,
// or a whole number with the unit s, m, h or d ("3600", "30s", "20m",
// "8h", "1d").
func parseDuration(v string) (time.Duration, error) {
	const want = "want a whole number with an optional unit s, m, h or d, e.g. 30s, 20m, 8h, 1d"
	s := strings.ToLower(strings.TrimSpace(v))
	if s == "" {
		return 0, fmt.Errorf("empty time; %s", want)
	}
	unit := time.Second
	switch s[len(s)-1] {
	case 's':
		s = s[:len(s)-1]
	case 'm':
		unit, s = time.Minute, s[:len(s)-1]
	case 'h':
		unit, s = time.Hour, s[:len(s)-1]
	case 'd':
		unit, s = 24*time.Hour, s[:len(s)-1]
	}
	if s == "" || len(s) > 12 {
		return 0, fmt.Errorf("%q is not a time; %s", v, want)
	}
	var n int64
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("%q is not a time; %s", v, want)
		}
		n = n*10 + int64(r-'0')
	}
	if n > int64(maxDuration/unit) {
		return 0, fmt.Errorf("%q is too long; at most %v", v, maxDuration)
	}
	return time.Duration(n) * unit, nil
}

// parseProposals checks an ike= or esp= list lightly (the engine parses
// the algorithms later) and splits it at commas: each proposal is
// algorithm names (letters, digits, _) joined by -, +, ; or '.'.
func parseProposals(v string) ([]string, error) {
	const want = "want a comma-separated list like aes_gcm256-sha2_256;dh19,aes256-sha2"
	parts := strings.Split(v, ",")
	if len(parts) > maxProposals {
		return nil, fmt.Errorf("%d proposals; at most %d", len(parts), maxProposals)
	}
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("empty proposal in %q; %s", v, want)
		}
		sep := true // at the start, or after a separator
		for _, r := range p {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
				sep = false
			case r == '-' || r == '+' || r == ';' || r == '.':
				if sep {
					return nil, fmt.Errorf("proposal %q: %q without an algorithm before it; %s", p, r, want)
				}
				sep = true
			default:
				return nil, fmt.Errorf("proposal %q: unexpected %q; %s", p, r, want)
			}
		}
		if sep {
			return nil, fmt.Errorf("proposal %q ends with a separator; %s", p, want)
		}
		out = append(out, p)
	}
	return out, nil
}

// parseFamily parses hostaddrfamily= and clientaddrfamily=.
func parseFamily(v string) (Family, error) {
	switch strings.ToLower(v) {
	case "ipv4":
		return IPv4, nil
	case "ipv6":
		return IPv6, nil
	}
	return FamilyNone, fmt.Errorf("%q: want ipv4 or ipv6", v)
}

// oneOf parses v as one of the choices (exact, lower case), returning the
// matching typed value.
func oneOf[T ~string](v string, choices ...T) (T, error) {
	for _, c := range choices {
		if string(c) == v {
			return c, nil
		}
	}
	names := make([]string, len(choices))
	for i, c := range choices {
		names[i] = string(c)
	}
	var zero T
	return zero, fmt.Errorf("%q: want %s", v, orList(names))
}

// orList joins ["a","b","c"] as "a, b or c".
func orList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
