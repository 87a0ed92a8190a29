package ovsbridge

import (
	"net/netip"
	"strings"
	"testing"
)

var testBridge = BridgeConfig{NIC: "eth0", Engine: "ovnsec0", Cookie: 0xabcd00}

func TestRulesText(t *testing.T) {
	peer := netip.MustParseAddr("198.51.100.2")
	peer6 := netip.MustParseAddr("2001:db8::2")
	tests := []struct {
		name     string
		policies []Policy
		want     string
	}{
		{
			name: "no policies: engine drop and NORMAL only",
			want: `
cookie=0xabcd07,table=0,priority=50,in_port=ovnsec0,actions=drop
cookie=0xabcd08,table=0,priority=0,actions=NORMAL`,
		},
		{
			name:     "protected geneve, ESP",
			policies: []Policy{{PeerIP: peer, Proto: ProtoGeneve}},
			want: `
cookie=0xabcd01,table=0,priority=200,in_port=LOCAL,udp,nw_dst=198.51.100.2,tp_dst=6081,actions=output:ovnsec0
cookie=0xabcd02,table=0,priority=200,in_port=eth0,ip,nw_src=198.51.100.2,nw_proto=50,actions=output:ovnsec0
cookie=0xabcd03,table=0,priority=200,in_port=ovnsec0,ip,nw_dst=198.51.100.2,nw_proto=50,actions=output:eth0
cookie=0xabcd04,table=0,priority=200,in_port=ovnsec0,ip,nw_src=198.51.100.2,actions=LOCAL
cookie=0xabcd06,table=0,priority=150,in_port=ovnsec0,ip,nw_dst=198.51.100.2,actions=drop
cookie=0xabcd05,table=0,priority=100,in_port=eth0,udp,nw_src=198.51.100.2,nw_frag=later,actions=drop
cookie=0xabcd05,table=0,priority=100,in_port=eth0,udp,nw_src=198.51.100.2,tp_dst=6081,actions=drop
cookie=0xabcd07,table=0,priority=50,in_port=ovnsec0,actions=drop
cookie=0xabcd08,table=0,priority=0,actions=NORMAL`,
		},
		{
			name:     "protected vxlan custom port, udp4500",
			policies: []Policy{{PeerIP: peer, Proto: ProtoVXLAN, DstPort: 8472, Encap: EncapUDP4500}},
			want: `
cookie=0xabcd01,table=0,priority=200,in_port=LOCAL,udp,nw_dst=198.51.100.2,tp_dst=8472,actions=output:ovnsec0
cookie=0xabcd02,table=0,priority=200,in_port=eth0,ip,nw_src=198.51.100.2,nw_proto=50,actions=output:ovnsec0
cookie=0xabcd02,table=0,priority=200,in_port=eth0,udp,nw_src=198.51.100.2,tp_dst=4500,actions=output:ovnsec0
cookie=0xabcd03,table=0,priority=200,in_port=ovnsec0,ip,nw_dst=198.51.100.2,nw_proto=50,actions=output:eth0
cookie=0xabcd03,table=0,priority=200,in_port=ovnsec0,udp,nw_dst=198.51.100.2,tp_src=4500,tp_dst=4500,actions=output:eth0
cookie=0xabcd04,table=0,priority=200,in_port=ovnsec0,ip,nw_src=198.51.100.2,actions=LOCAL
cookie=0xabcd06,table=0,priority=150,in_port=ovnsec0,ip,nw_dst=198.51.100.2,actions=drop
cookie=0xabcd05,table=0,priority=100,in_port=eth0,udp,nw_src=198.51.100.2,nw_frag=later,actions=drop
cookie=0xabcd05,table=0,priority=100,in_port=eth0,udp,nw_src=198.51.100.2,tp_dst=8472,actions=drop
cookie=0xabcd07,table=0,priority=50,in_port=ovnsec0,actions=drop
cookie=0xabcd08,table=0,priority=0,actions=NORMAL`,
		},
		{
			name:     "protected geneve, udp4500 to the port a NAT mapped the peer's 4500 to",
			policies: []Policy{{PeerIP: peer, Proto: ProtoGeneve, Encap: EncapUDP4500, EncapPort: 44500}},
			want: `
cookie=0xabcd01,table=0,priority=200,in_port=LOCAL,udp,nw_dst=198.51.100.2,tp_dst=6081,actions=output:ovnsec0
cookie=0xabcd02,table=0,priority=200,in_port=eth0,ip,nw_src=198.51.100.2,nw_proto=50,actions=output:ovnsec0
cookie=0xabcd02,table=0,priority=200,in_port=eth0,udp,nw_src=198.51.100.2,tp_dst=4500,actions=output:ovnsec0
cookie=0xabcd03,table=0,priority=200,in_port=ovnsec0,ip,nw_dst=198.51.100.2,nw_proto=50,actions=output:eth0
cookie=0xabcd03,table=0,priority=200,in_port=ovnsec0,udp,nw_dst=198.51.100.2,tp_src=4500,tp_dst=44500,actions=output:eth0
cookie=0xabcd04,table=0,priority=200,in_port=ovnsec0,ip,nw_src=198.51.100.2,actions=LOCAL
cookie=0xabcd06,table=0,priority=150,in_port=ovnsec0,ip,nw_dst=198.51.100.2,actions=drop
cookie=0xabcd05,table=0,priority=100,in_port=eth0,udp,nw_src=198.51.100.2,nw_frag=later,actions=drop
cookie=0xabcd05,table=0,priority=100,in_port=eth0,udp,nw_src=198.51.100.2,tp_dst=6081,actions=drop
cookie=0xabcd07,table=0,priority=50,in_port=ovnsec0,actions=drop
cookie=0xabcd08,table=0,priority=0,actions=NORMAL`,
		},
		{
			name:     "protected gre: no port, no fragment rule",
			policies: []Policy{{PeerIP: peer, Proto: ProtoGRE, DstPort: 1234}},
			want: `
cookie=0xabcd01,table=0,priority=200,in_port=LOCAL,ip,nw_dst=198.51.100.2,nw_proto=47,actions=output:ovnsec0
cookie=0xabcd02,table=0,priority=200,in_port=eth0,ip,nw_src=198.51.100.2,nw_proto=50,actions=output:ovnsec0
cookie=0xabcd03,table=0,priority=200,in_port=ovnsec0,ip,nw_dst=198.51.100.2,nw_proto=50,actions=output:eth0
cookie=0xabcd04,table=0,priority=200,in_port=ovnsec0,ip,nw_src=198.51.100.2,actions=LOCAL
cookie=0xabcd06,table=0,priority=150,in_port=ovnsec0,ip,nw_dst=198.51.100.2,actions=drop
cookie=0xabcd05,table=0,priority=100,in_port=eth0,ip,nw_src=198.51.100.2,nw_proto=47,actions=drop
cookie=0xabcd07,table=0,priority=50,in_port=ovnsec0,actions=drop
cookie=0xabcd08,table=0,priority=0,actions=NORMAL`,
		},
		{
			name:     "bench passthrough geneve: plaintext both ways, no drops",
			policies: []Policy{{PeerIP: peer, Proto: ProtoGeneve, Mode: ModeBenchPassthrough}},
			want: `
cookie=0xabcd01,table=0,priority=200,in_port=LOCAL,udp,nw_dst=198.51.100.2,tp_dst=6081,actions=output:ovnsec0
cookie=0xabcd02,table=0,priority=200,in_port=eth0,udp,nw_src=198.51.100.2,tp_dst=6081,actions=output:ovnsec0
cookie=0xabcd03,table=0,priority=200,in_port=ovnsec0,ip,nw_dst=198.51.100.2,actions=output:eth0
cookie=0xabcd04,table=0,priority=200,in_port=ovnsec0,ip,nw_src=198.51.100.2,actions=LOCAL
cookie=0xabcd07,table=0,priority=50,in_port=ovnsec0,actions=drop
cookie=0xabcd08,table=0,priority=0,actions=NORMAL`,
		},
		{
			name:     "protected IPv6 geneve",
			policies: []Policy{{PeerIP: peer6, Proto: ProtoGeneve}},
			want: `
cookie=0xabcd01,table=0,priority=200,in_port=LOCAL,udp6,ipv6_dst=2001:db8::2,tp_dst=6081,actions=output:ovnsec0
cookie=0xabcd02,table=0,priority=200,in_port=eth0,ipv6,ipv6_src=2001:db8::2,nw_proto=50,actions=output:ovnsec0
cookie=0xabcd03,table=0,priority=200,in_port=ovnsec0,ipv6,ipv6_dst=2001:db8::2,nw_proto=50,actions=output:eth0
cookie=0xabcd04,table=0,priority=200,in_port=ovnsec0,ipv6,ipv6_src=2001:db8::2,actions=LOCAL
cookie=0xabcd06,table=0,priority=150,in_port=ovnsec0,ipv6,ipv6_dst=2001:db8::2,actions=drop
cookie=0xabcd05,table=0,priority=100,in_port=eth0,udp6,ipv6_src=2001:db8::2,nw_frag=later,actions=drop
cookie=0xabcd05,table=0,priority=100,in_port=eth0,udp6,ipv6_src=2001:db8::2,tp_dst=6081,actions=drop
cookie=0xabcd07,table=0,priority=50,in_port=ovnsec0,actions=drop
cookie=0xabcd08,table=0,priority=0,actions=NORMAL`,
		},
		{
			name: "two protocols to one peer share the ESP rules; mapped IPv4 is IPv4",
			policies: []Policy{
				{PeerIP: peer, Proto: ProtoGeneve},
				{PeerIP: netip.MustParseAddr("::ffff:198.51.100.2"), Proto: ProtoVXLAN},
			},
			want: `
cookie=0xabcd01,table=0,priority=200,in_port=LOCAL,udp,nw_dst=198.51.100.2,tp_dst=4789,actions=output:ovnsec0
cookie=0xabcd01,table=0,priority=200,in_port=LOCAL,udp,nw_dst=198.51.100.2,tp_dst=6081,actions=output:ovnsec0
cookie=0xabcd02,table=0,priority=200,in_port=eth0,ip,nw_src=198.51.100.2,nw_proto=50,actions=output:ovnsec0
cookie=0xabcd03,table=0,priority=200,in_port=ovnsec0,ip,nw_dst=198.51.100.2,nw_proto=50,actions=output:eth0
cookie=0xabcd04,table=0,priority=200,in_port=ovnsec0,ip,nw_src=198.51.100.2,actions=LOCAL
cookie=0xabcd06,table=0,priority=150,in_port=ovnsec0,ip,nw_dst=198.51.100.2,actions=drop
cookie=0xabcd05,table=0,priority=100,in_port=eth0,udp,nw_src=198.51.100.2,nw_frag=later,actions=drop
cookie=0xabcd05,table=0,priority=100,in_port=eth0,udp,nw_src=198.51.100.2,tp_dst=4789,actions=drop
cookie=0xabcd05,table=0,priority=100,in_port=eth0,udp,nw_src=198.51.100.2,tp_dst=6081,actions=drop
cookie=0xabcd07,table=0,priority=50,in_port=ovnsec0,actions=drop
cookie=0xabcd08,table=0,priority=0,actions=NORMAL`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			flows, err := Rules(testBridge, tc.policies)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.TrimSpace(Text(flows))
			want := strings.TrimSpace(tc.want)
			if got != want {
				t.Errorf("rules:\n got:\n%s\nwant:\n%s", got, want)
			}
			// Every cookie carries its flow's kind in the low byte.
			for _, f := range flows {
				if f.Cookie()&^kindMask != uint64(testBridge.Cookie) || Kind(f.Cookie()&kindMask) != f.Kind {
					t.Errorf("flow %s: cookie %#x does not encode kind %v", f, f.Cookie(), f.Kind)
				}
			}
		})
	}
}

func TestRulesDeterministic(t *testing.T) {
	a := netip.MustParseAddr("198.51.100.2")
	b := netip.MustParseAddr("198.51.100.3")
	p1 := []Policy{{PeerIP: a, Proto: ProtoGeneve}, {PeerIP: b, Proto: ProtoGRE, Encap: EncapUDP4500}}
	p2 := []Policy{p1[1], p1[0]}
	f1, err1 := Rules(testBridge, p1)
	f2, err2 := Rules(testBridge, p2)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if Text(f1) != Text(f2) {
		t.Errorf("policy order changed the table:\n%s\nvs\n%s", Text(f1), Text(f2))
	}
}

func TestRulesErrors(t *testing.T) {
	peer := netip.MustParseAddr("198.51.100.2")
	tests := []struct {
		name     string
		bridge   BridgeConfig
		policies []Policy
		want     string
	}{
		{"empty NIC", BridgeConfig{Engine: "t", Cookie: 0x100}, nil, "NIC port"},
		{"NIC with comma", BridgeConfig{NIC: "a,b", Engine: "t", Cookie: 0x100}, nil, "NIC port"},
		{"engine LOCAL", BridgeConfig{NIC: "a", Engine: "LOCAL", Cookie: 0x100}, nil, "engine port"},
		{"engine too long", BridgeConfig{NIC: "a", Engine: "abcdefghijklmnop", Cookie: 0x100}, nil, "engine port"},
		{"same ports", BridgeConfig{NIC: "a", Engine: "a", Cookie: 0x100}, nil, "must differ"},
		{"cookie low byte", BridgeConfig{NIC: "a", Engine: "t", Cookie: 0x101}, nil, "low byte"},
		{"cookie zero", BridgeConfig{NIC: "a", Engine: "t"}, nil, "zero"},
		{"no peer", testBridge, []Policy{{Proto: ProtoGeneve}}, "unicast"},
		{"multicast peer", testBridge, []Policy{{PeerIP: netip.MustParseAddr("224.0.0.1"), Proto: ProtoGeneve}}, "unicast"},
		{"zoned peer", testBridge, []Policy{{PeerIP: netip.MustParseAddr("fe80::1%eth0"), Proto: ProtoGeneve}}, "zone"},
		{"stt", testBridge, []Policy{{PeerIP: peer, Proto: "stt"}}, "not supported"},
		{"port 4500", testBridge, []Policy{{PeerIP: peer, Proto: ProtoVXLAN, DstPort: 4500}}, "4500"},
		{"bad encap", testBridge, []Policy{{PeerIP: peer, Proto: ProtoGeneve, Encap: 9}}, "encapsulation"},
		{"bad mode", testBridge, []Policy{{PeerIP: peer, Proto: ProtoGeneve, Mode: 9}}, "mode"},
		{"NAT-T port without ESP-in-UDP", testBridge, []Policy{{PeerIP: peer, Proto: ProtoGeneve, EncapPort: 44500}}, "without ESP-in-UDP"},
		{"NAT-T port is the tunnel port", testBridge, []Policy{{PeerIP: peer, Proto: ProtoGeneve, Encap: EncapUDP4500, EncapPort: 6081}}, "tunnel port"},
		{"NAT-T port is another tunnel's port", testBridge, []Policy{
			{PeerIP: peer, Proto: ProtoGeneve, Encap: EncapUDP4500, EncapPort: 4789},
			{PeerIP: peer, Proto: ProtoVXLAN},
		}, "vxlan tunnel port"},
		{"two NAT-T ports to one peer", testBridge, []Policy{
			{PeerIP: peer, Proto: ProtoGeneve, Encap: EncapUDP4500, EncapPort: 44500},
			{PeerIP: peer, Proto: ProtoVXLAN, Encap: EncapUDP4500},
		}, "one NAT-T port"},
		{"mixed modes", testBridge, []Policy{
			{PeerIP: peer, Proto: ProtoGeneve},
			{PeerIP: peer, Proto: ProtoVXLAN, Mode: ModeBenchPassthrough},
		}, "one mode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Rules(tc.bridge, tc.policies)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Rules() error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestPolicyPort(t *testing.T) {
	tests := []struct {
		p    Policy
		want uint16
	}{
		{Policy{Proto: ProtoGeneve}, 6081},
		{Policy{Proto: ProtoGeneve, DstPort: 7000}, 7000},
		{Policy{Proto: ProtoVXLAN}, 4789},
		{Policy{Proto: ProtoGRE, DstPort: 7000}, 0},
	}
	for _, tc := range tests {
		if got := tc.p.Port(); got != tc.want {
			t.Errorf("%+v.Port() = %d, want %d", tc.p, got, tc.want)
		}
	}
}

func TestKindString(t *testing.T) {
	if KindDropPlaintext.String() != "drop-plaintext" || Kind(99).String() != "kind(99)" {
		t.Errorf("Kind strings: %q %q", KindDropPlaintext, Kind(99))
	}
}

// TestRulesNATPortNothingWider: with a NAT-mapped peer port, the engine may
// send the peer plain ESP and UDP from our 4500 to exactly that port;
// every other engine output to the peer is dropped as a leak, and UDP to
// our 4500 from the peer is steered in whatever its source port.
func TestRulesNATPortNothingWider(t *testing.T) {
	peer := netip.MustParseAddr("198.51.100.2")
	other := netip.MustParseAddr("198.51.100.3")
	flows, err := Rules(testBridge, []Policy{
		{PeerIP: peer, Proto: ProtoGeneve, Encap: EncapUDP4500, EncapPort: 44500},
		{PeerIP: other, Proto: ProtoGeneve, Encap: EncapUDP4500},
	})
	if err != nil {
		t.Fatal(err)
	}
	var toNIC, steerIn []string
	for _, f := range flows {
		if !strings.Contains(f.Match, "nw_dst=198.51.100.2") && !strings.Contains(f.Match, "nw_src=198.51.100.2") {
			continue
		}
		switch f.Kind {
		case KindToNIC:
			toNIC = append(toNIC, f.Match)
		case KindSteerIn:
			steerIn = append(steerIn, f.Match)
		case KindDropEngineLeak:
			if f.Match != "in_port=ovnsec0,ip,nw_dst=198.51.100.2" || f.Priority >= prioSteer {
				t.Errorf("leak drop %s", f)
			}
		}
	}
	wantToNIC := []string{
		"in_port=ovnsec0,ip,nw_dst=198.51.100.2,nw_proto=50",
		"in_port=ovnsec0,udp,nw_dst=198.51.100.2,tp_src=4500,tp_dst=44500",
	}
	if strings.Join(toNIC, " ") != strings.Join(wantToNIC, " ") {
		t.Errorf("to-NIC flows for the NATed peer:\n got %q\nwant %q", toNIC, wantToNIC)
	}
	wantIn := []string{
		"in_port=eth0,ip,nw_src=198.51.100.2,nw_proto=50",
		"in_port=eth0,udp,nw_src=198.51.100.2,tp_dst=4500",
	}
	if strings.Join(steerIn, " ") != strings.Join(wantIn, " ") {
		t.Errorf("steer-in flows for the NATed peer:\n got %q\nwant %q", steerIn, wantIn)
	}
	// The other peer keeps 4500; the mapped port is not opened for it.
	text := Text(flows)
	if !strings.Contains(text, "in_port=ovnsec0,udp,nw_dst=198.51.100.3,tp_src=4500,tp_dst=4500,actions=output:eth0") ||
		strings.Contains(text, "nw_dst=198.51.100.3,tp_src=4500,tp_dst=44500") {
		t.Errorf("rules of the peer without a NAT:\n%s", text)
	}
}

func TestPolicyNATTPort(t *testing.T) {
	tests := []struct {
		p    Policy
		want uint16
	}{
		{Policy{Proto: ProtoGeneve}, 0},
		{Policy{Proto: ProtoGeneve, Encap: EncapUDP4500}, 4500},
		{Policy{Proto: ProtoGeneve, Encap: EncapUDP4500, EncapPort: 44500}, 44500},
		{Policy{Proto: ProtoGeneve, EncapPort: 44500}, 0}, // invalid; Validate refuses it
	}
	for _, tc := range tests {
		if got := tc.p.NATTPort(); got != tc.want {
			t.Errorf("%+v.NATTPort() = %d, want %d", tc.p, got, tc.want)
		}
	}
}
