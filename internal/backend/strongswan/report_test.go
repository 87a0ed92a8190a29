// Tests of the reports: the ipsec/status and xfrm/* renderings and the
// Python reprs they are printed in.

package strongswan

import "testing"

func TestStatusLineAndReports(t *testing.T) {
	out := childMsg(t, "gnv0-out-1", "3", "INSTALLED", "c1000001", "c2000002", []string{"192.0.2.1/32[udp]"}, []string{"192.0.2.2/32[udp/6081]"})
	in := childMsg(t, "gnv0-in-1", "4", "INSTALLED", "c3000003", "c4000004", []string{"192.0.2.1/32[udp/6081]"}, []string{"192.0.2.2/32[udp]"})
	failed := childMsg(t, "gre0-1", "5", "CREATED", "", "", nil, nil)
	sas := decodeSAs(t, listSAEvent(t, "gnv0-1", "7", "ESTABLISHED", out, in), listSAEvent(t, "gre0-1", "8", "ESTABLISHED", failed))

	if got, want := statusLine(sas[0].Children[0]), "gnv0-out-1{3}:  INSTALLED, TRANSPORT, reqid 3, ESP SPIs: c1000001_i c2000002_o"; got != want {
		t.Errorf("statusLine = %q\nwant       %q", got, want)
	}
	wantStatus := "{'gnv0': {'gnv0-in-1': 'gnv0-in-1{4}:  INSTALLED, TRANSPORT, reqid 4, ESP SPIs: c3000003_i c4000004_o', " +
		"'gnv0-out-1': 'gnv0-out-1{3}:  INSTALLED, TRANSPORT, reqid 3, ESP SPIs: c1000001_i c2000002_o'}}"
	if got := activeReport(sas, []string{"gnv0"}); got != wantStatus {
		t.Errorf("activeReport =\n%s\nwant\n%s", got, wantStatus)
	}
	// Without knowing the interface, the right-to-left parse is used.
	if got := activeReport(sas, nil); got != wantStatus {
		t.Errorf("activeReport without known names =\n%s", got)
	}
	// A known interface named like a direction wins over the parse.
	x := decodeSAs(t, listSAEvent(t, "x-in-1", "9", "ESTABLISHED", childMsg(t, "x-in-1", "1", "INSTALLED", "a", "b", nil, nil)))
	if got := activeReport(x, []string{"x", "x-in"}); got != "{'x-in': {'x-in-1': 'x-in-1{1}:  INSTALLED, TRANSPORT, reqid 1, ESP SPIs: a_i b_o'}}" {
		t.Errorf("activeReport x-in = %s", got)
	}
	if got := activeReport(nil, nil); got != "{}" {
		t.Errorf("empty activeReport = %s", got)
	}

	// Per child in order: out child (to peer port 6081), then in child;
	// these exact strings are what `ip xfrm policy` prints first.
	wantPol := "{'192.0.2.1': ['src 192.0.2.2/32 dst 192.0.2.1/32 proto udp sport 6081', 'src 192.0.2.2/32 dst 192.0.2.1/32 proto udp dport 6081'], " +
		"'192.0.2.2': ['src 192.0.2.1/32 dst 192.0.2.2/32 proto udp dport 6081', 'src 192.0.2.1/32 dst 192.0.2.2/32 proto udp sport 6081']}"
	if got := xfrmReport(sas, nil, true); got != wantPol {
		t.Errorf("xfrm policies =\n%s\nwant\n%s", got, wantPol)
	}
	// Trap policies of the same children add nothing; a gre trap adds its own.
	pols, err := decodeListPolicy(msg(t,
		"gnv0-1/gnv0-out-1", msg(t, "child", "gnv0-out-1", "ike", "gnv0-1", "mode", "TRANSPORT", "local-ts", []string{"192.0.2.1/32[udp]"}, "remote-ts", []string{"192.0.2.2/32[udp/6081]"}),
		"gre0-1/gre0-1", msg(t, "child", "gre0-1", "ike", "gre0-1", "mode", "TRANSPORT", "local-ts", []string{"192.0.2.1/32[gre]"}, "remote-ts", []string{"192.0.2.3/32[gre]"}),
	))
	if err != nil || len(pols) != 2 || pols[1].Child != "gre0-1" || pols[1].IKE != "gre0-1" {
		t.Fatalf("decodeListPolicy = %+v, %v", pols, err)
	}
	wantPol2 := "{'192.0.2.1': ['src 192.0.2.2/32 dst 192.0.2.1/32 proto udp sport 6081', 'src 192.0.2.3/32 dst 192.0.2.1/32 proto gre', 'src 192.0.2.2/32 dst 192.0.2.1/32 proto udp dport 6081'], " +
		"'192.0.2.2': ['src 192.0.2.1/32 dst 192.0.2.2/32 proto udp dport 6081', 'src 192.0.2.1/32 dst 192.0.2.2/32 proto udp sport 6081'], " +
		"'192.0.2.3': ['src 192.0.2.1/32 dst 192.0.2.3/32 proto gre']}"
	if got := xfrmReport(sas, pols, true); got != wantPol2 {
		t.Errorf("xfrm policies with traps =\n%s\nwant\n%s", got, wantPol2)
	}
	st := xfrmReport(sas[:1], nil, false)
	for _, want := range []string{
		"'sel src 192.0.2.1/32 dst 192.0.2.2/32 proto udp dport 6081 spi 0xc2000002 AES_GCM_16-256'",
		"'sel src 192.0.2.2/32 dst 192.0.2.1/32 proto udp sport 6081 spi 0xc1000001 AES_GCM_16-256'",
	} {
		if !contains(st, want) {
			t.Errorf("xfrm state lacks %s:\n%s", want, st)
		}
	}
	if got := xfrmReport(nil, nil, false); got != "{}" {
		t.Errorf("empty xfrm state = %s", got)
	}
}

func contains(s, sub string) bool { return len(sub) == 0 || indexOf(s, sub) >= 0 }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestPyStr(t *testing.T) {
	tests := map[string]string{
		"abc":        `'abc'`,
		"it's":       `"it's"`,
		`say "hi"`:   `'say "hi"'`,
		`both ' "`:   `'both \' "'`,
		"a\\b":       `'a\\b'`,
		"l1\nl2\tx":  `'l1\nl2\tx'`,
		"\x01\x7f":   `'\x01\x7f'`,
		"ünïcode":    `'ünïcode'`,
		"":           `''`,
		"\u0085next": `'\x85next'`,
	}
	for in, want := range tests {
		if got := pyStr(in); got != want {
			t.Errorf("pyStr(%q) = %s, want %s", in, got, want)
		}
	}
	if got := pyDictOfDicts(map[string]map[string]string{"b": {"y": "2", "x": "1"}, "a": {}}); got != "{'a': {}, 'b': {'x': '1', 'y': '2'}}" {
		t.Errorf("pyDictOfDicts = %s", got)
	}
}
