// Engine port stage: the persistent TAP device OVS sees as an ordinary
// ("system") port of br-phy and the engine reads and writes frames on.
//
// The TAP is persistent (TUNSETPERSIST) so the OVS port exists before the
// engine starts and outlives it: with no engine attached the TAP has no
// carrier and whatever OVS steers to it is lost, which is the fail-closed
// behaviour we want. It is opened IFF_TAP|IFF_NO_PI without IFF_VNET_HDR:
// OVS 3.1 drives system ports over AF_PACKET without GSO (unless
// other_config:userspace-tso-enable, which does not combine with tunnels),
// and with no TUNSETOFFLOAD the kernel completes checksums before handing a
// frame to the TAP, so a virtio-net header would always be empty.

package ovsbridge

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ovnsec/ovnsec/internal/nsenter"
)

// TAP is an open engine port.
type TAP struct {
	name string
	f    *os.File
	rc   syscall.RawConn
}

// OpenTAP attaches to the TAP device name, creating it if it does not
// exist, in the network namespace at netnsPath ("" = the current one).
func OpenTAP(name, netnsPath string) (*TAP, error) {
	if !validPortName(name) {
		return nil, fmt.Errorf("open TAP %q: not a valid interface name", name)
	}
	var fd int
	err := inNetns(netnsPath, func() error {
		var err error
		fd, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("open /dev/net/tun: %w (is the tun module available?)", err)
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			unix.Close(fd)
			return err
		}
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EBUSY) {
				return fmt.Errorf("attach TAP %s: %w (a device of that name exists with other flags or is held by another process; delete it with `ip link del %s`)", name, err, name)
			}
			return fmt.Errorf("attach TAP %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "/dev/net/tun:"+name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("TAP %s: %w", name, err)
	}
	return &TAP{name: name, f: f, rc: rc}, nil
}

// TAPFromFile takes up the TAP another process opened with OpenTAP (handed
// over in an upgrade); frames queued on the device are read next. It owns
// f from then on.
func TAPFromFile(name string, f *os.File) (*TAP, error) {
	if f == nil {
		return nil, fmt.Errorf("TAP %s: no file", name)
	}
	nf, err := adoptFile(f, "/dev/net/tun:"+name, func(fd int) error {
		ifr, err := unix.NewIfreq("")
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
			return fmt.Errorf("the file handed over is not an attached TAP: %w", err)
		}
		if got := ifr.Name(); got != name {
			return fmt.Errorf("the file handed over is attached to %q", got)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("TAP %s: %w", name, err)
	}
	rc, err := nf.SyscallConn()
	if err != nil {
		nf.Close()
		return nil, fmt.Errorf("TAP %s: %w", name, err)
	}
	return &TAP{name: name, f: nf, rc: rc}, nil
}

// Name returns the interface name.
func (t *TAP) Name() string { return t.name }

// File is the device's file, for handing it to another process (which
// gets a duplicate); it stays owned by t.
func (t *TAP) File() *os.File { return t.f }

// SetPersist makes the device outlive this file descriptor (or not).
func (t *TAP) SetPersist(on bool) error {
	v := 0
	if on {
		v = 1
	}
	var err error
	cerr := t.rc.Control(func(fd uintptr) {
		err = unix.IoctlSetInt(int(fd), unix.TUNSETPERSIST, v)
	})
	if cerr != nil {
		return fmt.Errorf("TAP %s persist: %w", t.name, cerr)
	}
	if err != nil {
		return fmt.Errorf("TAP %s persist=%v: %w", t.name, on, err)
	}
	return nil
}

// ReadBatch blocks until a frame is available, then reads frames until
// bufs is full or the device has no more ready: one wake-up drains a burst.
// A frame longer than its buffer is truncated by the kernel; the caller
// sees sizes[i] == len(bufs[i]) and should drop it.
func (t *TAP) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	n := 0
	var rerr error
	err := t.rc.Read(func(fd uintptr) bool {
		for n < len(bufs) && n < len(sizes) {
			k, err := unix.Read(int(fd), bufs[n])
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return n > 0 // nothing yet: wait for readiness
			case err != nil:
				rerr = err
				return true
			}
			sizes[n] = k
			n++
		}
		return true
	})
	if n > 0 {
		return n, nil
	}
	if err != nil {
		return 0, err
	}
	return 0, rerr
}

// WriteBatch writes each frame with one write(2), all within one poller
// turn; it returns how many were written before the first error.
func (t *TAP) WriteBatch(frames [][]byte) (int, error) {
	n := 0
	var werr error
	err := t.rc.Write(func(fd uintptr) bool {
		for n < len(frames) {
			_, err := unix.Write(int(fd), frames[n])
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return false
			case err != nil:
				werr = err
				return true
			}
			n++
		}
		return true
	})
	if werr == nil {
		werr = err
	}
	if werr != nil {
		return n, fmt.Errorf("write TAP %s: %w", t.name, werr)
	}
	return n, nil
}

// Close releases the file descriptor; a persistent device stays.
func (t *TAP) Close() error { return t.f.Close() }

// EnsureTAP makes the persistent TAP name exist in the namespace with the
// given MTU, up, and with IPv6 disabled (so the kernel sends no router or
// multicast solicitations into it). It does not keep it open.
func EnsureTAP(name, netnsPath string, mtu int) error {
	t, err := OpenTAP(name, netnsPath)
	if err != nil {
		return err
	}
	defer t.Close()
	if err := t.SetPersist(true); err != nil {
		return err
	}
	return inNetns(netnsPath, func() error {
		// Best effort: the file is absent when IPv6 is off entirely.
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/disable_ipv6", []byte("1"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("disable IPv6 on %s: %w", name, err)
		}
		if mtu > 0 {
			if err := setMTU(name, mtu); err != nil {
				return err
			}
		}
		return setUp(name)
	})
}

// DeleteTAP removes the persistent TAP name.
func DeleteTAP(name, netnsPath string) error {
	t, err := OpenTAP(name, netnsPath)
	if err != nil {
		return err
	}
	err = t.SetPersist(false)
	t.Close()
	return err
}

// LinkMTU returns the MTU of interface name in the namespace.
func LinkMTU(name, netnsPath string) (int, error) {
	var mtu int
	err := inNetns(netnsPath, func() error {
		return ioctlSock(func(s int) error {
			ifr, err := unix.NewIfreq(name)
			if err != nil {
				return err
			}
			if err := unix.IoctlIfreq(s, unix.SIOCGIFMTU, ifr); err != nil {
				return fmt.Errorf("get MTU of %s: %w", name, err)
			}
			mtu = int(ifr.Uint32())
			return nil
		})
	})
	return mtu, err
}

func setMTU(name string, mtu int) error {
	return ioctlSock(func(s int) error {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		ifr.SetUint32(uint32(mtu))
		if err := unix.IoctlIfreq(s, unix.SIOCSIFMTU, ifr); err != nil {
			return fmt.Errorf("set MTU %d on %s: %w", mtu, name, err)
		}
		return nil
	})
}

func setUp(name string) error {
	return ioctlSock(func(s int) error {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
			return fmt.Errorf("get flags of %s: %w", name, err)
		}
		ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
		if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
			return fmt.Errorf("set %s up: %w", name, err)
		}
		return nil
	})
}

func ioctlSock(fn func(s int) error) error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("ioctl socket: %w", err)
	}
	defer unix.Close(s)
	return fn(s)
}

// inNetns runs fn in the network namespace at path ("" = ours).
func inNetns(path string, fn func() error) error { return nsenter.Do(path, fn) }
