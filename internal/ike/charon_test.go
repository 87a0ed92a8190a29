// Interoperability with strongSwan's charon 5.9.8 in network namespaces:
// ovnsec as initiator and responder, PSK and certificates, MODP-2048 and
// Curve25519, forced UDP encapsulation, rekeying, deletion, dead peer
// detection and the authentication failures with their reasons.
//
// Child SAs use tunnel mode between /32 inner addresses so that charon's
// kernel-libipsec can install them (it has no transport mode, and this
// kernel has no ESP): `swanctl --list-sas` then shows INSTALLED.

package ike

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/esp"
)

// startOvnsec runs an Engine with its sockets in iket-a.
func startOvnsec(t *testing.T, mod func(*Config)) *side {
	t.Helper()
	s := &side{rec: &Recorder{}, ip: mustAddr(ipA)}
	cfg := Config{Local: s.ip, Handler: s.rec, Logger: testLogger()}
	if mod != nil {
		mod(&cfg)
	}
	inNetns(t, nsA, func() {
		e, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s.e = e
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.e.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func charonPeer(initiate bool) Peer {
	return Peer{
		Name: "charon", Local: mustAddr(ipA), Remote: mustAddr(ipB),
		LocalID: idA, RemoteID: idB,
		Children: []ChildConfig{{Name: "tun", Mode: esp.Tunnel,
			LocalTS:  []TrafficSelector{PrefixTS(netip.MustParsePrefix(innerA+"/32"), 0)},
			RemoteTS: []TrafficSelector{PrefixTS(netip.MustParsePrefix(innerB+"/32"), 0)}}},
		Initiate: initiate,
	}
}

const testPSK = "interop-psk-9f8e7d6c5b4a"

// checkUp waits until both sides have the IKE SA and the child.
func checkUp(t *testing.T, c *charon, s *side, wantCharon ...string) PeerStatus {
	t.Helper()
	want := append([]string{"ESTABLISHED", "INSTALLED, TUNNEL"}, wantCharon...)
	out, ok := c.waitSAs(15*time.Second, want...)
	if !ok {
		t.Fatalf("charon SAs lack %q:\n%s\novnsec status: %+v", want, out, s.e.Status("charon"))
	}
	st := waitUp(t, s, "charon")
	if testing.Verbose() {
		t.Logf("charon --list-sas:\n%s", out)
	}
	if !strings.Contains(out, st.SPIi.String()) || !strings.Contains(out, st.SPIr.String()) {
		t.Errorf("charon's IKE SA is not ours (%s/%s):\n%s", st.SPIi, st.SPIr, out)
	}
	ch := st.Children[0]
	if !strings.Contains(out, strings.TrimPrefix(ch.InSPI.String(), "0x")) || !strings.Contains(out, strings.TrimPrefix(ch.OutSPI.String(), "0x")) {
		t.Errorf("charon's child SPIs are not ours (in %s out %s):\n%s", ch.InSPI, ch.OutSPI, out)
	}
	return st
}

func TestCharonPSK(t *testing.T) {
	setupNetns(t)
	for _, tc := range []struct {
		name       string
		initiator  string // "ovnsec" or "charon"
		charonProp string
		ourProp    []string
		encap      bool // charon encap = yes
		force      bool // our ForceEncap
		ipIDs      bool // no ids configured: IP address identities (OVS PSK mode)
		wantAlg    string
	}{
		{name: "ovnsec-initiates-modp2048", initiator: "ovnsec", charonProp: "aes256gcm16-prfsha256-modp2048", wantAlg: "MODP_2048"},
		{name: "charon-initiates-modp2048", initiator: "charon", charonProp: "aes256gcm16-prfsha256-modp2048", wantAlg: "MODP_2048"},
		{name: "ovnsec-initiates-x25519", initiator: "ovnsec", charonProp: "aes256gcm16-prfsha256-x25519", wantAlg: "CURVE_25519"},
		{name: "charon-initiates-x25519", initiator: "charon", charonProp: "aes256gcm16-prfsha256-x25519", wantAlg: "CURVE_25519"},
		{name: "charon-encap-yes", initiator: "charon", charonProp: "aes256gcm16-prfsha256-x25519", encap: true, wantAlg: "CURVE_25519"},
		{name: "ovnsec-force-encap", initiator: "ovnsec", charonProp: "aes256gcm16-prfsha256-modp2048", force: true, wantAlg: "MODP_2048"},
		{name: "ip-ids-ovnsec-initiates", initiator: "ovnsec", charonProp: "aes256gcm16-prfsha256-modp2048", ipIDs: true, wantAlg: "MODP_2048"},
		{name: "ip-ids-charon-initiates", initiator: "charon", charonProp: "aes256gcm16-prfsha256-modp2048", ipIDs: true, wantAlg: "MODP_2048"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCharon(t)
			s := startOvnsec(t, nil)
			c.load(swanConf{proposals: tc.charonProp, encap: tc.encap, auth: "psk", psk: testPSK, ipIDs: tc.ipIDs}.String())
			p := charonPeer(tc.initiator == "ovnsec")
			if tc.ipIDs {
				p.LocalID, p.RemoteID = "", ""
			}
			p.Auth.PSK = []byte(testPSK)
			p.IKEProposals = tc.ourProp
			p.ForceEncap = tc.force
			if err := s.e.AddPeer(p); err != nil {
				t.Fatal(err)
			}
			if tc.initiator == "charon" {
				c.swanctl(false, "--initiate", "--child", "tun", "--timeout", "10")
			}
			st := checkUp(t, c, s)
			if !strings.Contains(st.Algorithms, tc.wantAlg) {
				t.Errorf("IKE algorithms %s, want %s", st.Algorithms, tc.wantAlg)
			}
			if tc.encap || tc.force {
				if !st.Encap {
					t.Errorf("ovnsec does not use UDP encapsulation: %+v", st)
				}
				evs := s.rec.Events()
				if len(evs) == 0 || evs[0].SA.Encap.Type != esp.EncapUDP || evs[0].SA.Remote.Port() != 4500 {
					t.Errorf("child SA not UDP-encapsulated to 4500: %+v", evs)
				}
			}
		})
	}
}
