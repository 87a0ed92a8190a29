// File-descriptor store: a service manager that keeps file descriptors
// across a restart (systemd's FileDescriptorStoreMax=, the sd_notify
// FDSTORE=1 protocol) holds the engine port, NIC and IKE sockets between a
// stopping ovnsecd and the next one. Frames that arrive meanwhile wait in
// the sockets instead of being dropped with them, and the next process,
// given them back as LISTEN_FDS with their names, reads them once it has
// taken up the saved SAs: a restart then loses nothing, as an upgrade
// does. Without a store (no NOTIFY_SOCKET) the sockets close at exit.

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"

	"github.com/ovnsec/ovnsec/internal/backend/native"
)

// Names of the stored descriptors (FDNAME=), distinct from whatever else
// the service manager may hold for the unit.
const (
	storeEngine = "ovnsec-engine"
	storeWire   = "ovnsec-wire"
	storeIKE    = "ovnsec-ike"
	storeNATT   = "ovnsec-natt"
)

// storeSockets hands s's sockets to the service manager's store. It does
// nothing without NOTIFY_SOCKET.
func storeSockets(log *slog.Logger, s native.Sockets) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	if addr[0] == '@' {
		addr = "\x00" + addr[1:]
	}
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("store the sockets: %w", err)
	}
	defer unix.Close(sock)
	to := &unix.SockaddrUnix{Name: addr}
	var errs []error
	send := func(name string, rc syscallConn) {
		var werr error
		if err := rc.Control(func(fd uintptr) {
			werr = unix.Sendmsg(sock, []byte("FDSTORE=1\nFDNAME="+name), unix.UnixRights(int(fd)), to, 0)
		}); err != nil {
			werr = err
		}
		if werr != nil {
			errs = append(errs, fmt.Errorf("%s to %s: %w", name, os.Getenv("NOTIFY_SOCKET"), werr))
		}
	}
	for _, f := range []struct {
		name string
		f    *os.File
	}{{storeEngine, s.Engine}, {storeWire, s.Wire}} {
		if f.f == nil {
			continue
		}
		rc, err := f.f.SyscallConn()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		send(f.name, rc)
	}
	for _, c := range []struct {
		name string
		c    *net.UDPConn
	}{{storeIKE, s.IKE}, {storeNATT, s.NATT}} {
		if c.c == nil {
			continue
		}
		rc, err := c.c.SyscallConn()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		send(c.name, rc)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store the sockets with the service manager: %w", err)
	}
	log.Info("sockets handed to the service manager's store for the next ovnsecd")
	return nil
}

// syscallConn is the part of syscall.RawConn storeSockets uses.
type syscallConn interface{ Control(func(fd uintptr)) error }

// storedSockets takes the sockets a previous ovnsecd stored back from the
// service manager (LISTEN_FDS), and tells the manager to forget its copies
// (the next stop stores them again). nil when there are none.
func storedSockets(log *slog.Logger) (*native.Sockets, error) {
	files := activation.Files(true)
	var s native.Sockets
	var names []string
	var errs []error
	for _, f := range files {
		switch f.Name() {
		case storeEngine:
			s.Engine = f
		case storeWire:
			s.Wire = f
		case storeIKE, storeNATT:
			pc, err := net.FilePacketConn(f)
			f.Close()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", f.Name(), err))
				continue
			}
			uc, ok := pc.(*net.UDPConn)
			if !ok {
				pc.Close()
				errs = append(errs, fmt.Errorf("%s: a %T, not a UDP socket", f.Name(), pc))
				continue
			}
			if f.Name() == storeIKE {
				s.IKE = uc
			} else {
				s.NATT = uc
			}
		default:
			continue // not ours
		}
		names = append(names, f.Name())
	}
	if len(names) == 0 {
		return nil, nil
	}
	for _, n := range names {
		notify(log, "FDSTOREREMOVE=1\nFDNAME="+n)
	}
	if err := errors.Join(errs...); err != nil {
		s.Close()
		return nil, fmt.Errorf("sockets from the service manager's store: %w", err)
	}
	if s.Engine == nil || s.IKE == nil || s.NATT == nil {
		s.Close()
		return nil, fmt.Errorf("the service manager's store holds only %s; the sockets are opened anew", strings.Join(names, ", "))
	}
	log.Info("sockets of the previous ovnsecd taken back from the service manager's store", "names", strings.Join(names, ","))
	return &s, nil
}
