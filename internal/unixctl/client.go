// Client stage: sends unixctl requests the way ovs-appctl does, to ovnsec
// daemons or to OVS's own (ovs-vswitchd, ovsdb-server, ovn-controller).

package unixctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ServerError is an error reply: the server understood the request and
// refused it or the command failed (ovs-appctl exits 2 on it). Text is the
// reply exactly as sent, normally ending in a newline.
type ServerError struct {
	Method string
	Text   string
}

func (e *ServerError) Error() string {
	return strings.TrimRight(e.Text, "\n")
}

// Client is a connection to one unixctl socket. Calls are serialised; a
// Client is safe for concurrent use. After an I/O error or a cancelled
// call the connection is closed and every later call fails: Dial again.
type Client struct {
	path string

	mu     sync.Mutex
	conn   net.Conn
	mr     *messageReader
	nextID int64
	broken error
}

// Dial connects to the unixctl socket at path.
func Dial(path string) (*Client, error) {
	return DialContext(context.Background(), path)
}

// DialContext is Dial with a context bounding the connection attempt.
func DialContext(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("connect to control socket %s: %w (is the daemon running?)", path, err)
	}
	return &Client{path: path, conn: c, mr: newMessageReader(c)}, nil
}

// Close closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken == nil {
		c.broken = net.ErrClosed
	}
	return c.conn.Close()
}

// Call runs method with args on the server and returns its reply text
// (normally ending in a newline, as OVS sends it). An error reply is
// returned as a *ServerError; anything else that goes wrong is a
// communication error. ctx bounds the whole call.
func (c *Client) Call(ctx context.Context, method string, args ...string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return "", fmt.Errorf("unixctl %s on %s: connection unusable: %w", method, c.path, c.broken)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("unixctl %s on %s: %w", method, c.path, err)
	}
	text, err := c.call(ctx, method, args)
	var se *ServerError
	if err != nil && !errors.As(err, &se) {
		c.broken = err
		c.conn.Close()
	}
	return text, err
}

func (c *Client) call(ctx context.Context, method string, args []string) (string, error) {
	wrap := func(err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		return fmt.Errorf("unixctl %s on %s: %w", method, c.path, err)
	}

	// When ctx ends, blocked I/O is interrupted by moving the deadline into
	// the past; ctx.Err() is set by then, so wrap reports it.
	c.conn.SetDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c.nextID++
	id := c.nextID
	if args == nil {
		args = []string{}
	}
	req, err := json.Marshal(struct {
		Method string   `json:"method"`
		Params []string `json:"params"`
		ID     int64    `json:"id"`
	}{method, args, id})
	if err != nil {
		return "", wrap(err)
	}
	if _, err := c.conn.Write(req); err != nil {
		return "", wrap(err)
	}
	for {
		raw, err := c.mr.next()
		if err != nil {
			return "", wrap(fmt.Errorf("read reply: %w", err))
		}
		rep, err := parseReply(raw)
		if err != nil {
			return "", wrap(err)
		}
		if rep.id != strconv.FormatInt(id, 10) {
			// A reply to an earlier, abandoned request: skip it, like
			// OVS's jsonrpc_transact_block.
			continue
		}
		if rep.isError {
			return "", &ServerError{Method: method, Text: rep.text}
		}
		return rep.text, nil
	}
}

type reply struct {
	id      string // the id's JSON text
	isError bool
	text    string
}

// parseReply decodes a reply with the checks of OVS's
// unixctl_client_transact: exactly one of result and error is non-null,
// and it is a string.
func parseReply(data []byte) (reply, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return reply{}, errors.New("reply is not a JSON object")
	}
	var rep reply
	if id, ok := obj["id"]; ok {
		rep.id = string(compactJSON(id))
	}
	res, hasRes := obj["result"]
	hasRes = hasRes && !isNull(res)
	e, hasErr := obj["error"]
	hasErr = hasErr && !isNull(e)
	var field json.RawMessage
	switch {
	case hasRes && hasErr:
		return reply{}, errors.New(`reply has both "result" and "error"`)
	case hasErr:
		rep.isError, field = true, e
	case hasRes:
		field = res
	default:
		return reply{}, errors.New(`reply has neither "result" nor "error"`)
	}
	if len(field) == 0 || field[0] != '"' {
		return reply{}, fmt.Errorf("reply text is not a JSON string: %.40s", field)
	}
	if err := json.Unmarshal(field, &rep.text); err != nil {
		return reply{}, fmt.Errorf("reply text: %w", err)
	}
	return rep, nil
}
