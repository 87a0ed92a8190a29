package esphook

// End-to-end test of the ESP hook on the OVS side-car attachment (issue 5,
// acceptance 3): two hosts (namespaces natv-a and natv-b) with their own
// ovsdb-server and ovs-vswitchd, br-phy "nvphy" holding 198.51.100.x, and
// Geneve, VXLAN and GRE overlays in 203.0.113.0/24; ovsbridge.Attach and
// this hook with static keys on both.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/testenv"
	"github.com/ovnsec/ovnsec/test/netns"
)

var itOverlays = []netns.Overlay{
	{Proto: "geneve", Bridge: "nvint", TunPort: "nvgnv", IntPort: "nvov0", Net: netip.MustParsePrefix("203.0.113.0/26")},
	{Proto: "vxlan", Bridge: "nvvx", TunPort: "nvvxp", IntPort: "nvovx", Net: netip.MustParsePrefix("203.0.113.64/26")},
	{Proto: "gre", Bridge: "nvgre", TunPort: "nvgrp", IntPort: "nvogr", Net: netip.MustParsePrefix("203.0.113.128/26")},
}

const (
	itEngine    = "nveng"
	itPlaintext = "udp port 6081 or udp port 4789 or ip proto 47"
)

type itHost struct {
	*netns.OVSHost
	peer     *itHost
	att      *ovsbridge.Attachment
	hook     *Hook
	loop     *ovsbridge.Loop
	loopStop context.CancelFunc
	loopDone chan error
	attStop  context.CancelFunc
	attDone  chan error
	peers    []ovsbridge.Policy // last policies set
}

func (h *itHost) policies(encap ovsbridge.Encap) []ovsbridge.Policy {
	var ps []ovsbridge.Policy
	for _, o := range itOverlays {
		ps = append(ps, ovsbridge.Policy{PeerIP: h.peer.Underlay, Proto: ovsbridge.Proto(o.Proto), Encap: encap})
	}
	return ps
}

// setPolicies updates hook, loop and bridge in that order (the hook and
// loop must know a peer before its frames are steered).
func (h *itHost) setPolicies(t *testing.T, encap ovsbridge.Encap) {
	t.Helper()
	ps := h.policies(encap)
	if err := h.hook.SetPolicies(h.Underlay, ps); err != nil {
		t.Fatal(err)
	}
	h.loop.SetPeers(ps)
	h.peers = ps
	if err := h.att.SetPolicies(context.Background(), ps); err != nil {
		t.Fatal(err)
	}
}

func (h *itHost) startLoop(t *testing.T) {
	t.Helper()
	tap, err := ovsbridge.OpenTAP(itEngine, h.NsPath())
	if err != nil {
		t.Fatal(err)
	}
	l, err := ovsbridge.NewLoop(ovsbridge.LoopConfig{Device: tap, Hook: h.hook})
	if err != nil {
		t.Fatal(err)
	}
	l.SetPeers(h.peers)
	h.hook.SetReleaser(l)
	ctx, cancel := context.WithCancel(context.Background())
	h.loop, h.loopStop, h.loopDone = l, cancel, make(chan error, 1)
	go func() { h.loopDone <- l.Run(ctx) }()
}

func (h *itHost) stopLoop(t *testing.T) {
	if h.loopStop == nil {
		return
	}
	h.loopStop()
	if err := <-h.loopDone; err != nil {
		t.Errorf("%s: packet loop: %v", h.Name, err)
	}
	h.loopStop = nil
}

func (h *itHost) startWatcher() {
	ctx, cancel := context.WithCancel(context.Background())
	h.attStop, h.attDone = cancel, make(chan error, 1)
	go func() { h.attDone <- h.att.Run(ctx) }()
}

func (h *itHost) stopWatcher(t *testing.T) {
	if h.attStop == nil {
		return
	}
	h.attStop()
	if err := <-h.attDone; err != nil {
		t.Errorf("%s: watcher: %v", h.Name, err)
	}
	h.attStop = nil
}

// installKeys installs a static SA pair between a and b with fresh SPIs
// (generation gen) and the given encapsulation.
func installKeys(t *testing.T, a, b *itHost, gen byte, encap esp.Encap) {
	t.Helper()
	ab, ba := esp.SPI(0x1000+uint32(gen)), esp.SPI(0x2000+uint32(gen))
	if err := b.hook.InstallStatic(a.Underlay, StaticSA{InSPI: ab, OutSPI: ba, InKey: key(gen), OutKey: key(gen + 100), Encap: encap}); err != nil {
		t.Fatal(err)
	}
	if err := a.hook.InstallStatic(b.Underlay, StaticSA{InSPI: ba, OutSPI: ab, InKey: key(gen + 100), OutKey: key(gen), Encap: encap}); err != nil {
		t.Fatal(err)
	}
}

func pingUntil(t *testing.T, h *itHost, dst netip.Addr, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, out := h.Ping(dst, 1, 0, time.Second)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no ping reply from %s within %v:\n%s\nhook %+v\nloop %+v", h.Name, dst, timeout, out, h.hook.Stats(), h.loop.Stats())
		}
	}
}

func TestIntegrationESPOverOVS(t *testing.T) {
	testenv.Short(t)
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, "tcpdump", "ping", "iperf3")
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		testenv.Missing(t, "/dev/net/tun")
	}
	start := time.Now()
	ctx := context.Background()
	hs := netns.OVSHosts(t, netns.OVSOptions{
		Prefix: "natv", Hosts: 2, Underlay: netip.MustParsePrefix("198.51.100.0/24"),
		Phy: "nvphy", Overlays: itOverlays,
	})
	a, b := &itHost{OVSHost: hs[0]}, &itHost{OVSHost: hs[1]}
	a.peer, b.peer = b, a
	for _, h := range []*itHost{a, b} {
		att, err := ovsbridge.Attach(ctx, ovsbridge.Config{
			Bridge: "nvphy", NIC: h.Dev, Engine: itEngine,
			OVS:   ovsbridge.OVS{DB: h.DB(), Target: h.Mgmt("nvphy")},
			Netns: h.NsPath(), CheckInterval: 200 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		h.att = att
		for _, o := range itOverlays {
			mtu, err := att.OverlayMTU(ovsbridge.Policy{PeerIP: h.peer.Underlay, Proto: ovsbridge.Proto(o.Proto), Encap: ovsbridge.EncapUDP4500})
			if err != nil {
				t.Fatal(err)
			}
			h.SetOverlayMTU(o, mtu)
		}
		h.hook = New(Config{})
		h.startLoop(t)
		t.Cleanup(func() { h.stopLoop(t) })
		h.setPolicies(t, ovsbridge.EncapNone)
		h.startWatcher()
		t.Cleanup(func() { h.stopWatcher(t) })
	}
	installKeys(t, a, b, 1, esp.Encap{})
	t.Logf("two hosts attached in %v", time.Since(start).Round(time.Millisecond))

	geneveB := b.OverlayAddr["nvint"]

	t.Run("geneve over ESP: ping, iperf3, only ESP on the wire", func(t *testing.T) {
		capA := a.Capture("")
		pingUntil(t, a, geneveB, 15*time.Second)
		// Largest DF ping the overlay MTU allows (ICMP 8 + IP 20).
		ovMTU, _ := a.att.OverlayMTU(ovsbridge.Policy{PeerIP: b.Underlay, Proto: ovsbridge.ProtoGeneve, Encap: ovsbridge.EncapUDP4500})
		if ok, out := a.Ping(geneveB, 3, ovMTU-28, 2*time.Second); !ok {
			t.Errorf("DF ping of %d bytes at overlay MTU %d failed:\n%s", ovMTU-28, ovMTU, out)
		}
		srv := exec.Command("ip", "netns", "exec", b.Name, "iperf3", "-s", "-1", "-B", geneveB.String())
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
		time.Sleep(300 * time.Millisecond)
		out, err := a.Exec("iperf3", "-c", geneveB.String(), "-t", "3", "-J")
		if err != nil {
			t.Fatalf("iperf3: %v\n%s", err, out)
		}
		var res struct {
			End struct {
				SumReceived struct {
					BitsPerSecond float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			} `json:"end"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil || res.End.SumReceived.BitsPerSecond <= 0 {
			t.Fatalf("iperf3 result: %v\n%.500s", err, out)
		}
		t.Logf("iperf3 over Geneve+ESP: %.0f Mbit/s", res.End.SumReceived.BitsPerSecond/1e6)
		plain, espA, espB := capA.Count(itPlaintext), capA.Count("ip proto 50 and src host "+a.Underlay.String()), capA.Count("ip proto 50 and src host "+b.Underlay.String())
		t.Logf("wire at a: %d plaintext tunnel, %d ESP from a, %d ESP from b", plain, espA, espB)
		if plain != 0 {
			t.Errorf("%d plaintext tunnel packets on the wire:\n%s", plain, capA.Dump(itPlaintext, 5))
		}
		if espA < 100 || espB < 100 {
			t.Errorf("too little ESP on the wire: %d from a, %d from b", espA, espB)
		}
		for _, h := range []*itHost{a, b} {
			s := h.hook.Stats()
			if s.Sealed == 0 || s.Opened == 0 || s.Drops["drop_auth"] != 0 || s.Drops["drop_inner_policy"] != 0 {
				t.Errorf("%s: hook stats %+v", h.Name, s)
			}
			t.Logf("%s: hook %+v", h.Name, s)
		}
	})

	t.Run("forged plaintext Geneve from the peer's address is dropped by OVS and counted", func(t *testing.T) {
		before, err := a.att.PlaintextDrops(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// b's own kernel would have its Geneve sealed by b's engine, so
		// the forgery goes straight onto b's wire with AF_PACKET.
		const forged = 5
		mac, err := a.Exec("cat", "/sys/class/net/nvphy/address")
		if err != nil {
			t.Fatal(err)
		}
		hw, err := net.ParseMAC(strings.TrimSpace(mac))
		if err != nil {
			t.Fatal(err)
		}
		for _, proto := range []struct {
			p    uint8
			port uint16
		}{{protoUDP, 6081}, {protoUDP, 4789}, {protoGRE, 0}} {
			f := frame(b.Underlay, a.Underlay, proto.p, proto.port, 60)
			copy(f[0:6], hw)
			if err := injectRaw(b, f, forged); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			n, err := a.att.PlaintextDrops(ctx)
			if err == nil && n >= before+3*forged {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("PlaintextDrops = %d (%v), want at least %d", n, err, before+3*forged)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("no SA: frames held, nothing leaves in plaintext, released once keyed", func(t *testing.T) {
		a.hook.RemovePeer(b.Underlay)
		b.hook.RemovePeer(a.Underlay)
		held := a.hook.Stats().Held
		capA := a.Capture("")
		if ok, _ := a.Ping(geneveB, 2, 0, time.Second); ok {
			t.Error("ping passed without SAs")
		}
		if n := capA.Count(itPlaintext); n != 0 {
			t.Errorf("%d plaintext tunnel packets left without an SA", n)
		}
		if n := capA.Count("ip proto 50 and src host " + a.Underlay.String()); n != 0 {
			t.Errorf("%d ESP packets left without an SA", n)
		}
		if s := a.hook.Stats(); s.Held <= held {
			t.Errorf("no frames held without an SA: %+v", s)
		}
		installKeys(t, a, b, 2, esp.Encap{})
		pingUntil(t, a, geneveB, 10*time.Second)
	})

	t.Run("engine stopped: nothing protected leaves, fail closed", func(t *testing.T) {
		a.stopLoop(t)
		capA := a.Capture("")
		if ok, _ := a.Ping(geneveB, 2, 0, time.Second); ok {
			t.Error("ping passed with the engine stopped")
		}
		if n := capA.Count(itPlaintext + " and src host " + a.Underlay.String()); n != 0 {
			t.Errorf("%d plaintext tunnel packets left a with its engine stopped", n)
		}
		a.startLoop(t)
		pingUntil(t, a, geneveB, 10*time.Second)
	})

	t.Run("ovs-vswitchd restart: nothing leaves in plaintext, protected again after", func(t *testing.T) {
		installs := a.att.Installs()
		capA := a.Capture("")
		// Overlay traffic from a throughout the restart.
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				a.Ping(geneveB, 1, 0, 300*time.Millisecond)
			}
		}()
		a.RestartVswitchd()
		deadline := time.Now().Add(15 * time.Second)
		for a.att.Installs() <= installs {
			if time.Now().After(deadline) {
				close(stop)
				<-done
				t.Fatal("rules not re-installed after the restart")
			}
			time.Sleep(100 * time.Millisecond)
		}
		pingUntil(t, a, geneveB, 15*time.Second)
		close(stop)
		<-done
		if n := capA.Count(itPlaintext); n != 0 {
			t.Errorf("%d plaintext tunnel packets on the wire across the restart:\n%s", n, capA.Dump(itPlaintext, 5))
		}
		if n := capA.Count("ip proto 50 and src host " + a.Underlay.String()); n == 0 {
			t.Error("no ESP from a after the restart")
		}
	})

	for _, o := range itOverlays[1:] {
		t.Run(o.Proto+" over ESP: only ESP on the wire", func(t *testing.T) {
			capA := a.Capture("")
			pingUntil(t, a, b.OverlayAddr[o.Bridge], 15*time.Second)
			if ok, out := a.Ping(b.OverlayAddr[o.Bridge], 5, 1000, time.Second); !ok {
				t.Errorf("ping over %s: %s", o.Proto, out)
			}
			if n := capA.Count(itPlaintext); n != 0 {
				t.Errorf("%d plaintext tunnel packets on the wire:\n%s", n, capA.Dump(itPlaintext, 5))
			}
			if n := capA.Count("ip proto 50 and src host " + b.Underlay.String()); n < 5 {
				t.Errorf("%d ESP packets from b, want at least 5", n)
			}
		})
	}

	t.Run("ESP-in-UDP 4500; IKE on 4500 still reaches the host", func(t *testing.T) {
		for _, h := range []*itHost{a, b} {
			h.setPolicies(t, ovsbridge.EncapUDP4500)
			h.hook.RemovePeer(h.peer.Underlay)
		}
		installKeys(t, a, b, 3, udp4500)
		capA := a.Capture("")
		pingUntil(t, a, geneveB, 10*time.Second)
		if ok, out := a.Ping(geneveB, 5, 0, time.Second); !ok {
			t.Errorf("ping over ESP-in-UDP: %s", out)
		}
		// An IKE message (non-ESP marker) from b's port 4500 reaches a's
		// socket through the engine, unchanged.
		var got []byte
		err := a.InNetns(func() error {
			srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: a.Underlay.AsSlice(), Port: 4500})
			if err != nil {
				return err
			}
			defer srv.Close()
			errc := make(chan error, 1)
			go func() {
				errc <- b.InNetns(func() error {
					c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: b.Underlay.AsSlice(), Port: 4500})
					if err != nil {
						return err
					}
					defer c.Close()
					for range 3 {
						c.WriteToUDP(append([]byte{0, 0, 0, 0}, []byte("ike-sa-init")...), &net.UDPAddr{IP: a.Underlay.AsSlice(), Port: 4500})
						time.Sleep(200 * time.Millisecond)
					}
					return nil
				})
			}()
			srv.SetReadDeadline(time.Now().Add(3 * time.Second))
			buf := make([]byte, 1500)
			n, _, rerr := srv.ReadFromUDP(buf)
			if err := <-errc; err != nil {
				return err
			}
			if rerr != nil {
				return rerr
			}
			got = buf[:n]
			return nil
		})
		if err != nil {
			t.Errorf("IKE on 4500 through the engine: %v (hook %+v)", err, a.hook.Stats())
		} else if !strings.HasSuffix(string(got), "ike-sa-init") {
			t.Errorf("IKE message changed: %q", got)
		}
		if a.hook.Stats().IKEPassed == 0 {
			t.Error("hook counted no IKE passed")
		}
		plain, enc, esp50 := capA.Count(itPlaintext), capA.Count("udp port 4500 and src host "+b.Underlay.String()), capA.Count("ip proto 50")
		t.Logf("wire at a: %d plaintext, %d udp/4500 from b, %d proto 50", plain, enc, esp50)
		if plain != 0 || esp50 != 0 || enc < 5 {
			t.Errorf("with ESP-in-UDP want only udp/4500 on the wire: %d plaintext, %d udp/4500, %d proto 50", plain, enc, esp50)
		}
	})
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// injectRaw writes frame count times straight onto the host's underlay
// veth (AF_PACKET), bypassing its OVS and engine.
func injectRaw(h *itHost, frame []byte, count int) error {
	return h.InNetns(func() error {
		ifi, err := net.InterfaceByName(h.Dev)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: 0x0008, Halen: 6}
		for range count {
			if err := unix.Sendto(fd, frame, 0, to); err != nil {
				return fmt.Errorf("inject on %s: %w", h.Dev, err)
			}
		}
		return nil
	})
}
