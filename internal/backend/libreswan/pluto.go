// Pluto's commands: the ipsec command lines of ovs-monitor-ipsec for this
// libreswan (`ipsec auto --add ...` before 5, `ipsec --add ...` from 5),
// each run through the Runner, with upstream's log lines and failure
// handling.

package libreswan

import (
	"context"
	"fmt"
	"regexp"
	"strings"
)

// ctlArgs are the arguments that name pluto's control socket and the root
// configuration, after the command (and "auto" before libreswan 5).
func (b *Backend) ipsecArgv(args ...string) []string {
	argv := []string{b.cfg.IPsec}
	if b.version.HasAuto() {
		argv = append(argv, "auto")
	}
	argv = append(argv, "--config", b.cfg.RootConf, "--ctlsocket", b.cfg.Ctl)
	return append(argv, args...)
}

// status runs `ipsec status` and parses it.
func (b *Backend) status(ctx context.Context) (plutoStatus, error) {
	argv := []string{b.cfg.IPsec, "status", "--ctlsocket", b.cfg.Ctl}
	r, err := b.cfg.Runner.Run(ctx, argv)
	if err != nil {
		return plutoStatus{}, fmt.Errorf("pluto status: %w", err)
	}
	if r.Code != 0 {
		return plutoStatus{}, &UnreachableError{Ctl: b.cfg.Ctl, Err: commandError("get ipsec status", argv, r)}
	}
	return parseStatus(r.Stdout), nil
}

// UnreachableError: pluto did not answer on its control socket.
type UnreachableError struct {
	Ctl string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("pluto is not answering on %s (is it running? --ipsec-ctl names its socket): %v", e.Ctl, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// reread tells pluto to read the secrets file again.
func (b *Backend) reread(ctx context.Context) error {
	argv := b.ipsecArgv("--rereadsecrets")
	r, err := b.cfg.Runner.Run(ctx, argv)
	if err != nil || r.Code != 0 {
		err = orCommandError(err, "re-read secrets", argv, r)
		b.log.Warn(err.Error())
		return err
	}
	return nil
}

// deleteConn deletes conn from pluto, logging upstream's line
// ("<conn> <reason>, removing").
func (b *Backend) deleteConn(ctx context.Context, conn, reason string) error {
	b.log.Info(fmt.Sprintf("%s %s, removing", conn, reason))
	b.mu.Lock()
	for _, st := range b.tunnels {
		delete(st.added, conn)
		delete(st.started, conn)
	}
	b.mu.Unlock()
	argv := b.ipsecArgv("--delete", conn)
	r, err := b.cfg.Runner.Run(ctx, argv)
	if err != nil || r.Code != 0 {
		err = orCommandError(err, "delete "+conn, argv, r)
		b.log.Warn(err.Error())
		return err
	}
	return nil
}

var failedInitiate = regexp.MustCompile(`[Ff]ailed to initiate connection`)

// connAction runs `--add` (synchronous), `--start` or `--up`
// (asynchronous) for conn. On failure (a non-zero exit, a timeout, or
// "failed to initiate connection" on stdout) the conn is deleted, as
// upstream does, since its state is unknown.
func (b *Backend) connAction(ctx context.Context, conn, action string) error {
	args := []string{"--" + action}
	if action != "add" {
		args = append(args, "--asynchronous")
	}
	argv := b.ipsecArgv(append(args, conn)...)
	r, err := b.cfg.Runner.Run(ctx, argv)
	// libreswan 5.3 warns that auto=route is overridden; that is expected.
	r.Stderr = strings.ReplaceAll(r.Stderr, fmt.Sprintf("conn %s: overriding auto=route with auto=add\n", conn), "")
	switch {
	case err != nil:
		err = fmt.Errorf("%s %s: %w", action, conn, err)
	case failedInitiate.MatchString(r.Stdout):
		iface, _, _ := strings.Cut(conn, "-")
		b.log.Error(fmt.Sprintf("Failed to initiate connection through Interface %s.", iface), "stdout", strings.TrimSpace(r.Stdout))
		err = fmt.Errorf("%s %s: pluto failed to initiate the connection: %s", action, conn, firstLines(strings.TrimSpace(r.Stdout), 3))
	case r.Code != 0:
		err = commandError(action+" "+conn, argv, r)
	}
	if err != nil {
		b.log.Warn(err.Error())
		_ = b.deleteConn(ctx, conn, "--"+action+" failed")
		return err
	}
	now := b.cfg.Clock.Now()
	b.mu.Lock()
	for _, st := range b.tunnels {
		if !containsConn(st.t, conn) {
			continue
		}
		if action == "add" {
			st.added[conn] = now
			delete(st.started, conn)
		} else {
			delete(st.added, conn)
			st.started[conn] = now
		}
	}
	b.mu.Unlock()
	return nil
}

func containsConn(t interface{ Conns() []string }, conn string) bool {
	for _, c := range t.Conns() {
		if c == conn {
			return true
		}
	}
	return false
}
