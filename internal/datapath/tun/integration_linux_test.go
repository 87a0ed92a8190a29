// integration_linux_test.go: two network namespaces joined by a veth, each
// running an attachment in this process with static keys; real ping and
// iperf3 over the tunnel, a packet capture on the underlay, and forged
// datagrams (replayed, tampered, unknown SPI) sent at the receiver.

package tun

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/datapath/drop"

	"golang.org/x/sys/unix"

	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/esp/esptest"
	"github.com/ovnsec/ovnsec/internal/testenv"
)

const (
	nsA, nsB     = "tunt-a", "tunt-b"
	vethA, vethB = "tunt-va", "tunt-vb"
)

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// netnsPair creates tunt-a and tunt-b joined by a veth with 192.0.2.1/24
// and 192.0.2.2/24, IPv6 off on the veth (so the capture sees only what the
// test sends), and removes them when the test ends.
func netnsPair(t *testing.T) {
	t.Helper()
	for _, ns := range []string{nsA, nsB} {
		// Left over from an interrupted run of this test: ours to remove.
		exec.Command("ip", "netns", "del", ns).Run()
	}
	for _, ns := range []string{nsA, nsB} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	run(t, "ip", "link", "add", vethA, "netns", nsA, "type", "veth", "peer", "name", vethB, "netns", nsB)
	for _, s := range []struct{ ns, dev, addr string }{{nsA, vethA, "192.0.2.1/24"}, {nsB, vethB, "192.0.2.2/24"}} {
		run(t, "ip", "netns", "exec", s.ns, "sysctl", "-q", "-w", "net.ipv6.conf."+s.dev+".disable_ipv6=1")
		run(t, "ip", "-n", s.ns, "addr", "add", s.addr, "dev", s.dev)
		run(t, "ip", "-n", s.ns, "link", "set", s.dev, "up")
		run(t, "ip", "-n", s.ns, "link", "set", "lo", "up")
	}
}

// startAttachments runs an attachment in each namespace with static keys.
func startAttachments(t *testing.T) (A, B *Attachment) {
	t.Helper()
	cfg := esp.Config{Mode: esp.Tunnel, Encap: esp.Encap{Type: esp.EncapUDP, SrcPort: 4500, DstPort: 4500}}
	aOut, aIn, bOut, bIn := esptest.Peers(t, cfg, spiAB, spiBA)
	mk := func(ns string, local, peer netip.Addr, addr, remote netip.Prefix, in, out *esp.SA) *Attachment {
		a, err := Open(System{NetNS: ns, Name: "tunt0", Addr: addr, Local: netip.AddrPortFrom(local, 4500)},
			Config{Table: esp.NewTable(nil), Peers: []Peer{{Addr: peer, Remote: []netip.Prefix{remote}}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Install(peer, in, out); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s: Run: %v", ns, err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("%s: Run did not stop", ns)
			}
		})
		return a
	}
	A = mk(nsA, underA, underB, netA, netB, aIn, aOut)
	B = mk(nsB, underB, underA, netB, netA, bIn, bOut)
	return A, B
}

// capture records every frame on a device inside a namespace (AF_PACKET).
type capture struct {
	fd     int
	stop   atomic.Bool
	done   chan struct{}
	mu     sync.Mutex
	frames [][]byte
}

func startCapture(t *testing.T, ns, dev string) *capture {
	t.Helper()
	c := &capture{done: make(chan struct{})}
	err := inNetNS(ns, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ALL))
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20)
		c.fd = fd
		return nil
	})
	if err != nil {
		t.Fatalf("capture on %s in %s: %v", dev, ns, err)
	}
	go func() {
		defer close(c.done)
		buf := make([]byte, 65536)
		for !c.stop.Load() {
			n, _, err := unix.Recvfrom(c.fd, buf, unix.MSG_TRUNC)
			if err != nil || n <= 0 {
				continue
			}
			n = min(n, len(buf))
			c.mu.Lock()
			c.frames = append(c.frames, append([]byte(nil), buf[:n]...))
			c.mu.Unlock()
		}
	}()
	t.Cleanup(c.close)
	return c
}

func (c *capture) close() {
	if c.stop.Swap(true) {
		return
	}
	<-c.done
	unix.Close(c.fd)
}

func (c *capture) snapshot() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.frames...)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// underlayCheck sorts captured Ethernet frames: ESP-in-UDP datagrams (UDP
// payloads), ARP, and anything else (which must not exist).
func underlayCheck(t *testing.T, frames [][]byte) (espPayloads [][]byte) {
	t.Helper()
	inner := netip.MustParsePrefix("203.0.113.0/24")
	other := 0
	for _, f := range frames {
		if len(f) < 14 {
			other++
			continue
		}
		switch binary.BigEndian.Uint16(f[12:14]) {
		case unix.ETH_P_ARP:
			continue
		case unix.ETH_P_IP:
		default:
			t.Errorf("unexpected ethertype %#04x on the underlay", binary.BigEndian.Uint16(f[12:14]))
			other++
			continue
		}
		ip := f[14:]
		if len(ip) < 28 {
			t.Errorf("runt IPv4 frame on the underlay: %x", ip)
			continue
		}
		src, dst := netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
		if inner.Contains(src) || inner.Contains(dst) {
			t.Errorf("PLAINTEXT inner packet on the underlay: %v -> %v proto %d", src, dst, ip[9])
			continue
		}
		ihl := int(ip[0]&0x0f) * 4
		if ip[9] != unix.IPPROTO_UDP || len(ip) < ihl+8 ||
			binary.BigEndian.Uint16(ip[ihl:]) != 4500 || binary.BigEndian.Uint16(ip[ihl+2:]) != 4500 {
			t.Errorf("non-ESP packet on the underlay: %v -> %v proto %d", src, dst, ip[9])
			continue
		}
		total := int(binary.BigEndian.Uint16(ip[2:4]))
		payload := ip[ihl+8 : min(total, len(ip))]
		if esp.Classify4500(payload) != esp.KindESP {
			t.Errorf("UDP 4500 datagram that is not ESP: %x", payload[:min(16, len(payload))])
			continue
		}
		espPayloads = append(espPayloads, payload)
	}
	return espPayloads
}

func TestIntegrationNetns(t *testing.T) {
	testenv.Short(t)
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, "ip", "ping", "iperf3")
	netnsPair(t)
	capB := startCapture(t, nsB, vethB)
	A, B := startAttachments(t)

	t.Run("ping", func(t *testing.T) {
		run(t, "ip", "netns", "exec", nsA, "ping", "-c", "3", "-i", "0.2", "-W", "2", "203.0.113.2")
		run(t, "ip", "netns", "exec", nsB, "ping", "-c", "3", "-i", "0.2", "-W", "2", "203.0.113.1")
		// Big packets: exactly the tunnel MTU, unfragmented.
		run(t, "ip", "netns", "exec", nsA, "ping", "-c", "2", "-i", "0.2", "-W", "2", "-M", "do", "-s", fmt.Sprint(TunnelMTU(1500)-28), "203.0.113.2")
	})

	t.Run("iperf3", func(t *testing.T) {
		srv := exec.Command("ip", "netns", "exec", nsB, "iperf3", "-s", "-1", "-B", "203.0.113.2")
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { srv.Process.Kill(); srv.Wait() }()
		// Wait until the server listens (connecting to find out would
		// use up the one-off server).
		for i := 0; ; i++ {
			b, _ := exec.Command("ip", "netns", "exec", nsB, "ss", "-Hltn", "sport", "=", ":5201").Output()
			if strings.Contains(string(b), "5201") {
				break
			}
			if i == 100 {
				t.Fatal("iperf3 server did not start listening")
			}
			time.Sleep(50 * time.Millisecond)
		}
		b, err := exec.Command("ip", "netns", "exec", nsA, "iperf3", "-c", "203.0.113.2", "-t", "2", "-J").CombinedOutput()
		out := string(b)
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
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("iperf3 output: %v\n%s", err, out)
		}
		mbps := res.End.SumReceived.BitsPerSecond / 1e6
		gso, gro := B.conn.(*UDPConn).Offloads()
		t.Logf("iperf3 TCP over ESP/TUN: %.0f Mbit/s (UDP GSO %v GRO %v)\nA %+v\nB %+v", mbps, gso, gro, A.Stats(), B.Stats())
		if mbps < 1 {
			t.Fatalf("iperf3: %.2f Mbit/s\n%s", mbps, out)
		}
	})

	capB.close()
	esps := underlayCheck(t, capB.snapshot())
	// The shortest datagram from A: a ping, one ESP packet (a UDP GSO
	// run is captured as one frame holding several).
	var fromA []byte
	for _, p := range esps {
		if esp.SPI(binary.BigEndian.Uint32(p)) == spiAB && (fromA == nil || len(p) < len(fromA)) {
			fromA = append([]byte(nil), p...)
		}
	}
	if fromA == nil {
		t.Fatalf("no ESP datagram from A captured among %d", len(esps))
	}
	t.Logf("underlay capture: %d ESP datagrams, no plaintext", len(esps))

	// Forged datagrams, sent from A's namespace to B's port 4500.
	var sock *net.UDPConn
	if err := inNetNS(nsA, func() (err error) {
		sock, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(underB, 4500)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	forged := []struct {
		name   string
		mutate func([]byte)
		reason drop.Reason
	}{
		{"replay", func([]byte) {}, drop.Replay},
		// Sequence number pushed far ahead (passes the window, so the
		// ICV decides) and one ciphertext bit flipped.
		{"flipped bit", func(p []byte) { p[4] ^= 0x40; p[20] ^= 0x01 }, drop.Auth},
		{"unknown SPI", func(p []byte) { binary.BigEndian.PutUint32(p, 0xdead0000) }, drop.NoSA},
	}
	for _, f := range forged {
		t.Run(f.name, func(t *testing.T) {
			before := B.Stats()
			p := append([]byte(nil), fromA...)
			f.mutate(p)
			if _, err := sock.Write(p); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for B.Stats().RxDropped(f.reason) == before.RxDropped(f.reason) {
				if time.Now().After(deadline) {
					t.Fatalf("%s not counted; stats %+v", f.reason, B.Stats())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if after := B.Stats(); after.RxPackets != before.RxPackets {
				t.Fatalf("forged datagram delivered (RxPackets %d -> %d)", before.RxPackets, after.RxPackets)
			}
		})
	}
	t.Run("IKE on 4500", func(t *testing.T) {
		before := B.Stats().IKE
		if _, err := sock.Write([]byte{0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for B.Stats().IKE == before {
			if time.Now().After(deadline) {
				t.Fatalf("IKE message not counted; stats %+v", B.Stats())
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	sa := B.table.Inbound(spiAB).Stats()
	if sa.DropReplay == 0 || sa.DropAuth == 0 {
		t.Errorf("SA counters missed the forgeries: %+v", sa)
	}
}
