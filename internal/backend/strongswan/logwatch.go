// Log watching: a second VICI session subscribed to charon's "log" events
// keeps the few lines that explain why an SA is not up (the kernel refusing
// the Child SA, authentication failures, proposal or selector mismatches),
// keyed by IKE_SA unique id and connection name, so that Status can say it
// plainly. Best effort: when the stream is unavailable Status infers.

package strongswan

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/strongswan/govici/vici"

	"github.com/ovnsec/ovnsec/internal/clock"
)

// logKind classifies a charon log line.
type logKind int

const (
	logIgnore logKind = iota
	logKernel         // the kernel refused an SA or policy
	logError          // any other negotiation failure worth showing
)

// classifyLog decides whether a charon log line explains a failure.
func classifyLog(msg string) logKind {
	m := strings.ToLower(msg)
	for _, k := range []string{
		"netlink error", "unable to add sad entry", "unable to install",
		"unable to update sad", "failed to add sad", "unable to add policy",
		"unable to allocate spi", "failed to install", "unable to query sad",
	} {
		if strings.Contains(m, k) {
			return logKernel
		}
	}
	for _, k := range []string{
		"failed", "unable to", "giving up", "no proposal chosen", "no_proposal_chosen",
		"ts_unacceptable", "authentication_failed", "no shared key", "no trusted",
		"no private key", "not found", "constraint check", "invalid_", "timed out",
		"retransmit", "not responding", "error", "mismatch",
	} {
		if strings.Contains(m, k) {
			return logError
		}
	}
	return logIgnore
}

// authLine reports whether a failure line charon logged says that
// authentication failed, on either side: the peer's AUTHENTICATION_FAILED
// notify, a pre-shared key or signature that does not verify, no trusted
// key or acceptable certificate for the peer, no key or shared secret for
// us.
func authLine(msg string) bool {
	m := strings.ToLower(msg)
	for _, k := range []string{
		"authentication_failed", "authentication failed", "mac mismatched",
		"no shared key", "no trusted", "no private key", "signature validation failed",
		"constraint check failed",
	} {
		if strings.Contains(m, k) {
			return true
		}
	}
	return false
}

// logNote is what the book keeps about one IKE_SA or connection.
type logNote struct {
	At     time.Time
	Kernel []string // kernel refusal lines, oldest first, at most maxLines
	Errors []string // other failure lines, oldest first, at most maxLines
}

const (
	maxLines = 4
	maxNotes = 1024
)

// logBook stores recent failure lines. Safe for concurrent use.
type logBook struct {
	mu     sync.Mutex
	clk    clock.Clock
	bySA   map[string]*logNote // IKE_SA unique id
	byConn map[string]*logNote // IKE connection name
	ok     bool                // the log stream is subscribed
}

func newLogBook(clk clock.Clock) *logBook {
	return &logBook{clk: clk, bySA: map[string]*logNote{}, byConn: map[string]*logNote{}}
}

func appendLine(lines []string, line string) []string {
	for _, l := range lines {
		if l == line {
			return lines
		}
	}
	lines = append(lines, line)
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return lines
}

func note(m map[string]*logNote, key string, kind logKind, line string, at time.Time) {
	if key == "" {
		return
	}
	n := m[key]
	if n == nil {
		if len(m) >= maxNotes {
			// Evict the oldest entry; the map stays bounded.
			var oldK string
			var oldT time.Time
			for k, v := range m {
				if oldK == "" || v.At.Before(oldT) {
					oldK, oldT = k, v.At
				}
			}
			delete(m, oldK)
		}
		n = &logNote{}
		m[key] = n
	}
	n.At = at
	if kind == logKernel {
		n.Kernel = appendLine(n.Kernel, line)
	} else {
		n.Errors = appendLine(n.Errors, line)
	}
}

// logEvent is the part of a "log" event message the book uses.
type logEvent struct {
	Group       string `vici:"group"`
	Msg         string `vici:"msg"`
	SAID        string `vici:"ikesa-uniqueid"`
	SAIDReadme  string `vici:"ikesa-uniqued"` // spelling in the VICI README
	IKEConnName string `vici:"ikesa-name"`
}

// add records one log event message. An event it cannot decode is left
// out and returned as an error.
func (lb *logBook) add(ev *vici.Message) error {
	if ev == nil {
		return nil
	}
	var e logEvent
	if err := unmarshal(ev, &e); err != nil {
		return fmt.Errorf("decode charon's log event: %w", err)
	}
	if e.Group == "ENC" {
		return nil // message dumps: "parsed IKE_AUTH response 1 [ N(AUTH_FAILED) ]"
	}
	msg := strings.TrimSpace(e.Msg)
	kind := classifyLog(msg)
	if kind == logIgnore {
		return nil
	}
	id := e.SAID
	if id == "" {
		id = e.SAIDReadme
	}
	lb.mu.Lock()
	defer lb.mu.Unlock()
	at := lb.clk.Now()
	note(lb.bySA, id, kind, msg, at)
	note(lb.byConn, e.IKEConnName, kind, msg, at)
	return nil
}

// lookup returns copies of the notes for an IKE_SA and a connection.
func (lb *logBook) lookup(saID string, conn ConnName) (sa, c logNote, streaming bool) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if n := lb.bySA[saID]; n != nil && saID != "" {
		sa = logNote{At: n.At, Kernel: append([]string(nil), n.Kernel...), Errors: append([]string(nil), n.Errors...)}
	}
	if n := lb.byConn[string(conn)]; n != nil {
		c = logNote{At: n.At, Kernel: append([]string(nil), n.Kernel...), Errors: append([]string(nil), n.Errors...)}
	}
	return sa, c, lb.ok
}

// forgetConn drops what is known about a connection (after unloading it).
func (lb *logBook) forgetConn(conn ConnName) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	delete(lb.byConn, string(conn))
}

func (lb *logBook) setStreaming(ok bool) {
	lb.mu.Lock()
	lb.ok = ok
	lb.mu.Unlock()
}

// watchLogs keeps a log subscription open until ctx ends, reconnecting
// after retry when charon goes away. Log events it cannot decode are
// reported to log, the first of each subscription as a warning.
func watchLogs(ctx context.Context, dial func() (*vici.Session, error), lb *logBook, clk clock.Clock, retry time.Duration, log *slog.Logger) {
	for ctx.Err() == nil {
		if s, err := dial(); err == nil {
			streamLogs(ctx, s, lb, log)
		}
		lb.setStreaming(false)
		again := make(chan struct{})
		t := clk.AfterFunc(retry, func() { close(again) })
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-again:
		}
	}
}

func streamLogs(ctx context.Context, s *vici.Session, lb *logBook, log *slog.Logger) {
	defer s.Close()
	ch := make(chan vici.Event, 256)
	s.NotifyEvents(ch)
	if err := s.Subscribe("log"); err != nil {
		return
	}
	lb.setStreaming(true)
	warned := false
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-ch:
			if !ok {
				return // charon went away
			}
			if ev.Name != "log" {
				continue
			}
			if err := lb.add(ev.Message); err != nil {
				level := slog.LevelDebug
				if !warned {
					level, warned = slog.LevelWarn, true
				}
				log.Log(ctx, level, "ignoring a charon log event", "err", err)
			}
		}
	}
}
