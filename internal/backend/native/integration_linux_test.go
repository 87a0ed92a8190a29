package native

// End-to-end test of the native backend: two OVS hosts (namespaces
// natv-n-a, natv-n-b) with a Geneve overlay, each running a native Backend
// (real IKE engine bound to the underlay address inside its namespace, real
// br-phy attachment and ESP hook). Ensure with a PSK tunnel on both must
// bring the tunnel up, carry overlay pings as ESP only, and Close without
// cleanup must leave the tunnel closed, not open.

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/ike"
	"github.com/ovnsec/ovnsec/internal/testenv"
	"github.com/ovnsec/ovnsec/internal/tunnel"
	"github.com/ovnsec/ovnsec/test/netns"
)

const itPlaintext = "udp port 6081 or udp port 4789 or ip proto 47"

func TestIntegrationNativeBackendGRE(t *testing.T) { nativeEndToEnd(t, tunnel.TypeGRE, pskAuth) }

// Certificate authentication end to end: self-signed (pinned peer
// certificate) and CA-signed (peer ID = remote_name), and PSK with forced
// ESP-in-UDP, over GRE.
func TestIntegrationNativeBackendCerts(t *testing.T) {
	for _, tc := range []struct {
		name string
		auth authFunc
	}{{"self-signed", selfSignedAuth}, {"ca-signed", caSignedAuth}, {"psk-forced-encapsulation", forcedEncapAuth}} {
		t.Run(tc.name, func(t *testing.T) { nativeEndToEnd(t, tunnel.TypeGRE, tc.auth) })
	}
}

// TestIntegrationNativeBackendGeneve is blocked by internal/ike: as
// responder the engine matches a proposed Child SA to the FIRST configured
// child whose selectors merely intersect it, so the peer's "-in-" proposal
// (local udp/6081 <-> remote udp) is narrowed into our "-in-" child (both
// ports 6081) instead of matching our "-out-" child exactly; the responder
// then has no SA covering its outbound tunnel packets. Run it with
// OVNSEC_NATIVE_UDP_E2E=1 once the engine prefers exact (unnarrowed)
// matches.
func TestIntegrationNativeBackendGeneve(t *testing.T) {
	if os.Getenv("OVNSEC_NATIVE_UDP_E2E") != "1" {
		t.Skip("blocked by internal/ike responder child selection; set OVNSEC_NATIVE_UDP_E2E=1 to run")
	}
	nativeEndToEnd(t, tunnel.TypeGeneve, pskAuth)
}

// authFunc fills the authentication fields of host h's tunnel to peer; dir
// is a scratch directory shared by both hosts' calls.
type authFunc func(t *testing.T, dir string, tun *tunnel.Tunnel, h, peer *netns.OVSHost)

// forcedEncapAuth is PSK with ipsec_encapsulation=yes (ESP-in-UDP 4500,
// IKE_AUTH on 4500 through the engine port).
func forcedEncapAuth(t *testing.T, dir string, tun *tunnel.Tunnel, h, peer *netns.OVSHost) {
	pskAuth(t, dir, tun, h, peer)
	tun.CustomOptions = []tunnel.Option{{Key: "encapsulation", Value: "yes"}}
}

func forced(t tunnel.Tunnel) bool {
	for _, o := range t.CustomOptions {
		if o.Key == "encapsulation" && o.Value == "yes" {
			return true
		}
	}
	return false
}

func pskAuth(t *testing.T, dir string, tun *tunnel.Tunnel, h, peer *netns.OVSHost) {
	tun.Auth, tun.PSK = tunnel.AuthPSK, tunnel.NewSecret("natv-test-psk")
}

func nativeEndToEnd(t *testing.T, typ tunnel.Type, auth authFunc) {
	testenv.Short(t)
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, "tcpdump", "ping")
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		testenv.Missing(t, "/dev/net/tun")
	}
	start := time.Now()
	ov := netns.Overlay{Proto: string(typ), Bridge: "nvint", TunPort: "nvtun", IntPort: "nvov0", Net: netip.MustParsePrefix("203.0.113.0/26")}
	hs := netns.OVSHosts(t, netns.OVSOptions{
		Prefix: "natv-n", Hosts: 2, Underlay: netip.MustParsePrefix("198.51.100.0/24"),
		Phy: "nvphy", Overlays: []netns.Overlay{ov},
	})
	a, b := hs[0], hs[1]
	bes := make([]*Backend, 2)
	for i, h := range hs {
		h := h
		be, err := New(context.Background(), Config{
			Local: h.Underlay, Bridge: "nvphy", NIC: h.Dev, Engine: "nveng",
			OVS:   ovsbridge.OVS{DB: h.DB(), Target: h.Mgmt("nvphy")},
			Netns: h.NsPath(),
			NewIKE: func(c ike.Config) (IKE, error) {
				// The engine's sockets must live in the host's namespace.
				var e *ike.Engine
				err := h.InNetns(func() error {
					var err error
					e, err = ike.New(c)
					return err
				})
				return e, err
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		bes[i] = be
		t.Cleanup(func() { be.Close(context.Background(), true) })
	}
	var port uint16
	if typ == tunnel.TypeGeneve {
		port = 6081
	}
	credDir := t.TempDir()
	tun := func(h, peer *netns.OVSHost) tunnel.Tunnel {
		tt := tunnel.Tunnel{
			Name: "nvtun" + peer.Letter, Version: 1, State: tunnel.StateConfigured, Type: typ,
			LocalIP: h.Underlay.String(), RemoteIP: peer.Underlay.String(), Local: h.Underlay, Remote: peer.Underlay, AddressFamily: "IPv4", DstPort: port,
		}
		auth(t, credDir, &tt, h, peer)
		return tt
	}
	ctx := context.Background()
	if err := bes[0].Ensure(ctx, tun(a, b)); err != nil {
		t.Fatal(err)
	}
	if err := bes[1].Ensure(ctx, tun(b, a)); err != nil {
		t.Fatal(err)
	}
	waitPhase := func(be *Backend, name string) backend.TunnelStatus {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			st, err := be.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			s := st[name]
			if s.Phase == backend.PhaseUp {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("tunnel %s not up after 30s: %+v", name, s)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	sa := waitPhase(bes[0], "nvtunb")
	waitPhase(bes[1], "nvtuna")
	t.Logf("IKE up in %v: %s", time.Since(start).Round(time.Millisecond), strings.Join(sa.Details, " | "))

	dst := b.OverlayAddr["nvint"]
	t.Run("overlay traffic is ESP on the wire", func(t *testing.T) {
		c := a.Capture("")
		deadline := time.Now().Add(15 * time.Second)
		for {
			if ok, _ := a.Ping(dst, 1, 0, time.Second); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no overlay ping reply; hook %+v loop %+v", bes[0].Hook().Stats(), bes[0].Loop().Stats())
			}
		}
		if ok, out := a.Ping(dst, 5, 1000, time.Second); !ok {
			t.Errorf("ping: %s", out)
		}
		if n := c.Count(itPlaintext); n != 0 {
			t.Errorf("%d plaintext tunnel packets on the wire:\n%s", n, c.Dump(itPlaintext, 5))
		}
		espFilter := "ip proto 50 and src host " + b.Underlay.String()
		if forced(tun(a, b)) {
			// ESP-in-UDP only: the 1000-byte pings, not IKE keepalives.
			espFilter = "udp port 4500 and greater 1000 and src host " + b.Underlay.String()
			if n := c.Count("ip proto 50"); n != 0 {
				t.Errorf("%d plain ESP packets with forced encapsulation", n)
			}
		}
		if n := c.Count(espFilter); n < 5 {
			t.Errorf("%d ESP packets from b (%s), want at least 5", n, espFilter)
		}
		rep, err := bes[0].Report(ctx, "ipsec/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, conn := range tun(a, b).Conns() {
			if !strings.Contains(rep, "'"+conn+"'") {
				t.Errorf("ipsec/status lacks %s: %s", conn, rep)
			}
		}
		st, _ := bes[0].Status(ctx)
		if d := strings.Join(st["nvtunb"].Details, "\n"); !strings.Contains(d, "out ") || strings.Contains(d, "drops auth") {
			t.Errorf("details:\n%s", d)
		}
	})

	t.Run("close without cleanup: fail closed", func(t *testing.T) {
		if err := bes[0].Close(ctx, false); err != nil {
			t.Fatal(err)
		}
		c := a.Capture("")
		if ok, _ := a.Ping(dst, 2, 0, time.Second); ok {
			t.Error("overlay ping passed with the backend closed")
		}
		if n := c.Count(itPlaintext + " and src host " + a.Underlay.String()); n != 0 {
			t.Errorf("%d plaintext tunnel packets left a after Close(no cleanup)", n)
		}
	})
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}
