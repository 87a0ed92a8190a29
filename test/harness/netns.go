// HostDaemon: ovnsecd with the native backend inside an OVS host's
// network namespace (test/netns), started as scripts/demo.sh starts it:
// `ip netns exec <ns> env OVS_RUNDIR=<host dir> ... ovnsecd`, so that the
// backend's ovs-vsctl and ovs-ofctl reach that host's OVS. The tutorial,
// NAT and security end-to-end tests and the mesh bench share it.

package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ovnsec/ovnsec/internal/unixctl"
	"github.com/ovnsec/ovnsec/test/netns"
)

// NativeOptions adjust StartNative.
type NativeOptions struct {
	// Bin is the directory holding ovnsecd (Binaries, or a prebuilt one).
	Bin string
	// LogLevel is --log-level; "" is debug.
	LogLevel string
	// Env is added to ovnsecd's environment (GODEBUG=gctrace=1, ...).
	Env []string
	// Args are more flags; they come after the harness's own and before
	// the database argument.
	Args []string
}

// HostDaemon is an ovnsecd running in an OVS host's namespace. Its files
// live in the host's directory: ovnsecd.pid, ovnsecd.log (--log-file) and
// ovnsecd.out (standard output and error).
type HostDaemon struct {
	Cmd *exec.Cmd
	// Log is the --log-file, Out the captured standard output and error.
	Log, Out string
	// Pid and Ctl are ovnsecd's process id (from its pidfile) and control
	// socket, set by WaitReady.
	Pid int
	Ctl string

	name    string // the host, for errors
	pidfile string
	exited  chan struct{}
}

// StartNative starts `ovnsecd --ike-daemon=native --bridge=<h.Phy>
// --nic=<h.Dev>` in h's namespace against h's database. It does not wait
// for the daemon: call WaitReady. The caller stops it (Signal, Wait).
func StartNative(h *netns.OVSHost, o NativeOptions) (*HostDaemon, error) {
	d := &HostDaemon{
		Log: filepath.Join(h.Dir, "ovnsecd.log"), Out: filepath.Join(h.Dir, "ovnsecd.out"),
		name: h.Name, pidfile: filepath.Join(h.Dir, "ovnsecd.pid"), exited: make(chan struct{}),
	}
	out, err := os.Create(d.Out)
	if err != nil {
		return nil, fmt.Errorf("%s: ovnsecd output file: %w", h.Name, err)
	}
	defer out.Close()
	level := o.LogLevel
	if level == "" {
		level = "debug"
	}
	args := []string{"netns", "exec", h.Name, "env", "OVS_RUNDIR=" + h.Dir, "OVS_DBDIR=" + h.Dir, "OVS_LOGDIR=" + h.Dir}
	args = append(args, o.Env...)
	args = append(args, filepath.Join(o.Bin, "ovnsecd"), "--rundir="+h.Dir, "--pidfile="+d.pidfile, "--log-file="+d.Log,
		"--log-level="+level, "--ike-daemon=native", "--bridge="+h.Phy, "--nic="+h.Dev)
	args = append(args, o.Args...)
	args = append(args, h.DB())
	d.Cmd = exec.Command("ip", args...)
	d.Cmd.Stdout, d.Cmd.Stderr = out, out
	if err := d.Cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start ovnsecd: %w", h.Name, err)
	}
	go func() {
		_ = d.Cmd.Wait()
		close(d.exited)
	}()
	return d, nil
}

// Exited is closed when the process has exited.
func (d *HostDaemon) Exited() <-chan struct{} { return d.exited }

// WaitReady waits until ovnsecd has written its pidfile and answers
// tunnels/show on its control socket, and sets Pid and Ctl. It fails at
// once, with ovnsecd's output, if the process exits.
func (d *HostDaemon) WaitReady(ctx context.Context) error {
	for {
		if err := d.ready(ctx); err == nil {
			return nil
		}
		select {
		case <-d.exited:
			b, _ := os.ReadFile(d.Out)
			return fmt.Errorf("%s: ovnsecd exited at start: %s", d.name, strings.TrimSpace(string(b)))
		case <-ctx.Done():
			return fmt.Errorf("%s: ovnsecd's control socket did not answer: %w", d.name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (d *HostDaemon) ready(ctx context.Context) error {
	b, err := os.ReadFile(d.pidfile)
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("pidfile %s: %q is not a process id", d.pidfile, b)
	}
	ctl := filepath.Join(filepath.Dir(d.pidfile), fmt.Sprintf("ovnsecd.%d.ctl", pid))
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := unixctl.DialContext(cctx, ctl)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Call(cctx, "tunnels/show"); err != nil {
		return err
	}
	d.Pid, d.Ctl = pid, ctl
	return nil
}

// Signal sends sig to the process (SIGTERM: ovnsecd removes its engine
// port and exits).
func (d *HostDaemon) Signal(sig syscall.Signal) { _ = d.Cmd.Process.Signal(sig) }

// Wait waits up to timeout for the process to exit, then kills it.
func (d *HostDaemon) Wait(timeout time.Duration) {
	select {
	case <-d.exited:
	case <-time.After(timeout):
		_ = d.Cmd.Process.Kill()
		<-d.exited
	}
}

// Stop is Signal(SIGTERM) and Wait(timeout).
func (d *HostDaemon) Stop(timeout time.Duration) {
	d.Signal(syscall.SIGTERM)
	d.Wait(timeout)
}
