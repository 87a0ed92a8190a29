package ovsbridge

import (
	"bytes"
	"net"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovnsec/ovnsec/internal/testenv"
)

// TestTAPBatchAndPersist checks the engine port device on its own: frames
// the kernel queued are drained by one ReadBatch, WriteBatch frames reach
// the kernel side, and the device outlives the descriptor until deleted.
func TestTAPBatchAndPersist(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, "ip")
	const ns, dev = "obrt-t", "obrt-tt"
	nsPath := "/run/netns/" + ns
	exec.Command("ip", "netns", "del", ns).Run()
	cmdRun(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })

	if err := EnsureTAP(dev, nsPath, 1500); err != nil {
		t.Fatal(err)
	}
	if mtu, err := LinkMTU(dev, nsPath); err != nil || mtu != 1500 {
		t.Fatalf("LinkMTU = %d, %v", mtu, err)
	}
	tap, err := OpenTAP(dev, nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()

	// A packet socket on the TAP is "the kernel side": what it sends goes
	// to our descriptor, what we write arrives at it.
	var ps, ifi int
	if err := inNetns(nsPath, func() error {
		iface, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		ifi = iface.Index
		ps, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		if err := unix.SetsockoptInt(ps, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
			return err
		}
		return unix.Bind(ps, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi})
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ps)

	// After a descriptor attaches, the kernel activates the TAP's qdisc
	// asynchronously (linkwatch, up to a second); until then it drops what
	// is sent to it. IFF_RUNNING is set in the same step.
	waitFor(t, "TAP running", 5*time.Second, func() bool {
		var flags uint16
		inNetns(nsPath, func() error {
			return ioctlSock(func(s int) error {
				ifr, _ := unix.NewIfreq(dev)
				err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr)
				flags = ifr.Uint16()
				return err
			})
		})
		return flags&unix.IFF_RUNNING != 0
	})
	// ReadBatch blocks; a test must not.
	readBatch := func(bufs [][]byte, sizes []int) (int, error) {
		t.Helper()
		type res struct {
			n   int
			err error
		}
		ch := make(chan res, 1)
		go func() { n, err := tap.ReadBatch(bufs, sizes); ch <- res{n, err} }()
		select {
		case r := <-ch:
			return r.n, r.err
		case <-time.After(5 * time.Second):
			tap.Close()
			<-ch
			t.Fatal("ReadBatch got nothing in 5 s")
			return 0, nil
		}
	}

	a := netip.MustParseAddr("198.51.100.1")
	b := netip.MustParseAddr("198.51.100.2")
	var sent [][]byte
	for i := 0; i < 5; i++ {
		f := testFrame(a, b, protoUDP, uint16(1000+i), 6081, 100+i)
		sent = append(sent, f)
		if err := unix.Sendto(ps, f, 0, &unix.SockaddrLinklayer{Ifindex: ifi, Halen: 6}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // let the qdisc hand all five to the TAP queue
	bufs := make([][]byte, 8)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	sizes := make([]int, 8)
	n, err := readBatch(bufs, sizes)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(sent) {
		t.Errorf("one ReadBatch drained %d of %d queued frames", n, len(sent))
	}
	for i := 0; i < n && i < len(sent); i++ {
		if !bytes.Equal(bufs[i][:sizes[i]], sent[i]) {
			t.Errorf("frame %d differs", i)
		}
	}

	// Truncation is visible: a frame longer than its buffer fills it.
	big := testFrame(a, b, protoUDP, 1, 6081, 1000)
	if err := unix.Sendto(ps, big, 0, &unix.SockaddrLinklayer{Ifindex: ifi, Halen: 6}); err != nil {
		t.Fatal(err)
	}
	small := [][]byte{make([]byte, 200)}
	if n, err := readBatch(small, sizes); err != nil || n != 1 || sizes[0] != 200 {
		t.Errorf("oversize read: n=%d size=%d err=%v, want 1 frame filling 200 bytes", n, sizes[0], err)
	}

	// WriteBatch: every frame arrives at the kernel side.
	out := [][]byte{testFrame(b, a, protoESP, 0, 0, 64), testFrame(b, a, protoESP, 0, 0, 65), testFrame(b, a, protoESP, 0, 0, 66)}
	if n, err := tap.WriteBatch(out); err != nil || n != 3 {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	unix.SetsockoptTimeval(ps, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2})
	got := 0
	buf := make([]byte, 2048)
	for got < len(out) {
		k, _, err := unix.Recvfrom(ps, buf, 0)
		if err != nil {
			break
		}
		for _, f := range out {
			if bytes.Equal(buf[:k], f) {
				got++
			}
		}
	}
	if got != len(out) {
		t.Errorf("kernel side received %d of %d written frames", got, len(out))
	}

	// Persistent: the device outlives the descriptor until deleted.
	tap.Close()
	if _, err := LinkMTU(dev, nsPath); err != nil {
		t.Errorf("TAP gone after close: %v", err)
	}
	if err := DeleteTAP(dev, nsPath); err != nil {
		t.Fatal(err)
	}
	if _, err := LinkMTU(dev, nsPath); err == nil {
		t.Error("TAP still exists after DeleteTAP")
	}
}

func TestOpenTAPRejectsBadName(t *testing.T) {
	for _, name := range []string{"", "a,b", "0123456789abcdef", "LOCAL"} {
		if _, err := OpenTAP(name, ""); err == nil {
			t.Errorf("OpenTAP(%q) accepted", name)
		}
	}
}
