package nsconf

import (
	"net/netip"
	"strings"
	"testing"
)

// TestReadSecrets: every libreswan PSK form (ids or none, %any, IPs of
// both families, @fqdn, quoted DNs, 0x and 0s keys, continuation lines);
// other kinds and include refused entry by entry, the key never echoed.
func TestReadSecrets(t *testing.T) {
	entries, errs := readSecrets("a.secrets", []byte(`# comment
%any 198.51.100.1 : PSK "swordfish one"
192.0.2.10 2001:db8::1 : PSK "v6 # not a comment"
@node1.example.com @dc.example.com: PSK 0x73_77_6f72
: PSK 0sc3dvcmQ=
"C=US, O=Ex, CN=gw"
    192.0.2.20 :
    PSK "continued"
198.51.100.9: PSK "ipv4 with the colon stuck"
`))
	if len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
	type want struct {
		ids  string
		key  string
		line int
	}
	wants := []want{
		{"%any 198.51.100.1", "swordfish one", 2},
		{"192.0.2.10 2001:db8::1", "v6 # not a comment", 3},
		{"@node1.example.com @dc.example.com", "swor", 4},
		{"", "sword", 5},
		{"C=US, O=Ex, CN=gw 192.0.2.20", "continued", 6},
		{"198.51.100.9", "ipv4 with the colon stuck", 9},
	}
	if len(entries) != len(wants) {
		t.Fatalf("entries %+v", entries)
	}
	for i, w := range wants {
		e := entries[i]
		var ids []string
		for _, id := range e.ids {
			ids = append(ids, id.String())
		}
		if strings.Join(ids, " ") != w.ids || e.psk.Reveal() != w.key || e.src != (Source{"a.secrets", w.line}) {
			t.Errorf("entry %d = %v %q %v; want %+v", i, ids, e.psk.Reveal(), e.src, w)
		}
	}
}

func TestReadSecretsErrors(t *testing.T) {
	entries, errs := readSecrets("b.secrets", []byte(`  : PSK "orphan continuation"
include /etc/ipsec.d/*.secrets
: RSA {
    Modulus: 0xabcdef
    }
192.0.2.1 198.51.100.1 PSK "no colon hunter2"
192.0.2.1 : PSK hunter2
192.0.2.1 : "hunter2"
192.0.2.1 : PSK ""
192.0.2.1 : PSK "a" "hunter2"
192.0.2.1 : PSK "unterminated hunter2
gw.example : PSK "hunter2"
192.0.2.1 : PSK 0xzz
192.0.2.1 : XAUTH "hunter2"
%any : PSK "good"
`))
	if len(entries) != 1 || entries[0].psk.Reveal() != "good" || entries[0].src.Line != 15 {
		t.Fatalf("entries %+v", entries)
	}
	wants := []string{
		"b.secrets:1: indented line without an entry",
		"b.secrets:2: include is not supported",
		"b.secrets:3: RSA secrets are not read",
		"b.secrets:6: no ':' between the ids and the secret",
		"b.secrets:7: the key must be in double quotes",
		"b.secrets:8: PSK is missing before the key",
		"b.secrets:9: empty PSK",
		"b.secrets:10: want exactly one key after PSK",
		"b.secrets:11: a quoted string has no closing",
		"b.secrets:12: id \"gw.example\"",
		"b.secrets:13: the 0x key is not hex",
		"b.secrets:14: XAUTH secrets are not read",
	}
	if len(errs) != len(wants) {
		t.Fatalf("errors: %v", errs)
	}
	for i, w := range wants {
		if !strings.HasPrefix(errs[i].Error(), w) {
			t.Errorf("error %d = %q, want prefix %q", i, errs[i].Error(), w)
		}
		if strings.Contains(errs[i].Error(), "hunter2") {
			t.Errorf("error %d echoes the key: %q", i, errs[i].Error())
		}
	}
}

// pskConn is a PSK conn between left (or %defaultroute when empty) and right.
func pskConn(left, right, leftid, rightid string) Conn {
	c := Conn{Name: "dc", Source: Source{"dc.conf", 3}, Auth: AuthPSK, Local: Local{Kind: LocalDefaultRoute}, Remote: netip.MustParseAddr(right)}
	if left != "" {
		c.Local = Local{Kind: LocalAddr, Addr: netip.MustParseAddr(left)}
	}
	if leftid != "" {
		c.LocalID, _ = parseID(leftid, false)
	}
	if rightid != "" {
		c.RemoteID, _ = parseID(rightid, false)
	}
	return c
}

// TestMatchPSK: libreswan's choice of secret: ids that name the ends
// beat %any, which beats nothing; one id names either end; an
// unresolved left matches only %any; a tie between different keys is
// refused; no match names the conn, its file and the line to add.
func TestMatchPSK(t *testing.T) {
	entries, errs := readSecrets("s.secrets", []byte(`: PSK "catch-all"
%any 198.51.100.1 : PSK "any-to-gw1"
192.0.2.10 198.51.100.1 : PSK "exact-gw1"
@node1 @dc : PSK "by-fqdn"
198.51.100.7 : PSK "one-id"
2001:db8::1 %any : PSK "v6-any-first"
`))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	cases := []struct {
		c    Conn
		want string
	}{
		{pskConn("192.0.2.10", "198.51.100.1", "", ""), "exact-gw1"},
		{pskConn("", "198.51.100.1", "", ""), "any-to-gw1"},                 // left unresolved: %any side only
		{pskConn("192.0.2.99", "198.51.100.1", "", ""), "any-to-gw1"},       // not the exact left
		{pskConn("192.0.2.10", "198.51.100.2", "", ""), "catch-all"},        // nothing names gw2
		{pskConn("192.0.2.10", "198.51.100.1", "@NODE1", "@dc"), "by-fqdn"}, // ids, not addresses
		{pskConn("", "198.51.100.7", "", ""), "one-id"},                     // one id: the peer, any local
		{pskConn("", "2001:db8::1", "", ""), "v6-any-first"},                // order of the pair does not matter
	}
	for i, c := range cases {
		e, err := matchPSK(&c.c, entries, []string{"s.secrets"})
		if err != nil || e.psk.Reveal() != c.want {
			t.Errorf("case %d: got %q, %v; want %q", i, e.psk.Reveal(), err, c.want)
		}
	}

	c := pskConn("", "198.51.100.1", "", "")
	_, err := matchPSK(&c, nil, []string{"/etc/ovnsec/ipsec.d/dc.secrets"})
	if err == nil || !strings.HasPrefix(err.Error(), "dc.conf:3: conn dc: authby=secret needs a PSK, but none in /etc/ovnsec/ipsec.d/dc.secrets matches; add a line %any 198.51.100.1 : PSK") {
		t.Errorf("no match: %v", err)
	}
	_, err = matchPSK(&c, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "no .secrets file is in the directory") {
		t.Errorf("no file: %v", err)
	}

	tie, _ := readSecrets("t.secrets", []byte("%any 198.51.100.1 : PSK \"a\"\n%any 198.51.100.1 : PSK \"b\"\n%any 198.51.100.1 : PSK \"a\"\n"))
	_, err = matchPSK(&c, tie, []string{"t.secrets"})
	if err == nil || !strings.Contains(err.Error(), "t.secrets:1 and t.secrets:2 match its ids equally well and differ") {
		t.Errorf("tie: %v", err)
	}
	same, _ := readSecrets("t.secrets", []byte("%any 198.51.100.1 : PSK \"a\"\n198.51.100.1 %any : PSK \"a\"\n"))
	if e, err := matchPSK(&c, same, nil); err != nil || e.src.Line != 1 {
		t.Errorf("equal keys: %+v %v; want the first", e, err)
	}
}
