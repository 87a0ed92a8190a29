// Unit tests: proposal strings and selection, traffic selector narrowing,
// peer configuration checks, the fake clock and the log helpers.

package ike

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike/message"
)

func TestParseProposal(t *testing.T) {
	for _, tc := range []struct {
		in      string
		proto   message.ProtocolID
		wantErr string
		encr    int
		dh      []message.DHGroup
		esn     []bool
	}{
		{in: "aes256gcm16-prfsha256-modp2048", proto: message.ProtoIKE, encr: 1, dh: []message.DHGroup{message.MODP_2048}},
		{in: "aes256gcm16-prfsha256-x25519-modp2048", proto: message.ProtoIKE, encr: 1, dh: []message.DHGroup{message.CURVE_25519, message.MODP_2048}},
		{in: "AES128GCM16-aes256gcm16-sha384-ecp256", proto: message.ProtoIKE, encr: 2, dh: []message.DHGroup{message.ECP_256}},
		{in: "aes256gcm16-prfsha256", proto: message.ProtoIKE, wantErr: "needs a DH group"},
		{in: "prfsha256-modp2048", proto: message.ProtoIKE, wantErr: "no encryption"},
		{in: "aes256-sha256-modp2048", proto: message.ProtoIKE, wantErr: `unsupported algorithm "aes256"`},
		{in: "aes256gcm16", proto: message.ProtoESP, encr: 1, esn: []bool{false}},
		{in: "aes256gcm16-modp2048-esn", proto: message.ProtoESP, encr: 1, dh: []message.DHGroup{message.MODP_2048}, esn: []bool{true}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			p, err := parseProposal(tc.in, tc.proto)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(p.encr) != tc.encr || !equal(p.dh, tc.dh) || !equal(p.esn, tc.esn) {
				t.Errorf("got %+v", p)
			}
		})
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func mustProposals(t *testing.T, proto message.ProtocolID, ss ...string) []proposal {
	t.Helper()
	var out []proposal
	for _, s := range ss {
		p, err := parseProposal(s, proto)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestChooseIKE(t *testing.T) {
	ours := mustProposals(t, message.ProtoIKE, "aes256gcm16-prfsha256-x25519-modp2048")
	for _, tc := range []struct {
		name   string
		theirs string
		ke     message.DHGroup
		ok     bool
		wantDH message.DHGroup
	}{
		{"peer KE group wins", "aes256gcm16-prfsha256-modp2048-x25519", message.MODP_2048, true, message.MODP_2048},
		{"our order when KE group unacceptable", "aes256gcm16-prfsha256-ecp256-x25519", message.ECP_256, true, message.CURVE_25519},
		{"only modp", "aes256gcm16-prfsha256-modp2048", message.MODP_2048, true, message.MODP_2048},
		{"no common DH", "aes256gcm16-prfsha256-ecp256", message.ECP_256, false, 0},
		{"no common cipher", "aes128gcm16-prfsha256-x25519", message.CURVE_25519, false, 0},
		{"no common PRF", "aes256gcm16-prfsha512-x25519", message.CURVE_25519, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			theirs := mustProposals(t, message.ProtoIKE, tc.theirs)
			sa := offer(theirs, nil, 0, true)
			sel, c, ok := choose(ours, sa.Proposals, tc.ke, true)
			if ok != tc.ok {
				t.Fatalf("ok %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if c.DH != tc.wantDH || c.KeyBits != 256 || c.PRF != message.PRF_HMAC_SHA2_256 {
				t.Errorf("chose %+v", c)
			}
			if len(sel.Transforms) != 3 {
				t.Errorf("selected proposal has %d transforms, want one per type", len(sel.Transforms))
			}
			if _, err := acceptsChosen(theirs, sel, message.ProtoIKE, true); err != nil {
				t.Errorf("the peer would reject our choice: %v", err)
			}
		})
	}
}

func TestChooseESP(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ours   string
		theirs string
		ke     message.DHGroup
		ok     bool
		dh     message.DHGroup
	}{
		{"plain", "aes256gcm16", "aes256gcm16", 0, true, 0},
		{"peer wants PFS we do not configure", "aes256gcm16", "aes256gcm16-modp2048", message.MODP_2048, true, message.MODP_2048},
		{"peer wants PFS in IKE_AUTH (no KE)", "aes256gcm16", "aes256gcm16-modp2048", 0, false, 0},
		{"peer wants an unsupported PFS group", "aes256gcm16", "aes256gcm16-ecp256", message.ECP_384, true, message.ECP_256},
		{"we want PFS, peer none", "aes256gcm16-modp2048", "aes256gcm16", 0, false, 0},
		{"both PFS", "aes256gcm16-x25519", "aes256gcm16-x25519", message.CURVE_25519, true, message.CURVE_25519},
		{"esn mismatch", "aes256gcm16-esn", "aes256gcm16-noesn", 0, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ours := mustProposals(t, message.ProtoESP, tc.ours)
			theirs := mustProposals(t, message.ProtoESP, tc.theirs)
			sa := offer(theirs, []byte{1, 2, 3, 4}, 0, len(theirs[0].dh) > 0)
			_, c, ok := choose(ours, sa.Proposals, tc.ke, tc.ke != 0)
			if ok != tc.ok || (ok && c.DH != tc.dh) {
				t.Fatalf("ok %v dh %v, want %v %v", ok, c.DH, tc.ok, tc.dh)
			}
		})
	}
}

func TestAcceptsChosenRejects(t *testing.T) {
	ours := mustProposals(t, message.ProtoIKE, "aes256gcm16-prfsha256-x25519")
	multi := offer(ours, nil, 0, true).Proposals[0]
	multi.Transforms = append(multi.Transforms, message.Transform{Type: message.TransformDH, ID: uint16(message.MODP_2048)})
	other := offer(mustProposals(t, message.ProtoIKE, "aes256gcm16-prfsha256-modp2048"), nil, 0, true).Proposals[0]
	for name, p := range map[string]message.Proposal{"two DH": multi, "not offered": other} {
		if _, err := acceptsChosen(ours, p, message.ProtoIKE, true); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func ts(s string, proto uint8, lo, hi uint16) TrafficSelector {
	t := PrefixTS(netip.MustParsePrefix(s), proto)
	t.StartPort, t.EndPort = lo, hi
	return t
}

func TestNarrow(t *testing.T) {
	for _, tc := range []struct {
		name          string
		theirs, ours  []TrafficSelector
		want          []TrafficSelector
		subsetOfTheir bool
	}{
		{"equal", []TrafficSelector{ts("10.0.0.1/32", 0, 0, 65535)}, []TrafficSelector{ts("10.0.0.1/32", 0, 0, 65535)}, []TrafficSelector{ts("10.0.0.1/32", 0, 0, 65535)}, true},
		{"narrow to host", []TrafficSelector{ts("10.0.0.0/24", 0, 0, 65535)}, []TrafficSelector{ts("10.0.0.7/32", 0, 0, 65535)}, []TrafficSelector{ts("10.0.0.7/32", 0, 0, 65535)}, true},
		{"narrow proto and port", []TrafficSelector{ts("10.0.0.1/32", 0, 0, 65535)}, []TrafficSelector{ts("10.0.0.1/32", 17, 6081, 6081)}, []TrafficSelector{ts("10.0.0.1/32", 17, 6081, 6081)}, true},
		{"proto mismatch", []TrafficSelector{ts("10.0.0.1/32", 6, 0, 65535)}, []TrafficSelector{ts("10.0.0.1/32", 17, 0, 65535)}, nil, false},
		{"disjoint", []TrafficSelector{ts("10.0.1.0/24", 0, 0, 65535)}, []TrafficSelector{ts("10.0.0.0/24", 0, 0, 65535)}, nil, false},
		{"family mismatch", []TrafficSelector{ts("fd00::1/128", 0, 0, 65535)}, []TrafficSelector{ts("10.0.0.1/32", 0, 0, 65535)}, nil, false},
		{"ipv6", []TrafficSelector{ts("fd00::/64", 0, 0, 65535)}, []TrafficSelector{ts("fd00::5/128", 17, 0, 65535)}, []TrafficSelector{ts("fd00::5/128", 17, 0, 65535)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := narrow(tc.theirs, tc.ours)
			if !equal(got, tc.want) {
				t.Fatalf("narrow = %v, want %v", got, tc.want)
			}
			if subsetOf(got, tc.theirs) != tc.subsetOfTheir {
				t.Errorf("subsetOf = %v", !tc.subsetOfTheir)
			}
			wire := fromWire(toWire(tc.theirs))
			if !equal(wire, tc.theirs) {
				t.Errorf("wire round trip %v != %v", wire, tc.theirs)
			}
		})
	}
	if subsetOf([]TrafficSelector{ts("10.0.0.0/24", 0, 0, 65535)}, []TrafficSelector{ts("10.0.0.1/32", 0, 0, 65535)}) {
		t.Error("a wider selector counts as subset")
	}
}

func TestLastAddr(t *testing.T) {
	for in, want := range map[string]string{"10.1.2.0/24": "10.1.2.255", "10.1.2.3/32": "10.1.2.3", "0.0.0.0/0": "255.255.255.255", "fd00::/120": "fd00::ff"} {
		if got := lastAddr(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("lastAddr(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestPeerCheck(t *testing.T) {
	good := func() Peer {
		return Peer{Name: "p", Local: netip.MustParseAddr("10.0.0.1"), Remote: netip.MustParseAddr("10.0.0.2"),
			Auth: Auth{PSK: []byte("x")}, LocalID: "a", RemoteID: "b", Children: []ChildConfig{{Name: "c"}}}
	}
	for _, tc := range []struct {
		name string
		mod  func(*Peer)
		want string
	}{
		{"ok", func(*Peer) {}, ""},
		{"no name", func(p *Peer) { p.Name = "" }, "no name"},
		{"no remote", func(p *Peer) { p.Remote = netip.Addr{} }, "remote address missing"},
		{"no auth", func(p *Peer) { p.Auth = Auth{} }, "either a PSK or a certificate"},
		{"empty id", func(p *Peer) { p.RemoteID = "@" }, "RemoteID: empty identity"},
		{"no child", func(p *Peer) { p.Children = nil }, "no Child SA"},
		{"bad proposal", func(p *Peer) { p.IKEProposals = []string{"3des"} }, "unsupported algorithm"},
		{"bad mode", func(p *Peer) { p.Children[0].Mode = 9 }, "invalid mode"},
		{"bad ts", func(p *Peer) {
			p.Children[0].LocalTS = []TrafficSelector{{Start: netip.MustParseAddr("10.0.0.2"), End: netip.MustParseAddr("10.0.0.1")}}
		}, "invalid traffic selector"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := good()
			tc.mod(&p)
			c, err := p.check()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.children[0].Mode != esp.Transport || len(c.children[0].LocalTS) != 1 || c.IKELifetime != DefaultIKELifetime {
					t.Errorf("defaults not filled: %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestFakeClock(t *testing.T) {
	c := clocktest.New(time.Unix(1000, 0))
	var got []int
	c.AfterFunc(2*time.Second, func() { got = append(got, 2) })
	c.AfterFunc(time.Second, func() {
		got = append(got, 1)
		c.AfterFunc(500*time.Millisecond, func() { got = append(got, 15) })
	})
	stopped := c.AfterFunc(1500*time.Millisecond, func() { got = append(got, -1) })
	if !stopped.Stop() || stopped.Stop() {
		t.Error("Stop results wrong")
	}
	c.Advance(1999 * time.Millisecond)
	if !equal(got, []int{1, 15}) {
		t.Fatalf("got %v", got)
	}
	c.Advance(time.Millisecond)
	if !equal(got, []int{1, 15, 2}) || c.Pending() != 0 {
		t.Fatalf("got %v pending %d", got, c.Pending())
	}
	if !c.Now().Equal(time.Unix(1002, 0)) {
		t.Errorf("now %v", c.Now())
	}
}

func TestParseIdentity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		typ  message.IDType
		data string
		text string
	}{
		{"ch1", message.ID_FQDN, "ch1", "ch1"},
		{"@ch1.example.org", message.ID_FQDN, "ch1.example.org", "ch1.example.org"},
		{"192.0.2.7", message.ID_IPV4_ADDR, "\xc0\x00\x02\x07", "192.0.2.7"},
		{"::ffff:192.0.2.7", message.ID_IPV4_ADDR, "\xc0\x00\x02\x07", "192.0.2.7"},
		{"2001:db8::1", message.ID_IPV6_ADDR, "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01", "2001:db8::1"},
	} {
		id, err := parseIdentity(tc.in)
		if err != nil || id.typ != tc.typ || string(id.data) != tc.data || id.text != tc.text {
			t.Errorf("parseIdentity(%q) = %+v, %v", tc.in, id, err)
		}
		if !id.matches(id.payload(true)) || id.matches(&message.ID{IDType: message.ID_KEY_ID, Data: id.data}) {
			t.Errorf("%q: matches wrong", tc.in)
		}
	}
	if _, err := parseIdentity(" @ "); err == nil {
		t.Error("empty identity accepted")
	}
}

func TestOfType(t *testing.T) {
	tr := func(typ message.TransformType, id uint16) message.Transform {
		return message.Transform{Type: typ, ID: id}
	}
	e1, e2 := tr(message.TransformENCR, 20), tr(message.TransformENCR, 19)
	p1, d1, d2 := tr(message.TransformPRF, 5), tr(message.TransformDH, 31), tr(message.TransformDH, 14)
	for _, tc := range []struct {
		name string
		ts   []message.Transform
		typ  message.TransformType
		want []message.Transform
	}{
		{"none", []message.Transform{e1, p1}, message.TransformDH, nil},
		{"empty", nil, message.TransformDH, nil},
		{"adjacent", []message.Transform{e1, e2, p1, d1, d2}, message.TransformDH, []message.Transform{d1, d2}},
		{"first", []message.Transform{e1, e2, p1, d1}, message.TransformENCR, []message.Transform{e1, e2}},
		{"interleaved", []message.Transform{d1, e1, p1, d2, e2}, message.TransformDH, []message.Transform{d1, d2}},
		{"interleaved encr", []message.Transform{d1, e1, p1, d2, e2}, message.TransformENCR, []message.Transform{e1, e2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ofType(tc.ts, tc.typ)
			if !slices.EqualFunc(got, tc.want, func(a, b message.Transform) bool { return a.Type == b.Type && a.ID == b.ID }) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// A peer may list transforms in any order (RFC 7296 §3.3.6): the choice
// must not depend on it.
func TestChooseInterleavedTransforms(t *testing.T) {
	ours := mustProposals(t, message.ProtoIKE, "aes256gcm16-prfsha256-x25519-modp2048")
	theirs := offer(mustProposals(t, message.ProtoIKE, "aes128gcm16-aes256gcm16-prfsha512-prfsha256-ecp256-modp2048"), nil, 0, true)
	ts := theirs.Proposals[0].Transforms
	// ENCR, ENCR, PRF, PRF, DH, DH -> DH, ENCR, PRF, DH, ENCR, PRF
	theirs.Proposals[0].Transforms = []message.Transform{ts[4], ts[0], ts[2], ts[5], ts[1], ts[3]}
	sel, c, ok := choose(ours, theirs.Proposals, message.MODP_2048, true)
	if !ok || c.DH != message.MODP_2048 || c.KeyBits != 256 || c.PRF != message.PRF_HMAC_SHA2_256 || len(sel.Transforms) != 3 {
		t.Fatalf("ok %v, chose %+v (%v)", ok, c, sel.Transforms)
	}
}

// The log helpers print what the esp types' String methods print.
func TestLogText(t *testing.T) {
	for _, s := range []esp.SPI{0, 1, 0x100, 0x3baa6229, 0xdeadbeef, 0xffffffff} {
		if got, want := spiText(s), s.String(); got != want {
			t.Errorf("spiText(%d) = %q, want %q", uint32(s), got, want)
		}
	}
	for _, e := range []esp.Encap{{}, {Type: esp.EncapUDP, SrcPort: 4500, DstPort: 4500}, {Type: esp.EncapUDP, SrcPort: 1, DstPort: 65535}} {
		if got, want := encapText(e), e.String(); got != want {
			t.Errorf("encapText(%+v) = %q, want %q", e, got, want)
		}
	}
}
