package libreswan

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ovnsec/ovnsec/internal/tunnel"
)

func tun(name string, typ tunnel.Type, auth tunnel.AuthMethod, opts ...tunnel.Option) tunnel.Tunnel {
	t := tunnel.Tunnel{Name: name, Version: 1, State: tunnel.StateConfigured, Type: typ,
		LocalIP: "192.0.2.1", RemoteIP: "192.0.2.2", Local: netip.MustParseAddr("192.0.2.1"), Remote: netip.MustParseAddr("192.0.2.2"),
		Auth: auth, CustomOptions: opts}
	switch typ {
	case tunnel.TypeGeneve:
		t.DstPort = 6081
	case tunnel.TypeVXLAN:
		t.DstPort = 4789
	}
	switch auth {
	case tunnel.AuthPSK:
		t.PSK = tunnel.NewSecret("swordfish")
	case tunnel.AuthSelfSigned:
		t.Certificate, t.PrivateKey, t.LocalName = "/k/a-cert.pem", "/k/a-privkey.pem", "a"
		t.RemoteCert, t.RemoteName = "/k/b-cert.pem", "b"
	case tunnel.AuthCASigned:
		t.Certificate, t.PrivateKey, t.LocalName = "/k/a-cert.pem", "/k/a-privkey.pem", "a"
		t.CACert, t.RemoteName = "/k/ca.pem", "b"
	}
	return t
}

var v4 = Version{Major: 4, Full: "4.10"}

// The files ovs-monitor-ipsec writes for the same tunnels (its templates,
// default-conn mode, libreswan 4), header line aside.
func TestRenderDefaultConn(t *testing.T) {
	l := Layout{DefaultConn: true, Version: v4}
	ts := []tunnel.Tunnel{
		tun("gnv", tunnel.TypeGeneve, tunnel.AuthPSK, tunnel.Option{Key: "encapsulation", Value: "yes"}),
		tun("gr", tunnel.TypeGRE, tunnel.AuthPSK),
	}
	want := fileHeader + `config setup
    uniqueids=yes

conn %default
    type=transport
    auto=route
    keyingtries=%forever
    ike=aes_gcm256-sha2_256
    esp=aes_gcm256
    ikev2=insist

conn prevent_unencrypted_gre
    type=drop
    left=%defaultroute
    leftprotoport=gre
    mark=0/1

conn prevent_unencrypted_geneve
    type=drop
    left=%defaultroute
    leftprotoport=udp/6081
    mark=0/1

conn prevent_unencrypted_vxlan
    type=drop
    left=%defaultroute
    leftprotoport=udp/4789
    mark=0/1

conn gnv-in-1
    left=192.0.2.1
    right=192.0.2.2
    authby=secret
    encapsulation=yes
    leftprotoport=udp/6081
    rightprotoport=udp

conn gnv-out-1
    left=192.0.2.1
    right=192.0.2.2
    authby=secret
    encapsulation=yes
    leftprotoport=udp
    rightprotoport=udp/6081

conn gr-1
    left=192.0.2.1
    right=192.0.2.2
    authby=secret
    leftprotoport=gre
    rightprotoport=gre

`
	if got := renderConf(l, "0/1", ts); got != want {
		t.Errorf("ipsec.conf:\n%s\nwant:\n%s", got, want)
	}
	if got, want := renderSecrets(ts), fileHeader+"%any 192.0.2.2 : PSK \"swordfish\"\n%any 192.0.2.2 : PSK \"swordfish\"\n"; got != want {
		t.Errorf("ipsec.secrets:\n%s\nwant:\n%s", got, want)
	}
}

func TestRenderCertificates(t *testing.T) {
	l := Layout{DefaultConn: true, Version: Version{Major: 5}}
	self := renderConns(l, tun("vx", tunnel.TypeVXLAN, tunnel.AuthSelfSigned), nil)
	want := `conn vx-in-1
    left=192.0.2.1
    right=192.0.2.2
    leftid=@a
    rightid=@b
    leftcert="ovs_certkey_a"
    rightcert="ovs_cert_b"
    leftrsasigkey=%cert
    leftprotoport=udp/4789
    rightprotoport=udp
`
	if !strings.HasPrefix(self, want) {
		t.Errorf("self-signed:\n%s\nwant prefix:\n%s", self, want)
	}
	ca := renderConns(l, tun("gr", tunnel.TypeGRE, tunnel.AuthCASigned), nil)
	want = `conn gr-1
    left=192.0.2.1
    right=192.0.2.2
    leftid=@a
    rightid=@b
    leftcert="ovs_certkey_a"
    leftrsasigkey=%cert
    rightca=%same
    leftprotoport=gre
    rightprotoport=gre

`
	if ca != want {
		t.Errorf("CA-signed:\n%s\nwant:\n%s", ca, want)
	}
	// Libreswan 5 made keyingtries obsolete (92c6d2987).
	if h := l.header(); strings.Contains(h, "keyingtries") {
		t.Errorf("libreswan 5 header has keyingtries:\n%s", h)
	}
	if got := renderSecrets([]tunnel.Tunnel{tun("gr", tunnel.TypeGRE, tunnel.AuthCASigned)}); got != fileHeader {
		t.Errorf("certificate modes write no secrets, got:\n%s", got)
	}
}

// --root-ipsec-conf: no config setup or %default, every conn carries the
// base and crypto lines; --use-default-crypto drops the crypto lines.
func TestRenderSubConfig(t *testing.T) {
	sub := Layout{Version: v4}
	got := renderConf(sub, "", []tunnel.Tunnel{tun("gnv", tunnel.TypeGeneve, tunnel.AuthPSK)})
	if strings.Contains(got, "%default") || strings.Contains(got, "config setup") {
		t.Errorf("sub-config has a default conn:\n%s", got)
	}
	// Upstream's test: 6 crypto lines for one geneve tunnel.
	n := 0
	for _, line := range strings.Split(got, "\n") {
		if s := strings.TrimSpace(line); strings.HasPrefix(s, "ike=") || strings.HasPrefix(s, "esp=") || strings.HasPrefix(s, "ikev2=") {
			n++
		}
	}
	if n != 6 || strings.Count(got, "type=transport") != 2 || strings.Count(got, "keyingtries=%forever") != 2 {
		t.Errorf("sub-config has %d crypto lines:\n%s", n, got)
	}
	// A tunnel's own ike= replaces the generic one (no duplicate keyword).
	own := renderConf(sub, "", []tunnel.Tunnel{tun("gnv", tunnel.TypeGeneve, tunnel.AuthPSK, tunnel.Option{Key: "ike", Value: "aes256-sha2"})})
	if strings.Count(own, "ike=") != 2 || !strings.Contains(own, "ike=aes256-sha2") {
		t.Errorf("own ike=:\n%s", own)
	}
	dc := renderConf(Layout{Version: v4, DefaultCrypto: true}, "", []tunnel.Tunnel{tun("gnv", tunnel.TypeGeneve, tunnel.AuthPSK)})
	if strings.Contains(dc, "ike=") || strings.Contains(dc, "esp=") || strings.Contains(dc, "ikev2=") {
		t.Errorf("default crypto:\n%s", dc)
	}
	dd := Layout{DefaultConn: true, DefaultCrypto: true, Version: v4}.header()
	if !strings.Contains(dd, "conn %default") || strings.Contains(dd, "ike=") {
		t.Errorf("default conn, default crypto:\n%s", dd)
	}
}

func TestRenderIPv6AndDefaultRoute(t *testing.T) {
	v6 := tun("v6", tunnel.TypeGeneve, tunnel.AuthPSK)
	v6.RemoteIP, v6.Remote = "fd01::102", netip.MustParseAddr("fd01::102")
	v6.LocalIP, v6.Local = tunnel.DefaultRoute, netip.Addr{}
	got := renderConns(Layout{DefaultConn: true, Version: v4}, v6, nil)
	if !strings.Contains(got, "    hostaddrfamily=ipv6\n    clientaddrfamily=ipv6\n    left=%defaultroute\n    right=fd01::102\n") {
		t.Errorf("IPv6:\n%s", got)
	}
}

// Nothing from the database adds a line or keyword to ipsec.conf.
func TestRefusesInjection(t *testing.T) {
	bad := []tunnel.Option{
		{Key: "encapsulation", Value: "yes\nconn evil"},
		{Key: "type", Value: "passthrough"},
		{Key: "authby", Value: "never"},
		{Key: "leftsubnet", Value: "0.0.0.0/0"},
		{Key: "mark", Value: "1/1"},
		{Key: "x y", Value: "1"},
		{Key: "dpddelay", Value: `"30"`},
	}
	kept, refused := customOptions(tun("t", tunnel.TypeGRE, tunnel.AuthPSK, append(bad, tunnel.Option{Key: "dpddelay", Value: "30s"})...))
	if len(kept) != 1 || kept[0].Key != "dpddelay" || len(refused) != len(bad) {
		t.Errorf("kept %v, refused %v", kept, refused)
	}
	for _, tc := range []func(*tunnel.Tunnel){
		func(t *tunnel.Tunnel) { t.Name = "a\nconn b" },
		func(t *tunnel.Tunnel) { t.RemoteIP, t.Remote = "peer.example", netip.Addr{} },
		func(t *tunnel.Tunnel) { t.LocalIP, t.Local = "flow", netip.Addr{} },
		func(t *tunnel.Tunnel) { t.Auth, t.LocalName, t.RemoteName = tunnel.AuthCASigned, "a id:123", "b" },
		func(t *tunnel.Tunnel) { t.Auth, t.LocalName, t.RemoteName = tunnel.AuthCASigned, "a", `b"` },
		func(t *tunnel.Tunnel) { t.State = tunnel.StateInvalid },
	} {
		x := tun("t", tunnel.TypeGRE, tunnel.AuthPSK)
		tc(&x)
		if err := checkTunnel(x); err == nil {
			t.Errorf("checkTunnel accepted %+v", x)
		}
	}
	if err := checkSKBMark("0/1\nconn x"); err == nil {
		t.Error("checkSKBMark accepted a newline")
	}
	for _, m := range []string{"", "0/1", "1/1", "0x10/0xff", "5"} {
		if err := checkSKBMark(m); err != nil {
			t.Errorf("checkSKBMark(%q): %v", m, err)
		}
	}
	// A PSK the quoted form cannot carry is written in base64.
	p := tun("t", tunnel.TypeGRE, tunnel.AuthPSK)
	p.PSK = tunnel.NewSecret("sw\"ord\nfish")
	if got := renderSecrets([]tunnel.Tunnel{p}); !strings.Contains(got, "PSK 0s") || strings.Count(got, "\n") != 3 {
		t.Errorf("secrets:\n%s", got)
	}
}
