package strongswan

import (
	"reflect"
	"strings"
	"testing"

	"github.com/strongswan/govici/vici"

	"github.com/ovnsec/ovnsec/internal/tunnel"
)

func geneveTunnel() tunnel.Tunnel {
	return tunnel.Tunnel{
		Name: "gnv0", Version: 3, State: tunnel.StateConfigured, Type: tunnel.TypeGeneve,
		LocalIP: "192.0.2.1", RemoteIP: "192.0.2.2", AddressFamily: "IPv4", DstPort: 6081,
		Auth: tunnel.AuthPSK, PSK: tunnel.NewSecret("s3cret"),
	}
}

// path walks nested sections: path(m, "gnv0-3", "children", "gnv0-in-3").
func path(t *testing.T, m *vici.Message, keys ...string) any {
	t.Helper()
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(*vici.Message)
		if !ok || mm == nil {
			t.Fatalf("path %v: %q is not a section", keys, k)
		}
		cur = mm.Get(k)
	}
	return cur
}

func TestBuildConnPSKGeneve(t *testing.T) {
	spec, err := buildConn(geneveTunnel(), pemMaterial{})
	if err != nil {
		t.Fatal(err)
	}
	if spec.IKE != "gnv0-3" {
		t.Fatalf("IKE name %q", spec.IKE)
	}
	if got := spec.Msg.Keys(); !reflect.DeepEqual(got, []string{"gnv0-3"}) {
		t.Fatalf("message keys %v", got)
	}
	checks := []struct {
		path []string
		want any
	}{
		{[]string{"gnv0-3", "version"}, "2"},
		{[]string{"gnv0-3", "local_addrs"}, []string{"192.0.2.1"}},
		{[]string{"gnv0-3", "remote_addrs"}, []string{"192.0.2.2"}},
		{[]string{"gnv0-3", "proposals"}, []string{"aes256gcm16-sha256-modp2048"}},
		{[]string{"gnv0-3", "keyingtries"}, "0"},
		{[]string{"gnv0-3", "local", "auth"}, "psk"},
		{[]string{"gnv0-3", "local", "id"}, nil},
		{[]string{"gnv0-3", "remote", "auth"}, "psk"},
		{[]string{"gnv0-3", "remote", "id"}, "192.0.2.2"},
		{[]string{"gnv0-3", "children", "gnv0-in-3", "mode"}, "transport"},
		{[]string{"gnv0-3", "children", "gnv0-in-3", "local_ts"}, []string{"dynamic[udp/6081]"}},
		{[]string{"gnv0-3", "children", "gnv0-in-3", "remote_ts"}, []string{"dynamic[udp]"}},
		{[]string{"gnv0-3", "children", "gnv0-in-3", "esp_proposals"}, []string{"aes256gcm16-modp2048"}},
		{[]string{"gnv0-3", "children", "gnv0-in-3", "start_action"}, "trap"},
		{[]string{"gnv0-3", "children", "gnv0-out-3", "local_ts"}, []string{"dynamic[udp]"}},
		{[]string{"gnv0-3", "children", "gnv0-out-3", "remote_ts"}, []string{"dynamic[udp/6081]"}},
	}
	for _, c := range checks {
		if got := path(t, spec.Msg, c.path...); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v = %#v, want %#v", c.path, got, c.want)
		}
	}
	if got := path(t, spec.Msg, "gnv0-3", "children").(*vici.Message).Keys(); !reflect.DeepEqual(got, []string{"gnv0-in-3", "gnv0-out-3"}) {
		t.Errorf("children %v", got)
	}
	if !reflect.DeepEqual(spec.Children, []childSpec{{"gnv0-in-3", DirIn}, {"gnv0-out-3", DirOut}}) {
		t.Errorf("spec children %v", spec.Children)
	}
	// The PSK never goes into the connection message.
	if strings.Contains(spec.Msg.String(), "s3cret") {
		t.Error("connection message contains the PSK")
	}
}

func TestBuildConnVariants(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*tunnel.Tunnel)
		mat   pemMaterial
		check map[string]any // "/"-joined path below the IKE section -> value
	}{
		{
			name:  "vxlan honours dst_port",
			edit:  func(t *tunnel.Tunnel) { t.Type, t.DstPort = tunnel.TypeVXLAN, 4790 },
			check: map[string]any{"children/gnv0-in-3/local_ts": []string{"dynamic[udp/4790]"}, "children/gnv0-out-3/remote_ts": []string{"dynamic[udp/4790]"}},
		},
		{
			name:  "gre single child",
			edit:  func(t *tunnel.Tunnel) { t.Type, t.DstPort = tunnel.TypeGRE, 0 },
			check: map[string]any{"children/gnv0-3/local_ts": []string{"dynamic[gre]"}, "children/gnv0-3/remote_ts": []string{"dynamic[gre]"}, "children/gnv0-in-3": nil},
		},
		{
			name:  "defaultroute leaves local_addrs unset",
			edit:  func(t *tunnel.Tunnel) { t.LocalIP = tunnel.DefaultRoute },
			check: map[string]any{"local_addrs": nil},
		},
		{
			name: "ca-signed",
			edit: func(t *tunnel.Tunnel) {
				t.Auth, t.PSK = tunnel.AuthCASigned, tunnel.Secret{}
				t.LocalName, t.RemoteName = "ch1", "ch2"
			},
			mat: pemMaterial{LocalCert: []byte("LOCAL"), CACerts: [][]byte{[]byte("CA1"), []byte("CA2")}},
			check: map[string]any{
				"local/auth": "pubkey", "local/id": "@ch1", "local/certs": []string{"LOCAL"},
				"remote/auth": "pubkey", "remote/id": "@ch2", "remote/cacerts": []string{"CA1", "CA2"}, "remote/certs": nil,
			},
		},
		{
			name: "self-signed pins the peer certificate",
			edit: func(t *tunnel.Tunnel) {
				t.Auth, t.PSK = tunnel.AuthSelfSigned, tunnel.Secret{}
				t.LocalName, t.RemoteName = "ch1", "ch2 id:1234"
			},
			mat: pemMaterial{LocalCert: []byte("LOCAL"), RemoteCert: []byte("PEER")},
			check: map[string]any{
				"local/id": "@ch1", "remote/id": "@ch2 id:1234", "remote/certs": []string{"PEER"}, "remote/cacerts": nil,
			},
		},
		{
			name: "custom options",
			edit: func(t *tunnel.Tunnel) {
				t.CustomOptions = []tunnel.Option{{Key: "forceencaps", Value: "yes"}, {Key: "replay-window", Value: "64"}, {Key: "dpd-delay", Value: "10"}, {Key: "salifetime", Value: "1h"}}
			},
			check: map[string]any{
				"encap": "yes", "dpd_delay": "10s",
				"children/gnv0-in-3/replay_window": "64", "children/gnv0-out-3/replay_window": "64",
				"children/gnv0-out-3/rekey_time": "3600s",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tn := geneveTunnel()
			tc.edit(&tn)
			spec, err := buildConn(tn, tc.mat)
			if err != nil {
				t.Fatal(err)
			}
			for p, want := range tc.check {
				keys := append([]string{string(spec.IKE)}, strings.Split(p, "/")...)
				if got := path(t, spec.Msg, keys...); !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v, want %#v", p, got, want)
				}
			}
			if len(spec.Unsupported) != 0 {
				t.Errorf("unexpected unsupported options %v", spec.Unsupported)
			}
		})
	}
}

func TestBuildConnErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*tunnel.Tunnel)
		mat  pemMaterial
		want string
	}{
		{"invalid state", func(t *tunnel.Tunnel) { t.State = tunnel.StateInvalid }, pemMaterial{}, "not CONFIGURED"},
		{"no version", func(t *tunnel.Tunnel) { t.Version = 0 }, pemMaterial{}, "no name or version"},
		{"no remote", func(t *tunnel.Tunnel) { t.RemoteIP = "" }, pemMaterial{}, "no remote_ip"},
		{"no port", func(t *tunnel.Tunnel) { t.DstPort = 0 }, pemMaterial{}, "no destination port"},
		{"stt", func(t *tunnel.Tunnel) { t.Type = "stt" }, pemMaterial{}, `type "stt"`},
		{"no auth", func(t *tunnel.Tunnel) { t.Auth = tunnel.AuthNone }, pemMaterial{}, "no authentication method"},
		{"empty psk", func(t *tunnel.Tunnel) { t.PSK = tunnel.Secret{} }, pemMaterial{}, "has no psk"},
		{"ca without names", func(t *tunnel.Tunnel) { t.Auth = tunnel.AuthCASigned }, pemMaterial{LocalCert: []byte("x")}, "local and remote names"},
		{"ca without ca", func(t *tunnel.Tunnel) { t.Auth, t.LocalName, t.RemoteName = tunnel.AuthCASigned, "a", "b" }, pemMaterial{LocalCert: []byte("x")}, "no CA certificate"},
		{"self-signed without peer", func(t *tunnel.Tunnel) { t.Auth, t.LocalName, t.RemoteName = tunnel.AuthSelfSigned, "a", "b" }, pemMaterial{LocalCert: []byte("x")}, "no peer certificate"},
		{"cert without local cert", func(t *tunnel.Tunnel) { t.Auth, t.LocalName, t.RemoteName = tunnel.AuthSelfSigned, "a", "b" }, pemMaterial{}, "no local certificate"},
	}
	for _, tc := range tests {
		tn := geneveTunnel()
		tc.edit(&tn)
		_, err := buildConn(tn, tc.mat)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

func TestBuildConnUnsupportedOptions(t *testing.T) {
	tn := geneveTunnel()
	tn.CustomOptions = []tunnel.Option{{Key: "foo", Value: "bar"}, {Key: "replay-window", Value: "lots"}, {Key: "encapsulation", Value: "yes"}}
	spec, err := buildConn(tn, pemMaterial{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"unsupported option ipsec_foo for the strongswan backend",
		`option ipsec_replay-window="lots": want a packet count`,
	}
	if !reflect.DeepEqual(spec.Unsupported, want) {
		t.Errorf("Unsupported = %q, want %q", spec.Unsupported, want)
	}
	if got := path(t, spec.Msg, "gnv0-3", "encap"); got != "yes" {
		t.Errorf("supported option next to unsupported ones not applied: encap = %v", got)
	}
}

func TestMapOption(t *testing.T) {
	tests := []struct {
		key, val string
		target   optTarget
		vkey     string
		want     any
		err      string // the one unsupported line, when the option is not applied
	}{
		{"forceencaps", "yes", targetConn, "encap", "yes", ""},
		{"encapsulation", "auto", targetConn, "encap", "no", ""},
		{"encapsulation", "maybe", 0, "", nil, "want yes or no"},
		{"dpddelay", "30s", targetConn, "dpd_delay", "30s", ""},
		{"dpd_delay", "30", targetConn, "dpd_delay", "30s", ""},
		{"DPD-Delay", "5m", targetConn, "dpd_delay", "300s", ""},
		{"dpd-delay", "soon", 0, "", nil, `option ipsec_dpd-delay="soon": not a time`},
		{"dpd-delay", "1500ms", 0, "", nil, "invalid value 1.5s for option ipsec_dpd-delay for the strongswan backend: want whole seconds"},
		{"dpd-timeout", "150s", targetConn, "dpd_timeout", "150s", ""},
		{"dpdaction", "hold", targetChild, "dpd_action", "trap", ""},
		{"dpdaction", "trap", targetChild, "dpd_action", "trap", ""},
		{"dpdaction", "restart", targetChild, "dpd_action", "restart", ""},
		{"dpdaction", "explode", 0, "", nil, "want none, clear, hold or restart"},
		{"replay-window", "128", targetChild, "replay_window", "128", ""},
		{"replay_window", "-1", 0, "", nil, "want a packet count"},
		{"ikelifetime", "3h", targetConn, "rekey_time", "10800s", ""},
		{"ikelifetime", "1d", targetConn, "rekey_time", "86400s", ""},
		{"salifetime", "1h", targetChild, "rekey_time", "3600s", ""},
		{"lifetime", "60m", targetChild, "rekey_time", "3600s", ""},
		{"salifetime", "5s", 0, "", nil, "ipsec_salifetime=5s: shorter than the minimum 10s"},
		{"keylife", "1x", 0, "", nil, "want a whole number"},
		{"mobike", "no", targetConn, "mobike", "no", ""},
		{"fragmentation", "force", targetConn, "fragmentation", "force", ""},
		{"keyingtries", "%forever", targetConn, "keyingtries", "0", ""},
		{"keyingtries", "3", targetConn, "keyingtries", "3", ""},
		{"ike", "aes128gcm16-sha256-ecp256,aes256-sha256-modp2048!", targetConn, "proposals", []string{"aes128gcm16-sha256-ecp256", "aes256-sha256-modp2048"}, ""},
		{"esp", "aes128gcm16", targetChild, "esp_proposals", []string{"aes128gcm16"}, ""},
		{"esp", "aes;rm -rf", 0, "", nil, "comma-separated list"},
		{"ike", "", 0, "", nil, "comma-separated list"},
		{"leftupdown", "/bin/sh", 0, "", nil, "unsupported option ipsec_leftupdown for the strongswan backend"},
		{"mark", "1/1", 0, "", nil, "unsupported option ipsec_mark"},
		{"rekeymargin", "3m", 0, "", nil, "unsupported option ipsec_rekeymargin for the strongswan backend"},
		{"rekey_fuzz", "100%", 0, "", nil, "unsupported option ipsec_rekey_fuzz for the strongswan backend"},
	}
	for _, tc := range tests {
		opts, unsupported := mapOptions(tunnel.ParseOptions([]tunnel.Option{{Key: tc.key, Value: tc.val}}))
		if tc.err != "" {
			if len(opts) != 0 || len(unsupported) != 1 || !strings.Contains(unsupported[0], tc.err) {
				t.Errorf("%s=%s: applied %+v, unsupported %q; want only %q", tc.key, tc.val, opts, unsupported, tc.err)
			}
			continue
		}
		want := []swanOption{{tc.target, tc.vkey, tc.want}}
		if len(unsupported) != 0 || !reflect.DeepEqual(opts, want) {
			t.Errorf("%s=%s: applied %+v, unsupported %q; want %+v", tc.key, tc.val, opts, unsupported, want)
		}
	}
}
