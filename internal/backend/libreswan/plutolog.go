// Pluto's log: the reasons `ipsec status` does not give. pluto reports a
// Child SA the kernel refused ("netlink response for Add SA ...: Function
// not implemented (errno 38)"), an authentication failure or a peer's
// refusal only in its log, so when --pluto-log names the file the backend
// follows it and keeps, per connection, the last such line.

package libreswan

import (
	"io"
	"os"
	"strings"
	"time"
)

// maxLogRead bounds one read of the log (and where a first read starts
// from the end of a large file).
const maxLogRead = 4 << 20

// logNote is what the log said last about one connection.
type logNote struct {
	Kernel string // the kernel refused to install an SA
	Error  string // another failure (authentication, proposals, selectors)
	At     time.Time
}

// logBook follows pluto's log file.
type logBook struct {
	path    string
	offset  int64
	partial string
	notes   map[string]logNote
	// kernel is the last kernel refusal of any connection: the kernel is
	// one for all of them.
	kernel string
}

func newLogBook(path string) *logBook {
	return &logBook{path: path, notes: map[string]logNote{}}
}

// update reads what was appended since the last call; a file that shrank
// (rotated, truncated) is read from its start. Errors leave the notes as
// they were.
func (l *logBook) update(now time.Time) error {
	if l == nil || l.path == "" {
		return nil
	}
	f, err := os.Open(l.path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size < l.offset {
		l.offset, l.partial = 0, ""
	}
	if size-l.offset > maxLogRead {
		l.offset, l.partial = size-maxLogRead, ""
	}
	if _, err := f.Seek(l.offset, io.SeekStart); err != nil {
		return err
	}
	buf, err := io.ReadAll(io.LimitReader(f, maxLogRead))
	if err != nil {
		return err
	}
	l.offset += int64(len(buf))
	text := l.partial + string(buf)
	end := strings.LastIndexByte(text, '\n')
	if end < 0 {
		l.partial = text
		return nil
	}
	l.partial = text[end+1:]
	if len(l.partial) > 64<<10 {
		l.partial = ""
	}
	for _, line := range strings.Split(text[:end], "\n") {
		l.add(line, now)
	}
	return nil
}

// add records one log line if it explains a missing SA.
func (l *logBook) add(line string, now time.Time) {
	conn, msg, ok := logConnLine(line)
	if !ok {
		return
	}
	n := l.notes[conn]
	switch kind := classifyLog(msg); kind {
	case "kernel":
		n.Kernel = msg
		l.kernel = msg
	case "error":
		n.Error = msg
	default:
		return
	}
	n.At = now
	l.notes[conn] = n
}

// note returns what the log said about conn.
func (l *logBook) note(conn string) (logNote, bool) {
	if l == nil {
		return logNote{}, false
	}
	n, ok := l.notes[conn]
	return n, ok
}

// lastKernel is the last kernel refusal logged for any connection.
func (l *logBook) lastKernel() string {
	if l == nil {
		return ""
	}
	return l.kernel
}

// logConnLine finds `"conn" #N: message` (or `"conn": message`) in a log
// line, after the timestamp and an optional "ERROR: " marker.
func logConnLine(line string) (conn, msg string, ok bool) {
	i := strings.IndexByte(line, '"')
	if i < 0 {
		return "", "", false
	}
	name, rest, ok := quoted(line[i:])
	if !ok {
		return "", "", false
	}
	rest = strings.TrimLeft(rest, " ")
	if strings.HasPrefix(rest, "#") {
		if _, after, found := strings.Cut(rest, ": "); found {
			rest = after
		}
	} else {
		rest = strings.TrimPrefix(rest, ": ")
	}
	msg = strings.TrimSpace(rest)
	if msg == "" {
		return "", "", false
	}
	return name, truncate(msg, 300), true
}

// classifyLog sorts a connection's log message: "kernel" when the kernel
// refused an SA, "error" for another failure, "" otherwise. pluto's
// "setup_half_ipsec_sa() hit fail:" follows the netlink line that says
// why, which is kept.
func classifyLog(msg string) string {
	switch {
	case strings.Contains(msg, "setup_half_ipsec_sa() hit fail"):
		return ""
	case strings.Contains(msg, "netlink response for Add SA"), strings.Contains(msg, "netlink response for Add policy"),
		strings.Contains(msg, "kernel: "):
		return "kernel"
	case strings.Contains(msg, "AUTHENTICATION_FAILED"), strings.Contains(msg, "authentication failed"),
		strings.Contains(msg, "TS_UNACCEPTABLE"), strings.Contains(msg, "NO_PROPOSAL_CHOSEN"),
		strings.Contains(msg, "no suitable connection"), strings.Contains(msg, "Signature check"),
		strings.Contains(msg, "failed"), strings.Contains(msg, "refused"):
		return "error"
	}
	return ""
}
