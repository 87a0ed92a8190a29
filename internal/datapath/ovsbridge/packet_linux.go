// Batched engine port stage: an AF_PACKET socket bound to one interface,
// read with recvmmsg(2) and written with sendmmsg(2), so that a burst of
// frames costs one system call each way instead of one per frame (the TAP
// costs one read(2) or write(2) per frame). Used on the engine's end of the
// veth pair (PortVeth) and, transmit-only, on the NIC for outbound ESP
// written straight to the wire (Config.Direct). Message headers and iovecs
// are allocated once; a batch neither allocates nor locks.

package ovsbridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PacketPort is an AF_PACKET socket on one interface. One goroutine may
// call ReadBatch while others call WriteBatch; WriteBatch serialises
// itself (the packet loop and Loop.Release both write).
type PacketPort struct {
	name string
	f    *os.File
	rc   syscall.RawConn
	r, w mmsgArgs
	wmu  sync.Mutex // one lock per batch, not per frame
}

// mmsgArgs is one direction's system call arguments, allocated once.
type mmsgArgs struct {
	hdrs   []unix.Mmsghdr
	iovs   []unix.Iovec
	lo, hi int
	n      int
	errno  syscall.Errno
	call   func(fd uintptr) bool // bound once: no closure per batch
	sysno  uintptr
}

func newMmsgArgs(batch int, sysno uintptr) mmsgArgs {
	a := mmsgArgs{hdrs: make([]unix.Mmsghdr, batch), iovs: make([]unix.Iovec, batch), sysno: sysno}
	for i := range a.hdrs {
		a.hdrs[i].Hdr.Iov = &a.iovs[i]
		a.hdrs[i].Hdr.SetIovlen(1)
	}
	return a
}

// do makes the call. The socket is non-blocking, so the call never sleeps
// and RawSyscall6 spares the scheduler hand-off of Syscall6 (entersyscall,
// waking sysmon), which showed in the profile at one call per batch.
func (a *mmsgArgs) do(fd uintptr) bool {
	n, _, e := unix.RawSyscall6(a.sysno, fd, uintptr(unsafe.Pointer(&a.hdrs[a.lo])), uintptr(a.hi-a.lo), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EINTR || e == unix.EAGAIN {
		return false // nothing to read or no room to send: wait for readiness
	}
	a.n, a.errno = int(n), e
	return true
}

// PacketOptions tunes OpenPacketPort.
type PacketOptions struct {
	// TxOnly opens a socket that receives nothing (protocol 0): for the
	// NIC, where OVS owns reception.
	TxOnly bool
	// Batch is the most frames per system call; default 64.
	Batch int
	// QdiscBypass sends straight to the driver (PACKET_QDISC_BYPASS);
	// for the veth, whose qdisc is noqueue anyway.
	QdiscBypass bool
}

// packetSocketBuffer is the receive and send buffer size asked for: a few
// bursts of full-size frames.
const packetSocketBuffer = 4 << 20

// OpenPacketPort opens an AF_PACKET socket bound to interface name in the
// network namespace at netnsPath ("" = the current one). A receiving
// socket gets every frame the interface receives (not the ones sent on
// it: PACKET_IGNORE_OUTGOING).
func OpenPacketPort(name, netnsPath string, opt PacketOptions) (*PacketPort, error) {
	if !validPortName(name) {
		return nil, fmt.Errorf("open packet socket on %q: not a valid interface name", name)
	}
	if opt.Batch <= 0 {
		opt.Batch = 64
	}
	proto := uint16(0)
	if !opt.TxOnly {
		proto = htons(unix.ETH_P_ALL)
	}
	var fd int
	err := inNetns(netnsPath, func() error {
		ifi, err := ifIndex(name)
		if err != nil {
			return err
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			return fmt.Errorf("packet socket on %s: %w (needs CAP_NET_RAW)", name, err)
		}
		ok := false
		defer func() {
			if !ok {
				unix.Close(fd)
			}
		}()
		if !opt.TxOnly {
			// Set before bind so that no frame we send is ever read back.
			if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
				return fmt.Errorf("packet socket on %s: PACKET_IGNORE_OUTGOING: %w (kernel 4.20 or later needed)", name, err)
			}
			if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, packetSocketBuffer) != nil {
				_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, packetSocketBuffer)
			}
		}
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, packetSocketBuffer) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, packetSocketBuffer)
		}
		if opt.QdiscBypass {
			_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1) // best effort
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi}); err != nil {
			return fmt.Errorf("bind packet socket to %s: %w", name, err)
		}
		ok = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	return packetPort(name, os.NewFile(uintptr(fd), "packet:"+name), opt)
}

// PacketPortFromFile takes up a packet socket another process opened with
// OpenPacketPort (handed over in an upgrade): the socket keeps its binding
// and options, and the frames queued in it while no one read are read
// next. It owns f from then on.
func PacketPortFromFile(name string, f *os.File, opt PacketOptions) (*PacketPort, error) {
	if f == nil {
		return nil, fmt.Errorf("packet socket on %s: no file", name)
	}
	if opt.Batch <= 0 {
		opt.Batch = 64
	}
	nf, err := adoptFile(f, "packet:"+name, func(fd int) error {
		dom, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
		if err == nil && dom != unix.AF_PACKET {
			err = fmt.Errorf("socket domain %d", dom)
		}
		if err != nil {
			return fmt.Errorf("the file handed over is not an AF_PACKET socket: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("packet socket on %s: %w", name, err)
	}
	return packetPort(name, nf, opt)
}

// adoptFile checks f's descriptor with check, duplicates it in
// non-blocking mode (for the poller) under a new name and closes f. It
// never calls f.Fd, which would put the descriptor, shared with the
// process that handed it over and may still be reading, in blocking mode.
func adoptFile(f *os.File, name string, check func(fd int) error) (*os.File, error) {
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		if cerr = check(int(fd)); cerr != nil {
			return
		}
		nfd, cerr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if cerr != nil {
		return nil, cerr
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, err
	}
	return os.NewFile(uintptr(nfd), name), nil
}

func packetPort(name string, f *os.File, opt PacketOptions) (*PacketPort, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("packet socket on %s: %w", name, err)
	}
	p := &PacketPort{
		name: name, f: f, rc: rc,
		r: newMmsgArgs(opt.Batch, unix.SYS_RECVMMSG),
		w: newMmsgArgs(opt.Batch, unix.SYS_SENDMMSG),
	}
	p.r.call = p.r.do
	p.w.call = p.w.do
	return p, nil
}

// File is the socket's file, for handing it to another process (which
// gets a duplicate); it stays owned by p.
func (p *PacketPort) File() *os.File { return p.f }

func ifIndex(name string) (int, error) {
	var idx int
	err := ioctlSock(func(s int) error {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(s, unix.SIOCGIFINDEX, ifr); err != nil {
			return fmt.Errorf("interface %s: %w", name, err)
		}
		idx = int(ifr.Uint32())
		return nil
	})
	return idx, err
}

// Name returns the interface name.
func (p *PacketPort) Name() string { return p.name }

// ReadBatch blocks until a frame is available, then receives up to
// len(bufs) frames with one recvmmsg(2). A frame longer than its buffer is
// cut; its size is then reported as len(bufs[i]) so the caller drops it.
func (p *PacketPort) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	a := &p.r
	a.lo, a.hi = 0, min(len(bufs), len(sizes), len(a.hdrs))
	if a.hi == 0 {
		return 0, nil
	}
	for i := range a.hi {
		if len(bufs[i]) == 0 {
			return 0, fmt.Errorf("read %s: buffer %d is empty", p.name, i)
		}
		a.iovs[i].Base = &bufs[i][0]
		a.iovs[i].SetLen(len(bufs[i]))
		a.hdrs[i].Hdr.Flags = 0
		a.hdrs[i].Len = 0
	}
	a.n, a.errno = 0, 0
	if err := p.rc.Read(a.call); err != nil {
		return 0, err
	}
	if a.errno != 0 {
		return 0, fmt.Errorf("read %s: %w", p.name, os.NewSyscallError("recvmmsg", a.errno))
	}
	for i := range a.n {
		sizes[i] = int(a.hdrs[i].Len)
		if a.hdrs[i].Hdr.Flags&unix.MSG_TRUNC != 0 {
			sizes[i] = len(bufs[i])
		}
	}
	return a.n, nil
}

// WriteBatch sends each frame as one packet, in batches of one
// sendmmsg(2). A frame the kernel refuses (too big) is reported with the
// count of frames sent before it; the caller skips it and goes on.
func (p *PacketPort) WriteBatch(frames [][]byte) (int, error) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	a := &p.w
	sent := 0
	for sent < len(frames) {
		k := min(len(frames)-sent, len(a.hdrs))
		for i := range k {
			fr := frames[sent+i]
			if len(fr) == 0 {
				return sent, fmt.Errorf("write %s: frame %d is empty", p.name, sent+i)
			}
			a.iovs[i].Base = &fr[0]
			a.iovs[i].SetLen(len(fr))
		}
		a.lo, a.hi = 0, k
		for a.lo < a.hi {
			a.n, a.errno = 0, 0
			if err := p.rc.Write(a.call); err != nil {
				return sent, fmt.Errorf("write %s: %w", p.name, err)
			}
			if a.errno != 0 {
				return sent, fmt.Errorf("write %s: %w", p.name, os.NewSyscallError("sendmmsg", a.errno))
			}
			if a.n <= 0 {
				return sent, fmt.Errorf("write %s: %w", p.name, errors.New("sendmmsg sent nothing and reported no error"))
			}
			a.lo += a.n
			sent += a.n
		}
	}
	return sent, nil
}

// Close closes the socket; a blocked ReadBatch returns.
func (p *PacketPort) Close() error { return p.f.Close() }

// htons converts a 16-bit value to network byte order.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
