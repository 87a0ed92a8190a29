// Package unixctl speaks Open vSwitch's unixctl protocol, so that the real
// `ovs-appctl -t <target> <command> [args...]` can talk to ovnsec daemons
// and ovnsec's own tools can talk to OVS daemons.
//
// The protocol is JSON-RPC 1.0 over a Unix stream socket, as OVS's
// lib/unixctl.c and python/ovs/unixctl speak it. Messages are JSON objects
// sent back to back, with no delimiter between them:
//
//	request: {"method":"<command>","params":["arg",...],"id":N}
//	success: {"result":"<text>","error":null,"id":N}
//	failure: {"result":null,"error":"<text>","id":N}
//
// Non-empty reply texts always end in a newline; ovs-appctl prints a result
// on stdout, an error text on stderr and then exits with status 2.
//
// This file is the wire stage: decoding requests from a byte stream and
// encoding replies. server.go dispatches requests, client.go sends them,
// pidfile.go implements the pidfile and socket names through which
// ovs-appctl finds a daemon by name.
package unixctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxMessageSize bounds one JSON-RPC message. A peer that sends more than
// this without completing a message is disconnected, so that a local client
// cannot make the daemon buffer without limit.
const MaxMessageSize = 1 << 20

// errTooLarge is returned by a messageReader when a message exceeds
// MaxMessageSize.
var errTooLarge = fmt.Errorf("unixctl message larger than %d bytes", MaxMessageSize)

// request is one decoded JSON-RPC request.
type request struct {
	method string
	params []json.RawMessage
	// id is the request's id exactly as the client sent it; a reply echoes
	// it byte for byte. It is nil for a notification (no id, or null).
	id json.RawMessage
}

// requestError describes a JSON value that is not a valid request. id is
// the message's id when one could be recovered, so that the error reply can
// still be matched by the client.
type requestError struct {
	id  json.RawMessage
	why string
}

func (e *requestError) Error() string { return "invalid JSON-RPC request: " + e.why }

// parseRequest decodes one complete JSON value as a unixctl request, with
// the rules of OVS's jsonrpc_msg_from_json: a JSON object whose "method" is
// a string, whose "params" is an array and whose "id" is present and not
// null. Member names are case sensitive; "result" and "error" must be absent
// or null. Unknown members are ignored (OVS rejects them; being lenient here
// costs nothing and helps foreign clients).
func parseRequest(data []byte) (request, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return request{}, &requestError{why: "message is not a JSON object"}
	}
	var req request
	if id, ok := obj["id"]; ok && !isNull(id) {
		req.id = compactJSON(id)
	}
	bad := func(why string) (request, error) {
		return request{}, &requestError{id: req.id, why: why}
	}

	m, ok := obj["method"]
	if !ok || isNull(m) {
		return bad(`request has no "method"`)
	}
	if err := json.Unmarshal(m, &req.method); err != nil {
		return bad("method is not a JSON string")
	}
	if r, ok := obj["result"]; ok && !isNull(r) {
		return bad(`request must not have "result"`)
	}
	if e, ok := obj["error"]; ok && !isNull(e) {
		return bad(`request must not have "error"`)
	}
	if p, ok := obj["params"]; ok && !isNull(p) {
		if err := json.Unmarshal(p, &req.params); err != nil || req.params == nil {
			return bad("params is not a JSON array")
		}
	}
	if req.id == nil {
		return bad(`request has no "id" (notifications are not supported)`)
	}
	return req, nil
}

// stringArgs converts params to strings. ok is false when one of them is
// not a JSON string.
func stringArgs(params []json.RawMessage) (args []string, ok bool) {
	args = make([]string, len(params))
	for i, p := range params {
		if len(p) == 0 || p[0] != '"' {
			return nil, false
		}
		if err := json.Unmarshal(p, &args[i]); err != nil {
			return nil, false
		}
	}
	return args, true
}

func isNull(v json.RawMessage) bool { return string(v) == "null" }

// compactJSON returns v without insignificant white space, so that an id
// is echoed in the same form OVS would print it.
func compactJSON(v json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		return append(json.RawMessage(nil), v...)
	}
	return b.Bytes()
}

// replyText applies OVS's rule that a non-empty reply body ends in "\n".
func replyText(body string) string {
	if body != "" && body[len(body)-1] != '\n' {
		return body + "\n"
	}
	return body
}

// encodeReply returns the wire form of a reply to the request with the
// given id: {"result":text,"error":null,"id":id} when ok, else
// {"result":null,"error":text,"id":id}. A nil id is sent as null. No
// newline is appended, like OVS.
func encodeReply(id json.RawMessage, ok bool, text string) ([]byte, error) {
	type wireReply struct {
		Result *string         `json:"result"`
		Error  *string         `json:"error"`
		ID     json.RawMessage `json:"id"`
	}
	text = replyText(text)
	r := wireReply{ID: id}
	if ok {
		r.Result = &text
	} else {
		r.Error = &text
	}
	if r.ID == nil {
		r.ID = json.RawMessage("null")
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("encode unixctl reply: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// messageReader splits a byte stream into JSON values sent back to back,
// the way OVS frames JSON-RPC. It never buffers more than about
// MaxMessageSize bytes of a message that has not been completed.
type messageReader struct {
	dec *json.Decoder
	lr  *limitReader
}

func newMessageReader(r io.Reader) *messageReader {
	lr := &limitReader{r: r}
	dec := json.NewDecoder(lr)
	lr.consumed = dec.InputOffset
	return &messageReader{dec: dec, lr: lr}
}

// next returns the next complete JSON value. It returns io.EOF at a clean
// end of stream, errTooLarge for an oversized message and a *json.SyntaxError
// (or io.ErrUnexpectedEOF) for malformed input; after any error the stream
// cannot be resynchronised and must be dropped.
func (m *messageReader) next() (json.RawMessage, error) {
	var raw json.RawMessage
	if err := m.dec.Decode(&raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// limitReader refuses to read further once the decoder holds more than
// MaxMessageSize bytes it has not consumed yet.
type limitReader struct {
	r        io.Reader
	read     int64
	consumed func() int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.read-l.consumed() > MaxMessageSize {
		return 0, errTooLarge
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	return n, err
}

// isStreamSyntaxError reports whether err means the peer sent bytes that
// are not JSON (as opposed to an I/O error or a clean end of stream).
func isStreamSyntaxError(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF)
}
