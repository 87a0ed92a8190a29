package strongswan

import (
	"errors"
	"reflect"
	"strings"
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
	got, err := decodeListSA(ev)
	if err != nil {
		t.Fatal(err)
	}
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
	// Wrong shapes are an error naming the IKE_SA, never a panic nor a
	// half-decoded IKE_SA.
	for _, tc := range []struct {
		name string
		ev   *vici.Message
		want string
	}{
		{"not a section", msg(t, "x", "not a section"), `IKE_SA "x" is a value, not a section`},
		{"list for a value", msg(t, "y", msg(t, "state", []string{"list?"})), `IKE_SA "y": `},
		{"value for child-sas", msg(t, "y", msg(t, "state", "ESTABLISHED", "child-sas", "str")), `IKE_SA "y": `},
		{"value for a child", msg(t, "y", msg(t, "child-sas", msg(t, "c-1", "str"))), `IKE_SA "y": `},
		{"list for a child's SPI", msg(t, "y", msg(t, "child-sas", msg(t, "c-1", msg(t, "spi-in", []string{"c1"})))), `IKE_SA "y": `},
		{"bad boolean", msg(t, "y", msg(t, "initiator", "maybe")), `IKE_SA "y": `},
		{"second IKE_SA odd", msg(t, "ok", msg(t, "state", "ESTABLISHED"), "x", []string{"l"}), `IKE_SA "x" is a list, not a section`},
	} {
		got, err := decodeListSA(tc.ev)
		if err == nil || !strings.Contains(err.Error(), tc.want) || got != nil {
			t.Errorf("%s: decodeListSA = %+v, %v; want an error containing %q", tc.name, got, err, tc.want)
		}
	}
	if got, err := decodeListSA(nil); got != nil || err != nil {
		t.Errorf("nil event: %+v, %v", got, err)
	}
}

// decodeSAs decodes list-sa events that must decode.
func decodeSAs(t testing.TB, evs ...*vici.Message) []ikeSA {
	t.Helper()
	var out []ikeSA
	for _, ev := range evs {
		sas, err := decodeListSA(ev)
		if err != nil {
			t.Fatalf("decodeListSA: %v", err)
		}
		out = append(out, sas...)
	}
	return out
}

// Missing fields decode to zero values, and CHILD_SAs keep charon's order
// (their order of creation), not the order of their keys.
func TestDecodeListSAPartialAndOrder(t *testing.T) {
	kids := msg(t,
		"gnv0-out-1-9", msg(t, "name", "gnv0-out-1", "state", "INSTALLED"),
		"gnv0-in-1-10", msg(t, "name", "gnv0-in-1"),
		"gnv0-out-1-2", msg(t, "name", "gnv0-out-1", "state", "REKEYED", "encap", "yes"),
	)
	got := decodeSAs(t, msg(t, "gnv0-1", msg(t, "state", "CONNECTING", "child-sas", kids, "tasks-queued", []string{"IKE_INIT"})),
		msg(t, "gnv0-2", msg(t)))
	want := []ikeSA{
		{Conn: "gnv0-1", State: "CONNECTING", Children: []childSA{
			{Name: "gnv0-out-1", State: "INSTALLED"}, {Name: "gnv0-in-1"}, {Name: "gnv0-out-1", State: "REKEYED", Encap: true},
		}},
		{Conn: "gnv0-2"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
	if got[0].Children[0].installed() {
		t.Error("child without SPIs reads as installed")
	}
}

func TestDecodeListConn(t *testing.T) {
	ev := msg(t,
		"gnv0-1", msg(t, "local_addrs", []string{"192.0.2.1"}, "version", "IKEv2", "children", msg(t,
			"gnv0-in-1", msg(t, "mode", "TRANSPORT", "local-ts", []string{"dynamic[udp/6081]"}, "remote-ts", []string{"dynamic[udp]"}),
			"gnv0-out-1", msg(t, "mode", "TRANSPORT"),
		)),
		"bare-1", msg(t, "version", "IKEv2"),
	)
	got, err := decodeListConn(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := []loadedConn{
		{Name: "gnv0-1", Children: map[ConnName]loadedChild{
			"gnv0-in-1":  {Mode: "TRANSPORT", LocalTS: []string{"dynamic[udp/6081]"}, RemoteTS: []string{"dynamic[udp]"}},
			"gnv0-out-1": {Mode: "TRANSPORT"},
		}},
		{Name: "bare-1", Children: map[ConnName]loadedChild{}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decodeListConn =\n%+v\nwant\n%+v", got, want)
	}
	for _, tc := range []struct {
		ev   *vici.Message
		want string
	}{
		{msg(t, "c", []string{"x"}), `connection "c" is a list, not a section`},
		{msg(t, "c", msg(t, "children", "x")), `connection "c": `},
		{msg(t, "c", msg(t, "children", msg(t, "k", "x"))), `connection "c": `},
		{msg(t, "c", msg(t, "children", msg(t, "k", msg(t, "local-ts", "x")))), `connection "c": `},
	} {
		if got, err := decodeListConn(tc.ev); err == nil || !strings.Contains(err.Error(), tc.want) || got != nil {
			t.Errorf("decodeListConn(%s) = %+v, %v; want an error containing %q", tc.ev, got, err, tc.want)
		}
	}
}

func TestDecodeListPolicy(t *testing.T) {
	if got, err := decodeListPolicy(msg(t, "a/b", msg(t, "child", "b", "mode", []string{"TRANSPORT"}))); err == nil || !strings.Contains(err.Error(), `policy "a/b": `) || got != nil {
		t.Errorf("odd policy = %+v, %v", got, err)
	}
	if got, err := decodeListPolicy(msg(t, "a/b", "x")); err == nil || !strings.Contains(err.Error(), `policy "a/b" is a value, not a section`) || got != nil {
		t.Errorf("odd policy = %+v, %v", got, err)
	}
	got, err := decodeListPolicy(msg(t, "a/b", msg(t, "child", "b")))
	if err != nil || !reflect.DeepEqual(got, []policy{{Child: "b"}}) {
		t.Errorf("policy = %+v, %v", got, err)
	}
}

// A panic inside govici's reflection (it panics when a section-typed field
// meets a value) comes back as an error.
func TestUnmarshalRecoversGoviciPanics(t *testing.T) {
	var v struct {
		Sec *vici.Message `vici:"sec"`
	}
	err := unmarshal(msg(t, "sec", "not a section"), &v)
	if !errors.Is(err, errDecodePanic) {
		t.Errorf("unmarshal = %v, want errDecodePanic", err)
	}
	var r loadKeyReply
	if err := unmarshal(msg(t, "success", "yes", "id", "ab12"), &r); err != nil || r.ID != "ab12" {
		t.Errorf("load-key reply = %+v, %v", r, err)
	}
	if err := unmarshal(msg(t, "id", []string{"ab12"}), &r); err == nil || errors.Is(err, errDecodePanic) {
		t.Errorf("load-key reply with a list id: %v, want a decode error", err)
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
