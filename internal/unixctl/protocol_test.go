// Tests of the wire stage: request decoding, reply encoding, framing.

package unixctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		wantMethod string
		wantParams []string // JSON texts
		wantID     string
		wantErr    string // substring; "" = success
		wantErrID  string // id carried by the error
	}{
		{name: "ovs-appctl form", in: `{"method":"tunnels/show","params":[],"id":0}`, wantMethod: "tunnels/show", wantParams: []string{}, wantID: "0"},
		{name: "args", in: `{"id":7,"method":"exit","params":["--no-cleanup","x y"]}`, wantMethod: "exit", wantParams: []string{`"--no-cleanup"`, `"x y"`}, wantID: "7"},
		{name: "string id", in: `{"method":"m","params":[],"id":"abc"}`, wantMethod: "m", wantParams: []string{}, wantID: `"abc"`},
		{name: "id compacted", in: `{"method":"m","params":[],"id":[ 1 , 2 ]}`, wantMethod: "m", wantParams: []string{}, wantID: `[1,2]`},
		{name: "no params", in: `{"method":"m","id":1}`, wantMethod: "m", wantID: "1"},
		{name: "null params", in: `{"method":"m","params":null,"id":1}`, wantMethod: "m", wantID: "1"},
		{name: "null result and error", in: `{"method":"m","params":[],"result":null,"error":null,"id":1}`, wantMethod: "m", wantParams: []string{}, wantID: "1"},
		{name: "non-string param kept", in: `{"method":"m","params":[1,true],"id":1}`, wantMethod: "m", wantParams: []string{"1", "true"}, wantID: "1"},
		{name: "unknown member ignored", in: `{"method":"m","params":[],"id":1,"x":2}`, wantMethod: "m", wantParams: []string{}, wantID: "1"},
		{name: "escaped method", in: `{"method":"a\u002fb","params":[],"id":1}`, wantMethod: "a/b", wantParams: []string{}, wantID: "1"},

		{name: "array", in: `[1,2]`, wantErr: "not a JSON object"},
		{name: "string", in: `"x"`, wantErr: "not a JSON object"},
		{name: "null", in: `null`, wantErr: "not a JSON object"},
		{name: "no method", in: `{"params":[],"id":3}`, wantErr: `no "method"`, wantErrID: "3"},
		{name: "method case sensitive", in: `{"Method":"m","params":[],"id":3}`, wantErr: `no "method"`, wantErrID: "3"},
		{name: "method number", in: `{"method":5,"params":[],"id":3}`, wantErr: "method is not a JSON string", wantErrID: "3"},
		{name: "params object", in: `{"method":"m","params":{},"id":3}`, wantErr: "params is not a JSON array", wantErrID: "3"},
		{name: "params string", in: `{"method":"m","params":"a","id":3}`, wantErr: "params is not a JSON array", wantErrID: "3"},
		{name: "no id", in: `{"method":"m","params":[]}`, wantErr: `no "id"`},
		{name: "null id", in: `{"method":"m","params":[],"id":null}`, wantErr: `no "id"`},
		{name: "has result", in: `{"method":"m","params":[],"result":"x","id":3}`, wantErr: `must not have "result"`, wantErrID: "3"},
		{name: "has error", in: `{"method":"m","params":[],"error":"x","id":3}`, wantErr: `must not have "error"`, wantErrID: "3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := parseRequest([]byte(tt.in))
			if tt.wantErr != "" {
				var re *requestError
				if !errors.As(err, &re) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want *requestError containing %q", err, tt.wantErr)
				}
				if string(re.id) != tt.wantErrID {
					t.Errorf("error id = %s, want %s", re.id, tt.wantErrID)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if req.method != tt.wantMethod {
				t.Errorf("method = %q, want %q", req.method, tt.wantMethod)
			}
			if string(req.id) != tt.wantID {
				t.Errorf("id = %s, want %s", req.id, tt.wantID)
			}
			var got []string
			if req.params != nil {
				got = []string{}
			}
			for _, p := range req.params {
				got = append(got, string(p))
			}
			if !equalStrings(got, tt.wantParams) || (got == nil) != (tt.wantParams == nil) {
				t.Errorf("params = %q, want %q", got, tt.wantParams)
			}
		})
	}
}

func TestStringArgs(t *testing.T) {
	tests := []struct {
		in     string
		want   []string
		wantOK bool
	}{
		{`[]`, []string{}, true},
		{`["a","b c","\u00e9\n"]`, []string{"a", "b c", "é\n"}, true},
		{`["a",1]`, nil, false},
		{`[null]`, nil, false},
		{`[["a"]]`, nil, false},
		{`[{"a":"b"}]`, nil, false},
	}
	for _, tt := range tests {
		var params []json.RawMessage
		if err := json.Unmarshal([]byte(tt.in), &params); err != nil {
			t.Fatal(err)
		}
		got, ok := stringArgs(params)
		if ok != tt.wantOK || !equalStrings(got, tt.want) {
			t.Errorf("stringArgs(%s) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestEncodeReply(t *testing.T) {
	tests := []struct {
		name string
		id   json.RawMessage
		ok   bool
		text string
		want string
	}{
		{"success gets newline", json.RawMessage("0"), true, "hello", `{"result":"hello\n","error":null,"id":0}`},
		{"newline kept", json.RawMessage("1"), true, "a\nb\n", `{"result":"a\nb\n","error":null,"id":1}`},
		{"empty stays empty", json.RawMessage("2"), true, "", `{"result":"","error":null,"id":2}`},
		{"error", json.RawMessage(`"x"`), false, `"m" is not a valid command`, `{"result":null,"error":"\"m\" is not a valid command\n","id":"x"}`},
		{"nil id is null", nil, false, "bad", `{"result":null,"error":"bad\n","id":null}`},
		{"no HTML escaping", json.RawMessage("3"), true, "<a&b>", `{"result":"<a&b>\n","error":null,"id":3}`},
		{"control chars", json.RawMessage("4"), true, "\t\x01", `{"result":"\t\u0001\n","error":null,"id":4}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeReply(tt.id, tt.ok, tt.text)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			// What we send must be what our client (and OVS) decodes.
			rep, err := parseReply(got)
			if err != nil {
				t.Fatalf("parseReply: %v", err)
			}
			if rep.isError == tt.ok || rep.text != replyText(tt.text) {
				t.Errorf("round trip = %+v", rep)
			}
		})
	}
}

func TestParseReply(t *testing.T) {
	tests := []struct {
		in      string
		want    reply
		wantErr string
	}{
		{in: `{"result":"a\n","error":null,"id":0}`, want: reply{id: "0", text: "a\n"}},
		{in: `{"id":5,"result":"a"}`, want: reply{id: "5", text: "a"}},
		{in: `{"result":null,"error":"e\n","id":1}`, want: reply{id: "1", isError: true, text: "e\n"}},
		{in: `{"result":"a","error":"e","id":1}`, wantErr: "both"},
		{in: `{"result":null,"error":null,"id":1}`, wantErr: "neither"},
		{in: `{"result":5,"id":1}`, wantErr: "not a JSON string"},
		{in: `{"error":{"x":1},"id":1}`, wantErr: "not a JSON string"},
		{in: `[]`, wantErr: "not a JSON object"},
	}
	for _, tt := range tests {
		got, err := parseReply([]byte(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseReply(%s) err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseReply(%s) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// readAll drains a messageReader.
func readAll(r io.Reader) ([]string, error) {
	mr := newMessageReader(r)
	var out []string
	for {
		raw, err := mr.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, string(raw))
	}
}

func TestMessageReaderFraming(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr func(error) bool
	}{
		{name: "back to back", in: `{"a":1}{"b":"}{"}{"c":[]}`, want: []string{`{"a":1}`, `{"b":"}{"}`, `{"c":[]}`}},
		{name: "white space between", in: " {\"a\":1}\n\t{\"b\":2}\r\n ", want: []string{`{"a":1}`, `{"b":2}`}},
		{name: "escaped quote in string", in: `{"a":"x\"}{"}{"b":1}`, want: []string{`{"a":"x\"}{"}`, `{"b":1}`}},
		{name: "empty stream", in: "", want: nil},
		{name: "truncated", in: `{"a":1}{"b":`, want: []string{`{"a":1}`}, wantErr: isStreamSyntaxError},
		{name: "garbage", in: `{"a":1}xyz`, want: []string{`{"a":1}`}, wantErr: isStreamSyntaxError},
		{name: "unbalanced", in: `{"a":1]`, wantErr: isStreamSyntaxError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, one := range []bool{false, true} {
				var r io.Reader = strings.NewReader(tt.in)
				if one {
					r = iotest.OneByteReader(r) // partial reads
				}
				got, err := readAll(r)
				if tt.wantErr == nil && err != nil || tt.wantErr != nil && (err == nil || !tt.wantErr(err)) {
					t.Fatalf("oneByte=%v: err = %v", one, err)
				}
				if !equalStrings(got, tt.want) {
					t.Errorf("oneByte=%v: got %q, want %q", one, got, tt.want)
				}
			}
		})
	}
}

func TestMessageReaderSizeLimit(t *testing.T) {
	big := `{"method":"m","params":["` + strings.Repeat("x", MaxMessageSize-100) + `"],"id":1}`
	got, err := readAll(strings.NewReader(big + big))
	if err != nil || len(got) != 2 {
		t.Fatalf("two messages just under the limit: got %d, err %v", len(got), err)
	}

	huge := `{"method":"m","params":["` + strings.Repeat("x", 3*MaxMessageSize)
	_, err = readAll(strings.NewReader(huge))
	if !errors.Is(err, errTooLarge) {
		t.Fatalf("oversized message: err = %v, want errTooLarge", err)
	}

	// The reader must stop before buffering much more than the limit.
	cr := &countingReader{r: strings.NewReader(huge)}
	readAll(cr)
	if cr.n > 2*MaxMessageSize {
		t.Errorf("read %d bytes of an oversized message, want <= %d", cr.n, 2*MaxMessageSize)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzParseRequest checks that no input makes the request decoder panic,
// and that what it accepts can be answered with a reply our client and
// OVS decode.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"method":"list-commands","params":[],"id":0}`,
		`{"method":"exit","params":["--no-cleanup"],"id":1}`,
		`{"method":"m","params":[1,null,{}],"id":"x"}`,
		`{"method":"m","id":null}`,
		`{"method":5}`,
		`[]`,
		`{"params":{},"id":[1,{"a":2}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := parseRequest(data)
		var id json.RawMessage
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) {
				t.Fatalf("error of type %T", err)
			}
			id = re.id
		} else {
			if req.id == nil {
				t.Fatal("accepted a request without id")
			}
			id = req.id
			stringArgs(req.params)
		}
		b, err := encodeReply(id, err == nil, "text")
		if err != nil {
			t.Fatalf("encodeReply(id %s): %v", id, err)
		}
		rep, err := parseReply(b)
		if err != nil {
			t.Fatalf("reply %s does not parse: %v", b, err)
		}
		if id != nil && rep.id != string(id) {
			t.Fatalf("reply id %s, request id %s", rep.id, id)
		}
	})
}

// FuzzRequestStream feeds arbitrary bytes through the framing and request
// decoding a server connection does, checking that it never panics, never
// loops and never returns a value that is not valid JSON.
func FuzzRequestStream(f *testing.F) {
	for _, s := range []string{
		`{"method":"version","params":[],"id":0}{"method":"help","params":[],"id":1}`,
		`{"method":"a","params":["x"],"id":0}` + "\n" + `{"method":"b",`,
		`{"a":"}{"}{`,
		`  "x" 1 [2] null {}`,
		"\xff\xfe{",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		mr := newMessageReader(bytes.NewReader(data))
		for i := 0; ; i++ {
			if i > len(data) {
				t.Fatal("more messages than input bytes")
			}
			raw, err := mr.next()
			if err != nil {
				return
			}
			if !json.Valid(raw) {
				t.Fatalf("framed invalid JSON %q", raw)
			}
			parseRequest(raw)
		}
	})
}
