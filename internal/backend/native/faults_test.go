package native

// Fault injection: every way Ensure (and Remove) can fail, driven through
// the reconciler as ovnsecd drives the backend, on a first pass and on a
// live tunnel whose options change. After every pass the policy set br-phy
// holds must still steer and drop the victim's tunnel packets, and the
// hook must hold no SA that would let them through.

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/ike"
	"github.com/ovnsec/ovnsec/internal/reconcile"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// bridgeBlocks reports whether br-phy's policies steer and drop t's tunnel
// packets (a protected policy for its remote, protocol and port).
func bridgeBlocks(ps []ovsbridge.Policy, t tunnel.Tunnel) bool {
	if !t.Remote.IsValid() {
		return false
	}
	// t.DstPort is the port ovs-vswitchd uses, even 0.
	want := ovsbridge.Policy{PeerIP: t.Remote, Proto: ovsbridge.Proto(t.Type), DstPort: t.DstPort, ExactPort: true}
	for _, p := range ps {
		if p.PeerIP == want.PeerIP && p.Proto == want.Proto && p.Port() == want.Port() && p.Mode == ovsbridge.ModeProtected {
			return true
		}
	}
	return false
}

func caTunnel(version int) tunnel.Tunnel {
	t := geneveTunnel(version)
	t.Auth, t.PSK = tunnel.AuthCASigned, tunnel.Secret{}
	t.Certificate, t.PrivateKey, t.CACert, t.LocalName, t.RemoteName = "/c.pem", "/k.pem", "/ca.pem", "hv1", "hv2"
	return t
}

// faultCase breaks the victim tunnel (or the world around it) one way.
type faultCase struct {
	name string
	// mutate turns a working configuration into the broken one.
	mutate func(t *tunnel.Tunnel)
	// inject breaks a part of the backend before the pass (optional).
	inject func(r *rig)
	// others are tunnels desired beside the victim (optional).
	others []tunnel.Tunnel
}

func faultCases() []faultCase {
	opt := func(k, v string) func(*tunnel.Tunnel) {
		return func(t *tunnel.Tunnel) { t.CustomOptions = append(t.CustomOptions, tunnel.Option{Key: k, Value: v}) }
	}
	sameRemote := geneveTunnel(1)
	sameRemote.Name, sameRemote.Type, sameRemote.DstPort = "a-first", tunnel.TypeVXLAN, 4789
	return []faultCase{
		{name: "unreadable ca_cert", mutate: func(t *tunnel.Tunnel) { *t = withVersion(caTunnel(1), t.Version); t.CACert = "/missing.pem" }},
		{name: "unreadable certificate", mutate: func(t *tunnel.Tunnel) { *t = withVersion(caTunnel(1), t.Version); t.Certificate = "/missing.pem" }},
		{name: "unreadable private_key", mutate: func(t *tunnel.Tunnel) { *t = withVersion(caTunnel(1), t.Version); t.PrivateKey = "/missing.pem" }},
		{name: "unreadable remote_cert", mutate: func(t *tunnel.Tunnel) {
			*t = withVersion(caTunnel(1), t.Version)
			t.Auth, t.CACert, t.RemoteCert = tunnel.AuthSelfSigned, "", "/missing.pem"
		}},
		{name: "local_ip is not br-phy's address", mutate: func(t *tunnel.Tunnel) { t.LocalIP = "198.51.100.9" }},
		{name: "unparseable lifetime", mutate: opt("ikelifetime", "soon")},
		{name: "unparseable encapsulation", mutate: opt("encapsulation", "maybe")},
		{name: "IKE engine refuses the peer (unparseable ipsec_ike)", mutate: opt("ike", "aes256-sha256-modp2048"),
			inject: func(r *rig) { r.eng.addErr = errors.New("ike: peer: proposal \"aes256-sha256-modp2048\": unsupported") }},
		{name: "second tunnel to the same remote", mutate: func(t *tunnel.Tunnel) {}, others: []tunnel.Tunnel{sameRemote}},
		{name: "dst_port that ovs-vswitchd reads as UDP port 0", mutate: func(t *tunnel.Tunnel) { t.DstPort = 0 }},
		{name: "IPv6 remote", mutate: func(t *tunnel.Tunnel) {
			t.RemoteIP, t.AddressFamily, t.LocalIP = "2001:db8::2", "IPv6", tunnel.DefaultRoute
		}},
		{name: "br-phy install fails after the guard", mutate: func(t *tunnel.Tunnel) {
			// Forced encapsulation: the tunnel's policy differs from its guard,
			// so Ensure must install br-phy again.
			t.DstPort = 6082
			opt("encapsulation", "yes")(t)
		},
			inject: func(r *rig) { r.att.failFrom = r.att.calls + 2 }},
	}
}

func withVersion(t tunnel.Tunnel, v int) tunnel.Tunnel { t.Version = v; return t }

func TestFaultInjectionEnsureStaysBlocked(t *testing.T) {
	for _, live := range []bool{false, true} {
		for _, fc := range faultCases() {
			name := "first pass/" + fc.name
			if live {
				name = "live tunnel changed/" + fc.name
			}
			t.Run(name, func(t *testing.T) {
				r := newRig(t)
				rec := reconcile.New(r.b, slog.New(slog.DiscardHandler), reconcile.Options{Clock: r.clk})
				victim := geneveTunnel(1)
				if live {
					// Up and carrying traffic under version 1.
					rec.SetDesired([]tunnel.Tunnel{victim})
					rec.Pass(ctx)
					r.eng.handler.HandleChildSA(ike.ChildEstablished, child(t, "ovn-b-0-1", "ovn-b-0-out-1", 0x1001, 0x2001, 1))
					if r.b.hook.Table().Outbound(remote) == nil {
						t.Fatal("setup: no outbound SA for the live tunnel")
					}
					victim.Version = 2
				}
				fc.mutate(&victim)
				setAddrs(&victim)
				if fc.inject != nil {
					fc.inject(r)
				}
				rec.SetDesired(append([]tunnel.Tunnel{victim}, fc.others...))
				for pass := 1; pass <= 3; pass++ {
					rec.Pass(ctx)
					r.advance(time.Minute) // past every back-off
					for _, d := range append([]tunnel.Tunnel{victim}, fc.others...) {
						if got := r.att.get(); !bridgeBlocks(got, d) {
							t.Fatalf("pass %d: br-phy policies %+v do not block %s's packets to %s", pass, got, d.Name, d.RemoteIP)
						}
					}
					if a := victim.Remote; a.Is4() && r.b.hook.Table().Outbound(a) != nil {
						t.Fatalf("pass %d: an outbound SA of the old configuration still carries the broken tunnel's packets", pass)
					}
				}
				// The tunnel that failed (the victim, or for two tunnels to
				// one remote whichever came second) shows as blocked.
				views, _ := rec.View()
				failed := 0
				for _, v := range views {
					if v.LastErr == nil {
						continue
					}
					failed++
					if state, reason := summary(v, nil); state != "blocked" || reason == "" {
						t.Errorf("%s: tunnels/show Status = %q: %q, want blocked with the reason", v.Tunnel.Name, state, reason)
					}
				}
				if failed != 1 {
					t.Errorf("%d tunnels failed, want exactly 1", failed)
				}
			})
		}
	}
}

// Remove paths: an INVALID tunnel's SAs are removed but it stays blocked,
// even when re-installing br-phy's table fails.
func TestFaultInjectionRemoveStaysBlocked(t *testing.T) {
	for _, failInstall := range []bool{false, true} {
		t.Run("install fails="+map[bool]string{false: "no", true: "yes"}[failInstall], func(t *testing.T) {
			r := newRig(t)
			rec := reconcile.New(r.b, slog.New(slog.DiscardHandler), reconcile.Options{Clock: r.clk})
			good := geneveTunnel(1)
			rec.SetDesired([]tunnel.Tunnel{good})
			rec.Pass(ctx)
			r.eng.handler.HandleChildSA(ike.ChildEstablished, child(t, "ovn-b-0-1", "ovn-b-0-out-1", 0x1001, 0x2001, 1))
			bad := geneveTunnel(2)
			bad.State, bad.Reason, bad.PSK = tunnel.StateInvalid, ": must choose a authentication method", tunnel.Secret{}
			if failInstall {
				r.att.failFrom = r.att.calls + 1
			}
			rec.SetDesired([]tunnel.Tunnel{bad})
			for pass := 1; pass <= 2; pass++ {
				rec.Pass(ctx)
				r.advance(time.Minute)
				if !bridgeBlocks(r.att.get(), bad) {
					t.Fatalf("pass %d: policies %+v", pass, r.att.get())
				}
				if r.b.hook.Table().Outbound(remote) != nil {
					t.Fatalf("pass %d: the invalid tunnel's outbound SA is still installed", pass)
				}
			}
			views, _ := rec.View()
			state, reason := summary(views[0], nil)
			if state != "invalid" || !strings.Contains(reason, "blocked") {
				t.Errorf("Status = %q: %q", state, reason)
			}
		})
	}
}

// summary is a view's Status as the two strings tunnels/show prints.
func summary(v reconcile.TunnelView, backendErr error) (state, reason string) {
	s := v.Summary(backendErr)
	return s.State.String(), s.Detail
}
