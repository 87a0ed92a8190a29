package strongswan

import (
	"reflect"
	"testing"

	"github.com/strongswan/govici/vici"
)

// msg builds a vici message from key/value pairs; values are string,
// []string or *vici.Message.
func msg(t testing.TB, kv ...any) *vici.Message {
	t.Helper()
	m := vici.NewMessage()
	for i := 0; i+1 < len(kv); i += 2 {
		if err := m.Set(kv[i].(string), kv[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func listSAEvent(t testing.TB, conn, id, state string, children ...*vici.Message) *vici.Message {
	cs := vici.NewMessage()
	for i, c := range children {
		if err := cs.Set(string(rune('a'+i)), c); err != nil {
			t.Fatal(err)
		}
	}
	return msg(t, conn, msg(t,
		"uniqueid", id, "version", "2", "state", state,
		"local-host", "192.0.2.1", "remote-host", "192.0.2.2", "local-id", "192.0.2.1", "remote-id", "192.0.2.2",
		"initiator", "yes", "encr-alg", "AES_GCM_16", "encr-keysize", "256", "prf-alg", "PRF_HMAC_SHA2_256",
		"dh-group", "MODP_2048", "established", "42", "child-sas", cs))
}

func childMsg(t testing.TB, name, id, state, spiIn, spiOut string, lts, rts []string) *vici.Message {
	return msg(t, "name", name, "uniqueid", id, "reqid", id, "state", state, "mode", "TRANSPORT",
		"protocol", "ESP", "spi-in", spiIn, "spi-out", spiOut, "encr-alg", "AES_GCM_16", "encr-keysize", "256",
		"local-ts", lts, "remote-ts", rts)
}

func TestDecodeListSA(t *testing.T) {
	ev := listSAEvent(t, "gnv0-1", "7", "ESTABLISHED",
		childMsg(t, "gnv0-out-1", "3", "INSTALLED", "c1", "c2", []string{"192.0.2.1/32[udp]"}, []string{"192.0.2.2/32[udp/6081]"}))
	got := decodeListSA(ev)
	want := []ikeSA{{
		Conn: "gnv0-1", UniqueID: "7", State: "ESTABLISHED", LocalHost: "192.0.2.1", RemoteHost: "192.0.2.2",
		LocalID: "192.0.2.1", RemoteID: "192.0.2.2", Initiator: true, Encr: "AES_GCM_16", EncrKeySize: "256",
		PRF: "PRF_HMAC_SHA2_256", DH: "MODP_2048", Established: "42",
		Children: []childSA{{Name: "gnv0-out-1", UniqueID: "3", ReqID: "3", State: "INSTALLED", Mode: "TRANSPORT",
			Protocol: "ESP", SPIIn: "c1", SPIOut: "c2", Encr: "AES_GCM_16", EncrKeySize: "256",
			LocalTS: []string{"192.0.2.1/32[udp]"}, RemoteTS: []string{"192.0.2.2/32[udp/6081]"}}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decodeListSA =\n%+v\nwant\n%+v", got, want)
	}
	if !got[0].Children[0].installed() {
		t.Error("child not installed")
	}
	// Wrong shapes decode to nothing rather than failing.
	odd := msg(t, "x", "not a section", "y", msg(t, "state", []string{"list?"}, "child-sas", "str"))
	if got := decodeListSA(odd); len(got) != 1 || got[0].State != "" || got[0].Children != nil {
		t.Errorf("odd message decoded to %+v", got)
	}
	if decodeListSA(nil) != nil {
		t.Error("nil event")
	}
}

func TestOwnedConn(t *testing.T) {
	kids := func(names ...string) map[ConnName]loadedChild {
		m := map[ConnName]loadedChild{}
		for _, n := range names {
			m[ConnName(n)] = loadedChild{}
		}
		return m
	}
	tests := []struct {
		c     loadedConn
		iface string
		v     int
		ok    bool
	}{
		{loadedConn{"gnv0-1", kids("gnv0-in-1", "gnv0-out-1")}, "gnv0", 1, true},
		{loadedConn{"gre0-4", kids("gre0-4")}, "gre0", 4, true},
		{loadedConn{"x-in-1", kids("x-in-1")}, "x-in", 1, true}, // gre interface named x-in
		{loadedConn{"ovn-ch2-0-2", kids("ovn-ch2-0-in-2", "ovn-ch2-0-out-2")}, "ovn-ch2-0", 2, true},
		{loadedConn{"site-2", kids("net")}, "", 0, false},       // somebody else's
		{loadedConn{"gnv0-1", kids("gnv0-in-1")}, "", 0, false}, // half
		{loadedConn{"gnv0-1", kids("gnv0-in-2", "gnv0-out-2")}, "", 0, false},
		{loadedConn{"home", kids("home")}, "", 0, false},
		{loadedConn{"gnv0-in-1", kids("gnv0-in-1")}, "gnv0-in", 1, true}, // upstream-style single conn reads as gre "gnv0-in"
	}
	for _, tc := range tests {
		iface, v, ok := ownedConn(tc.c)
		if iface != tc.iface || v != tc.v || ok != tc.ok {
			t.Errorf("ownedConn(%s) = %q %d %v; want %q %d %v", tc.c.Name, iface, v, ok, tc.iface, tc.v, tc.ok)
		}
	}
}

func TestParseTS(t *testing.T) {
	tests := []struct {
		in   string
		want trafficSelector
		ok   bool
	}{
		{"192.0.2.1/32[udp/6081]", trafficSelector{"192.0.2.1/32", "udp", "6081"}, true},
		{"192.0.2.1/32[udp]", trafficSelector{"192.0.2.1/32", "udp", ""}, true},
		{"192.0.2.1/32[gre]", trafficSelector{"192.0.2.1/32", "gre", ""}, true},
		{"2001:db8::1/128[udp/%any]", trafficSelector{"2001:db8::1/128", "udp", ""}, true},
		{"10.0.0.0/8", trafficSelector{"10.0.0.0/8", "", ""}, true},
		{"10.0.0.1..10.0.0.9[tcp/1000-2000]", trafficSelector{"10.0.0.1..10.0.0.9", "tcp", "1000-2000"}, true},
		{"dynamic[udp/6081]", trafficSelector{"dynamic", "udp", "6081"}, true},
		{"", trafficSelector{}, false},
		{"[udp]", trafficSelector{}, false},
		{"1.2.3.4[udp", trafficSelector{}, false},
		{"1.2.3.4[u[d]p]", trafficSelector{}, false},
		{"1.2.3.4[udp/1/2]", trafficSelector{}, false},
		{"1.2.3.4]", trafficSelector{}, false},
	}
	for _, tc := range tests {
		got, ok := parseTS(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseTS(%q) = %+v %v; want %+v %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParseTS(f *testing.F) {
	for _, s := range []string{"192.0.2.1/32[udp/6081]", "10.0.0.0/8", "dynamic[gre]", "a[b/c]", "[", "]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, ok := parseTS(s)
		if !ok {
			return
		}
		if ts.Net == "" {
			t.Fatalf("parseTS(%q) ok with empty net", s)
		}
		for _, part := range []string{ts.Net, ts.Proto, ts.Port} {
			for _, c := range part {
				if c == '[' || c == ']' {
					t.Fatalf("parseTS(%q) = %+v: bracket in a field", s, ts)
				}
			}
		}
		_ = xfrmSelector(ts, ts)
	})
}

func TestStatusLineAndReports(t *testing.T) {
	out := childMsg(t, "gnv0-out-1", "3", "INSTALLED", "c1000001", "c2000002", []string{"192.0.2.1/32[udp]"}, []string{"192.0.2.2/32[udp/6081]"})
	in := childMsg(t, "gnv0-in-1", "4", "INSTALLED", "c3000003", "c4000004", []string{"192.0.2.1/32[udp/6081]"}, []string{"192.0.2.2/32[udp]"})
	failed := childMsg(t, "gre0-1", "5", "CREATED", "", "", nil, nil)
	sas := append(decodeListSA(listSAEvent(t, "gnv0-1", "7", "ESTABLISHED", out, in)), decodeListSA(listSAEvent(t, "gre0-1", "8", "ESTABLISHED", failed))...)

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
	x := decodeListSA(listSAEvent(t, "x-in-1", "9", "ESTABLISHED", childMsg(t, "x-in-1", "1", "INSTALLED", "a", "b", nil, nil)))
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
	pols := decodeListPolicy(msg(t,
		"gnv0-1/gnv0-out-1", msg(t, "child", "gnv0-out-1", "ike", "gnv0-1", "mode", "TRANSPORT", "local-ts", []string{"192.0.2.1/32[udp]"}, "remote-ts", []string{"192.0.2.2/32[udp/6081]"}),
		"gre0-1/gre0-1", msg(t, "child", "gre0-1", "ike", "gre0-1", "mode", "TRANSPORT", "local-ts", []string{"192.0.2.1/32[gre]"}, "remote-ts", []string{"192.0.2.3/32[gre]"}),
	))
	if len(pols) != 2 || pols[1].Child != "gre0-1" || pols[1].IKE != "gre0-1" {
		t.Fatalf("decodeListPolicy = %+v", pols)
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
