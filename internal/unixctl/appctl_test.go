// Integration tests against the real ovs-appctl (openvswitch-common): the
// acceptance test that OVS tooling can drive ovnsec daemons.

package unixctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/testenv"
)

// appctl runs ovs-appctl with OVS_RUNDIR=rundir and returns stdout,
// stderr and the exit code.
func appctl(t *testing.T, bin, rundir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--timeout=10"}, args...)...)
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+rundir)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run ovs-appctl %q: %v", args, err)
	}
	return so.String(), se.String(), code
}

// daemonUnderTest is what ovnsecd will do: one Server on the ctl sockets
// of two names, each with its pidfile.
type daemonUnderTest struct {
	rundir string
	srv    *Server
}

func startDaemon(t *testing.T) *daemonUnderTest {
	t.Helper()
	rundir := t.TempDir()
	pid := os.Getpid()
	s, err := Listen(CtlPath(rundir, "ovnsecd", pid), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddListener(CtlPath(rundir, "ovs-monitor-ipsec", pid)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ovnsecd", "ovs-monitor-ipsec"} {
		p, err := WritePidfile(PidfilePath(rundir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Remove() })
	}
	s.SetVersion("ovnsecd (ovnsec) 0.0.1-test")
	s.Register("ipsec/status", 0, 0, "", func(context.Context, []string) (string, error) {
		return "{}", nil
	})
	s.Register("echo", 0, 4, "[ARG...]", func(_ context.Context, args []string) (string, error) {
		return strings.Join(args, "|"), nil
	})
	s.Register("exit", 0, 1, "[--no-cleanup]", func(_ context.Context, args []string) (string, error) {
		if len(args) == 1 && args[0] != "--no-cleanup" {
			return "", fmt.Errorf("unrecognized parameter: %s", args[0])
		}
		return "", nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &daemonUnderTest{rundir: rundir, srv: s}
}

func TestAppctl(t *testing.T) {
	testenv.Short(t)
	bin := testenv.NeedCommands(t, "ovs-appctl")[0]
	d := startDaemon(t)
	byPath := CtlPath(d.rundir, "ovnsecd", os.Getpid())
	serverErr := func(target string) string {
		return "ovs-appctl: " + target + ": server returned an error\n"
	}
	tests := []struct {
		name     string
		args     []string
		wantOut  string
		wantErr  string
		wantCode int
	}{
		{name: "by path", args: []string{"-t", byPath, "ipsec/status"}, wantOut: "{}\n"},
		{name: "by name", args: []string{"-t", "ovnsecd", "ipsec/status"}, wantOut: "{}\n"},
		{name: "compatibility name", args: []string{"-t", "ovs-monitor-ipsec", "ipsec/status"}, wantOut: "{}\n"},
		{name: "multi-arg", args: []string{"-t", "ovnsecd", "echo", "a", "b c", "", `q"\`}, wantOut: "a|b c||q\"\\\n"},
		{name: "no reply text", args: []string{"-t", "ovnsecd", "exit", "--no-cleanup"}, wantOut: ""},
		{name: "command error exits 2", args: []string{"-t", "ovs-monitor-ipsec", "exit", "--bogus"},
			wantErr: "unrecognized parameter: --bogus\n" + serverErr("ovs-monitor-ipsec"), wantCode: 2},
		{name: "unknown command", args: []string{"-t", byPath, "tunnels/show"},
			wantErr: "\"tunnels/show\" is not a valid command (use \"list-commands\" to see a list of valid commands)\n" + serverErr(byPath), wantCode: 2},
		{name: "too many args", args: []string{"-t", "ovnsecd", "exit", "a", "b"},
			wantErr: "\"exit\" command takes at most 1 arguments\n" + serverErr("ovnsecd"), wantCode: 2},
		{name: "version", args: []string{"-t", "ovnsecd", "version"}, wantOut: "ovnsecd (ovnsec) 0.0.1-test\n"},
		{name: "list-commands", args: []string{"-t", "ovnsecd", "list-commands"}, wantOut: "The available commands are:\n" +
			"  echo                    [ARG...]\n" +
			"  exit                    [--no-cleanup]\n" +
			"  help                    \n" +
			"  ipsec/status            \n" +
			"  list-commands           \n" +
			"  version                 \n"},
		{name: "help", args: []string{"-t", "ovs-monitor-ipsec", "help"}, wantOut: "The available commands are:\n" +
			"  echo                    [ARG...]\n" +
			"  exit                    [--no-cleanup]\n" +
			"  help\n" +
			"  ipsec/status\n" +
			"  list-commands\n" +
			"  version\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := appctl(t, bin, d.rundir, tt.args...)
			if out != tt.wantOut || errOut != tt.wantErr || code != tt.wantCode {
				t.Errorf("ovs-appctl %q:\nstdout %q\nstderr %q\nexit   %d\nwant\nstdout %q\nstderr %q\nexit   %d",
					tt.args, out, errOut, code, tt.wantOut, tt.wantErr, tt.wantCode)
			}
		})
	}
}

func TestAppctlStalePidfile(t *testing.T) {
	// A pidfile with our pid but no lock is stale to OVS: this is why
	// WritePidfile must lock, and proves the test above depends on it.
	testenv.Short(t)
	bin := testenv.NeedCommands(t, "ovs-appctl")[0]
	rundir := t.TempDir()
	s, err := Listen(CtlPath(rundir, "ovnsecd", os.Getpid()), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	os.WriteFile(PidfilePath(rundir, "ovnsecd"), fmt.Appendf(nil, "%d\n", os.Getpid()), 0o644)

	_, errOut, code := appctl(t, bin, rundir, "-t", "ovnsecd", "version")
	if code == 0 || !strings.Contains(errOut, "cannot read pidfile") {
		t.Errorf("unlocked pidfile accepted: exit %d, stderr %q", code, errOut)
	}
	// By path it works regardless.
	out, _, code := appctl(t, bin, rundir, "-t", CtlPath(rundir, "ovnsecd", os.Getpid()), "version")
	if code != 0 || !strings.HasSuffix(out, "\n") {
		t.Errorf("by path: exit %d, %q", code, out)
	}
}

func TestAppctlWireFormat(t *testing.T) {
	// Record what ovs-appctl sends and check it decodes as we expect;
	// answer with our encoder and check ovs-appctl prints it.
	testenv.Short(t)
	bin := testenv.NeedCommands(t, "ovs-appctl")[0]
	path := filepath.Join(t.TempDir(), "raw.ctl")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		mr := newMessageReader(c)
		raw, err := mr.next()
		if err != nil {
			got <- nil
			return
		}
		got <- append([]byte(nil), raw...)
		req, err := parseRequest(raw)
		if err != nil {
			return
		}
		b, _ := encodeReply(req.id, true, "got "+req.method+" <&>")
		c.Write(b)
	}()
	out, errOut, code := appctl(t, bin, t.TempDir(), "-t", path, "tunnels/show", "x", "y z")
	raw := <-got
	req, err := parseRequest(raw)
	if err != nil {
		t.Fatalf("ovs-appctl sent %q: %v", raw, err)
	}
	args, ok := stringArgs(req.params)
	if req.method != "tunnels/show" || !ok || !equalStrings(args, []string{"x", "y z"}) {
		t.Errorf("ovs-appctl sent %s, decoded %q %q", raw, req.method, args)
	}
	if bytes.Contains(raw, []byte("\n")) {
		t.Errorf("ovs-appctl request contains a newline: %q", raw)
	}
	t.Logf("ovs-appctl sends %s", raw)
	if out != "got tunnels/show <&>\n" || code != 0 {
		t.Errorf("ovs-appctl printed %q (stderr %q), exit %d", out, errOut, code)
	}
}

func TestClientAgainstOVS(t *testing.T) {
	// Our client talking to a real OVS daemon: ovsdb-server answers
	// unixctl on --unixctl=<path>.
	testenv.Short(t)
	bins := testenv.NeedCommands(t, "ovsdb-server", "ovsdb-tool")
	dir := t.TempDir()
	db := filepath.Join(dir, "conf.db")
	schema := "/usr/share/openvswitch/vswitch.ovsschema"
	if _, err := os.Stat(schema); err != nil {
		testenv.Missing(t, "OVS schema %s", schema)
	}
	if out, err := exec.Command(bins[1], "create", db, schema).CombinedOutput(); err != nil {
		t.Fatalf("ovsdb-tool create: %v\n%s", err, out)
	}
	ctl := filepath.Join(dir, "ovsdb-server.ctl")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bins[0], db, "--unixctl="+ctl, "--remote=punix:"+filepath.Join(dir, "db.sock"),
		"--no-chdir", "--log-file="+filepath.Join(dir, "ovsdb.log"))
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+dir, "OVS_DBDIR="+dir, "OVS_LOGDIR="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })

	var c *Client
	var err error
	for range 100 {
		if c, err = Dial(ctl); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("ovsdb-server control socket: %v", err)
	}
	defer c.Close()
	callCtx, callCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer callCancel()
	v, err := c.Call(callCtx, "version")
	if err != nil || !strings.HasPrefix(v, "ovsdb-server (Open vSwitch) ") || !strings.HasSuffix(v, "\n") {
		t.Errorf("version = %q, %v", v, err)
	}
	_, err = c.Call(callCtx, "no/such")
	var se *ServerError
	if !errors.As(err, &se) || !strings.Contains(se.Text, `"no/such" is not a valid command`) {
		t.Errorf("unknown command: %v", err)
	}
	if _, err := c.Call(callCtx, "list-commands"); err != nil {
		t.Errorf("list-commands after an error reply: %v", err)
	}
}

func TestSameAsPythonOVS(t *testing.T) {
	// The real ovs-monitor-ipsec answers through python-ovs's unixctl
	// server. Run one with the same commands as ours and compare replies
	// to the same requests, byte for byte.
	testenv.Short(t)
	py := testenv.NeedCommands(t, "/usr/bin/python3")[0]
	if err := exec.Command(py, "-c", "import ovs.unixctl.server").Run(); err != nil {
		testenv.Missing(t, "python3-openvswitch (import ovs.unixctl.server: %v)", err)
	}
	dir := t.TempDir()
	pyPath := filepath.Join(dir, "py.ctl")
	cmd := exec.Command(py, "testdata/pyserver.py", pyPath)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make([]byte, 6)
	if _, err := io.ReadFull(stdout, line); err != nil || string(line) != "ready\n" {
		t.Fatalf("python server: %q, %v", line, err)
	}

	ourPath := filepath.Join(dir, "go.ctl")
	s, err := Listen(ourPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.SetVersion("ovs-monitor-ipsec (Open vSwitch) 9.9.9")
	s.Register("echo", 0, 4, "[ARG...]", func(_ context.Context, args []string) (string, error) {
		return strings.Join(args, "|"), nil
	})
	s.Register("ipsec/status", 0, 0, "", func(context.Context, []string) (string, error) { return "{}", nil })
	s.Register("exit", 1, 1, "[--no-cleanup]", func(_ context.Context, args []string) (string, error) {
		return "", fmt.Errorf("unrecognized parameter: %s", args[0])
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	requests := []string{
		`{"method":"echo","params":["a","b c"],"id":0}`,
		`{"method":"echo","params":[],"id":1}`,
		`{"method":"ipsec/status","params":[],"id":2}`,
		`{"method":"version","params":[],"id":3}`,
		`{"method":"help","params":[],"id":4}`,
		`{"method":"exit","params":["--bogus"],"id":5}`,
		`{"method":"exit","params":[],"id":6}`,
		`{"method":"echo","params":["1","2","3","4","5"],"id":7}`,
		`{"method":"echo","params":["x",1],"id":"s"}`,
	}
	for _, req := range requests {
		var replies [2]map[string]any
		for i, p := range []string{pyPath, ourPath} {
			c := rawConn(t, p)
			io.WriteString(c, req)
			raw := readReplies(t, c, 1)[0]
			if err := json.Unmarshal([]byte(raw), &replies[i]); err != nil {
				t.Fatalf("%s: reply %q: %v", p, raw, err)
			}
			c.Close()
		}
		py, ours := replies[0], replies[1]
		if strings.Contains(req, `"help"`) {
			// Ours has list-commands (OVS's C daemons do); python-ovs has not.
			ours["result"] = strings.Replace(ours["result"].(string), "  list-commands\n", "", 1)
		}
		if fmt.Sprint(py) != fmt.Sprint(ours) {
			t.Errorf("request %s:\npython-ovs %q\nours       %q", req, py, ours)
		}
	}
}

func TestAppctlExit(t *testing.T) {
	// `ovs-appctl -t ovs-monitor-ipsec exit` must succeed although the
	// command stops the server, and the socket must be gone afterwards.
	testenv.Short(t)
	bin := testenv.NeedCommands(t, "ovs-appctl")[0]
	rundir := t.TempDir()
	path := CtlPath(rundir, "ovs-monitor-ipsec", os.Getpid())
	s, err := Listen(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := WritePidfile(PidfilePath(rundir, "ovs-monitor-ipsec"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Remove()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.Register("exit", 0, 1, "[--no-cleanup]", func(context.Context, []string) (string, error) {
		cancel()
		return "", nil
	})
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	out, errOut, code := appctl(t, bin, rundir, "-t", "ovs-monitor-ipsec", "exit", "--no-cleanup")
	if out != "" || errOut != "" || code != 0 {
		t.Errorf("exit: stdout %q stderr %q code %d", out, errOut, code)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket remains: %v", err)
	}
}
