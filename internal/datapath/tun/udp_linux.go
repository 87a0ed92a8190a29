// udp_linux.go: the underlay socket: one UDP socket on port 4500 read and
// written in batches with recvmmsg/sendmmsg. Where the kernel supports it,
// runs of equal-sized datagrams to one peer leave as one UDP GSO send
// (UDP_SEGMENT) and arriving runs are received GRO-coalesced (UDP_GRO), so
// the stack is crossed once per run instead of once per datagram. The
// message headers, iovecs, addresses and control buffers are allocated
// once: a batch costs one system call and no allocation (x/net/ipv4's
// ReadBatch allocates an address per datagram).

package tun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// UDPConn is a batched IPv4 UDP socket. One goroutine may call ReadBatch
// while another calls WriteBatch; neither may be called concurrently with
// itself.
type UDPConn struct {
	conn *net.UDPConn
	rc   syscall.RawConn

	gso bool // send runs with UDP_SEGMENT; cleared if the kernel refuses
	gro bool // UDP_GRO is on: received messages may hold several datagrams

	r, w mmsgState
}

// mmsgState is one direction's system call arguments, allocated once.
type mmsgState struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet4
	oob   []byte // control buffer, oobLen per header
	group []int  // send: messages in header i

	// Arguments and results of the bound call.
	lo, hi int
	n      int
	errno  syscall.Errno
	call   func(fd uintptr) bool // bound once: no closure per batch
}

// oobLen is the control space per message: one int (UDP_GRO) or one
// uint16 (UDP_SEGMENT), with room to spare.
const oobLen = 64

// GSO limits: the kernel takes at most 64 segments (UDP_MAX_SEGMENTS on
// older kernels) and one UDP datagram's worth of bytes per send.
const (
	gsoMaxSegments = 64
	gsoMaxBytes    = 65535 - 20 - 8
)

func newMmsgState(batch int) mmsgState {
	s := mmsgState{
		hdrs:  make([]unix.Mmsghdr, batch),
		iovs:  make([]unix.Iovec, batch),
		names: make([]unix.RawSockaddrInet4, batch),
		oob:   make([]byte, batch*oobLen),
		group: make([]int, batch),
	}
	for i := range s.hdrs {
		h := &s.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&s.names[i]))
		h.Iov = &s.iovs[i]
		h.SetIovlen(1)
	}
	return s
}

// socketBuffer is the receive and send buffer size asked for (bursts of
// several batches of 64 KiB super-packets split into MTU-sized datagrams).
const socketBuffer = 8 << 20

// UDPOptions tunes ListenUDP; the zero value enables every offload the
// kernel has.
type UDPOptions struct {
	Batch        int  // most messages per system call; 0 means DefaultBatchSize
	NoGSO, NoGRO bool // leave UDP GSO / GRO off
}

// ListenUDP opens a UDP socket bound to local (IPv4; port 0 picks a free
// port). It is created in the calling thread's network namespace.
func ListenUDP(local netip.AddrPort, opt UDPOptions) (*UDPConn, error) {
	if !local.Addr().Is4() && local.Addr().IsValid() {
		return nil, fmt.Errorf("underlay socket %v: IPv4 only", local)
	}
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(local))
	if err != nil {
		return nil, fmt.Errorf("underlay socket: listen on %v: %w", local, err)
	}
	c, err := newUDPConn(conn, opt)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("underlay socket %v: %w", local, err)
	}
	return c, nil
}

// newUDPConn sets conn up for batched I/O with opt's offloads.
func newUDPConn(conn *net.UDPConn, opt UDPOptions) (*UDPConn, error) {
	batch := opt.Batch
	if batch <= 0 {
		batch = DefaultBatchSize
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	c := &UDPConn{conn: conn, rc: rc, r: newMmsgState(batch), w: newMmsgState(batch)}
	// Prefer the forced sizes (root may exceed net.core.[rw]mem_max);
	// fall back to the capped ones.
	var serr error
	cerr := rc.Control(func(fd uintptr) {
		s := int(fd)
		if unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBuffer) != nil {
			serr = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUF, socketBuffer)
		}
		if unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, socketBuffer) != nil {
			serr = errors.Join(serr, unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_SNDBUF, socketBuffer))
		}
		if !opt.NoGSO {
			_, err := unix.GetsockoptInt(s, unix.IPPROTO_UDP, unix.UDP_SEGMENT)
			c.gso = err == nil
		}
		if !opt.NoGRO {
			c.gro = unix.SetsockoptInt(s, unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
		}
	})
	if err := errors.Join(cerr, serr); err != nil {
		return nil, fmt.Errorf("buffer sizes: %w", err)
	}
	c.r.call = c.recvmmsg
	c.w.call = c.sendmmsg
	return c, nil
}

// LocalAddr returns the bound address.
func (c *UDPConn) LocalAddr() netip.AddrPort {
	return c.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Offloads reports whether UDP GSO (send) and GRO (receive) are in use.
func (c *UDPConn) Offloads() (gso, gro bool) { return c.gso, c.gro }

// Close closes the socket; blocked ReadBatch and WriteBatch calls return.
func (c *UDPConn) Close() error { return c.conn.Close() }

func (c *UDPConn) recvmmsg(fd uintptr) bool {
	s := &c.r
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[0])), uintptr(s.hi), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	s.n, s.errno = int(n), e
	return true
}

func (c *UDPConn) sendmmsg(fd uintptr) bool {
	s := &c.w
	n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[s.lo])), uintptr(s.hi-s.lo), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	s.n, s.errno = int(n), e
	return true
}

// ReadBatch receives up to len(msgs) messages (at most the batch size),
// blocking until at least one arrives. Each lands in msgs[i].Buf; N, Seg
// and Addr are set. With GRO a message may hold several datagrams of Seg
// bytes each; give buffers of 64 KiB to receive them whole.
func (c *UDPConn) ReadBatch(msgs []Message) (int, error) {
	s := &c.r
	s.hi = min(len(msgs), len(s.hdrs))
	if s.hi == 0 {
		return 0, nil
	}
	for i := range s.hi {
		if len(msgs[i].Buf) == 0 {
			return 0, fmt.Errorf("underlay receive: message %d has no buffer", i)
		}
		s.iovs[i].Base = &msgs[i].Buf[0]
		s.iovs[i].SetLen(len(msgs[i].Buf))
		h := &s.hdrs[i]
		h.Hdr.Namelen = unix.SizeofSockaddrInet4
		h.Hdr.Flags = 0
		h.Len = 0
		if c.gro {
			h.Hdr.Control = &s.oob[i*oobLen]
			h.Hdr.SetControllen(oobLen)
		}
	}
	s.n, s.errno = 0, 0
	if err := c.rc.Read(s.call); err != nil {
		return 0, err
	}
	if s.errno != 0 {
		return 0, os.NewSyscallError("recvmmsg", s.errno)
	}
	for i := range s.n {
		m := &msgs[i]
		h := &s.hdrs[i]
		m.N = int(h.Len)
		m.Seg = 0
		if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			m.N = 0 // truncated: unusable, dropped as malformed
		}
		if c.gro {
			m.Seg = groSize(s.oob[i*oobLen : i*oobLen+int(h.Hdr.Controllen)])
		}
		sa := &s.names[i]
		port := (*[2]byte)(unsafe.Pointer(&sa.Port))
		m.Addr = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(port[0])<<8|uint16(port[1]))
	}
	return s.n, nil
}

// groSize returns the segment size from a UDP_GRO control message, or 0.
func groSize(oob []byte) int {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && l >= unix.CmsgLen(4) {
			return int(binary.NativeEndian.Uint32(oob[unix.SizeofCmsghdr:]))
		}
		oob = oob[min(unix.CmsgSpace(l-unix.SizeofCmsghdr), len(oob)):]
	}
	return 0
}

// WriteBatch sends every message, at most the batch size per call.
// Consecutive messages to one address of one size (the last of a run may
// be shorter) leave as one GSO send. A message the kernel refuses (too
// big, no route) is skipped with its run; the count of messages sent and
// the first such error are returned. An error that concerns the socket
// itself stops the batch.
func (c *UDPConn) WriteBatch(msgs []Message) (int, error) {
	s := &c.w
	total := min(len(msgs), len(s.hdrs))
	for i := range total {
		m := &msgs[i]
		if len(m.Buf) == 0 || !m.Addr.Addr().Is4() {
			return 0, fmt.Errorf("underlay send: message %d to %v: empty or not IPv4", i, m.Addr)
		}
		s.iovs[i].Base = &m.Buf[0]
		s.iovs[i].SetLen(len(m.Buf))
	}
	h := 0
	for i := 0; i < total; h++ {
		m := &msgs[i]
		size := len(m.Buf)
		j, bytes := i+1, size
		if c.gso {
			for j < total && j-i < gsoMaxSegments && msgs[j].Addr == m.Addr &&
				len(msgs[j].Buf) <= size && bytes+len(msgs[j].Buf) <= gsoMaxBytes {
				bytes += len(msgs[j].Buf)
				j++
				if len(msgs[j-1].Buf) < size {
					break // a shorter datagram ends the run
				}
			}
		}
		sa := &s.names[h]
		sa.Family = unix.AF_INET
		sa.Addr = m.Addr.Addr().As4()
		port := (*[2]byte)(unsafe.Pointer(&sa.Port))
		port[0], port[1] = byte(m.Addr.Port()>>8), byte(m.Addr.Port())
		hd := &s.hdrs[h].Hdr
		hd.Namelen = unix.SizeofSockaddrInet4
		hd.Iov = &s.iovs[i]
		hd.SetIovlen(j - i)
		hd.Control = nil
		hd.SetControllen(0)
		if j-i > 1 {
			oob := s.oob[h*oobLen : (h+1)*oobLen]
			ch := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
			ch.Level = unix.SOL_UDP
			ch.Type = unix.UDP_SEGMENT
			ch.SetLen(unix.CmsgLen(2))
			binary.NativeEndian.PutUint16(oob[unix.SizeofCmsghdr:], uint16(size))
			hd.Control = &oob[0]
			hd.SetControllen(unix.CmsgSpace(2))
		}
		s.group[h] = j - i
		i = j
	}
	sent := 0
	var first error
	for s.lo, s.hi = 0, h; s.lo < s.hi; {
		s.n, s.errno = 0, 0
		if err := c.rc.Write(s.call); err != nil {
			return sent, err
		}
		if s.errno != 0 {
			switch s.errno {
			case unix.EBADF, unix.ENOTSOCK, unix.EFAULT:
				return sent, os.NewSyscallError("sendmmsg", s.errno)
			case unix.EIO:
				if c.gso && s.group[s.lo] > 1 {
					// The kernel or device cannot segment: send
					// the rest, this run included, without GSO.
					c.gso = false
					start := 0
					for k := range s.lo {
						start += s.group[k]
					}
					n, err := c.WriteBatch(msgs[start:total])
					return sent + n, errors.Join(first, err)
				}
			}
			if first == nil {
				first = os.NewSyscallError("sendmmsg", s.errno)
			}
			s.lo++ // skip the refused message and its run
			continue
		}
		if s.n <= 0 {
			return sent, errors.New("sendmmsg: kernel sent nothing and reported no error")
		}
		for k := s.lo; k < s.lo+s.n; k++ {
			sent += s.group[k]
		}
		s.lo += s.n
	}
	return sent, first
}

// SharedConn sends on a UDP socket another component owns and reads: the
// IKE engine's NAT-T socket, which one host has only one of. The owner
// hands the ESP-in-UDP datagrams it receives to Attachment.DeliverESP;
// ReadBatch receives nothing and returns once Close is called. Close
// leaves the socket to its owner.
type SharedConn struct {
	*UDPConn
	done chan struct{}
	once sync.Once
}

// ShareUDP wraps conn for an attachment's sends. UDP GRO stays off: the
// owner reads one datagram at a time.
func ShareUDP(conn *net.UDPConn, opt UDPOptions) (*SharedConn, error) {
	opt.NoGRO = true
	c, err := newUDPConn(conn, opt)
	if err != nil {
		return nil, fmt.Errorf("shared underlay socket %v: %w", conn.LocalAddr(), err)
	}
	return &SharedConn{UDPConn: c, done: make(chan struct{})}, nil
}

// ReadBatch blocks until Close: a shared socket is read by its owner.
func (c *SharedConn) ReadBatch([]Message) (int, error) {
	<-c.done
	return 0, net.ErrClosed
}

// Close ends ReadBatch; the socket stays open.
func (c *SharedConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}
