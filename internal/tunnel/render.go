// Rendering: the configuration part of a tunnels/show block in
// ovs-monitor-ipsec's exact layout, and the Python repr formats its replies
// use. The reconciler appends the kernel/backend status lines.

package tunnel

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// NoTunnels is upstream's whole tunnels/show reply when no tunnel is tracked.
const NoTunnels = "No tunnels configured with IPsec"

// Render returns the first 16 lines of a tunnels/show block, each ending in
// "\n": the "Interface name:" header and the 15 labelled lines, values at
// column 19 as upstream prints them. Unset values print as None. Unlike
// upstream, the PSK is never printed: "<redacted>" when set.
func Render(t Tunnel) string {
	state := string(t.State)
	if t.State == StateInvalid {
		state += t.Reason
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Interface name: %s v%d (%s)\n", t.Name, t.Version, state)
	line := func(label, value string) {
		b.WriteString("  ")
		b.WriteString(label)
		b.WriteString(strings.Repeat(" ", 16-len(label)))
		b.WriteString(value)
		b.WriteByte('\n')
	}
	line("Tunnel Type:", none(string(t.Type)))
	line("Local IP:", none(t.LocalIP))
	line("Remote IP:", none(t.RemoteIP))
	line("Address Family:", none(t.AddressFamily))
	line("SKB mark:", none(t.SKBMark))
	line("Local cert:", none(t.Certificate))
	line("Local name:", none(t.LocalName))
	line("Local key:", none(t.PrivateKey))
	line("Remote cert:", none(t.RemoteCert))
	line("Remote name:", none(t.RemoteName))
	line("CA cert:", none(t.CACert))
	line("PSK:", t.PSK.String())
	line("Custom Options:", PyDictRepr(t.CustomOptions))
	line("Ofport:", none(t.OFPort))
	line("CFM state:", none(t.CFMState))
	return b.String()
}

// RenderExtras returns ovnsec's additions to a tunnels/show block, in the
// same label layout: the protected destination port (UDP tunnels) and one
// line per problem. The caller decides where to put them; after the
// 16 upstream lines keeps upstream parsers working.
func RenderExtras(t Tunnel) string {
	var b strings.Builder
	if t.Type != TypeGRE {
		fmt.Fprintf(&b, "  Dst port:       %d\n", t.DstPort)
	}
	for _, p := range t.Problems {
		fmt.Fprintf(&b, "  Problem:        %s\n", p)
	}
	return b.String()
}

// none renders an unset value as Python's None.
func none(s string) string {
	if s == "" {
		return "None"
	}
	return s
}

// PyDictRepr renders options as Python's repr of a str->str dict, in the
// given order: {'encapsulation': 'yes', 'replay-window': '128'}, or {} when
// empty.
func PyDictRepr(opts []Option) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, o := range opts {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pyStrRepr(o.Key))
		b.WriteString(": ")
		b.WriteString(pyStrRepr(o.Value))
	}
	b.WriteByte('}')
	return b.String()
}

// pyStrRepr renders s as Python 3's repr(str): single quotes unless s
// contains a single quote and no double quote; backslash escapes for the
// quote, backslash, \t \n \r and non-printable characters. Bytes that are
// not UTF-8 (OVSDB strings always are) are shown as \xNN.
func pyStrRepr(s string) string {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			fmt.Fprintf(&b, `\x%02x`, s[i])
			i++
			continue
		}
		i += n
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == ' ' || (r < 0x7f && r >= 0x20):
			b.WriteRune(r)
		case r < 0x100 && !pyPrintable(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x10000 && !pyPrintable(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		case !pyPrintable(r):
			fmt.Fprintf(&b, `\U%08x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// pyPrintable approximates Python's str.isprintable for one character:
// letters, marks, numbers, punctuation, symbols and the ASCII space are
// printable; other separators, controls, format, private-use, surrogate and
// unassigned characters are not.
func pyPrintable(r rune) bool {
	return r == ' ' || unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S)
}
