// Tests of the server and client against each other and against raw
// sockets.

package unixctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testServer is a served Server with a few commands:
//
//	echo [ARG...]  (0..3 args) replies the args joined by "|"
//	fail           replies an error "failed: <args>"
//	block          waits until released or ctx ends
//	crash          panics
type testServer struct {
	*Server
	path     string
	cancel   context.CancelFunc
	done     chan struct{} // closed when Serve returned serveErr
	serveErr error
	release  chan struct{}
	started  chan struct{}
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ovnsecd.ctl")
	s, err := Listen(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, path: path, done: make(chan struct{}), release: make(chan struct{}), started: make(chan struct{}, 16)}
	s.Register("echo", 0, 3, "[ARG...]", func(ctx context.Context, args []string) (string, error) {
		return strings.Join(args, "|"), nil
	})
	s.Register("fail", 0, 1, "[REASON]", func(ctx context.Context, args []string) (string, error) {
		return "", fmt.Errorf("failed: %s", strings.Join(args, " "))
	})
	s.Register("block", 0, 0, "", func(ctx context.Context, args []string) (string, error) {
		ts.started <- struct{}{}
		select {
		case <-ts.release:
			return "released", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})
	s.Register("crash", 0, 0, "", func(ctx context.Context, args []string) (string, error) {
		panic("boom")
	})
	s.SetVersion("ovnsecd (ovnsec) 1.2.3")
	ctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	go func() { ts.serveErr = s.Serve(ctx); close(ts.done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ts.done:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return ts
}

func dial(t *testing.T, path string) *Client {
	t.Helper()
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestCommands(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.path)
	tests := []struct {
		method  string
		args    []string
		want    string
		wantErr string // exact server error text
	}{
		{method: "echo", want: ""},
		{method: "echo", args: []string{"a"}, want: "a\n"},
		{method: "echo", args: []string{"a b", "", "ü\"\\"}, want: "a b||ü\"\\\n"},
		{method: "echo", args: []string{"1", "2", "3", "4"}, wantErr: "\"echo\" command takes at most 3 arguments\n"},
		{method: "fail", args: []string{"x"}, wantErr: "failed: x\n"},
		{method: "nope", wantErr: "\"nope\" is not a valid command (use \"list-commands\" to see a list of valid commands)\n"},
		{method: "", wantErr: "\"\" is not a valid command (use \"list-commands\" to see a list of valid commands)\n"},
		{method: "version", want: "ovnsecd (ovnsec) 1.2.3\n"},
		{method: "version", args: []string{"x"}, wantErr: "\"version\" command takes at most 0 arguments\n"},
		{method: "crash", wantErr: "internal error running \"crash\" (see the daemon log)\n"},
		{method: "echo", args: []string{"still", "alive"}, want: "still|alive\n"},
	}
	for _, tt := range tests {
		got, err := c.Call(callCtx(t), tt.method, tt.args...)
		if tt.wantErr != "" {
			var se *ServerError
			if !errors.As(err, &se) || se.Text != tt.wantErr {
				t.Errorf("%s %q: err = %#v, want server error %q", tt.method, tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s %q = %q, %v; want %q", tt.method, tt.args, got, err, tt.want)
		}
	}
}

func TestMinArgs(t *testing.T) {
	ts := startServer(t)
	ts.Register("two", 2, 2, "A B", func(ctx context.Context, args []string) (string, error) {
		return args[0] + args[1], nil
	})
	c := dial(t, ts.path)
	_, err := c.Call(callCtx(t), "two", "a")
	var se *ServerError
	if !errors.As(err, &se) || se.Text != "\"two\" command requires at least 2 arguments\n" {
		t.Errorf("err = %v", err)
	}
	if got, err := c.Call(callCtx(t), "two", "a", "b"); got != "ab\n" || err != nil {
		t.Errorf("got %q, %v", got, err)
	}
}

func TestListCommandsAndHelp(t *testing.T) {
	ts := startServer(t)
	ts.Register("exit", 0, 1, "[--no-cleanup]", func(context.Context, []string) (string, error) { return "", nil })
	c := dial(t, ts.path)
	got, err := c.Call(callCtx(t), "list-commands")
	want := "The available commands are:\n" +
		"  block                   \n" +
		"  crash                   \n" +
		"  echo                    [ARG...]\n" +
		"  exit                    [--no-cleanup]\n" +
		"  fail                    [REASON]\n" +
		"  help                    \n" +
		"  list-commands           \n" +
		"  version                 \n"
	if err != nil || got != want {
		t.Errorf("list-commands = %q, %v\nwant %q", got, err, want)
	}
	got, err = c.Call(callCtx(t), "help")
	want = "The available commands are:\n" +
		"  block\n" +
		"  crash\n" +
		"  echo                    [ARG...]\n" +
		"  exit                    [--no-cleanup]\n" +
		"  fail                    [REASON]\n" +
		"  help\n" +
		"  list-commands\n" +
		"  version\n"
	if err != nil || got != want {
		t.Errorf("help = %q, %v\nwant %q", got, err, want)
	}
}

func TestRegisterPanics(t *testing.T) {
	s, err := Listen(filepath.Join(t.TempDir(), "x.ctl"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fn := func(context.Context, []string) (string, error) { return "", nil }
	tests := []struct {
		name     string
		min, max int
		fn       HandlerFunc
	}{
		{"help", 0, 0, fn}, // builtin
		{"", 0, 0, fn},
		{"neg", -1, 0, fn},
		{"inverted", 2, 1, fn},
		{"nilfn", 0, 0, nil},
	}
	for _, tt := range tests {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q, %d, %d) did not panic", tt.name, tt.min, tt.max)
				}
			}()
			s.Register(tt.name, tt.min, tt.max, "", tt.fn)
		}()
	}
}

// rawConn talks to the server byte by byte.
func rawConn(t *testing.T, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// readReplies reads n replies from c, returning their raw text.
func readReplies(t *testing.T, c net.Conn, n int) []string {
	t.Helper()
	mr := newMessageReader(c)
	var out []string
	for range n {
		raw, err := mr.next()
		if err != nil {
			t.Fatalf("reading reply %d: %v", len(out)+1, err)
		}
		out = append(out, string(raw))
	}
	return out
}

func TestRawWire(t *testing.T) {
	ts := startServer(t)
	tests := []struct {
		name    string
		send    []string // written one after another
		want    []string // replies, exact bytes
		thenEOF bool     // the server then closes the connection
	}{
		{
			name: "back to back in one write",
			send: []string{`{"method":"echo","params":["a"],"id":1}{"method":"echo","params":["b","c"],"id":2}`},
			want: []string{`{"result":"a\n","error":null,"id":1}`, `{"result":"b|c\n","error":null,"id":2}`},
		},
		{
			name: "split mid-token",
			send: []string{`{"meth`, `od":"echo","par`, `ams":["x`, `y"],"id":3`, `}`},
			want: []string{`{"result":"xy\n","error":null,"id":3}`},
		},
		{
			name: "string and compound ids echoed",
			send: []string{`{"method":"echo","params":[],"id":"s1"} {"method":"echo","params":[],"id":[ 1 ,{"a" : 2}]}`},
			want: []string{`{"result":"","error":null,"id":"s1"}`, `{"result":"","error":null,"id":[1,{"a":2}]}`},
		},
		{
			name: "non-string argument",
			send: []string{`{"method":"echo","params":["a",5],"id":4}`},
			want: []string{`{"result":null,"error":"\"echo\" command has non-string argument\n","id":4}`},
		},
		{
			name: "count checked before argument types, like OVS",
			send: []string{`{"method":"echo","params":[1,2,3,4],"id":5}`},
			want: []string{`{"result":null,"error":"\"echo\" command takes at most 3 arguments\n","id":5}`},
		},
		{
			name: "invalid request then valid one on the same connection",
			send: []string{`{"method":7,"params":[],"id":6}{"method":"echo","params":["ok"],"id":7}`},
			want: []string{
				`{"result":null,"error":"invalid JSON-RPC request: method is not a JSON string\n","id":6}`,
				`{"result":"ok\n","error":null,"id":7}`,
			},
		},
		{
			name: "method quoted verbatim, like OVS",
			send: []string{`{"method":"a\"b\u00e9\t","params":[],"id":9}`},
			want: []string{`{"result":null,"error":"\"a\"bé\t\" is not a valid command (use \"list-commands\" to see a list of valid commands)\n","id":9}`},
		},
		{
			name: "notification refused",
			send: []string{`{"method":"echo","params":[]}`},
			want: []string{`{"result":null,"error":"invalid JSON-RPC request: request has no \"id\" (notifications are not supported)\n","id":null}`},
		},
		{
			name:    "malformed JSON closes the connection",
			send:    []string{`{"method":"echo","params":[],"id":8}{"method":]`},
			want:    []string{`{"result":"","error":null,"id":8}`, `{"result":null,"error":"invalid JSON-RPC message: invalid character ']' looking for beginning of value\n","id":null}`},
			thenEOF: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := rawConn(t, ts.path)
			for _, s := range tt.send {
				if _, err := io.WriteString(c, s); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Millisecond) // let each piece arrive on its own
			}
			got := readReplies(t, c, len(tt.want))
			if !equalStrings(got, tt.want) {
				t.Errorf("got\n  %q\nwant\n  %q", got, tt.want)
			}
			if tt.thenEOF {
				if n, err := c.Read(make([]byte, 1)); err != io.EOF {
					t.Errorf("after malformed JSON: read %d, %v; want EOF", n, err)
				}
			}
		})
	}
}

func TestOversizedRequestDisconnects(t *testing.T) {
	ts := startServer(t)
	c := rawConn(t, ts.path)
	go func() {
		io.WriteString(c, `{"method":"echo","params":["`+strings.Repeat("x", 2*MaxMessageSize))
	}()
	got := readReplies(t, c, 1)
	if !strings.Contains(got[0], "larger than") || !strings.Contains(got[0], `"id":null`) {
		t.Errorf("reply = %s", got[0])
	}
	// The server hangs up; unread input makes that a reset.
	if _, err := io.ReadAll(c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("connection not closed: %v", err)
	}
}

func TestConcurrentClients(t *testing.T) {
	ts := startServer(t)

	// A handler blocked on one connection must not hold up the others.
	blocked := dial(t, ts.path)
	blockedDone := make(chan error, 1)
	go func() {
		got, err := blocked.Call(callCtx(t), "block")
		if err == nil && got != "released\n" {
			err = fmt.Errorf("block = %q", got)
		}
		blockedDone <- err
	}()
	<-ts.started

	const clients, calls = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Dial(ts.path)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for j := range calls {
				a, b := fmt.Sprint(i), fmt.Sprint(j)
				got, err := c.Call(context.Background(), "echo", a, b)
				if err != nil || got != a+"|"+b+"\n" {
					errs <- fmt.Errorf("client %d call %d: %q, %v", i, j, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// A shared Client is safe for concurrent use too.
	shared := dial(t, ts.path)
	var wg2 sync.WaitGroup
	for i := range 8 {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			want := fmt.Sprint(i) + "\n"
			if got, err := shared.Call(context.Background(), "echo", fmt.Sprint(i)); err != nil || got != want {
				t.Errorf("shared client: %q, %v", got, err)
			}
		}()
	}
	wg2.Wait()

	close(ts.release)
	if err := <-blockedDone; err != nil {
		t.Error(err)
	}
}

func TestClientContext(t *testing.T) {
	ts := startServer(t)
	c := dial(t, ts.path)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Call(ctx, "block")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if _, err := c.Call(callCtx(t), "echo"); err == nil || !strings.Contains(err.Error(), "unusable") {
		t.Errorf("call after abandoned call: err = %v, want connection unusable", err)
	}

	// An explicit cancel interrupts a blocked call as well.
	c2 := dial(t, ts.path)
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { <-ts.started; cancel2() }()
	if _, err := c2.Call(ctx2, "block"); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want canceled", err)
	}

	// A fresh connection still works: the server is not stuck.
	c3 := dial(t, ts.path)
	if got, err := c3.Call(callCtx(t), "echo", "x"); err != nil || got != "x\n" {
		t.Errorf("fresh client: %q, %v", got, err)
	}
}

func TestClientSkipsStaleReplies(t *testing.T) {
	// A fake server that first answers an id nobody asked for.
	path := filepath.Join(t.TempDir(), "fake.ctl")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		mr := newMessageReader(c)
		raw, err := mr.next()
		if err != nil {
			return
		}
		req, _ := parseRequest(raw)
		io.WriteString(c, `{"result":"stale","error":null,"id":999}`)
		b, _ := encodeReply(req.id, true, "fresh")
		c.Write(b)
	}()
	c := dial(t, path)
	if got, err := c.Call(callCtx(t), "x"); err != nil || got != "fresh\n" {
		t.Errorf("got %q, %v", got, err)
	}
}

func TestServerClose(t *testing.T) {
	ts := startServer(t)
	second := filepath.Join(filepath.Dir(ts.path), "ovs-monitor-ipsec.ctl")
	if err := ts.AddListener(second); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{ts.path, second} {
		c := dial(t, p)
		if got, err := c.Call(callCtx(t), "echo", p); err != nil || got != p+"\n" {
			t.Fatalf("via %s: %q, %v", p, got, err)
		}
	}
	if got := ts.Paths(); !equalStrings(got, []string{ts.path, second}) {
		t.Errorf("Paths = %q", got)
	}
	fi, err := os.Stat(ts.path)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("socket mode = %v, %v; want 0700", fi.Mode(), err)
	}

	// A connected client with a running handler: Close cancels the
	// handler's context and waits for it.
	c := dial(t, ts.path)
	errc := make(chan error, 1)
	go func() { _, err := c.Call(context.Background(), "block"); errc <- err }()
	<-ts.started

	ts.cancel()
	select {
	case <-ts.done:
		if ts.serveErr != nil {
			t.Errorf("Serve = %v", ts.serveErr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	for _, p := range []string{ts.path, second} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket %s still exists after Serve returned: %v", p, err)
		}
	}
	var se *ServerError
	if err := <-errc; err == nil || errors.As(err, &se) && !strings.Contains(se.Text, "canceled") {
		// Either the reply (context canceled) or the closed connection.
		t.Errorf("blocked call: %v", err)
	}
	if err := ts.Serve(context.Background()); err == nil {
		t.Error("Serve after Close succeeded")
	}
	if err := ts.AddListener(filepath.Join(filepath.Dir(ts.path), "late.ctl")); err == nil {
		t.Error("AddListener after Close succeeded")
	}
	if err := ts.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCloseWithoutServe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.ctl")
	s, err := Listen(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket remains: %v", err)
	}
	if err := s.Serve(context.Background()); err == nil {
		t.Error("Serve after Close succeeded")
	}
}

func TestCloseKeepsSuccessorSocket(t *testing.T) {
	// If another instance replaced our socket file, closing must not
	// delete theirs.
	path := filepath.Join(t.TempDir(), "a.ctl")
	s, err := Listen(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	s2, err := Listen(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	s.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("successor's socket was removed: %v", err)
	}
}

func TestListenExistingPath(t *testing.T) {
	dir := t.TempDir()

	// A stale socket from a dead process is replaced.
	stale := filepath.Join(dir, "stale.ctl")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	s, err := Listen(stale, nil)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	defer s.Close()

	// A live socket is not taken over, and keeps working.
	if _, err := Listen(stale, nil); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("second Listen on a live socket: %v", err)
	}
	if _, err := os.Lstat(stale); err != nil {
		t.Errorf("live socket removed: %v", err)
	}

	// A regular file is never removed.
	file := filepath.Join(dir, "file.ctl")
	os.WriteFile(file, []byte("x"), 0o600)
	if _, err := Listen(file, nil); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a regular file: %v", err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "x" {
		t.Errorf("regular file changed: %q, %v", b, err)
	}

	// Missing directory and over-long path give clear errors.
	if _, err := Listen(filepath.Join(dir, "nodir", "a.ctl"), nil); err == nil || !strings.Contains(err.Error(), "run directory") {
		t.Errorf("Listen in missing dir: %v", err)
	}
	long := filepath.Join(dir, strings.Repeat("x", 120)+".ctl")
	if _, err := Listen(long, nil); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("Listen on long path: %v", err)
	}
}

func TestDialMissing(t *testing.T) {
	_, err := Dial(filepath.Join(t.TempDir(), "none.ctl"))
	if err == nil || !strings.Contains(err.Error(), "is the daemon running") {
		t.Errorf("Dial = %v", err)
	}
}

func TestExitCommandIsAnswered(t *testing.T) {
	// A command that stops the server still gets its reply out, as
	// ovs-appctl -t ovs-monitor-ipsec exit expects.
	for i := range 20 {
		path := filepath.Join(t.TempDir(), "exit.ctl")
		s, err := Listen(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		s.Register("exit", 0, 0, "", func(context.Context, []string) (string, error) {
			cancel()
			time.Sleep(time.Millisecond) // let Serve start closing
			return "bye", nil
		})
		done := make(chan struct{})
		go func() { s.Serve(ctx); close(done) }()
		idle := dial(t, path) // an idle client must not hold up shutdown
		c := dial(t, path)
		if got, err := c.Call(callCtx(t), "exit"); err != nil || got != "bye\n" {
			t.Fatalf("round %d: exit = %q, %v", i, got, err)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return after exit")
		}
		if _, err := c.Call(callCtx(t), "exit"); err == nil {
			t.Error("call after shutdown succeeded")
		}
		if _, err := idle.Call(callCtx(t), "exit"); err == nil {
			t.Error("idle client's call after shutdown succeeded")
		}
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket remains: %v", err)
		}
	}
}
