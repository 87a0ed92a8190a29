// Upgrade: SIGHUP, or "ovs-appctl -t ovnsecd upgrade", starts the binary
// at ovnsecd's path again (so replacing the file and sending SIGHUP
// upgrades it) with the same arguments, handing it the engine port, NIC
// and IKE sockets and the metrics listener as open files
// (github.com/cloudflare/tableflip). The new process builds its backend on
// them without reading, says it is ready; the old one then stops quietly,
// saves its SAs (the same handover file as a restart) and exits; the new
// one takes the SAs up, opens the pidfile and control sockets and reads
// what queued meanwhile. If the new process fails before it is ready, the
// old one goes on serving and the command reports why. Under systemd
// (Type=notify, NotifyAccess=all) the new process names itself MAINPID
// before the old one exits.

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/cloudflare/tableflip"
	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/backend/native"
)

// upgradeTimeout is how long the old process waits for the new one to be
// ready, and the new one for the old one to exit.
const upgradeTimeout = time.Minute

// Names of the handed-over files.
const (
	fdEngine = "engine"
	fdWire   = "wire"
	fdIKE    = "ike"
	fdNATT   = "natt"
)

// upgrades wraps the tableflip upgrader; a nil *upgrades (it could not be
// set up) listens normally and refuses to upgrade.
type upgrades struct {
	upg *tableflip.Upgrader
	log *slog.Logger
	// registered: the backend's sockets were added to the files passed on.
	registered bool
}

// newUpgrades sets up upgrades for this process (one per process).
func newUpgrades(log *slog.Logger) (*upgrades, error) {
	upg, err := tableflip.New(tableflip.Options{UpgradeTimeout: upgradeTimeout})
	if err != nil {
		return nil, fmt.Errorf("hitless upgrade unavailable: %w", err)
	}
	return &upgrades{upg: upg, log: log.With("stage", "upgrade")}, nil
}

// child reports whether this process was started by an upgrade.
func (u *upgrades) child() bool { return u != nil && u.upg.HasParent() }

// listen opens a TCP listener, or takes up the one the old process
// passed on for the same address.
func (u *upgrades) listen(addr string) (net.Listener, error) {
	if u == nil {
		return net.Listen("tcp", addr)
	}
	return u.upg.Listen("tcp", addr)
}

// inherited returns the backend sockets the old process passed on (nil
// when this is no upgrade or it passed none: a new backend opens its own).
func (u *upgrades) inherited() (*native.Sockets, error) {
	if !u.child() {
		return nil, nil
	}
	var s native.Sockets
	var err error
	if s.Engine, err = u.upg.File(fdEngine); err != nil {
		return nil, fmt.Errorf("handed-over engine port: %w", err)
	}
	if s.Wire, err = u.upg.File(fdWire); err != nil {
		return nil, fmt.Errorf("handed-over NIC socket: %w", err)
	}
	for _, c := range []struct {
		name string
		dst  **net.UDPConn
	}{{fdIKE, &s.IKE}, {fdNATT, &s.NATT}} {
		pc, err := u.upg.PacketConn("udp", c.name)
		if err != nil {
			return nil, fmt.Errorf("handed-over %s socket: %w", c.name, err)
		}
		if pc == nil {
			continue
		}
		uc, ok := pc.(*net.UDPConn)
		if !ok {
			pc.Close()
			return nil, fmt.Errorf("handed-over %s socket is a %T, not UDP", c.name, pc)
		}
		*c.dst = uc
	}
	if s.Engine == nil && s.IKE == nil {
		return nil, nil // the old process ran another backend
	}
	return &s, nil
}

// takeOver, in a process started by an upgrade, tells the old one it is
// ready and waits for it to exit (it saves its SAs on the way).
func (u *upgrades) takeOver(ctx context.Context) error {
	notify(u.log, fmt.Sprintf("MAINPID=%d", os.Getpid()))
	if err := u.upg.Ready(); err != nil {
		return fmt.Errorf("tell the old ovnsecd this one is ready: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, upgradeTimeout)
	defer cancel()
	if err := u.upg.WaitForParent(wctx); err != nil {
		return fmt.Errorf("wait for the old ovnsecd to exit: %w", err)
	}
	return nil
}

// ready marks a first-started process ready for later upgrades (a process
// started by one was marked by takeOver).
func (u *upgrades) ready() {
	if u == nil || u.child() {
		return
	}
	if err := u.upg.Ready(); err != nil {
		u.log.Warn("hitless upgrade unavailable", "err", err)
	}
}

// upgrade starts the new process with be's sockets and waits until it is
// ready. On success the caller exits, saving its SAs.
func (u *upgrades) upgrade(be backend.Backend) error {
	if u == nil {
		return errors.New("hitless upgrade unavailable in this process (see the start-up log)")
	}
	if sb, ok := be.(interface{ Sockets() native.Sockets }); ok && !u.registered {
		s := sb.Sockets()
		var errs []error
		if s.Engine != nil {
			errs = append(errs, u.upg.AddFile(fdEngine, s.Engine))
		}
		if s.Wire != nil {
			errs = append(errs, u.upg.AddFile(fdWire, s.Wire))
		}
		if s.IKE != nil && s.NATT != nil {
			errs = append(errs, u.upg.AddPacketConn("udp", fdIKE, s.IKE), u.upg.AddPacketConn("udp", fdNATT, s.NATT))
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("pass the sockets on: %w", err)
		}
		u.registered = true
	}
	notify(u.log, "RELOADING=1")
	exe, _ := os.Executable()
	u.log.Info("upgrade: starting the new ovnsecd", "binary", exe)
	if err := u.upg.Upgrade(); err != nil {
		notify(u.log, "READY=1")
		return fmt.Errorf("upgrade: %w; this ovnsecd goes on serving", err)
	}
	return nil
}

// notify sends state to systemd when it supervises us (NOTIFY_SOCKET).
func notify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("cannot notify systemd", "state", state, "err", err)
	}
}
