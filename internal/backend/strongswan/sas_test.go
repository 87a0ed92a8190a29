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
