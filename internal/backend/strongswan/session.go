// VICI session: dialling charon's socket, reconnecting after a broken
// session (charon restarted), and running one command or one streamed
// command with a timeout, telling refusals from an unreachable charon.

package strongswan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/strongswan/govici/vici"
)

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
			watchLogs(b.life, b.dial, b.logs, b.cfg.Clock, b.cfg.LogRetry, b.log)
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

func msgOf(kv ...string) *vici.Message {
	m := vici.NewMessage()
	for i := 0; i+1 < len(kv); i += 2 {
		_ = m.Set(kv[i], kv[i+1]) // strings always marshal
	}
	return m
}

// isCommandError reports whether charon answered but refused the command
// (as opposed to charon being unreachable).
func isCommandError(err error) bool {
	var u *UnreachableError
	return err != nil && !errors.As(err, &u)
}
