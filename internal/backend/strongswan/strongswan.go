// Package strongswan implements backend.Backend by driving a running
// strongSwan charon over VICI (github.com/strongswan/govici): credentials
// with load-shared/load-key/load-cert, one IKE connection per tunnel with
// the CHILD_SAs ovs-monitor-ipsec would have configured, initiation, and
// status from list-sas plus charon's log stream.
//
// Layout. ovs-monitor-ipsec writes two ipsec.conf conns per UDP tunnel
// ("<if>-in-<v>", "<if>-out-<v>") with identical IKE parameters, which the
// stroke plugin merges into one peer config with two children. VICI does
// not merge, and charon as responder picks the peer config before looking
// at traffic selectors, so two IKE connections with the same identities
// would make the responder pick the wrong half. ovnsec therefore loads one
// IKE connection "<if>-<v>" per tunnel whose children carry the upstream
// names: "<if>-in-<v>" (local dynamic[udp/<port>], remote dynamic[udp]) and
// "<if>-out-<v>" (the reverse), or for gre the single child "<if>-<v>"
// (dynamic[gre]). Those child names are what ipsec/status reports.
//
// Initiation. To avoid IKE crossing streams (both ends initiating the same
// pair), Ensure initiates the "-out-" child (and the gre child) at once and
// the "-in-" child only when the peer has not brought it up within
// Config.PeerGrace, like ovs-monitor-ipsec's Libreswan reconciliation.
// Children use start_action=trap (ipsec.conf auto=route). Initiation never
// blocks (VICI initiate with timeout -1).
//
// charon restarts. Every call reconnects if the VICI session broke. A
// restarted charon has lost our connections and credentials: Status then
// reports the tunnel as PhaseNotLoaded ("charon holds no connection ...")
// and the reconciler's next Ensure reloads everything. That is the
// contract: PhaseNotLoaded from Status means "call Ensure again".
//
// charon must run with charon.plugins.kernel-netlink.set_proto_port_transport_sa
// = yes (ovs-monitor-ipsec's ovs.conf) for transport-mode SAs to carry the
// port selectors; this backend cannot set daemon settings over VICI.
package strongswan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/strongswan/govici/vici"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// DefaultViciSocket is where charon listens by default.
const DefaultViciSocket = "unix:///var/run/charon.vici"

// Config configures a Backend. Zero values take the defaults.
type Config struct {
	// ViciSocket is charon's VICI socket, "unix:///path" or a plain path.
	ViciSocket string
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
	// CallTimeout bounds one VICI command (default 10s).
	CallTimeout time.Duration
	// PeerGrace is how long an "-in-" child is left for the peer to
	// initiate before this side initiates it too (default 15s).
	PeerGrace time.Duration
	// RetryInterval is the minimum time between two initiations of the
	// same child (default 15s).
	RetryInterval time.Duration
	// LogRetry is the reconnect interval of the log stream (default 2s).
	LogRetry time.Duration
	// ReadFile reads credential files; defaults to os.ReadFile.
	ReadFile func(path string) ([]byte, error)
}

// UnsupportedOptionsError is returned by Ensure when some ipsec_* custom
// options could not be applied. The tunnel IS loaded and initiated without
// them; the reconciler should show the error rather than back off hard.
type UnsupportedOptionsError struct {
	Tunnel  string
	Options []string
}

// Partial marks the error as backend.PartialError: the tunnel is applied.
func (e *UnsupportedOptionsError) Partial() bool { return true }

func (e *UnsupportedOptionsError) Error() string {
	return fmt.Sprintf("tunnel %s loaded without some options: %s", e.Tunnel, strings.Join(e.Options, "; "))
}

// Backend drives charon. All methods are safe for concurrent use.
type Backend struct {
	cfg    Config
	log    *slog.Logger
	socket string // as configured, for messages
	path   string // unix socket path

	mu      sync.Mutex
	sess    *vici.Session
	epoch   uint64 // bumps on every new session
	connErr error  // last connection failure
	tunnels map[string]*tunnelState
	creds   map[string]string // credential key -> fingerprint loaded in epoch
	keyIDs  map[string]bool   // private keys we loaded (charon key ids)
	closed  bool

	logs      *logBook
	logCtx    context.Context
	logCancel context.CancelFunc
	logOnce   sync.Once
	logDone   chan struct{}
}

// tunnelState is what the backend remembers about a tunnel it was asked to
// protect.
type tunnelState struct {
	t           tunnel.Tunnel
	ike         ConnName
	children    []childSpec
	connFP      string
	loadedAt    time.Time // when this version was (re)loaded into charon
	initiated   map[ConnName]time.Time
	unsupported []string
}

// New returns a Backend; it does not connect until first used.
func New(cfg Config, logger *slog.Logger) *Backend {
	if cfg.ViciSocket == "" {
		cfg.ViciSocket = DefaultViciSocket
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 10 * time.Second
	}
	if cfg.PeerGrace <= 0 {
		cfg.PeerGrace = 15 * time.Second
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 15 * time.Second
	}
	if cfg.LogRetry <= 0 {
		cfg.LogRetry = 2 * time.Second
	}
	if cfg.ReadFile == nil {
		cfg.ReadFile = os.ReadFile
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Backend{
		cfg:       cfg,
		log:       logger.With("backend", "strongswan"),
		socket:    cfg.ViciSocket,
		path:      socketPath(cfg.ViciSocket),
		tunnels:   map[string]*tunnelState{},
		creds:     map[string]string{},
		keyIDs:    map[string]bool{},
		logs:      newLogBook(cfg.Now),
		logCtx:    ctx,
		logCancel: cancel,
		logDone:   make(chan struct{}),
	}
}

// socketPath turns "unix:///run/x.vici" or "/run/x.vici" into a path.
// Other URI schemes are kept as given and fail at dial with a clear error.
func socketPath(uri string) string {
	if p, ok := strings.CutPrefix(uri, "unix://"); ok {
		return p
	}
	return uri
}

// Name is the --ike-daemon value.
func (b *Backend) Name() string { return "strongswan" }

var _ backend.Backend = (*Backend)(nil)

func (b *Backend) dial() (*vici.Session, error) {
	if strings.Contains(b.path, "://") {
		return nil, fmt.Errorf("unsupported VICI socket URI %q: use unix:///path", b.socket)
	}
	d := net.Dialer{Timeout: b.cfg.CallTimeout}
	return vici.NewSession(
		vici.WithSocketPath(b.path),
		vici.WithDialContext(func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}),
	)
}

// UnreachableError says charon's VICI socket could not be used.
type UnreachableError struct {
	Socket string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("strongSwan charon is not reachable at %s: %v", e.Socket, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// unreachable wraps a connection failure in the operator-facing form.
func (b *Backend) unreachable(err error) error {
	return &UnreachableError{Socket: b.socket, Err: err}
}

// session returns the live session, connecting if needed. b.mu held.
func (b *Backend) session() (*vici.Session, error) {
	if b.closed {
		return nil, errors.New("strongswan backend is closed")
	}
	if b.sess != nil {
		return b.sess, nil
	}
	s, err := b.dial()
	if err != nil {
		b.connErr = err
		return nil, b.unreachable(err)
	}
	if b.connErr != nil || b.epoch > 0 {
		b.log.Info("connected to charon", "socket", b.socket)
	}
	b.sess = s
	b.connErr = nil
	b.epoch++
	// A new session may be a new charon: forget what we loaded.
	clear(b.creds)
	clear(b.keyIDs)
	b.logOnce.Do(func() {
		go func() {
			defer close(b.logDone)
			watchLogs(b.logCtx, b.dial, b.logs, b.cfg.LogRetry)
		}()
	})
	return s, nil
}

// drop forgets a broken session. b.mu held.
func (b *Backend) drop(err error) {
	if b.sess != nil {
		b.log.Warn("VICI session to charon broke, will reconnect", "socket", b.socket, "err", err)
		_ = b.sess.Close()
		b.sess = nil
	}
	b.connErr = err
}

// call runs one VICI command, reconnecting once if the session broke.
// A command failure (success=no) is returned as an error naming cmd;
// transport failures say charon is unreachable. b.mu held.
func (b *Backend) call(ctx context.Context, cmd string, in *vici.Message) (*vici.Message, error) {
	for attempt := 0; ; attempt++ {
		s, err := b.session()
		if err != nil {
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, b.cfg.CallTimeout)
		resp, err := s.Call(cctx, cmd, in)
		cancel()
		if err == nil {
			return resp, nil
		}
		if resp != nil {
			return resp, fmt.Errorf("charon %s: %w", cmd, err)
		}
		b.drop(err)
		if attempt > 0 || ctx.Err() != nil {
			return nil, b.unreachable(err)
		}
	}
}

// stream runs a streaming VICI command and collects its events.
func (b *Backend) stream(ctx context.Context, cmd, event string, in *vici.Message) ([]*vici.Message, error) {
	for attempt := 0; ; attempt++ {
		s, err := b.session()
		if err != nil {
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, b.cfg.CallTimeout)
		var msgs []*vici.Message
		var cmdErr, netErr error
		for m, err := range s.CallStreaming(cctx, cmd, event, in) {
			if err != nil {
				if m != nil {
					cmdErr = err
				} else {
					netErr = err
				}
				break
			}
			msgs = append(msgs, m)
		}
		cancel()
		switch {
		case netErr == nil && cmdErr == nil:
			return msgs, nil
		case cmdErr != nil:
			return msgs, fmt.Errorf("charon %s: %w", cmd, cmdErr)
		}
		b.drop(netErr)
		if attempt > 0 || ctx.Err() != nil {
			return nil, b.unreachable(netErr)
		}
	}
}

// listConns returns the connections charon holds, by name. b.mu held.
func (b *Backend) listConns(ctx context.Context) (map[ConnName]loadedConn, error) {
	evs, err := b.stream(ctx, "list-conns", "list-conn", nil)
	if err != nil {
		return nil, err
	}
	out := map[ConnName]loadedConn{}
	for _, ev := range evs {
		for _, c := range decodeListConn(ev) {
			out[c.Name] = c
		}
	}
	return out, nil
}

// listSAs returns charon's IKE_SAs, optionally only those of one
// connection. b.mu held.
func (b *Backend) listSAs(ctx context.Context, ike ConnName) ([]ikeSA, error) {
	in := vici.NewMessage()
	if err := in.Set("noblock", "yes"); err != nil {
		return nil, err
	}
	if ike != "" {
		if err := in.Set("ike", string(ike)); err != nil {
			return nil, err
		}
	}
	evs, err := b.stream(ctx, "list-sas", "list-sa", in)
	if err != nil {
		return nil, err
	}
	var out []ikeSA
	for _, ev := range evs {
		out = append(out, decodeListSA(ev)...)
	}
	return out, nil
}

// listPolicies returns charon's trap, drop and bypass policies. b.mu held.
func (b *Backend) listPolicies(ctx context.Context) ([]policy, error) {
	evs, err := b.stream(ctx, "list-policies", "list-policy", msgOf("trap", "yes", "drop", "yes", "pass", "yes"))
	if err != nil {
		return nil, err
	}
	var out []policy
	for _, ev := range evs {
		out = append(out, decodeListPolicy(ev)...)
	}
	return out, nil
}

func msgOf(kv ...string) *vici.Message {
	m := vici.NewMessage()
	for i := 0; i+1 < len(kv); i += 2 {
		_ = m.Set(kv[i], kv[i+1]) // strings always marshal
	}
	return m
}

// Ensure loads credentials and the connection for t.Version, unloads every
// other version of the tunnel and initiates what is not up. Calling it
// again for a healthy tunnel changes nothing in charon.
func (b *Backend) Ensure(ctx context.Context, t tunnel.Tunnel) error {
	mat, err := readCreds(t, b.cfg.ReadFile)
	if err != nil {
		return fmt.Errorf("tunnel %s: %w", t.Name, err)
	}
	spec, err := buildConn(t, mat.pemMaterial)
	if err != nil {
		return err
	}
	connFP := fingerprint([]byte(spec.Msg.String()))

	b.mu.Lock()
	defer b.mu.Unlock()

	// Track the desired tunnel first, so that Status reports it even
	// while charon is unreachable.
	st := b.tunnels[t.Name]
	if st == nil || st.ike != spec.IKE {
		st = &tunnelState{initiated: map[ConnName]time.Time{}}
		b.tunnels[t.Name] = st
	}
	st.t, st.ike, st.children, st.unsupported = t, spec.IKE, spec.Children, spec.Unsupported

	conns, err := b.listConns(ctx)
	if err != nil {
		return fmt.Errorf("ensure tunnel %s: %w", t.Name, err)
	}
	_, present := conns[spec.IKE]

	if err := b.loadCreds(ctx, t, mat, !present); err != nil {
		return fmt.Errorf("ensure tunnel %s: %w", t.Name, err)
	}
	if !present || st.connFP != connFP {
		if _, err := b.call(ctx, "load-conn", spec.Msg); err != nil {
			return fmt.Errorf("ensure tunnel %s: load connection %s: %w", t.Name, spec.IKE, err)
		}
		b.log.Info("loaded connection", "tunnel", t.Name, "conn", spec.IKE, "version", t.Version)
		st.connFP = connFP
		if !present {
			st.loadedAt = b.cfg.Now()
			clear(st.initiated)
		}
	}

	// Unload every other version of this tunnel.
	for name, c := range conns {
		iface, v, ok := ownedConn(c)
		if !ok || iface != t.Name || v == t.Version {
			continue
		}
		if err := b.unloadConn(ctx, name); err != nil {
			return fmt.Errorf("ensure tunnel %s: %w", t.Name, err)
		}
	}

	if err := b.initiate(ctx, st); err != nil {
		return fmt.Errorf("ensure tunnel %s: %w", t.Name, err)
	}
	if len(spec.Unsupported) > 0 {
		return &UnsupportedOptionsError{Tunnel: t.Name, Options: spec.Unsupported}
	}
	return nil
}

// loadCreds loads the tunnel's secrets and certificates unless this charon
// already has exactly them. force reloads regardless (connection missing:
// charon may have restarted). b.mu held.
func (b *Backend) loadCreds(ctx context.Context, t tunnel.Tunnel, mat credMaterial, force bool) error {
	load := func(key, fp, cmd string, build func() (*vici.Message, error)) (*vici.Message, error) {
		if !force && b.creds[key] == fp {
			return nil, nil
		}
		m, err := build()
		if err != nil {
			return nil, err
		}
		resp, err := b.call(ctx, cmd, m)
		if err != nil {
			return nil, err
		}
		b.creds[key] = fp
		return resp, nil
	}
	switch t.Auth {
	case tunnel.AuthPSK:
		fp := fingerprint([]byte(t.PSK.Reveal()), []byte(t.RemoteIP))
		if _, err := load("psk:"+t.Name, fp, "load-shared", func() (*vici.Message, error) { return loadSharedMsg(t) }); err != nil {
			return fmt.Errorf("load pre-shared key: %w", err)
		}
	case tunnel.AuthSelfSigned, tunnel.AuthCASigned:
		if mat.Key != nil {
			fp := fingerprint(mat.Key.DER)
			resp, err := load("key:"+fp, fp, "load-key", func() (*vici.Message, error) { return loadKeyMsg(*mat.Key) })
			if err != nil {
				return fmt.Errorf("load private key %s: %w", t.PrivateKey, err)
			}
			if id := str(resp, "id"); id != "" {
				b.keyIDs[id] = true
			}
		}
		fp := fingerprint(mat.LocalCert)
		if _, err := load("cert:"+fp, fp, "load-cert", func() (*vici.Message, error) { return loadCertMsg(mat.LocalCert, "NONE") }); err != nil {
			return fmt.Errorf("load certificate %s: %w", t.Certificate, err)
		}
		if len(mat.RemoteCert) > 0 {
			fp := fingerprint(mat.RemoteCert)
			if _, err := load("cert:"+fp, fp, "load-cert", func() (*vici.Message, error) { return loadCertMsg(mat.RemoteCert, "NONE") }); err != nil {
				return fmt.Errorf("load peer certificate %s: %w", t.RemoteCert, err)
			}
		}
		for _, ca := range mat.CACerts {
			fp := fingerprint(ca)
			if _, err := load("ca:"+fp, fp, "load-cert", func() (*vici.Message, error) { return loadCertMsg(ca, "CA") }); err != nil {
				return fmt.Errorf("load CA certificate %s: %w", t.CACert, err)
			}
		}
	}
	return nil
}

// unloadConn tears down the SAs of an IKE connection and unloads it. b.mu held.
func (b *Backend) unloadConn(ctx context.Context, name ConnName) error {
	// Terminate without waiting; "no matching SAs" is fine.
	term := msgOf("ike", string(name), "timeout", "-1")
	if _, err := b.stream(ctx, "terminate", "control-log", term); err != nil && !isCommandError(err) {
		return fmt.Errorf("terminate %s: %w", name, err)
	}
	if _, err := b.call(ctx, "unload-conn", msgOf("name", string(name))); err != nil {
		return fmt.Errorf("unload connection %s: %w", name, err)
	}
	b.logs.forgetConn(name)
	b.log.Info("unloaded connection", "conn", name)
	return nil
}

// isCommandError reports whether charon answered but refused the command
// (as opposed to charon being unreachable).
func isCommandError(err error) bool {
	var u *UnreachableError
	return err != nil && !errors.As(err, &u)
}

// initiate starts the children that are neither up nor being negotiated.
// b.mu held.
func (b *Backend) initiate(ctx context.Context, st *tunnelState) error {
	sas, err := b.listSAs(ctx, st.ike)
	if err != nil {
		return err
	}
	now := b.cfg.Now()
	for _, ch := range st.children {
		if childUpOrBusy(sas, st.ike, ch.Name) {
			continue
		}
		if ch.Dir == DirIn && now.Sub(st.loadedAt) < b.cfg.PeerGrace {
			continue // let the peer's "-out-" initiate it
		}
		if last, ok := st.initiated[ch.Name]; ok && now.Sub(last) < b.cfg.RetryInterval {
			continue
		}
		in := vici.NewMessage()
		for _, kv := range [][2]string{{"child", string(ch.Name)}, {"ike", string(st.ike)}, {"timeout", "-1"}, {"init-limits", "no"}} {
			if err := in.Set(kv[0], kv[1]); err != nil {
				return err
			}
		}
		if _, err := b.stream(ctx, "initiate", "control-log", in); err != nil {
			return fmt.Errorf("initiate %s: %w", ch.Name, err)
		}
		st.initiated[ch.Name] = now
		b.log.Info("initiating", "tunnel", st.t.Name, "child", ch.Name)
	}
	return nil
}

// childUpOrBusy reports whether a child is installed, or charon is still
// negotiating it or the IKE_SA that would carry it.
func childUpOrBusy(sas []ikeSA, ike, child ConnName) bool {
	for _, sa := range sas {
		if sa.Conn != ike {
			continue
		}
		for _, c := range sa.Children {
			if c.Name == child && (c.installed() || c.inProgress()) {
				return true
			}
		}
		if sa.State == "CONNECTING" || sa.State == "CREATED" {
			return true
		}
	}
	return false
}

// Remove tears down every connection charon holds for the interface,
// whatever its version, and unloads its pre-shared key.
func (b *Backend) Remove(ctx context.Context, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.remove(ctx, name)
}

func (b *Backend) remove(ctx context.Context, name string) error {
	conns, err := b.listConns(ctx)
	if err != nil {
		return fmt.Errorf("remove tunnel %s: %w", name, err)
	}
	for cn, c := range conns {
		if iface, _, ok := ownedConn(c); ok && iface == name {
			if err := b.unloadConn(ctx, cn); err != nil {
				return fmt.Errorf("remove tunnel %s: %w", name, err)
			}
		}
	}
	if _, err := b.call(ctx, "unload-shared", msgOf("id", sharedID(name))); err != nil && !isCommandError(err) {
		return fmt.Errorf("remove tunnel %s: %w", name, err)
	}
	delete(b.creds, "psk:"+name)
	delete(b.tunnels, name)
	return nil
}

// Loaded lists the interfaces charon holds ovnsec-shaped connections for.
func (b *Backend) Loaded(ctx context.Context) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	conns, err := b.listConns(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, c := range conns {
		if iface, _, ok := ownedConn(c); ok {
			seen[iface] = true
		}
	}
	return sortedKeys(seen), nil
}

// Close releases the backend. With cleanup it first unloads every
// ovnsec connection, pre-shared key and private key from charon.
// Certificates loaded with load-cert stay cached in charon (VICI cannot
// unload single certificates); they are public data.
func (b *Backend) Close(ctx context.Context, cleanup bool) error {
	b.mu.Lock()
	var errs []error
	if cleanup && !b.closed {
		names := map[string]bool{}
		for n := range b.tunnels {
			names[n] = true
		}
		if conns, err := b.listConns(ctx); err == nil {
			for _, c := range conns {
				if iface, _, ok := ownedConn(c); ok {
					names[iface] = true
				}
			}
		} else {
			errs = append(errs, err)
		}
		for _, n := range sortedKeys(names) {
			if err := b.remove(ctx, n); err != nil {
				errs = append(errs, err)
			}
		}
		for _, id := range sortedKeys(b.keyIDs) {
			if _, err := b.call(ctx, "unload-key", msgOf("id", id)); err != nil {
				errs = append(errs, fmt.Errorf("unload private key %s: %w", id, err))
			}
		}
	}
	b.closed = true
	if b.sess != nil {
		_ = b.sess.Close()
		b.sess = nil
	}
	b.mu.Unlock()
	b.logCancel()
	b.logOnce.Do(func() { close(b.logDone) }) // never started: nothing to wait for
	select {
	case <-b.logDone:
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	return errors.Join(errs...)
}

// Report answers ipsec/status, xfrm/policies and xfrm/state from charon's
// own view (list-sas), since the kernel's XFRM tables are charon's.
func (b *Backend) Report(ctx context.Context, command string) (string, error) {
	switch command {
	case "ipsec/status", "xfrm/policies", "xfrm/state":
	default:
		return "", fmt.Errorf("unknown report %q for the strongswan backend", command)
	}
	b.mu.Lock()
	sas, err := b.listSAs(ctx, "")
	var pols []policy
	if err == nil && command == "xfrm/policies" {
		pols, err = b.listPolicies(ctx)
	}
	known := make([]string, 0, len(b.tunnels))
	for n := range b.tunnels {
		known = append(known, n)
	}
	b.mu.Unlock()
	if err != nil {
		return "", err
	}
	switch command {
	case "xfrm/policies":
		return xfrmReport(sas, pols, true), nil
	case "xfrm/state":
		return xfrmReport(sas, nil, false), nil
	}
	return activeReport(sas, known), nil
}

// activeReport renders {ifname: {conn: line}} for every installed child.
func activeReport(sas []ikeSA, known []string) string {
	out := map[string]map[string]string{}
	sort.Slice(known, func(i, j int) bool { return len(known[i]) > len(known[j]) })
	for _, sa := range sas {
		for _, c := range sa.Children {
			if !c.installed() {
				continue
			}
			iface := ""
			for _, k := range known {
				if _, ok := BelongsTo(string(c.Name), k); ok {
					iface = k
					break
				}
			}
			if iface == "" {
				p, ok := ParseConnName(string(c.Name))
				if !ok {
					continue
				}
				iface = p.Iface
			}
			if out[iface] == nil {
				out[iface] = map[string]string{}
			}
			out[iface][string(c.Name)] = statusLine(c)
		}
	}
	return pyDictOfDicts(out)
}
