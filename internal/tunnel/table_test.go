// Tests for Table: selection, validation, the global PKI rule, versions,
// removal, and the events (log lines) that go with them.

package tunnel

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
)

// fakeCerts is an in-memory CertReader and KeyMatcher.
type fakeCerts struct {
	certs   map[string]CertInfo
	keyErrs map[string]error // by key path
	reads   int
}

func (f *fakeCerts) ReadCert(p string) (CertInfo, error) {
	f.reads++
	c, ok := f.certs[p]
	if !ok {
		return CertInfo{}, fmt.Errorf("read certificate %s: open %s: no such file or directory; check the path and that ovnsecd may read it", p, p)
	}
	return c, nil
}

func (f *fakeCerts) KeyMatches(_, key string) error { return f.keyErrs[key] }

// goodCert is a valid v3 certificate whose CN is repeated as SAN DNS.
func goodCert(cn string) CertInfo {
	return CertInfo{
		CN: cn, DNSNames: []string{cn}, Version: 3,
		NotBefore: testNow.Add(-24 * time.Hour), NotAfter: testNow.Add(365 * 24 * time.Hour),
		Fingerprint: sha256.Sum256([]byte(cn)),
	}
}

// newFake returns a reader holding cert.pem (CN hv1), ca.pem (CN ca),
// peer.pem (CN hv2) and nocn.pem (no CN).
func newFake() *fakeCerts {
	return &fakeCerts{certs: map[string]CertInfo{
		"/pki/cert.pem": goodCert("hv1"),
		"/pki/ca.pem":   goodCert("ca"),
		"/pki/peer.pem": goodCert("hv2"),
		"/pki/nocn.pem": {Version: 3, NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(time.Hour)},
	}}
}

// kv builds a map from "k=v" strings.
func kv(pairs ...string) map[string]string {
	m := map[string]string{}
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		m[k] = v
	}
	return m
}

func iface(name, typ string, opts ...string) Interface {
	return Interface{UUID: "uuid-" + name, Name: name, Type: typ, Options: kv(opts...)}
}

var (
	pkiCA   = []string{"certificate=/pki/cert.pem", "private_key=/pki/privkey.pem", "ca_cert=/pki/ca.pem"}
	pkiSelf = []string{"certificate=/pki/cert.pem", "private_key=/pki/privkey.pem"}
)

func snap(seq uint64, other []string, ifs ...Interface) Snapshot {
	return Snapshot{Seq: seq, OtherConfig: kv(other...), Interfaces: ifs}
}

func msgs(events []Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Level.String() + " " + e.Msg
	}
	return out
}

// withoutDebug drops debug events (status changes) for tests that check
// the info/warn lines only.
func withoutDebug(events []Event) []string {
	var out []string
	for _, m := range msgs(events) {
		if !strings.HasPrefix(m, "DEBUG ") {
			out = append(out, m)
		}
	}
	return out
}

// With RequireIPsec every gre/geneve/vxlan interface is a tunnel; one
// without IPsec options is INVALID with a reason that names the flag, and
// it becomes CONFIGURED (version bumped) when its options arrive.
func TestRequireIPsec(t *testing.T) {
	tb := NewTable(newFake(), clocktest.New(testNow))
	tb.RequireIPsec(true)
	ts, events := tb.Update(snap(1, nil,
		iface("ovn-b-0", "geneve", "remote_ip=10.0.0.2", "csum=true", "key=flow"),
		iface("plain", "internal"),
		iface("v", "vxlan", "remote_ip=10.0.0.3", "psk=x"),
	))
	if len(ts) != 2 {
		t.Fatalf("%d tunnels, want 2 (geneve without options, vxlan with psk): %+v", len(ts), ts)
	}
	g, _ := find(ts, "ovn-b-0")
	if g.State != StateInvalid || !strings.Contains(g.Reason, "--require-ipsec") || !strings.Contains(g.Reason, "dropped") {
		t.Errorf("tunnel without IPsec options: state %s reason %q", g.State, g.Reason)
	}
	if v, _ := find(ts, "v"); v.State != StateConfigured {
		t.Errorf("psk tunnel: state %s reason %q", v.State, v.Reason)
	}
	if !slices.ContainsFunc(events, func(e Event) bool { return strings.Contains(e.Msg, "ovn-b-0 contains invalid configuration") }) {
		t.Errorf("no invalid-configuration event: %+v", events)
	}
	ts, _ = tb.Update(snap(2, nil, iface("ovn-b-0", "geneve", "remote_ip=10.0.0.2", "csum=true", "key=flow", "psk=s")))
	g2, _ := find(ts, "ovn-b-0")
	if g2.State != StateConfigured || g2.Version <= g.Version {
		t.Errorf("after psk appeared: state %s version %d (was %d)", g2.State, g2.Version, g.Version)
	}
	// A missing remote_ip keeps upstream's reason.
	ts, _ = tb.Update(snap(3, nil, iface("ovn-b-0", "geneve")))
	if g3, _ := find(ts, "ovn-b-0"); g3.State != StateInvalid || g3.Reason != reasonRemoteIPNotSet {
		t.Errorf("without remote_ip: state %s reason %q", g3.State, g3.Reason)
	}
	// Off (the default): the geneve port without options is no tunnel.
	off := NewTable(newFake(), clocktest.New(testNow))
	if ts, _ := off.Update(snap(1, nil, iface("ovn-b-0", "geneve", "remote_ip=10.0.0.2"))); len(ts) != 0 {
		t.Errorf("without RequireIPsec: %d tunnels, want 0", len(ts))
	}
}

func find(ts []Tunnel, name string) (Tunnel, bool) {
	i := slices.IndexFunc(ts, func(t Tunnel) bool { return t.Name == name })
	if i < 0 {
		return Tunnel{}, false
	}
	return ts[i], true
}

func TestSelection(t *testing.T) {
	tests := []struct {
		iface Interface
		want  bool
	}{
		{iface("a", "geneve", "remote_ip=10.0.0.2", "psk=x"), true},
		{iface("b", "vxlan", "remote_ip=10.0.0.2", "remote_name=hv2"), true},
		{iface("c", "gre", "remote_ip=10.0.0.2", "remote_cert=/pki/peer.pem"), true},
		{iface("d", "geneve", "remote_ip=10.0.0.2", "psk="), true}, // key presence is enough
		{iface("e", "geneve", "remote_ip=10.0.0.2"), false},
		{iface("f", "geneve", "remote_ip=10.0.0.2", "ipsec_encapsulation=yes"), false},
		{iface("g", "ip6gre", "remote_ip=10.0.0.2", "psk=x"), false},
		{iface("h", "stt", "remote_ip=10.0.0.2", "psk=x"), false},
		{iface("i", "gre64", "remote_ip=10.0.0.2", "psk=x"), false},
		{iface("j", "", "psk=x"), false},
		{iface("k", "GENEVE", "remote_ip=10.0.0.2", "psk=x"), false},
	}
	for _, tc := range tests {
		t.Run(tc.iface.Name, func(t *testing.T) {
			if got := selected(tc.iface); got != tc.want {
				t.Errorf("selected(%s %v) = %v, want %v", tc.iface.Type, tc.iface.Options, got, tc.want)
			}
			tb := NewTable(newFake(), clocktest.New(testNow))
			ts, _ := tb.Update(snap(1, nil, tc.iface))
			if got := len(ts) == 1; got != tc.want {
				t.Errorf("Update returned %d tunnels, want selected=%v", len(ts), tc.want)
			}
		})
	}
}

// TestValidateOrder covers every rule of validate on computed configurations,
// including the combinations the global PKI rule makes unreachable through
// Update (certificate without private_key).
func TestValidateOrder(t *testing.T) {
	base := fields{typ: TypeGeneve, remoteIP: "10.0.0.2", localIP: DefaultRoute}
	with := func(f func(*fields)) conf { c := conf{fields: base}; f(&c.fields); return c }
	tests := []struct {
		name   string
		c      conf
		state  State
		reason string
	}{
		{"1 remote_ip unset", with(func(f *fields) { f.remoteIP = ""; f.psk = "x" }), StateInvalid, ": 'remote_ip' is not set"},
		{"1 before PSK conflict", with(func(f *fields) { f.remoteIP = ""; f.psk = "x"; f.certificate = "/c" }), StateInvalid, ": 'remote_ip' is not set"},
		{"2 psk+certificate", with(func(f *fields) { f.psk = "x"; f.certificate = "/c" }), StateInvalid, reasonPSKExclusive},
		{"2 psk+private_key", with(func(f *fields) { f.psk = "x"; f.privateKey = "/k" }), StateInvalid, reasonPSKExclusive},
		{"2 psk+ca_cert", with(func(f *fields) { f.psk = "x"; f.caCert = "/ca" }), StateInvalid, reasonPSKExclusive},
		{"2 psk+remote_cert", with(func(f *fields) { f.psk = "x"; f.remoteCert = "/p" }), StateInvalid, reasonPSKExclusive},
		{"2 psk+remote_name", with(func(f *fields) { f.psk = "x"; f.remoteName = "hv2" }), StateInvalid, reasonPSKExclusive},
		{"3 no certificate", with(func(f *fields) { f.remoteName = "hv2"; f.privateKey = "/k"; f.caCert = "/ca" }), StateInvalid, reasonNoCertificate},
		{"4 no private_key", with(func(f *fields) { f.remoteName = "hv2"; f.certificate = "/c"; f.caCert = "/ca" }), StateInvalid, reasonNoPrivateKey},
		{"5 neither remote_cert nor ca_cert", with(func(f *fields) { f.remoteName = "hv2"; f.certificate = "/c"; f.privateKey = "/k" }), StateInvalid, reasonNoPeerAuth},
		{"6 nothing", with(func(f *fields) {}), StateInvalid, reasonNoAuthMethod},
		{"6 remote_cert without CN", with(func(f *fields) { f.remoteCert = "/p"; f.certificate = "/c"; f.privateKey = "/k" }), StateInvalid, reasonNoAuthMethod},
		{"psk ok", with(func(f *fields) { f.psk = "x" }), StateConfigured, ""},
		{"ca-signed ok", with(func(f *fields) { f.remoteName = "hv2"; f.certificate = "/c"; f.privateKey = "/k"; f.caCert = "/ca" }), StateConfigured, ""},
		{"self-signed ok", with(func(f *fields) { f.remoteName = "hv2"; f.remoteCert = "/p"; f.certificate = "/c"; f.privateKey = "/k" }), StateConfigured, ""},
		{"remote_cert with ca_cert ok", with(func(f *fields) {
			f.remoteName = "hv2"
			f.remoteCert = "/p"
			f.certificate = "/c"
			f.privateKey = "/k"
			f.caCert = "/ca"
		}), StateConfigured, ""},
		{"ovnsec: remote_ip flow", with(func(f *fields) { f.psk = "x"; f.remoteIP = "flow" }), StateInvalid, ": 'remote_ip' is not a valid IP address (flow)"},
		{"ovnsec: remote_ip host name", with(func(f *fields) { f.psk = "x"; f.remoteIP = "hv2.example" }), StateInvalid, ": 'remote_ip' is not a valid IP address (hv2.example)"},
		{"ovnsec: upstream reason first", with(func(f *fields) { f.remoteIP = "flow" }), StateInvalid, reasonNoAuthMethod},
		{"ovnsec: local_ip flow", with(func(f *fields) { f.psk = "x"; f.localIP = "flow" }), StateInvalid, ": 'local_ip' is not a valid IP address (flow)"},
		{"ipv6 ok", with(func(f *fields) { f.psk = "x"; f.remoteIP = "fd00::2"; f.localIP = "fd00::1" }), StateConfigured, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			state, reason := validate(tc.c)
			if state != tc.state || reason != tc.reason {
				t.Errorf("validate = %s %q, want %s %q", state, reason, tc.state, tc.reason)
			}
		})
	}
}

// TestValidationThroughUpdate runs the reachable rules end to end, checking
// the state, the reason and the exact warning line.
func TestValidationThroughUpdate(t *testing.T) {
	tests := []struct {
		name   string
		global []string
		iface  Interface
		reason string // "" means CONFIGURED
		auth   AuthMethod
	}{
		{"remote_ip missing", nil, iface("t", "geneve", "psk=x"), reasonRemoteIPNotSet, AuthPSK},
		{"remote_ip empty", nil, iface("t", "geneve", "remote_ip=", "psk=x"), reasonRemoteIPNotSet, AuthPSK},
		{"psk with global PKI", pkiCA, iface("t", "geneve", "remote_ip=10.0.0.2", "psk=x"), reasonPSKExclusive, AuthPSK},
		{"psk with remote_name", nil, iface("t", "geneve", "remote_ip=10.0.0.2", "psk=x", "remote_name=hv2"), reasonPSKExclusive, AuthPSK},
		{"psk with remote_cert", nil, iface("t", "geneve", "remote_ip=10.0.0.2", "psk=x", "remote_cert=/pki/peer.pem"), reasonPSKExclusive, AuthPSK},
		{"psk with ignored ca-only global", []string{"ca_cert=/pki/ca.pem"}, iface("t", "geneve", "remote_ip=10.0.0.2", "psk=x"), "", AuthPSK},
		{"remote_name without PKI", nil, iface("t", "geneve", "remote_ip=10.0.0.2", "remote_name=hv2"), reasonNoCertificate, AuthCASigned},
		{"remote_name without ca_cert", pkiSelf, iface("t", "geneve", "remote_ip=10.0.0.2", "remote_name=hv2"), reasonNoPeerAuth, AuthCASigned},
		{"empty psk", nil, iface("t", "geneve", "remote_ip=10.0.0.2", "psk="), reasonNoAuthMethod, AuthNone},
		{"empty remote_name", pkiCA, iface("t", "geneve", "remote_ip=10.0.0.2", "remote_name="), reasonNoAuthMethod, AuthNone},
		{"unreadable remote_cert", pkiSelf, iface("t", "geneve", "remote_ip=10.0.0.2", "remote_cert=/pki/missing.pem", "remote_name=hv2"), reasonNoAuthMethod, AuthNone},
		{"remote_cert without CN", pkiSelf, iface("t", "geneve", "remote_ip=10.0.0.2", "remote_cert=/pki/nocn.pem"), reasonNoAuthMethod, AuthNone},
		{"ca-signed", pkiCA, iface("t", "geneve", "remote_ip=10.0.0.2", "remote_name=hv2"), "", AuthCASigned},
		{"self-signed", pkiSelf, iface("t", "vxlan", "remote_ip=10.0.0.2", "remote_cert=/pki/peer.pem"), "", AuthSelfSigned},
		{"self-signed wins over ca", pkiCA, iface("t", "gre", "remote_ip=10.0.0.2", "remote_cert=/pki/peer.pem"), "", AuthSelfSigned},
		{"remote_ip flow", nil, iface("t", "geneve", "remote_ip=flow", "psk=x"), ": 'remote_ip' is not a valid IP address (flow)", AuthPSK},
		{"remote_ip not an IP", nil, iface("t", "geneve", "remote_ip=10.0.0.300", "psk=x"), ": 'remote_ip' is not a valid IP address (10.0.0.300)", AuthPSK},
		{"local_ip flow", pkiCA, iface("t", "geneve", "remote_ip=10.0.0.2", "local_ip=flow", "remote_name=hv2"), ": 'local_ip' is not a valid IP address (flow)", AuthCASigned},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := NewTable(newFake(), clocktest.New(testNow))
			ts, events := tb.Update(snap(1, tc.global, tc.iface))
			if len(ts) != 1 {
				t.Fatalf("got %d tunnels, want 1", len(ts))
			}
			got := ts[0]
			wantState := StateConfigured
			if tc.reason != "" {
				wantState = StateInvalid
			}
			if got.State != wantState || got.Reason != tc.reason || got.Version != 1 {
				t.Errorf("tunnel = v%d %s %q, want v1 %s %q", got.Version, got.State, got.Reason, wantState, tc.reason)
			}
			if got.Auth != tc.auth {
				t.Errorf("Auth = %q, want %q", got.Auth, tc.auth)
			}
			warnLine := "WARN t contains invalid configuration" + tc.reason
			if has := slices.Contains(msgs(events), warnLine); has != (tc.reason != "") {
				t.Errorf("events %q: contains %q = %v", msgs(events), warnLine, has)
			}
		})
	}
}

func TestRemoteCertCNReplacesRemoteName(t *testing.T) {
	tb := NewTable(newFake(), clocktest.New(testNow))
	ts, events := tb.Update(snap(1, pkiSelf,
		iface("ok", "geneve", "remote_ip=10.0.0.2", "remote_cert=/pki/peer.pem", "remote_name=other"),
		iface("nocn", "geneve", "remote_ip=10.0.0.3", "remote_cert=/pki/nocn.pem", "remote_name=other"),
		iface("bad", "geneve", "remote_ip=10.0.0.4", "remote_cert=/pki/missing.pem", "remote_name=other")))
	want := map[string]string{"ok": "hv2", "nocn": "", "bad": ""}
	for name, rn := range want {
		tun, _ := find(ts, name)
		if tun.RemoteName != rn {
			t.Errorf("%s: RemoteName = %q, want %q", name, tun.RemoteName, rn)
		}
	}
	ok, _ := find(ts, "ok")
	if ok.LocalName != "hv1" || ok.Certificate != "/pki/cert.pem" || ok.PrivateKey != "/pki/privkey.pem" || ok.RemoteCert != "/pki/peer.pem" {
		t.Errorf("ok tunnel = %+v", ok)
	}
	all := msgs(events)
	for _, w := range []string{
		"WARN No CN in the certificate subject (/pki/nocn.pem).",
		"WARN read certificate /pki/missing.pem: open /pki/missing.pem: no such file or directory; check the path and that ovnsecd may read it",
	} {
		if !slices.Contains(all, w) {
			t.Errorf("events %q lack %q", all, w)
		}
	}
}

func TestGlobalPKIRule(t *testing.T) {
	accepted := []string{"certificate=/pki/cert.pem", "private_key=/pki/privkey.pem", "ca_cert=/pki/ca.pem", "ipsec_skb_mark=0/1"}
	tests := []struct {
		name     string
		global   []string
		accepted bool
		warns    []string // warnings before the generic one
	}{
		{"none", nil, true, nil},
		{"skb mark only", []string{"ipsec_skb_mark=1/1"}, true, nil},
		{"cert and key", pkiSelf, true, nil},
		{"cert key ca", pkiCA, true, nil},
		{"unreadable ca is accepted", []string{"certificate=/pki/cert.pem", "private_key=/k", "ca_cert=/pki/missing.pem"}, true,
			[]string{"ca_cert unusable: read certificate /pki/missing.pem: open /pki/missing.pem: no such file or directory; check the path and that ovnsecd may read it"}},
		{"ca only", []string{"ca_cert=/pki/ca.pem", "ipsec_skb_mark=1/1"}, false, nil},
		{"cert only", []string{"certificate=/pki/cert.pem"}, false, nil},
		{"key only", []string{"private_key=/k"}, false, nil},
		{"cert and ca", []string{"certificate=/pki/cert.pem", "ca_cert=/pki/ca.pem"}, false, nil},
		{"empty cert value", []string{"certificate=", "private_key=/k"}, false, nil},
		{"cert without CN", []string{"certificate=/pki/nocn.pem", "private_key=/k"}, false, []string{"No CN in the certificate subject (/pki/nocn.pem)."}},
		{"unreadable cert", []string{"certificate=/pki/missing.pem", "private_key=/k"}, false, []string{"read certificate /pki/missing.pem: open /pki/missing.pem: no such file or directory; check the path and that ovnsecd may read it"}},
	}
	tun := iface("t", "geneve", "remote_ip=10.0.0.2", "remote_name=hv2")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := NewTable(newFake(), clocktest.New(testNow))
			ts, _ := tb.Update(snap(1, accepted, tun))
			if ts[0].State != StateConfigured || ts[0].SKBMark != "0/1" {
				t.Fatalf("setup: %+v", ts[0])
			}
			ts, events := tb.Update(snap(2, tc.global, tun))
			var wantWarn []string
			for _, w := range tc.warns {
				wantWarn = append(wantWarn, "WARN "+w)
			}
			if !tc.accepted {
				wantWarn = append(wantWarn, "WARN "+msgGlobalInvalid)
			}
			var gotWarn []string
			for _, e := range events {
				if e.Tunnel == "" {
					gotWarn = append(gotWarn, e.Level.String()+" "+e.Msg)
				}
			}
			if !slices.Equal(gotWarn, wantWarn) {
				t.Errorf("global events = %q, want %q", gotWarn, wantWarn)
			}
			g := kv(tc.global...)
			if !tc.accepted {
				// Previous PKI and skb mark stay; the tunnel is unchanged.
				g = kv(accepted...)
			}
			got := ts[0]
			if got.Certificate != g["certificate"] || got.PrivateKey != g["private_key"] || got.CACert != g["ca_cert"] || got.SKBMark != g["ipsec_skb_mark"] {
				t.Errorf("tunnel PKI = %q %q %q mark %q, want %q %q %q mark %q", got.Certificate, got.PrivateKey, got.CACert, got.SKBMark,
					g["certificate"], g["private_key"], g["ca_cert"], g["ipsec_skb_mark"])
			}
			wantVersion := 2
			if !tc.accepted {
				wantVersion = 1
			}
			if got.Version != wantVersion {
				t.Errorf("Version = %d, want %d", got.Version, wantVersion)
			}
		})
	}
}

func TestGlobalWarningOncePerSnapshot(t *testing.T) {
	tb := NewTable(newFake(), clocktest.New(testNow))
	bad := snap(7, []string{"ca_cert=/pki/ca.pem"})
	_, ev1 := tb.Update(bad)
	_, ev2 := tb.Update(bad) // periodic re-check: same Seq
	bad.Seq = 8
	_, ev3 := tb.Update(bad) // a new database change
	want := []string{"WARN " + msgGlobalInvalid}
	if !slices.Equal(msgs(ev1), want) || len(ev2) != 0 || !slices.Equal(msgs(ev3), want) {
		t.Errorf("events = %q / %q / %q, want %q / none / %q", msgs(ev1), msgs(ev2), msgs(ev3), want, want)
	}
}

// step is one snapshot in a version sequence and what must follow.
type step struct {
	name    string
	global  []string
	ifaces  []Interface
	edit    func(*fakeCerts) // changes to certificate files before the step
	want    map[string]int   // tunnel -> version (absent: not returned)
	removed []string         // tunnels returned as REMOVED
	events  []string         // info/warn events, exact and in order
}

func runSteps(t *testing.T, steps []step) {
	t.Helper()
	certs := newFake()
	tb := NewTable(certs, clocktest.New(testNow))
	for i, s := range steps {
		if s.edit != nil {
			s.edit(certs)
		}
		ts, events := tb.Update(snap(uint64(i+1), s.global, s.ifaces...))
		got := map[string]int{}
		var removed []string
		for _, tun := range ts {
			if tun.State == StateRemoved {
				removed = append(removed, tun.Name)
				continue
			}
			got[tun.Name] = tun.Version
		}
		want := s.want
		if want == nil {
			want = map[string]int{}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || !slices.Equal(removed, s.removed) {
			t.Errorf("step %d (%s): versions %v removed %v, want %v removed %v", i, s.name, got, removed, want, s.removed)
		}
		if ev := withoutDebug(events); !slices.Equal(ev, s.events) {
			t.Errorf("step %d (%s): events\n got %q\nwant %q", i, s.name, ev, s.events)
		}
	}
}

func ofport(n int) *int  { return &n }
func fault(b bool) *bool { return &b }
func withStatus(i Interface, port *int, f *bool) Interface {
	i.OFPort, i.CFMFault = port, f
	return i
}

func TestVersions(t *testing.T) {
	a := iface("a", "geneve", "remote_ip=10.0.0.2", "local_ip=10.0.0.1", "remote_name=hv2")
	b := iface("b", "vxlan", "remote_ip=10.0.0.3", "remote_name=hv3")
	a2 := iface("a", "geneve", "remote_ip=10.0.0.2", "local_ip=10.0.0.1", "remote_name=hv2", "ipsec_encapsulation=yes")
	a3 := iface("a", "geneve", "remote_ip=10.0.0.2", "local_ip=10.0.0.1", "remote_name=hv2", "ipsec_encapsulation=yes", "dst_port=7000")
	a4 := iface("a", "geneve", "remote_ip=10.0.0.2", "local_ip=10.0.0.1", "remote_name=hv2", "ipsec_encapsulation=yes", "dst_port=7000", "key=flow", "csum=true")
	mark := append(slices.Clone(pkiCA), "ipsec_skb_mark=0x1/0x1")
	runSteps(t, []step{
		{name: "appear", global: pkiCA, ifaces: []Interface{a, b}, want: map[string]int{"a": 1, "b": 1},
			events: []string{"INFO Tunnel a appeared in OVSDB", "INFO Tunnel b appeared in OVSDB"}},
		{name: "unchanged", global: pkiCA, ifaces: []Interface{a, b}, want: map[string]int{"a": 1, "b": 1}},
		{name: "ofport and cfm only", global: pkiCA, ifaces: []Interface{withStatus(a, ofport(5), fault(false)), withStatus(b, ofport(-1), fault(true))},
			want: map[string]int{"a": 1, "b": 1}},
		{name: "custom option on a", global: pkiCA, ifaces: []Interface{a2, b}, want: map[string]int{"a": 2, "b": 1},
			events: []string{"INFO Tunnel's 'a' configuration changed in OVSDB to 2"}},
		{name: "dst_port on a", global: pkiCA, ifaces: []Interface{a3, b}, want: map[string]int{"a": 3, "b": 1},
			events: []string{"INFO Tunnel's 'a' configuration changed in OVSDB to 3"}},
		{name: "options ipsec ignores", global: pkiCA, ifaces: []Interface{a4, b}, want: map[string]int{"a": 3, "b": 1}},
		{name: "global skb mark bumps all", global: mark, ifaces: []Interface{a4, b}, want: map[string]int{"a": 4, "b": 2},
			events: []string{"INFO Tunnel's 'a' configuration changed in OVSDB to 4", "INFO Tunnel's 'b' configuration changed in OVSDB to 2"}},
		{name: "rejected global bumps none", global: []string{"ca_cert=/pki/ca.pem"}, ifaces: []Interface{a4, b}, want: map[string]int{"a": 4, "b": 2},
			events: []string{"WARN " + msgGlobalInvalid}},
		// A certificate renewed at the same path is not a new configuration:
		// the backends take it from internal/creds without tearing the
		// tunnels down (a new CN would change local_name, and bump).
		{name: "local cert replaced at same path", global: mark, ifaces: []Interface{a4, b},
			edit: func(f *fakeCerts) { c := goodCert("hv1"); c.Fingerprint[0] ^= 1; f.certs["/pki/cert.pem"] = c },
			want: map[string]int{"a": 4, "b": 2}},
		{name: "type change", global: mark, ifaces: []Interface{a4, iface("b", "gre", "remote_ip=10.0.0.3", "remote_name=hv3")}, want: map[string]int{"a": 4, "b": 3},
			events: []string{"INFO Tunnel's 'b' configuration changed in OVSDB to 3"}},
		{name: "b becomes invalid", global: mark, ifaces: []Interface{a4, iface("b", "gre", "remote_name=hv3")}, want: map[string]int{"a": 4, "b": 4},
			events: []string{"WARN b contains invalid configuration: 'remote_ip' is not set", "INFO Tunnel's 'b' configuration changed in OVSDB to 4"}},
		{name: "invalid b stays, version stable", global: mark, ifaces: []Interface{a4, iface("b", "gre", "remote_name=hv3")}, want: map[string]int{"a": 4, "b": 4}},
		{name: "b valid again", global: mark, ifaces: []Interface{a4, iface("b", "gre", "remote_ip=10.0.0.3", "remote_name=hv3")}, want: map[string]int{"a": 4, "b": 5},
			events: []string{"INFO Tunnel's 'b' configuration changed in OVSDB to 5"}},
	})
}

func TestRemoval(t *testing.T) {
	a := iface("a", "geneve", "remote_ip=10.0.0.2", "psk=x")
	b := iface("b", "geneve", "remote_ip=10.0.0.3", "psk=y")
	runSteps(t, []step{
		{name: "appear", ifaces: []Interface{a, b}, want: map[string]int{"a": 1, "b": 1},
			events: []string{"INFO Tunnel a appeared in OVSDB", "INFO Tunnel b appeared in OVSDB"}},
		{name: "a row deleted", ifaces: []Interface{b}, want: map[string]int{"b": 1}, removed: []string{"a"},
			events: []string{"INFO Tunnel a disappeared from OVSDB"}},
		{name: "a forgotten", ifaces: []Interface{b}, want: map[string]int{"b": 1}},
		{name: "b stops qualifying (no psk key)", ifaces: []Interface{iface("b", "geneve", "remote_ip=10.0.0.3")}, removed: []string{"b"},
			events: []string{"INFO Tunnel b disappeared from OVSDB"}},
		{name: "a reappears at version 1", ifaces: []Interface{a}, want: map[string]int{"a": 1},
			events: []string{"INFO Tunnel a appeared in OVSDB"}},
		{name: "a becomes ip6gre", ifaces: []Interface{iface("a", "ip6gre", "remote_ip=fd00::2", "psk=x")}, removed: []string{"a"},
			events: []string{"INFO Tunnel a disappeared from OVSDB"}},
	})

	// The REMOVED tunnel carries a bumped version and its last configuration.
	tb := NewTable(newFake(), clocktest.New(testNow))
	tb.Update(snap(1, nil, a))
	ts, _ := tb.Update(snap(2, nil))
	if len(ts) != 1 || ts[0].State != StateRemoved || ts[0].Version != 2 || ts[0].RemoteIP != "10.0.0.2" || ts[0].Reason != "" {
		t.Errorf("removed tunnel = %+v", ts)
	}
}

func TestInvalidEventsOnAppear(t *testing.T) {
	tb := NewTable(newFake(), clocktest.New(testNow))
	_, events := tb.Update(snap(1, pkiSelf, iface("t", "geneve", "remote_ip=10.0.0.2", "remote_cert=/pki/nocn.pem")))
	want := []string{
		"INFO Tunnel t appeared in OVSDB",
		"WARN No CN in the certificate subject (/pki/nocn.pem).",
		"WARN t contains invalid configuration: must choose a authentication method",
		"DEBUG t changed status from {} to {'cfm_state': 'Disabled', 'ofport': 'Not assigned'}",
		"WARN Tunnel t: certificate /pki/nocn.pem has no CN in its subject; the peer name is taken from the CN",
	}
	if got := msgs(events); !slices.Equal(got, want) {
		t.Errorf("events\n got %q\nwant %q", got, want)
	}
	for _, e := range events[1:] {
		if e.Tunnel != "t" {
			t.Errorf("event %q: Tunnel = %q, want t", e.Msg, e.Tunnel)
		}
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		port      *int
		fault     *bool
		wantPort  string
		wantCFM   string
		wantDebug string
	}{
		{nil, nil, "Not assigned", "Disabled", "{'cfm_state': 'Disabled', 'ofport': 'Not assigned'}"},
		{ofport(-1), fault(true), "Not assigned", "Down", "{'cfm_state': 'Down', 'ofport': 'Not assigned'}"},
		{ofport(0), fault(false), "0", "Up", "{'cfm_state': 'Up', 'ofport': 0}"},
		{ofport(12), nil, "12", "Disabled", "{'cfm_state': 'Disabled', 'ofport': 12}"},
	}
	for _, tc := range tests {
		tb := NewTable(newFake(), clocktest.New(testNow))
		ts, _ := tb.Update(snap(1, nil, iface("t", "geneve", "remote_ip=10.0.0.2", "psk=x")))
		if ts[0].OFPort != "Not assigned" || ts[0].CFMState != "Disabled" {
			t.Fatalf("initial status %q %q", ts[0].OFPort, ts[0].CFMState)
		}
		ts, events := tb.Update(snap(2, nil, withStatus(iface("t", "geneve", "remote_ip=10.0.0.2", "psk=x"), tc.port, tc.fault)))
		if ts[0].OFPort != tc.wantPort || ts[0].CFMState != tc.wantCFM || ts[0].Version != 1 {
			t.Errorf("status = v%d %q %q, want v1 %q %q", ts[0].Version, ts[0].OFPort, ts[0].CFMState, tc.wantPort, tc.wantCFM)
		}
		wantEv := []string{"DEBUG t changed status from {'cfm_state': 'Disabled', 'ofport': 'Not assigned'} to " + tc.wantDebug}
		if tc.wantDebug == "{'cfm_state': 'Disabled', 'ofport': 'Not assigned'}" {
			wantEv = nil
		}
		if got := msgs(events); !slices.Equal(got, wantEv) {
			t.Errorf("events %q, want %q", got, wantEv)
		}
	}
}

func TestAddressFamily(t *testing.T) {
	tests := []struct {
		remote, local string // local "-" = unset
		want          string
		wantLocal     string
	}{
		{"10.0.0.2", "-", "IPv4", DefaultRoute},
		{"10.0.0.2", "", "IPv4", DefaultRoute},
		{"10.0.0.2", "10.0.0.1", "IPv4", "10.0.0.1"},
		{"fd00::2", "-", "IPv6", DefaultRoute},
		{"fd00::2", "fd00::1", "IPv6", "fd00::1"},
		{"fe80::2%eth0", "-", "IPv6", DefaultRoute},
		{"::ffff:10.0.0.2", "-", "IPv6", DefaultRoute},
		{"10.0.0.2", "fd00::1", "None", "fd00::1"},
		{"fd00::2", "10.0.0.1", "None", "10.0.0.1"},
		{"flow", "-", "None", DefaultRoute},
		{"flow", "10.0.0.1", "None", "10.0.0.1"},
		{"10.0.0.2", "flow", "IPv4", "flow"},
		{"", "-", "None", DefaultRoute},
	}
	for _, tc := range tests {
		opts := []string{"remote_ip=" + tc.remote, "psk=x"}
		if tc.local != "-" {
			opts = append(opts, "local_ip="+tc.local)
		}
		tb := NewTable(newFake(), clocktest.New(testNow))
		ts, _ := tb.Update(snap(1, nil, iface("t", "geneve", opts...)))
		if ts[0].AddressFamily != tc.want || ts[0].LocalIP != tc.wantLocal {
			t.Errorf("remote %q local %q: family %q local %q, want %q %q", tc.remote, tc.local, ts[0].AddressFamily, ts[0].LocalIP, tc.want, tc.wantLocal)
		}
		mixed := tc.want == "None" && family(tc.remote) != "" && family(tc.local) != ""
		hasProblem := slices.ContainsFunc(ts[0].Problems, func(p string) bool { return strings.Contains(p, "different address families") })
		if mixed != hasProblem {
			t.Errorf("remote %q local %q: problems %q, want mixed-family problem %v", tc.remote, tc.local, ts[0].Problems, mixed)
		}
	}
}

func TestDstPort(t *testing.T) {
	tests := []struct {
		typ     string
		port    string // "-" = unset
		want    uint16
		problem bool
	}{
		{"geneve", "-", 6081, false},
		{"vxlan", "-", 4789, false},
		{"gre", "-", 0, false},
		{"geneve", "7000", 7000, false},
		{"vxlan", "8472", 8472, false},
		{"gre", "7000", 0, false},
		{"geneve", "07000", 7000, false}, // ovs-vswitchd agrees: no problem
		// What ovs-vswitchd makes of values that are not plain port
		// numbers (checked against the real one in
		// dstport_vswitchd_test.go): the port ovnsec must protect.
		{"geneve", "6082 ", 6082, true},
		{"geneve", " 6082", 6082, true},
		{"geneve", "+6082", 6082, true},
		{"geneve", "6082/udp", 6082, true},
		{"geneve", "71618", 6082, true},
		{"geneve", "-1", 65535, true},
		{"geneve", "99999999999999999999", 65535, true},
		{"geneve", "4294973378", 6082, true},
		{"geneve", "0", 0, true},
		{"geneve", "0x10", 0, true},
		{"geneve", "-99999999999999999999", 0, true},
		{"vxlan", "abc", 0, true},
		{"vxlan", "", 0, true},
	}
	for _, tc := range tests {
		opts := []string{"remote_ip=10.0.0.2", "psk=x"}
		if tc.port != "-" {
			opts = append(opts, "dst_port="+tc.port)
		}
		tb := NewTable(newFake(), clocktest.New(testNow))
		ts, _ := tb.Update(snap(1, nil, iface("t", tc.typ, opts...)))
		if ts[0].DstPort != tc.want || (len(ts[0].Problems) > 0) != tc.problem {
			t.Errorf("%s dst_port=%q: DstPort %d problems %q, want %d problem=%v", tc.typ, tc.port, ts[0].DstPort, ts[0].Problems, tc.want, tc.problem)
		}
		if ts[0].State != StateConfigured {
			t.Errorf("%s dst_port=%q: state %s %s", tc.typ, tc.port, ts[0].State, ts[0].Reason)
		}
	}
}

func TestCustomOptions(t *testing.T) {
	tb := NewTable(newFake(), clocktest.New(testNow))
	ts, _ := tb.Update(snap(1, pkiCA, iface("t", "geneve", "remote_ip=10.0.0.2", "remote_name=hv2",
		"ipsec_salifetime=8h", "ipsec_encapsulation=yes", "ipsec_dpd-delay=30s", "ipsec_=empty", "key=flow", "IPSEC_x=no", "xipsec_y=no")))
	want := []Option{{"", "empty"}, {"dpd-delay", "30s"}, {"encapsulation", "yes"}, {"salifetime", "8h"}}
	if !slices.Equal(ts[0].CustomOptions, want) {
		t.Errorf("CustomOptions = %v, want %v", ts[0].CustomOptions, want)
	}
	// The returned slice is a copy: editing it does not change the table.
	ts[0].CustomOptions[0].Value = "changed"
	ts, _ = tb.Update(snap(1, pkiCA, iface("t", "geneve", "remote_ip=10.0.0.2", "remote_name=hv2",
		"ipsec_salifetime=8h", "ipsec_encapsulation=yes", "ipsec_dpd-delay=30s", "ipsec_=empty")))
	if ts[0].CustomOptions[0].Value != "empty" || ts[0].Version != 1 {
		t.Errorf("after caller edit: %v v%d", ts[0].CustomOptions, ts[0].Version)
	}
}

func TestProblems(t *testing.T) {
	expired := goodCert("hv2")
	expired.NotAfter = testNow.Add(-time.Hour)
	future := goodCert("hv2")
	future.NotBefore = testNow.Add(time.Hour)
	sanMismatch := goodCert("hv2")
	sanMismatch.DNSNames = []string{"hv2.example"}
	v1 := goodCert("hv2")
	v1.Version = 1
	tests := []struct {
		name   string
		edit   func(*fakeCerts)
		global []string
		opts   []string
		want   []string
		state  State
	}{
		{name: "clean ca-signed", global: pkiCA, opts: []string{"remote_name=hv2"}, state: StateConfigured},
		{name: "clean self-signed", global: pkiSelf, opts: []string{"remote_cert=/pki/peer.pem"}, state: StateConfigured},
		{name: "expired peer", global: pkiSelf, opts: []string{"remote_cert=/pki/peer.pem"}, edit: func(f *fakeCerts) { f.certs["/pki/peer.pem"] = expired },
			want: []string{"certificate /pki/peer.pem expired at 2026-11-23T11:00:00Z; renew it"}, state: StateConfigured},
		{name: "not yet valid local", global: pkiCA, opts: []string{"remote_name=hv2"}, edit: func(f *fakeCerts) {
			c := future
			c.CN, c.DNSNames = "hv1", []string{"hv1"}
			f.certs["/pki/cert.pem"] = c
		},
			want: []string{"certificate /pki/cert.pem is not valid before 2026-11-23T13:00:00Z; check the clock or reissue it"}, state: StateConfigured},
		{name: "CN not in SAN", global: pkiSelf, opts: []string{"remote_cert=/pki/peer.pem"}, edit: func(f *fakeCerts) { f.certs["/pki/peer.pem"] = sanMismatch },
			want: []string{`certificate /pki/peer.pem: CN "hv2" is not among its SAN DNS names ["hv2.example"]; peers that match the IKE identity against subjectAltName will reject it`}, state: StateConfigured},
		{name: "v1 certificate", global: pkiSelf, opts: []string{"remote_cert=/pki/peer.pem"}, edit: func(f *fakeCerts) { f.certs["/pki/peer.pem"] = v1 },
			want: []string{"certificate /pki/peer.pem is X.509 v1; IKE peers expect v3 with the CN repeated as SAN DNS"}, state: StateConfigured},
		{name: "key mismatch", global: pkiCA, opts: []string{"remote_name=hv2"},
			edit: func(f *fakeCerts) {
				f.keyErrs = map[string]error{"/pki/privkey.pem": errors.New("private key /pki/privkey.pem does not match certificate /pki/cert.pem; configure the key the certificate was issued for")}
			},
			want: []string{"private key /pki/privkey.pem does not match certificate /pki/cert.pem; configure the key the certificate was issued for"}, state: StateConfigured},
		{name: "CA unreadable", global: []string{"certificate=/pki/cert.pem", "private_key=/pki/privkey.pem", "ca_cert=/pki/gone.pem"}, opts: []string{"remote_name=hv2"},
			want: []string{"ca_cert unusable: read certificate /pki/gone.pem: open /pki/gone.pem: no such file or directory; check the path and that ovnsecd may read it"}, state: StateConfigured},
		{name: "CA expired", global: pkiCA, opts: []string{"remote_name=hv2"}, edit: func(f *fakeCerts) {
			c := goodCert("ca")
			c.NotAfter = testNow.Add(-2 * time.Hour)
			f.certs["/pki/ca.pem"] = c
		},
			want: []string{"certificate /pki/ca.pem expired at 2026-11-23T10:00:00Z; renew it"}, state: StateConfigured},
		{name: "unreadable peer cert", global: pkiSelf, opts: []string{"remote_cert=/pki/gone.pem"},
			want: []string{"read certificate /pki/gone.pem: open /pki/gone.pem: no such file or directory; check the path and that ovnsecd may read it"}, state: StateInvalid},
		{name: "PSK tunnels have no certificate problems", opts: []string{"psk=x"}, edit: func(f *fakeCerts) { f.certs["/pki/peer.pem"] = expired }, state: StateConfigured},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			certs := newFake()
			if tc.edit != nil {
				tc.edit(certs)
			}
			tb := NewTable(certs, clocktest.New(testNow))
			ts, events := tb.Update(snap(1, tc.global, iface("t", "geneve", append([]string{"remote_ip=10.0.0.2"}, tc.opts...)...)))
			if !slices.Equal(ts[0].Problems, tc.want) {
				t.Errorf("Problems\n got %q\nwant %q", ts[0].Problems, tc.want)
			}
			if ts[0].State != tc.state {
				t.Errorf("State = %s%s, want %s", ts[0].State, ts[0].Reason, tc.state)
			}
			for _, p := range tc.want {
				// Tunnel problems are logged per tunnel, global ones once.
				if !slices.Contains(msgs(events), "WARN Tunnel t: "+p) && !slices.Contains(msgs(events), "WARN "+p) {
					t.Errorf("no warning for problem %q in %q", p, msgs(events))
				}
			}
			// Re-checking the same snapshot neither repeats the problem
			// warnings nor bumps the version.
			ts, events = tb.Update(snap(1, tc.global, iface("t", "geneve", append([]string{"remote_ip=10.0.0.2"}, tc.opts...)...)))
			if len(events) != 0 || ts[0].Version != 1 {
				t.Errorf("re-check: v%d events %q", ts[0].Version, msgs(events))
			}
		})
	}
}

func TestExpiryFollowsInjectedClock(t *testing.T) {
	clk := clocktest.New(testNow)
	tb := NewTable(newFake(), clk)
	s := snap(1, pkiCA, iface("t", "geneve", "remote_ip=10.0.0.2", "remote_name=hv2"))
	ts, _ := tb.Update(s)
	if len(ts[0].Problems) != 0 {
		t.Fatalf("problems before expiry: %q", ts[0].Problems)
	}
	clk.Advance(366 * 24 * time.Hour) // past every NotAfter of newFake
	ts, events := tb.Update(s)
	want := []string{
		"certificate /pki/cert.pem expired at 2027-11-23T12:00:00Z; renew it",
		"certificate /pki/ca.pem expired at 2027-11-23T12:00:00Z; renew it",
	}
	if !slices.Equal(ts[0].Problems, want) || ts[0].Version != 1 || ts[0].State != StateConfigured {
		t.Errorf("after expiry: v%d %s problems %q, want v1 CONFIGURED %q", ts[0].Version, ts[0].State, ts[0].Problems, want)
	}
	if got := msgs(events); !slices.Equal(got, []string{"WARN " + want[0], "WARN " + want[1]}) || events[0].Tunnel != "" {
		t.Errorf("events = %q, want the two global warnings once", got)
	}
}

func TestNilClockAndLog(t *testing.T) {
	tb := NewTable(newFake(), nil)
	_, events := tb.Update(snap(1, []string{"ca_cert=/x"}, iface("t", "geneve", "remote_ip=10.0.0.2", "psk=x")))
	var b strings.Builder
	Log(t.Context(), slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), events)
	out := b.String()
	for _, w := range []string{`level=WARN msg="The cert and key configuration is not valid.`, `level=INFO msg="Tunnel t appeared in OVSDB" tunnel=t`, "level=DEBUG"} {
		if !strings.Contains(out, w) {
			t.Errorf("log output lacks %q:\n%s", w, out)
		}
	}
}

func TestUnsortedAndDuplicateInterfaces(t *testing.T) {
	tb := NewTable(newFake(), clocktest.New(testNow))
	ts, _ := tb.Update(snap(1, nil,
		iface("c", "geneve", "remote_ip=10.0.0.4", "psk=x"),
		iface("a", "geneve", "remote_ip=10.0.0.2", "psk=x"),
		iface("b", "geneve", "remote_ip=10.0.0.3", "psk=x"),
		iface("a", "geneve", "remote_ip=10.0.0.9", "psk=x")))
	var names []string
	for _, tun := range ts {
		names = append(names, tun.Name)
	}
	if !slices.Equal(names, []string{"a", "b", "c"}) {
		t.Errorf("names = %v, want [a b c]", names)
	}
	if ts[0].RemoteIP != "10.0.0.2" {
		t.Errorf("duplicate name: first row must win, got %s", ts[0].RemoteIP)
	}
}

func TestEventOrderOnChange(t *testing.T) {
	tb := NewTable(newFake(), clocktest.New(testNow))
	tb.Update(snap(1, nil, iface("t", "geneve", "remote_ip=10.0.0.2", "psk=x")))
	_, events := tb.Update(snap(2, nil, withStatus(iface("t", "geneve", "psk=x"), ofport(4), nil)))
	want := []string{
		"WARN t contains invalid configuration: 'remote_ip' is not set",
		"DEBUG t changed status from {'cfm_state': 'Disabled', 'ofport': 'Not assigned'} to {'cfm_state': 'Disabled', 'ofport': 4}",
		"INFO Tunnel's 't' configuration changed in OVSDB to 2",
	}
	if got := msgs(events); !slices.Equal(got, want) {
		t.Errorf("events\n got %q\nwant %q", got, want)
	}
}

func TestGlobalProblemsLoggedOnce(t *testing.T) {
	certs := newFake()
	certs.keyErrs = map[string]error{"/pki/privkey.pem": errors.New("private key /pki/privkey.pem does not match certificate /pki/cert.pem")}
	tb := NewTable(certs, clocktest.New(testNow))
	var ifs []Interface
	for i := range 3 {
		ifs = append(ifs, iface(fmt.Sprint("t", i), "geneve", fmt.Sprintf("remote_ip=10.0.0.%d", i+2), "remote_name=hv2"))
	}
	ifs = append(ifs, iface("psk", "geneve", "remote_ip=10.0.1.1", "psk=x"))
	ts, events := tb.Update(snap(1, pkiCA, ifs...))
	n := 0
	for _, e := range events {
		if strings.Contains(e.Msg, "does not match") {
			n++
			if e.Tunnel != "" {
				t.Errorf("global problem logged for tunnel %s", e.Tunnel)
			}
		}
	}
	if n != 1 {
		t.Errorf("key mismatch logged %d times, want once: %q", n, msgs(events))
	}
	for _, tun := range ts {
		want := 1
		if tun.Name == "psk" {
			want = 0 // PSK tunnels (INVALID here) do not use the certificate
		}
		if len(tun.Problems) != want {
			t.Errorf("%s: problems %q, want %d", tun.Name, tun.Problems, want)
		}
	}
	if _, events = tb.Update(snap(2, pkiCA, ifs...)); len(withoutDebug(events)) != 0 {
		t.Errorf("repeated: %q", msgs(events))
	}
}

func TestIgnoredGlobalUpdateShownOnTunnels(t *testing.T) {
	clk := clocktest.New(testNow)
	tb := NewTable(newFake(), clk)
	gnv := iface("gnv0", "geneve", "remote_ip=192.0.2.2", "remote_name=hv2")
	tb.Update(snap(1, pkiCA, gnv))
	// The certificate becomes unreadable: upstream ignores the update and
	// keeps the old PKI; ovnsec also says so on every tunnel.
	bad := []string{"certificate=/pki/missing.pem", "private_key=/pki/privkey.pem", "ca_cert=/pki/ca.pem"}
	ts, _ := tb.Update(snap(2, bad, gnv))
	tun, _ := find(ts, "gnv0")
	want := "Open_vSwitch other_config PKI update ignored (read certificate /pki/missing.pem: open /pki/missing.pem: no such file or directory; check the path and that ovnsecd may read it); still using certificate /pki/cert.pem"
	if !slices.Contains(tun.Problems, want) {
		t.Fatalf("problems = %q, want %q", tun.Problems, want)
	}
	if tun.State != StateConfigured || tun.Certificate != "/pki/cert.pem" {
		t.Fatalf("tunnel = %s with certificate %s; the previous PKI must stay in effect", tun.State, tun.Certificate)
	}
	// A valid update clears it.
	ts, _ = tb.Update(snap(3, pkiCA, gnv))
	tun, _ = find(ts, "gnv0")
	for _, p := range tun.Problems {
		if strings.Contains(p, "ignored") {
			t.Fatalf("stale problem %q after a valid update", p)
		}
	}
}

// SameConfig ignores what only describes the tunnel's state: a problem
// that appears must not make a backend configure the tunnel again.
func TestSameConfigIgnoresStatus(t *testing.T) {
	a := Tunnel{Name: "t", Version: 1, State: StateConfigured, RemoteIP: "10.0.0.2", OFPort: "1", CFMState: "Up"}
	b := a
	b.OFPort, b.CFMState, b.Problems = "2", "Down", []string{"certificate /c.pem expires in 3 days"}
	if !a.SameConfig(b) {
		t.Error("status-only fields count as configuration")
	}
	b.RemoteIP = "10.0.0.3"
	if a.SameConfig(b) {
		t.Error("a changed remote_ip is the same configuration")
	}
}

// Addresses are parsed once, here: backends read Local and Remote.
func TestAddressesParsedOnce(t *testing.T) {
	tb := NewTable(newFake(), clocktest.New(testNow))
	ts, _ := tb.Update(snap(1, nil,
		iface("a", "geneve", "remote_ip=::ffff:10.0.0.2", "local_ip=10.0.0.1", "psk=x"),
		iface("b", "geneve", "remote_ip=flow", "psk=x")))
	if ts[0].Remote != netip.MustParseAddr("10.0.0.2") || ts[0].Local != netip.MustParseAddr("10.0.0.1") || ts[0].RemoteIP != "::ffff:10.0.0.2" {
		t.Errorf("a: %v %v %q", ts[0].Remote, ts[0].Local, ts[0].RemoteIP)
	}
	if ts[1].Remote.IsValid() || ts[1].Local.IsValid() || ts[1].LocalIP != DefaultRoute {
		t.Errorf("b: %v %v %q", ts[1].Remote, ts[1].Local, ts[1].LocalIP)
	}
}
