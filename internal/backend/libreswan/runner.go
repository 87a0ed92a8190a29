// Commands: every external program the backend runs (ipsec, certutil,
// pk12util, openssl, ip) goes through one Runner, which bounds it with a
// timeout, always drains its output (a full pipe once deadlocked whack,
// pluto and ovs-monitor-ipsec, upstream 01b988ded) and reports a killed
// command as upstream does (exit code 137).

package libreswan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// DefaultCommandTimeout is ovs-monitor-ipsec's --command-timeout default.
const DefaultCommandTimeout = 120 * time.Second

// TimedOutCode is the exit code of a command killed at its timeout
// (128 + SIGKILL), as ovs-monitor-ipsec reports it.
const TimedOutCode = 137

// maxOutput bounds what is kept of one command's stdout or stderr: far
// above `ipsec status` for thousands of connections, small enough that a
// runaway command cannot exhaust memory.
const maxOutput = 64 << 20

// Result is a finished command.
type Result struct {
	Stdout, Stderr string
	// Code is the exit status; TimedOutCode when the command was killed
	// at its timeout.
	Code     int
	TimedOut bool
}

// Runner runs one program to completion.
type Runner interface {
	// Run runs argv[0] with argv[1:]. err is set only when the program
	// could not be started; a non-zero exit is Result.Code.
	Run(ctx context.Context, argv []string) (Result, error)
}

// ExecRunner runs programs with os/exec, each under Timeout (and ctx).
type ExecRunner struct {
	Timeout time.Duration
	// Env, when set, is appended to the process environment.
	Env []string
}

// Run implements Runner.
func (r ExecRunner) Run(ctx context.Context, argv []string) (Result, error) {
	if len(argv) == 0 {
		return Result{}, errors.New("run: empty command line")
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultCommandTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
	if len(r.Env) > 0 {
		cmd.Env = append(cmd.Environ(), r.Env...)
	}
	var out, errb limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	// A child that keeps the pipes open after the kill must not hold us.
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	res := Result{Stdout: out.String(), Stderr: errb.String()}
	if cctx.Err() != nil && ctx.Err() == nil {
		res.Code, res.TimedOut = TimedOutCode, true
		return res, nil
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("run %s: %w", argv[0], ctx.Err())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
		if res.Code < 0 {
			res.Code = TimedOutCode // killed by a signal
		}
	case errors.Is(err, exec.ErrWaitDelay):
	default:
		return res, fmt.Errorf("run %s: %w", argv[0], err)
	}
	return res, nil
}

// limitedBuffer keeps the first maxOutput bytes and discards the rest,
// always accepting writes so that the child never blocks on a full pipe.
type limitedBuffer struct{ b bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return l.b.String() }

// commandError describes a failed command as ovs-monitor-ipsec logs it,
// in one error: what it tried, the exit code, the command line and its
// output.
func commandError(desc string, argv []string, r Result) error {
	if r.TimedOut {
		return fmt.Errorf("timed out trying to %s (killed; exit code %d): %s", desc, r.Code, strings.Join(argv, " "))
	}
	msg := fmt.Sprintf("failed to %s; exit code: %d; cmdline: %s", desc, r.Code, strings.Join(argv, " "))
	if s := strings.TrimSpace(r.Stderr); s != "" {
		msg += "; stderr: " + firstLines(s, 5)
	}
	if s := strings.TrimSpace(r.Stdout); s != "" {
		msg += "; stdout: " + firstLines(s, 5)
	}
	return errors.New(msg)
}

// firstLines joins the first n lines of s with " | ".
func firstLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, " | ")
}
