// Server stage: listening sockets, connections and command dispatch, with
// OVS's builtin commands (list-commands, help, version) and OVS's exact
// error texts.

package unixctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// HandlerFunc runs one command. args excludes the command name. The text it
// returns is the reply (a newline is appended when missing); a non-nil
// error is sent as an error reply with err.Error() as its text, which makes
// ovs-appctl print it and exit with status 2. Handlers run concurrently for
// different clients and must honour ctx, which ends when the server stops.
type HandlerFunc func(ctx context.Context, args []string) (string, error)

type command struct {
	usage            string
	minArgs, maxArgs int
	fn               HandlerFunc
}

// writeTimeout bounds how long a reply may wait for a client that does not
// read.
const writeTimeout = 10 * time.Second

// maxSocketPath is the longest path a sockaddr_un holds (108 bytes with
// the terminating NUL).
const maxSocketPath = 107

// Server answers unixctl requests on one or more Unix sockets. Create it
// with Listen, add commands with Register, then run Serve.
type Server struct {
	logger *slog.Logger

	mu        sync.Mutex
	cmds      map[string]command
	version   string
	listeners []*listener
	conns     map[net.Conn]struct{}
	serveCtx  context.Context    // set by Serve; nil before
	cancel    context.CancelFunc // ends serveCtx
	done      chan struct{}      // closed by Close
	wg        sync.WaitGroup     // accept loops and connections
	closed    bool
}

// listener is one socket and the identity of the file it created, so that
// closing removes exactly that file and never a successor's.
type listener struct {
	path string
	ln   *net.UnixListener
	dev  uint64
	ino  uint64
}

// Listen creates a Server listening on the Unix socket at path, usually
// CtlPath(rundir, program, os.Getpid()). A leftover socket at path whose
// owner has died is replaced; a socket that still answers is not. A nil
// logger discards logs.
func Listen(path string, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		logger:  logger,
		cmds:    make(map[string]command),
		version: defaultVersion(),
		conns:   make(map[net.Conn]struct{}),
		done:    make(chan struct{}),
	}
	s.cmds["list-commands"] = command{fn: s.listCommands}
	s.cmds["help"] = command{fn: s.help}
	s.cmds["version"] = command{fn: s.versionCmd}
	if err := s.AddListener(path); err != nil {
		return nil, err
	}
	return s, nil
}

// AddListener makes s also answer on the Unix socket at path, e.g. a
// compatibility name such as <rundir>/ovs-monitor-ipsec.<pid>.ctl next to
// the daemon's own. It may be called before or while Serve runs.
func (s *Server) AddListener(path string) error {
	l, err := listenUnix(path)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		l.close()
		return fmt.Errorf("listen on control socket %s: server is closed", path)
	}
	s.listeners = append(s.listeners, l)
	if s.serveCtx != nil {
		s.wg.Add(1)
		go s.acceptLoop(s.serveCtx, l)
	}
	s.logger.Info("listening for unixctl connections", "path", path)
	return nil
}

// Paths returns the socket paths s listens on, in the order they were
// added.
func (s *Server) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	paths := make([]string, len(s.listeners))
	for i, l := range s.listeners {
		paths[i] = l.path
	}
	return paths
}

// Register adds a command. minArgs and maxArgs bound the number of
// arguments; usage describes them for list-commands and help (e.g.
// "[--no-cleanup]", or "" for none). Registering a name twice, or with
// 0 <= minArgs <= maxArgs violated, is a programming error and panics,
// like http.ServeMux does.
func (s *Server) Register(name string, minArgs, maxArgs int, usage string, fn HandlerFunc) {
	if name == "" || fn == nil || minArgs < 0 || maxArgs < minArgs {
		panic(fmt.Sprintf("unixctl: invalid registration of %q (args %d..%d)", name, minArgs, maxArgs))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.cmds[name]; dup {
		panic(fmt.Sprintf("unixctl: command %q registered twice", name))
	}
	s.cmds[name] = command{usage: usage, minArgs: minArgs, maxArgs: maxArgs, fn: fn}
}

// SetVersion sets the reply of the builtin "version" command. OVS daemons
// answer "<program> (Open vSwitch) <version>"; ovnsec daemons should answer
// e.g. "ovnsecd (ovnsec) 0.1.0".
func (s *Server) SetVersion(text string) {
	s.mu.Lock()
	s.version = text
	s.mu.Unlock()
}

// Serve accepts and answers connections until ctx ends or Close is
// called, then closes every listener and connection, removes the socket
// files, waits for running handlers and returns nil. Handlers get a context
// derived from ctx that also ends on Close. Serve returns an error if s was
// already closed or is already serving.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("unixctl server: Serve called after Close")
	}
	if s.serveCtx != nil {
		s.mu.Unlock()
		return errors.New("unixctl server: Serve called twice")
	}
	s.serveCtx, s.cancel = context.WithCancel(ctx)
	for _, l := range s.listeners {
		s.wg.Add(1)
		go s.acceptLoop(s.serveCtx, l)
	}
	s.mu.Unlock()

	select {
	case <-ctx.Done():
	case <-s.done:
	}
	s.Close()
	return nil
}

// Close stops listening, removes the socket files, cancels the handlers'
// context, lets running commands send their replies, closes all
// connections and waits for that. It is safe to call more than once and
// concurrently with Serve, but not from a handler, since it waits for
// handlers: a command that stops the server (like "exit") should cancel
// Serve's context instead, and its reply is still delivered.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	close(s.done)
	if s.cancel != nil {
		s.cancel()
	}
	var errs []error
	for _, l := range s.listeners {
		errs = append(errs, l.close())
	}
	// Interrupt reads only: a connection waiting for a request ends now,
	// one whose command is running still gets its reply (so that e.g. an
	// "exit" command that stops the server is answered) and then ends.
	for c := range s.conns {
		c.SetReadDeadline(time.Unix(1, 0))
	}
	s.mu.Unlock()
	s.wg.Wait()
	return errors.Join(errs...)
}

func (s *Server) acceptLoop(ctx context.Context, l *listener) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := l.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			// EMFILE and friends: wait and retry, like net/http.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logger.Warn("unixctl accept failed; retrying", "path", l.path, "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(ctx, c, l.path)
	}
}

// serveConn answers the requests of one client, one at a time in the order
// they arrive, like OVS.
func (s *Server) serveConn(ctx context.Context, c net.Conn, path string) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	log := s.logger.With("socket", path)
	mr := newMessageReader(c)
	for {
		raw, err := mr.next()
		if err != nil {
			switch {
			case errors.Is(err, errTooLarge):
				log.Warn("dropping unixctl client", "err", err)
				s.writeReply(c, nil, false, err.Error())
			case isStreamSyntaxError(err):
				log.Warn("dropping unixctl client that sent invalid JSON", "err", err)
				s.writeReply(c, nil, false, "invalid JSON-RPC message: "+err.Error())
			case errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNRESET), errors.Is(err, os.ErrDeadlineExceeded):
			case errors.Is(err, io.EOF):
			default:
				log.Debug("unixctl connection ended", "err", err)
			}
			return
		}
		req, err := parseRequest(raw)
		if err != nil {
			var id json.RawMessage
			if re := (*requestError)(nil); errors.As(err, &re) {
				id = re.id
			}
			log.Warn("bad unixctl request", "err", err)
			if !s.writeReply(c, id, false, err.Error()) {
				return
			}
			continue
		}
		if ctx.Err() != nil {
			return // shutting down: no new commands
		}
		text, ok := s.dispatch(ctx, log, req)
		if !s.writeReply(c, req.id, ok, text) {
			return
		}
	}
}

// dispatch runs req and returns the reply text and whether it is a
// success. Its checks and messages are those of OVS's process_command.
func (s *Server) dispatch(ctx context.Context, log *slog.Logger, req request) (text string, ok bool) {
	s.mu.Lock()
	cmd, found := s.cmds[req.method]
	s.mu.Unlock()
	switch {
	case !found:
		return fmt.Sprintf(`"%s" is not a valid command (use "list-commands" to see a list of valid commands)`, req.method), false
	case len(req.params) < cmd.minArgs:
		return fmt.Sprintf(`"%s" command requires at least %d arguments`, req.method, cmd.minArgs), false
	case len(req.params) > cmd.maxArgs:
		return fmt.Sprintf(`"%s" command takes at most %d arguments`, req.method, cmd.maxArgs), false
	}
	args, argsOK := stringArgs(req.params)
	if !argsOK {
		return fmt.Sprintf(`"%s" command has non-string argument`, req.method), false
	}
	log.Debug("unixctl request", "method", req.method, "args", args)

	defer func() {
		if p := recover(); p != nil {
			log.Error("unixctl command panicked", "method", req.method, "panic", p, "stack", string(debug.Stack()))
			text, ok = fmt.Sprintf(`internal error running "%s" (see the daemon log)`, req.method), false
		}
	}()
	out, err := cmd.fn(ctx, args)
	if err != nil {
		return err.Error(), false
	}
	return out, true
}

// writeReply sends one reply and reports whether the connection is still
// usable.
func (s *Server) writeReply(c net.Conn, id json.RawMessage, ok bool, text string) bool {
	b, err := encodeReply(id, ok, text)
	if err != nil {
		s.logger.Error("unixctl reply not sent", "err", err)
		return false
	}
	c.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := c.Write(b); err != nil {
		s.logger.Debug("unixctl reply not sent", "err", err)
		return false
	}
	return true
}

// listCommands is the builtin "list-commands", formatted like OVS's
// lib/unixctl.c: every command, sorted, as "  %-23s %s".
func (s *Server) listCommands(context.Context, []string) (string, error) {
	var b strings.Builder
	b.WriteString("The available commands are:\n")
	for _, c := range s.commandList() {
		fmt.Fprintf(&b, "  %-23s %s\n", c.name, c.usage)
	}
	return b.String(), nil
}

// help is the builtin "help", formatted like python/ovs/unixctl (which
// ovs-monitor-ipsec uses): as list-commands, but a command without usage
// is listed by name alone.
func (s *Server) help(context.Context, []string) (string, error) {
	var b strings.Builder
	b.WriteString("The available commands are:\n")
	for _, c := range s.commandList() {
		if c.usage != "" {
			fmt.Fprintf(&b, "  %-23s %s\n", c.name, c.usage)
		} else {
			fmt.Fprintf(&b, "  %s\n", c.name)
		}
	}
	return b.String(), nil
}

func (s *Server) versionCmd(context.Context, []string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version, nil
}

// commandList returns the registered commands' names and usages, sorted
// by name (byte order, like OVS's shash_sort).
func (s *Server) commandList() []struct{ name, usage string } {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := make([]struct{ name, usage string }, 0, len(s.cmds))
	for n, c := range s.cmds {
		list = append(list, struct{ name, usage string }{n, c.usage})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	return list
}

// defaultVersion is "<program> (ovnsec) <module version>".
func defaultVersion() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	return fmt.Sprintf("%s (ovnsec) %s", filepath.Base(os.Args[0]), v)
}

// listenUnix creates the socket at path with mode 0700 (OVS's control
// sockets are owner-only too). A stale socket left by a dead process is
// removed first; a live one, or any other kind of file, is left alone.
func listenUnix(path string) (*listener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("listen on control socket %s: path longer than %d bytes; use a shorter run directory", path, maxSocketPath)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("listen on control socket %s: a file that is not a socket is in the way; remove it", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("listen on control socket %s: another process is serving it; stop that process first", path)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("listen on control socket %s: probe existing socket: %w", path, err)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove stale control socket %s: %w", path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on control socket %s: %w (does the run directory exist and is it writable?)", path, err)
	}
	// Removal is done by listener.close, which checks that the file is
	// still ours.
	ln.SetUnlinkOnClose(false)
	l := &listener{path: path, ln: ln}
	if err := os.Chmod(path, 0o700); err != nil {
		l.ln.Close()
		os.Remove(path)
		return nil, fmt.Errorf("restrict control socket %s: %w", path, err)
	}
	l.dev, l.ino, err = fileID(path)
	if err != nil {
		l.ln.Close()
		os.Remove(path)
		return nil, fmt.Errorf("stat control socket %s: %w", path, err)
	}
	return l, nil
}

// close stops listening and removes the socket file if it is still the
// one this listener created.
func (l *listener) close() error {
	err := l.ln.Close()
	if dev, ino, serr := fileID(l.path); serr == nil && dev == l.dev && ino == l.ino {
		if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, fmt.Errorf("remove control socket %s: %w", l.path, rerr))
		}
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// fileID returns the device and inode of the file at path, without
// following a final symlink.
func fileID(path string) (dev, ino uint64, err error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return 0, 0, err
	}
	return uint64(st.Dev), st.Ino, nil
}
