// Tests for the tunnels/show rendering, the Python repr helpers and the
// PSK redaction.

package tunnel

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
)

func TestRender(t *testing.T) {
	tests := []struct {
		name string
		t    Tunnel
		want string
	}{
		{
			name: "ca-signed",
			t: Tunnel{
				Name: "ovn-hv2-0", Version: 3, State: StateConfigured, Type: TypeGeneve,
				LocalIP: "192.168.0.1", RemoteIP: "192.168.0.2", AddressFamily: "IPv4",
				Certificate: "/etc/ipsec.d/certs/hv1-cert.pem", LocalName: "hv1",
				PrivateKey: "/etc/ipsec.d/private/hv1-privkey.pem", RemoteName: "hv2",
				CACert: "/etc/ipsec.d/cacerts/cacert.pem", CustomOptions: []Option{{"encapsulation", "yes"}},
				OFPort: "3", CFMState: "Disabled", DstPort: 6081,
			},
			want: `Interface name: ovn-hv2-0 v3 (CONFIGURED)
  Tunnel Type:    geneve
  Local IP:       192.168.0.1
  Remote IP:      192.168.0.2
  Address Family: IPv4
  SKB mark:       None
  Local cert:     /etc/ipsec.d/certs/hv1-cert.pem
  Local name:     hv1
  Local key:      /etc/ipsec.d/private/hv1-privkey.pem
  Remote cert:    None
  Remote name:    hv2
  CA cert:        /etc/ipsec.d/cacerts/cacert.pem
  PSK:            None
  Custom Options: {'encapsulation': 'yes'}
  Ofport:         3
  CFM state:      Disabled
`,
		},
		{
			name: "psk invalid",
			t: Tunnel{
				Name: "tun", Version: 1, State: StateInvalid, Reason: reasonRemoteIPNotSet, Type: TypeGRE,
				LocalIP: DefaultRoute, AddressFamily: "None", SKBMark: "0x1/0x1", PSK: NewSecret("swordfish"),
				OFPort: "Not assigned", CFMState: "Up",
			},
			want: `Interface name: tun v1 (INVALID: 'remote_ip' is not set)
  Tunnel Type:    gre
  Local IP:       %defaultroute
  Remote IP:      None
  Address Family: None
  SKB mark:       0x1/0x1
  Local cert:     None
  Local name:     None
  Local key:      None
  Remote cert:    None
  Remote name:    None
  CA cert:        None
  PSK:            <redacted>
  Custom Options: {}
  Ofport:         Not assigned
  CFM state:      Up
`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Render(tc.t)
			if got != tc.want {
				t.Errorf("Render\n got:\n%s\nwant:\n%s", got, tc.want)
			}
			lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
			if len(lines) != 16 {
				t.Errorf("%d lines, want 16", len(lines))
			}
			for _, l := range lines[1:] {
				if len(l) < 19 || l[:2] != "  " || l[17] != ' ' || l[18] == ' ' {
					t.Errorf("line %q: value does not start at column 19", l)
				}
			}
		})
	}
}

func TestRenderExtras(t *testing.T) {
	got := RenderExtras(Tunnel{Type: TypeVXLAN, DstPort: 4789, Problems: []string{"p1", "p2"}})
	want := "  Dst port:       4789\n  Problem:        p1\n  Problem:        p2\n"
	if got != want {
		t.Errorf("RenderExtras = %q, want %q", got, want)
	}
	if got := RenderExtras(Tunnel{Type: TypeGRE}); got != "" {
		t.Errorf("RenderExtras(gre) = %q, want empty", got)
	}
}

func TestPyDictRepr(t *testing.T) {
	tests := []struct {
		opts []Option
		want string
	}{
		{nil, "{}"},
		{[]Option{{"encapsulation", "yes"}}, "{'encapsulation': 'yes'}"},
		{[]Option{{"dpd-delay", "30s"}, {"replay-window", "100"}}, "{'dpd-delay': '30s', 'replay-window': '100'}"},
		{[]Option{{"", ""}}, "{'': ''}"},
		{[]Option{{"k", "it's"}}, `{'k': "it's"}`},
		{[]Option{{"k", `it's "x"`}}, `{'k': 'it\'s "x"'}`},
		{[]Option{{"k", `say "hi"`}}, `{'k': 'say "hi"'}`},
		{[]Option{{"k", `a\b`}}, `{'k': 'a\\b'}`},
		{[]Option{{"k", "a\tb\nc\rd"}}, `{'k': 'a\tb\nc\rd'}`},
		{[]Option{{"k", "\x00\x1f\x7f"}}, `{'k': '\x00\x1f\x7f'}`},
		{[]Option{{"k", "caf\u00e9 \u00a0\u2028"}}, `{'k': 'café \xa0\u2028'}`},
		{[]Option{{"k", "\U0001F600"}}, "{'k': '\U0001F600'}"},
		{[]Option{{"k", "\u0378\u00ad\U000e0001"}}, `{'k': '\u0378\xad\U000e0001'}`},
		{[]Option{{"k", "\xff"}}, `{'k': '\xff'}`},
	}
	for _, tc := range tests {
		if got := PyDictRepr(tc.opts); got != tc.want {
			t.Errorf("PyDictRepr(%q) = %s, want %s", tc.opts, got, tc.want)
		}
	}
}

func TestPSKNeverPrinted(t *testing.T) {
	const psk = "swordfish-42"
	tb := NewTable(newFake(), clocktest.New(testNow))
	ts, events := tb.Update(snap(1, nil, iface("t", "geneve", "remote_ip=10.0.0.2", "psk="+psk)))
	tun := ts[0]
	if tun.PSK.Reveal() != psk || !tun.PSK.IsSet() {
		t.Fatalf("PSK not carried to the backend: IsSet=%v", tun.PSK.IsSet())
	}
	outputs := map[string]string{
		"Render":  Render(tun),
		"%v":      fmt.Sprintf("%v", tun),
		"%+v":     fmt.Sprintf("%+v", tun),
		"%#v":     fmt.Sprintf("%#v", tun),
		"%s":      fmt.Sprintf("%s", tun.PSK),
		"%v ptr":  fmt.Sprintf("%v", &tun),
		"%+v ptr": fmt.Sprintf("%+v", &tun),
		"%#v ptr": fmt.Sprintf("%#v", &tun),
		"events":  fmt.Sprint(msgs(events)),
	}
	for name, out := range outputs {
		if strings.Contains(out, psk) {
			t.Errorf("%s output contains the PSK: %s", name, out)
		}
	}
	if !strings.Contains(outputs["%+v"], "PSK:<redacted>") || !strings.Contains(outputs["Render"], "PSK:            <redacted>") {
		t.Errorf("PSK not shown as <redacted>: %s", outputs["%+v"])
	}
	if got := fmt.Sprint(NewSecret("")); got != "None" {
		t.Errorf("empty secret prints %q, want None", got)
	}
}
