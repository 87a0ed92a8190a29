package nsconf

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestParseDuration: libreswan's time syntax (plain seconds or s/m/h/d),
// nothing else.
func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{
		"3600": time.Hour, "30s": 30 * time.Second, "20m": 20 * time.Minute, "8h": 8 * time.Hour,
		"1d": 24 * time.Hour, " 1H ": time.Hour, "0": 0, "365d": 365 * 24 * time.Hour,
	}
	for in, want := range good {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "s", "1h30m", "1.5h", "-1", "+1", "1w", "10ms", "366d", "99999999999999", "1 h", "0x10"} {
		if got, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", in, got)
		} else if !strings.Contains(err.Error(), "want") && !strings.Contains(err.Error(), "at most") {
			t.Errorf("parseDuration(%q): %v does not say what is wanted", in, err)
		}
	}
}

// TestParseSubnets: prefixes and addresses, comma/space/brace lists,
// masked, one of each; special and non-canonical forms refused.
func TestParseSubnets(t *testing.T) {
	good := map[string]string{
		"10.0.0.0/8":                        "10.0.0.0/8",
		"0.0.0.0/0":                         "0.0.0.0/0",
		"::/0":                              "::/0",
		"192.0.2.7":                         "192.0.2.7/32",
		"2001:db8::1":                       "2001:db8::1/128",
		"10.0.0.0/24,10.0.1.0/24":           "10.0.0.0/24 10.0.1.0/24",
		"{10.0.0.0/24 10.0.1.0/24}":         "10.0.0.0/24 10.0.1.0/24",
		"{ 10.0.0.0/24, 2001:db8::/64 }":    "10.0.0.0/24 2001:db8::/64",
		"10.0.0.0/24, 10.0.1.0/24":          "10.0.0.0/24 10.0.1.0/24",
		"10.0.0.0/24\t10.0.1.0/24":          "10.0.0.0/24 10.0.1.0/24",
		"fd00:1::/48":                       "fd00:1::/48",
		"198.51.100.0/24,198.51.100.128/25": "198.51.100.0/24 198.51.100.128/25",
	}
	for in, want := range good {
		ps, err := parseSubnets(in)
		if err != nil {
			t.Errorf("parseSubnets(%q): %v", in, err)
			continue
		}
		var got []string
		for _, p := range ps {
			got = append(got, p.String())
		}
		if strings.Join(got, " ") != want {
			t.Errorf("parseSubnets(%q) = %v, want %s", in, got, want)
		}
	}
	bad := map[string]string{
		"10.0.0.1/24":           "did you mean 10.0.0.0/24",
		"%priv":                 "not supported",
		"vhost:%priv":           "not supported",
		"vnet:10.0.0.0/8":       "not supported",
		"10.0.0.0/33":           "not a subnet",
		"dc.example.com":        "not a subnet",
		"{10.0.0.0/8":           "unbalanced",
		"":                      "no subnet",
		"{}":                    "no subnet",
		"::ffff:10.0.0.0/104":   "IPv4-mapped",
		"fe80::1%eth0":          "not a subnet",
		"10.0.0.0/8,10.0.0.0/8": "twice",
		"10.0.0.0-10.0.0.9":     "not a subnet",
		strings.Repeat("10.0.0.0/8,", 65) + "10.1.0.0/16": "at most 64",
	}
	for in, want := range bad {
		if _, err := parseSubnets(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseSubnets(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}

// TestParseID: every id form libreswan writes, typed; the unsupported
// ones refused with the forms that are accepted.
func TestParseID(t *testing.T) {
	good := []struct {
		in      string
		secrets bool
		want    ID
	}{
		{"192.0.2.1", false, ID{Kind: IDAddr, Addr: netip.MustParseAddr("192.0.2.1")}},
		{"::ffff:192.0.2.1", false, ID{Kind: IDAddr, Addr: netip.MustParseAddr("192.0.2.1")}},
		{"2001:db8::1", false, ID{Kind: IDAddr, Addr: netip.MustParseAddr("2001:db8::1")}},
		{"@gw.example.com", false, ID{Kind: IDFQDN, Value: "gw.example.com"}},
		{"ops@example.com", false, ID{Kind: IDEmail, Value: "ops@example.com"}},
		{"C=US, O=Example, CN=gw", false, ID{Kind: IDDN, Value: "C=US, O=Example, CN=gw"}},
		{"%fromcert", false, ID{Kind: IDFromCert}},
		{"%any", false, ID{Kind: IDAny}},
		{"%any", true, ID{Kind: IDAny}},
		{"%any6", true, ID{Kind: IDAny}},
		{"0.0.0.0", true, ID{Kind: IDAny}},
		{"::", true, ID{Kind: IDAny}},
	}
	for _, g := range good {
		if got, err := parseID(g.in, g.secrets); err != nil || got != g.want {
			t.Errorf("parseID(%q, %v) = %+v, %v; want %+v", g.in, g.secrets, got, err, g.want)
		}
	}
	for _, in := range []string{"", "gw.example.com", "@", "@#0x1234", "@~abcd", "@[key]", "%fromcert+", "%none", "@a b", "a\x01b"} {
		if got, err := parseID(in, false); err == nil {
			t.Errorf("parseID(%q) = %+v, want an error", in, got)
		}
	}
	if _, err := parseID("%fromcert", true); err == nil {
		t.Errorf("%%fromcert accepted as a secrets id")
	}
	if _, err := parseID("gw.example.com", false); err == nil || !strings.Contains(err.Error(), "@gw.example.com") {
		t.Errorf("a bare host name: %v; want the hint @gw.example.com", err)
	}
}

// TestSameID: addresses by value, names and DNs case- and space-insensitively.
func TestSameID(t *testing.T) {
	eq := [][2]string{
		{"@GW.example.com", "@gw.example.com."},
		{"C=US,O=Ex,CN=gw", "c=us, o=ex , cn=gw"},
		{"192.0.2.1", "::ffff:192.0.2.1"},
	}
	for _, p := range eq {
		a, _ := parseID(p[0], false)
		b, _ := parseID(p[1], false)
		if !sameID(a, b) {
			t.Errorf("%q and %q differ", p[0], p[1])
		}
	}
	a, _ := parseID("@gw", false)
	b, _ := parseID("gw@x", false)
	if sameID(a, b) {
		t.Error("fqdn and email ids are the same")
	}
}

// TestParseEnds: left may be resolved later (explicitly unset), right
// must be an address except for a passthrough.
func TestParseEnds(t *testing.T) {
	for in, want := range map[string]Local{
		"%defaultroute": {Kind: LocalDefaultRoute},
		"%any":          {Kind: LocalAny},
		"0.0.0.0":       {Kind: LocalAny},
		"192.0.2.1":     {Kind: LocalAddr, Addr: netip.MustParseAddr("192.0.2.1")},
	} {
		if got, err := parseLocal(in); err != nil || got != want {
			t.Errorf("parseLocal(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"host.example", "fe80::1%eth0", "%defaultroute6", ""} {
		if _, err := parseLocal(in); err == nil {
			t.Errorf("parseLocal(%q) accepted", in)
		}
	}
	for _, in := range []string{"%any", "0.0.0.0", "::", "%defaultroute", "gw.example", "224.0.0.1"} {
		if _, err := parseRemote(in, false); err == nil {
			t.Errorf("parseRemote(%q) accepted for a tunnel", in)
		}
	}
	if a, err := parseRemote("%any", true); err != nil || a.IsValid() {
		t.Errorf("passthrough right=%%any = %v, %v; want unset", a, err)
	}
}

// TestParseProposals: kept as strings, checked lightly.
func TestParseProposals(t *testing.T) {
	got, err := parseProposals("aes_gcm256-sha2_256;dh19, aes256-sha2+sha1-modp2048")
	if err != nil || len(got) != 2 || got[0] != "aes_gcm256-sha2_256;dh19" || got[1] != "aes256-sha2+sha1-modp2048" {
		t.Fatalf("got %q, %v", got, err)
	}
	for _, in := range []string{"", ",", "aes--sha2", "-aes", "aes-", "aes sha2", "aes!", "aes,,sha2", strings.Repeat("a,", 40) + "a"} {
		if _, err := parseProposals(in); err == nil {
			t.Errorf("parseProposals(%q) accepted", in)
		}
	}
}
