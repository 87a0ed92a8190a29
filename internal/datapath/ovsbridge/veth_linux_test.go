package ovsbridge

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovnsec/ovnsec/internal/testenv"
)

// TestVethPacketPort checks the veth engine port on its own: EnsureVeth
// makes a hardened pair (and replaces a TAP of the same name), frames sent
// into the OVS end are drained by one ReadBatch on the engine end (MTU-size
// and truncated ones told apart), WriteBatch frames arrive at the OVS end
// and are never read back, and DeleteVeth removes both ends.
func TestVethPacketPort(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, "ip")
	const ns, dev = "obrt-v", "obrt-vv"
	nsPath := "/run/netns/" + ns
	exec.Command("ip", "netns", "del", ns).Run()
	cmdRun(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })

	// A TAP left by the other port kind is replaced.
	if err := EnsureTAP(dev, nsPath, 1500); err != nil {
		t.Fatal(err)
	}
	if fresh, err := ensureEnginePort(PortVeth, dev, nsPath, 1400); err != nil || !fresh {
		t.Fatalf("ensureEnginePort(veth) over a TAP = %v, %v; want a fresh veth", fresh, err)
	}
	if fresh, err := ensureEnginePort(PortVeth, dev, nsPath, 1400); err != nil || fresh {
		t.Fatalf("ensureEnginePort(veth) again = %v, %v; want the same veth kept", fresh, err)
	}
	if got := linkType(dev, nsPath); got != "veth" {
		t.Fatalf("%s is %q, want veth", dev, got)
	}
	for _, n := range []string{dev, VethPeer(dev)} {
		if mtu, err := LinkMTU(n, nsPath); err != nil || mtu != 1400 {
			t.Errorf("MTU of %s = %d, %v; want 1400", n, mtu, err)
		}
		for file, want := range map[string]string{"ipv4/conf/" + n + "/arp_ignore": "8", "ipv4/conf/" + n + "/forwarding": "0"} {
			var got []byte
			inNetns(nsPath, func() error {
				var err error
				got, err = os.ReadFile("/proc/sys/net/" + file)
				return err
			})
			if strings.TrimSpace(string(got)) != want {
				t.Errorf("%s = %q, want %s", file, got, want)
			}
		}
	}

	eng, err := OpenVeth(dev, nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	// The OVS end, as OVS drives it: another packet socket.
	ovs, err := OpenPacketPort(dev, nsPath, PacketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ovs.Close()

	read := func(p *PacketPort, bufs [][]byte, sizes []int) int {
		t.Helper()
		type res struct {
			n   int
			err error
		}
		ch := make(chan res, 1)
		go func() { n, err := p.ReadBatch(bufs, sizes); ch <- res{n, err} }()
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatal(r.err)
			}
			return r.n
		case <-time.After(5 * time.Second):
			p.Close()
			<-ch
			t.Fatal("ReadBatch got nothing in 5 s")
			return 0
		}
	}
	a, b := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	var sent [][]byte
	for i := 0; i < 5; i++ {
		sent = append(sent, testFrame(a, b, protoUDP, uint16(1000+i), 6081, 100+i))
	}
	sent = append(sent, testFrame(a, b, protoUDP, 1, 6081, 1400-28)) // a full-MTU frame: 1414 bytes
	if n, err := ovs.WriteBatch(sent); err != nil || n != len(sent) {
		t.Fatalf("WriteBatch into the OVS end = %d, %v", n, err)
	}
	time.Sleep(100 * time.Millisecond)
	bufs := make([][]byte, 8)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	bufs[5] = bufs[5][:1000] // too small for the big frame: reported truncated
	sizes := make([]int, 8)
	n := read(eng, bufs, sizes)
	if n != len(sent) {
		t.Fatalf("one ReadBatch drained %d of %d frames", n, len(sent))
	}
	for i := 0; i < 5; i++ {
		if !bytes.Equal(bufs[i][:sizes[i]], sent[i]) {
			t.Errorf("frame %d differs", i)
		}
	}
	if sizes[5] != len(bufs[5]) {
		t.Errorf("truncated frame reported as %d bytes, want the buffer size %d", sizes[5], len(bufs[5]))
	}

	// Engine -> OVS end; the engine must not read its own frames back.
	back := sent[:3]
	if n, err := eng.WriteBatch(back); err != nil || n != len(back) {
		t.Fatalf("WriteBatch on the engine end = %d, %v", n, err)
	}
	bufs[5] = bufs[5][:cap(bufs[5])]
	if n := read(ovs, bufs, sizes); n != len(back) || !bytes.Equal(bufs[0][:sizes[0]], back[0]) {
		t.Errorf("OVS end got %d frames, want %d", n, len(back))
	}
	probe := testFrame(b, a, protoESP, 0, 0, 40)
	if _, err := ovs.WriteBatch([][]byte{probe}); err != nil {
		t.Fatal(err)
	}
	if n := read(eng, bufs, sizes); n != 1 || !bytes.Equal(bufs[0][:sizes[0]], probe) {
		t.Errorf("engine end read %d frames (its own written frames echoed?), want just the probe", n)
	}

	// An oversized frame is refused; the batch reports how many went before it.
	huge := testFrame(a, b, protoUDP, 1, 6081, 3000)
	if n, err := eng.WriteBatch([][]byte{sent[0], huge, sent[1]}); err == nil || n != 1 {
		t.Errorf("WriteBatch with an oversized frame = %d, %v; want 1 and an error", n, err)
	}

	eng.Close()
	ovs.Close()
	if err := DeleteVeth(dev, nsPath); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{dev, VethPeer(dev)} {
		if linkType(n, nsPath) != "" {
			t.Errorf("%s still exists after DeleteVeth", n)
		}
	}
}

// TestEngineHandedOver: an engine port handed to another process (an
// upgrade: the file duplicated, the old one closed) keeps its socket:
// frames the OVS end sent while no one read, before and after the old
// holder closed it, are read by the new holder. A file of another kind is
// refused by name.
func TestEngineHandedOver(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, "ip")
	const ns, dev = "obrt-h", "obrt-hv"
	nsPath := "/run/netns/" + ns
	exec.Command("ip", "netns", "del", ns).Run()
	cmdRun(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	if err := EnsureVeth(dev, nsPath, 1400); err != nil {
		t.Fatal(err)
	}
	old, err := OpenVeth(dev, nsPath)
	if err != nil {
		t.Fatal(err)
	}
	ovs, err := OpenPacketPort(dev, nsPath, PacketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ovs.Close()
	a, b := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	before := testFrame(a, b, protoUDP, 1, 6081, 100)
	after := testFrame(a, b, protoUDP, 2, 6081, 100)
	if _, err := ovs.WriteBatch([][]byte{before}); err != nil {
		t.Fatal(err)
	}
	handed := dupForTest(t, old.File())
	old.Close() // the old process exits
	if _, err := ovs.WriteBatch([][]byte{after}); err != nil {
		t.Fatal(err)
	}
	next, err := EngineFromFile(PortVeth, dev, handed)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	bufs := [][]byte{make([]byte, 2048), make([]byte, 2048), make([]byte, 2048)}
	sizes := make([]int, 3)
	var got [][]byte
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < 2 && time.Now().Before(deadline) {
		n, err := next.ReadBatch(bufs, sizes)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			got = append(got, append([]byte(nil), bufs[i][:sizes[i]]...))
		}
	}
	if len(got) != 2 || !bytes.Equal(got[0], before) || !bytes.Equal(got[1], after) {
		t.Fatalf("the new holder read %d frames, want the 2 queued across the hand-over in order", len(got))
	}

	// A UDP socket is no engine port.
	u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	uf, err := u.File()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := EngineFromFile(PortVeth, dev, uf); err == nil || !strings.Contains(err.Error(), "not an AF_PACKET socket") {
		t.Errorf("EngineFromFile on a UDP socket = %v, want a refusal naming it", err)
	}
	if _, err := EngineFromFile(PortTAP, dev, dupForTest(t, next.(*PacketPort).File())); err == nil || !strings.Contains(err.Error(), "not an attached TAP") {
		t.Errorf("EngineFromFile(tap) on a packet socket = %v, want a refusal naming it", err)
	}
}

// dupForTest duplicates f's descriptor without touching its blocking
// mode, as a process handing it over does.
func dupForTest(t *testing.T, f *os.File) *os.File {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var nfd int
	var derr error
	if err := rc.Control(func(fd uintptr) { nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil || derr != nil {
		t.Fatal(err, derr)
	}
	return os.NewFile(uintptr(nfd), f.Name())
}
