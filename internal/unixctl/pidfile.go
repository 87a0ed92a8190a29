// Daemon files: the pidfile through which `ovs-appctl -t <name>` finds a
// daemon's control socket (<rundir>/<name>.pid -> <rundir>/<name>.<pid>.ctl).
//
// OVS decides whether a pidfile is live by its lock, not by its contents:
// read_pidfile (lib/daemon-unix.c) asks fcntl(F_GETLK) for a conflicting
// write lock and accepts the pidfile only if a process holds one and that
// process's pid is the number in the file. So the daemon must hold a
// classic POSIX record lock (not flock, not an open-file-description lock)
// on the pidfile for as long as it runs. Such locks belong to the process
// and are released when the process closes *any* descriptor of the file,
// so nothing in a daemon may open its own pidfile again.

package unixctl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// CtlPath returns the control socket path OVS daemons use and ovs-appctl
// looks for: <rundir>/<program>.<pid>.ctl.
func CtlPath(rundir, program string, pid int) string {
	return filepath.Join(rundir, fmt.Sprintf("%s.%d.ctl", program, pid))
}

// PidfilePath returns <rundir>/<program>.pid.
func PidfilePath(rundir, program string) string {
	return filepath.Join(rundir, program+".pid")
}

// Pidfile is a pidfile written and locked by this process.
type Pidfile struct {
	path string
	f    *os.File // holds the lock; never closed before Remove
	dev  uint64
	ino  uint64
}

// Path returns the pidfile's path.
func (p *Pidfile) Path() string { return p.path }

// ErrPidfileHeld is returned (wrapped) by WritePidfile when a live process
// holds the pidfile.
var ErrPidfileHeld = errors.New("pidfile held by a running process")

// WritePidfile writes "<pid>\n" to path atomically (a locked temporary file
// renamed into place) and keeps it locked the way OVS daemons do, so that
// ovs-appctl -t <name> accepts it. It refuses, with an error wrapping
// ErrPidfileHeld, when another live process holds the pidfile, and replaces
// a stale one. Keep the returned Pidfile for the life of the process and
// call Remove on exit.
func WritePidfile(path string) (*Pidfile, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if err := refuseOwnFile(path); err != nil {
		return nil, err
	}

	tmp, err := os.CreateTemp(dir, "."+base+".tmp")
	if err != nil {
		return nil, fmt.Errorf("create pidfile %s: %w (does the run directory exist and is it writable?)", path, err)
	}
	p := &Pidfile{path: path, f: tmp}
	ok := false
	defer func() {
		if !ok {
			os.Remove(tmp.Name())
			tmp.Close()
		}
	}()
	if err := lockFile(tmp, syscall.F_SETLK); err != nil {
		return nil, fmt.Errorf("lock pidfile %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return nil, fmt.Errorf("create pidfile %s: %w", path, err)
	}
	if _, err := tmp.WriteString(strconv.Itoa(os.Getpid()) + "\n"); err != nil {
		return nil, fmt.Errorf("write pidfile %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("write pidfile %s: %w", tmp.Name(), err)
	}

	if err := installPidfile(tmp.Name(), path); err != nil {
		return nil, err
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(tmp.Fd()), &st); err != nil {
		return nil, fmt.Errorf("stat pidfile %s: %w", path, err)
	}
	p.dev, p.ino = uint64(st.Dev), st.Ino
	ok = true
	return p, nil
}

// installPidfile moves the locked temporary file tmp to path. When path
// exists, its lock is taken first, and only if no live process holds it
// and it is still the file at path (someone may have replaced it
// meanwhile) is it replaced, the check-then-replace OVS does too.
func installPidfile(tmp, path string) error {
	for range 10 {
		old, err := os.OpenFile(path, os.O_RDWR, 0)
		if errors.Is(err, os.ErrNotExist) {
			// link fails if someone else created path meanwhile.
			if err := os.Link(tmp, path); err != nil {
				if errors.Is(err, os.ErrExist) {
					continue
				}
				return fmt.Errorf("install pidfile %s: %w", path, err)
			}
			os.Remove(tmp)
			return nil
		}
		if err != nil {
			return fmt.Errorf("open existing pidfile %s: %w", path, err)
		}
		err = replaceStale(old, tmp, path)
		old.Close() // releases our lock on the old, now unlinked, file
		if errors.Is(err, errRetry) {
			continue
		}
		return err
	}
	return fmt.Errorf("install pidfile %s: it keeps changing under us; is another instance starting?", path)
}

var errRetry = errors.New("retry")

func replaceStale(old *os.File, tmp, path string) error {
	if err := lockFile(old, syscall.F_SETLK); err != nil {
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
			return heldError(old, path)
		}
		return fmt.Errorf("lock existing pidfile %s: %w", path, err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(old.Fd()), &st); err != nil {
		return fmt.Errorf("stat existing pidfile %s: %w", path, err)
	}
	if dev, ino, err := fileID(path); err != nil || dev != uint64(st.Dev) || ino != st.Ino {
		return errRetry
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace stale pidfile %s: %w", path, err)
	}
	return nil
}

// heldError names the process that holds path locked.
func heldError(f *os.File, path string) error {
	lk := wholeFileLock()
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err == nil && lk.Type != syscall.F_UNLCK {
		return fmt.Errorf("pidfile %s: %w (pid %d); stop it first", path, ErrPidfileHeld, lk.Pid)
	}
	return fmt.Errorf("pidfile %s: %w; stop it first", path, ErrPidfileHeld)
}

// refuseOwnFile fails if this process already has path open: opening and
// closing it again would silently drop the lock that makes it live.
func refuseOwnFile(path string) error {
	dev, ino, err := fileID(path)
	if err != nil {
		return nil // absent (or unreadable: the open below reports it)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil // no procfs: nothing to compare with
	}
	for _, fd := range fds {
		var st syscall.Stat_t
		if syscall.Stat("/proc/self/fd/"+fd.Name(), &st) == nil && uint64(st.Dev) == dev && st.Ino == ino {
			return fmt.Errorf("pidfile %s: %w (this process)", path, ErrPidfileHeld)
		}
	}
	return nil
}

// Remove deletes the pidfile if it is still the one p wrote, and releases
// its lock. Call it once, on exit.
func (p *Pidfile) Remove() error {
	if p.f == nil {
		return nil
	}
	var err error
	if dev, ino, serr := fileID(p.path); serr == nil && dev == p.dev && ino == p.ino {
		if rerr := os.Remove(p.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = fmt.Errorf("remove pidfile %s: %w", p.path, rerr)
		}
	}
	p.f.Close()
	p.f = nil
	return err
}

// ReadPidfile returns the pid of the live process that owns the pidfile at
// path, with the checks of OVS's read_pidfile: the file must be write-locked
// (classic POSIX lock) by the process whose pid it contains. A stale
// pidfile gives an error wrapping syscall.ESRCH.
//
// It opens and closes path, so a daemon must never call it on a pidfile it
// holds itself (closing would drop its lock).
func ReadPidfile(path string) (int, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("cannot read pidfile %q: %w", path, err)
	}
	defer f.Close()
	lk := wholeFileLock()
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return 0, fmt.Errorf("cannot read pidfile %q: fcntl: %w", path, err)
	}
	if lk.Type == syscall.F_UNLCK {
		return 0, fmt.Errorf("pidfile %q is stale (not locked): %w", path, syscall.ESRCH)
	}
	line, err := io.ReadAll(io.LimitReader(f, 128))
	if err != nil {
		return 0, fmt.Errorf("cannot read pidfile %q: %w", path, err)
	}
	s, _, _ := strings.Cut(string(line), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pidfile %q does not hold a pid: %q", path, s)
	}
	if int(lk.Pid) != pid {
		return 0, fmt.Errorf("pidfile %q is stale (names pid %d but pid %d holds it): %w", path, pid, lk.Pid, syscall.ESRCH)
	}
	return pid, nil
}

// TargetPath resolves an ovs-appctl target the way ovs-appctl does: a
// target starting with "/" is a socket path; otherwise it is a program
// name whose pidfile <rundir>/<target>.pid gives the pid in
// <rundir>/<target>.<pid>.ctl.
func TargetPath(rundir, target string) (string, error) {
	if strings.HasPrefix(target, "/") {
		return target, nil
	}
	pid, err := ReadPidfile(PidfilePath(rundir, target))
	if err != nil {
		return "", fmt.Errorf("find control socket of %s: %w", target, err)
	}
	return CtlPath(rundir, target, pid), nil
}

func wholeFileLock() syscall.Flock_t {
	return syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
}

func lockFile(f *os.File, cmd int) error {
	lk := wholeFileLock()
	return syscall.FcntlFlock(f.Fd(), cmd, &lk)
}

// RunDir returns the directory where ovs-appctl looks for pidfiles and
// control sockets: $OVS_RUNDIR, or Debian's /var/run/openvswitch.
func RunDir() string {
	if d := os.Getenv("OVS_RUNDIR"); d != "" {
		return d
	}
	return "/var/run/openvswitch"
}
