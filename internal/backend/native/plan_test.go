package native

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/ike"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

func TestPlanTunnel(t *testing.T) {
	mod := func(f func(*tunnel.Tunnel)) tunnel.Tunnel {
		tt := geneveTunnel(3)
		f(&tt)
		setAddrs(&tt)
		return tt
	}
	tests := []struct {
		name  string
		t     tunnel.Tunnel
		err   string
		check func(t *testing.T, p *plan)
	}{
		{name: "geneve psk", t: geneveTunnel(3), check: func(t *testing.T, p *plan) {
			if p.peer.Name != "ovn-b-0-3" || p.peer.Remote != remote || p.peer.Local != local || !p.peer.Initiate {
				// .1 < .2: this side initiates at once.
				t.Errorf("peer %+v", p.peer)
			}
			if string(p.peer.Auth.PSK) != "swordfish" || p.peer.LocalID != "198.51.100.1" || p.peer.RemoteID != "198.51.100.2" {
				t.Errorf("auth %q ids %q %q", p.peer.Auth.PSK, p.peer.LocalID, p.peer.RemoteID)
			}
			if len(p.peer.Children) != 2 || p.peer.Children[0].Name != "ovn-b-0-in-3" || p.peer.Children[1].Name != "ovn-b-0-out-3" {
				t.Fatalf("children %+v", p.peer.Children)
			}
			in, out := p.peer.Children[0], p.peer.Children[1]
			if ts := in.LocalTS[0]; ts.Proto != 17 || ts.StartPort != 6081 || ts.EndPort != 6081 || ts.Start != local || ts.End != local {
				t.Errorf("in local TS %v", ts)
			}
			if ts := in.RemoteTS[0]; ts.Proto != 17 || ts.StartPort != 0 || ts.EndPort != 65535 || ts.Start != remote {
				t.Errorf("in remote TS %v", ts)
			}
			if ts := out.RemoteTS[0]; ts.StartPort != 6081 || ts.EndPort != 6081 || ts.Start != remote {
				t.Errorf("out remote TS %v", ts)
			}
			if ts := out.LocalTS[0]; ts.StartPort != 0 || ts.EndPort != 65535 {
				t.Errorf("out local TS %v", ts)
			}
			if !p.carries(ike.ChildSA{LocalTS: out.LocalTS, RemoteTS: out.RemoteTS}) || p.carries(ike.ChildSA{LocalTS: in.LocalTS, RemoteTS: in.RemoteTS}) {
				t.Error("carries() disagrees with the -out- child's selectors")
			}
			want := ovsbridge.Policy{PeerIP: remote, Proto: ovsbridge.ProtoGeneve, DstPort: 6081, ExactPort: true, Mode: ovsbridge.ModeProtected}
			if p.policy != want {
				t.Errorf("policy %+v, want %+v", p.policy, want)
			}
		}},
		{name: "higher address waits for the peer", t: mod(func(t *tunnel.Tunnel) { t.RemoteIP = "198.51.100.0" }), check: func(t *testing.T, p *plan) {
			if p.peer.Initiate {
				t.Error("the higher address initiates at once")
			}
		}},
		{name: "vxlan custom port, default route", t: mod(func(t *tunnel.Tunnel) {
			t.Type, t.DstPort, t.LocalIP = tunnel.TypeVXLAN, 4790, tunnel.DefaultRoute
		}), check: func(t *testing.T, p *plan) {
			if p.peer.Children[0].LocalTS[0].StartPort != 4790 || p.policy.Port() != 4790 || p.policy.Proto != ovsbridge.ProtoVXLAN {
				t.Errorf("port not honoured: %+v %v", p.policy, p.peer.Children[0].LocalTS)
			}
		}},
		{name: "gre", t: mod(func(t *tunnel.Tunnel) { t.Type, t.DstPort = tunnel.TypeGRE, 0 }), check: func(t *testing.T, p *plan) {
			if len(p.peer.Children) != 1 || p.peer.Children[0].Name != "ovn-b-0-3" || !p.carries(ike.ChildSA{LocalTS: p.peer.Children[0].LocalTS, RemoteTS: p.peer.Children[0].RemoteTS}) {
				t.Fatalf("children %+v", p.peer.Children)
			}
			if ts := p.peer.Children[0].LocalTS[0]; ts.Proto != 47 || ts.EndPort != 65535 {
				t.Errorf("gre TS %v", ts)
			}
		}},
		{name: "forced encapsulation", t: mod(func(t *tunnel.Tunnel) {
			t.CustomOptions = []tunnel.Option{{Key: "encapsulation", Value: "yes"}}
		}), check: func(t *testing.T, p *plan) {
			if !p.peer.ForceEncap || p.policy.Encap != ovsbridge.EncapUDP4500 {
				t.Errorf("ForceEncap %v encap %v", p.peer.ForceEncap, p.policy.Encap)
			}
		}},
		{name: "forceencaps", t: mod(func(t *tunnel.Tunnel) {
			t.CustomOptions = []tunnel.Option{{Key: "forceencaps", Value: "yes"}}
		}), check: func(t *testing.T, p *plan) {
			if !p.peer.ForceEncap {
				t.Error("forceencaps=yes not honoured")
			}
		}},
		{name: "encapsulation=no", t: mod(func(t *tunnel.Tunnel) {
			t.CustomOptions = []tunnel.Option{{Key: "encapsulation", Value: "no"}}
		}), check: func(t *testing.T, p *plan) {
			if p.peer.ForceEncap || p.policy.Encap != ovsbridge.EncapNone {
				t.Error("encapsulation=no forced encapsulation")
			}
		}},
		{name: "bad encapsulation value", t: mod(func(t *tunnel.Tunnel) {
			t.CustomOptions = []tunnel.Option{{Key: "encapsulation", Value: "maybe"}}
		}), err: "want yes or no"},
		{name: "proposals and unsupported options", t: mod(func(t *tunnel.Tunnel) {
			t.CustomOptions = []tunnel.Option{{Key: "esp", Value: "aes128gcm16!"}, {Key: "ike", Value: "aes128gcm16-prfsha256-modp2048, aes256gcm16-prfsha384-ecp384"}, {Key: "dpddelay", Value: "5"}}
		}), check: func(t *testing.T, p *plan) {
			if len(p.peer.IKEProposals) != 2 || p.peer.IKEProposals[1] != "aes256gcm16-prfsha384-ecp384" || len(p.peer.ESPProposals) != 1 || p.peer.ESPProposals[0] != "aes128gcm16" {
				t.Errorf("proposals %q %q", p.peer.IKEProposals, p.peer.ESPProposals)
			}
			if len(p.unsupported) != 1 || p.unsupported[0] != "dpddelay" {
				t.Errorf("unsupported %q", p.unsupported)
			}
		}},
		{name: "self-signed", t: mod(func(t *tunnel.Tunnel) {
			t.Auth, t.PSK = tunnel.AuthSelfSigned, tunnel.Secret{}
			t.Certificate, t.PrivateKey, t.RemoteCert = "/c.pem", "/k.pem", "/r.pem"
			t.LocalName, t.RemoteName = "hv1", "hv2"
		}), check: func(t *testing.T, p *plan) {
			a := p.peer.Auth
			if len(a.Cert) != 1 || a.Key == nil || a.PeerCert == nil || len(a.CAs) != 0 || len(a.PSK) != 0 {
				t.Errorf("auth %+v", a)
			}
			if p.peer.LocalID != "hv1" || p.peer.RemoteID != "hv2" {
				t.Errorf("ids %q %q", p.peer.LocalID, p.peer.RemoteID)
			}
		}},
		{name: "ca-signed, local CN from the certificate", t: mod(func(t *tunnel.Tunnel) {
			t.Auth, t.PSK = tunnel.AuthCASigned, tunnel.Secret{}
			t.Certificate, t.PrivateKey, t.CACert, t.RemoteName = "/c.pem", "/k.pem", "/ca.pem", "hv2"
		}), check: func(t *testing.T, p *plan) {
			if len(p.peer.Auth.CAs) != 1 || p.peer.Auth.PeerCert != nil || p.peer.LocalID != "hv1" || p.peer.RemoteID != "hv2" {
				t.Errorf("auth %+v ids %q %q", p.peer.Auth, p.peer.LocalID, p.peer.RemoteID)
			}
		}},
		{name: "self-signed without remote cert", t: mod(func(t *tunnel.Tunnel) {
			t.Auth, t.PSK = tunnel.AuthSelfSigned, tunnel.Secret{}
			t.Certificate, t.PrivateKey, t.LocalName, t.RemoteName = "/c.pem", "/k.pem", "hv1", "hv2"
		}), err: "remote_cert"},
		{name: "unreadable CA", t: mod(func(t *tunnel.Tunnel) {
			t.Auth, t.PSK = tunnel.AuthCASigned, tunnel.Secret{}
			t.Certificate, t.PrivateKey, t.CACert, t.RemoteName = "/c.pem", "/k.pem", "/missing.pem", "hv2"
		}), err: "missing.pem"},
		{name: "empty psk", t: mod(func(t *tunnel.Tunnel) { t.PSK = tunnel.Secret{} }), err: "without a PSK"},
		{name: "no auth", t: mod(func(t *tunnel.Tunnel) { t.Auth = tunnel.AuthNone }), err: "not supported"},
		{name: "invalid state", t: mod(func(t *tunnel.Tunnel) { t.State = tunnel.StateInvalid }), err: "only CONFIGURED"},
		{name: "ipv6 remote", t: mod(func(t *tunnel.Tunnel) { t.RemoteIP = "2001:db8::2" }), err: "IPv4 underlays only"},
		{name: "bad remote", t: mod(func(t *tunnel.Tunnel) { t.RemoteIP = "flow" }), err: "IPv4 underlays only"},
		{name: "foreign local ip", t: mod(func(t *tunnel.Tunnel) { t.LocalIP = "198.51.100.9" }), err: "not the underlay address"},
		{name: "tunnel port 4500", t: mod(func(t *tunnel.Tunnel) { t.DstPort = 4500 }), err: "4500"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := planTunnel(tc.t, local, fakeCreds{})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, p)
			if strings.Contains(p.peer.Name, "swordfish") {
				t.Error("secret in the peer name")
			}
		})
	}
}

func TestCarries(t *testing.T) {
	p, err := planTunnel(geneveTunnel(1), local, fakeCreds{})
	if err != nil {
		t.Fatal(err)
	}
	gre := geneveTunnel(1)
	gre.Type, gre.DstPort = tunnel.TypeGRE, 0
	pg, err := planTunnel(gre, local, fakeCreds{})
	if err != nil {
		t.Fatal(err)
	}
	host := func(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, 32) }
	port := func(ts ike.TrafficSelector, lo, hi uint16) ike.TrafficSelector {
		ts.StartPort, ts.EndPort = lo, hi
		return ts
	}
	udpR := ike.PrefixTS(host(remote), 17)
	udpL := ike.PrefixTS(host(local), 17)
	one := func(ts ike.TrafficSelector) []ike.TrafficSelector { return []ike.TrafficSelector{ts} }
	tests := []struct {
		name     string
		p        *plan
		lts, rts []ike.TrafficSelector
		want     bool
	}{
		{"out child", p, one(udpL), one(port(udpR, 6081, 6081)), true},
		{"in child", p, one(port(udpL, 6081, 6081)), one(udpR), false},
		{"narrowed to 6081 both sides", p, one(port(udpL, 6081, 6081)), one(port(udpR, 6081, 6081)), false},
		{"udp any both", p, one(udpL), one(udpR), true},
		{"any proto", p, one(ike.PrefixTS(host(local), 0)), one(ike.PrefixTS(host(remote), 0)), true},
		{"remote other port", p, one(udpL), one(port(udpR, 4789, 4789)), false},
		{"swapped addresses", p, one(udpR), one(udpL), false},
		{"remote in a range", p, one(udpL), one(ike.PrefixTS(netip.MustParsePrefix("198.51.100.0/24"), 17)), true},
		{"tcp", p, one(ike.PrefixTS(host(local), 6)), one(ike.PrefixTS(host(remote), 6)), false},
		{"none", p, nil, nil, false},
		{"gre", pg, one(ike.PrefixTS(host(local), 47)), one(ike.PrefixTS(host(remote), 47)), true},
		{"gre vs udp", pg, one(udpL), one(udpR), false},
	}
	for _, tc := range tests {
		if got := tc.p.carries(ike.ChildSA{LocalTS: tc.lts, RemoteTS: tc.rts}); got != tc.want {
			t.Errorf("%s: carries = %v, want %v", tc.name, got, tc.want)
		}
	}
}
