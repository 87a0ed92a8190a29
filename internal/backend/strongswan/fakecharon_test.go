// A fake charon for unit tests: a VICI server on a unix socket in a temp
// directory that keeps the connections, certificates and keys it is given,
// lists the IKE_SAs a test sets, and records every command, so that tests
// can check what the backend asked charon to do without a real charon.

package strongswan

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/strongswan/govici/vici"
)

// VICI packet and element types (the VICI README).
const (
	pktEventRegister   = 3
	pktEventUnregister = 4
	pktEventConfirm    = 5

	elSectionStart = 1
	elSectionEnd   = 2
	elKeyValue     = 3
	elListStart    = 4
	elListItem     = 5
	elListEnd      = 6
)

// fakeCall is one command the fake received.
type fakeCall struct {
	Cmd string
	Msg *vici.Message
}

// fakeCharon is the fake. Its fields are guarded by mu.
type fakeCharon struct {
	t      *testing.T
	socket string // VICI URI for Config.ViciSocket
	ln     net.Listener

	mu    sync.Mutex
	calls []fakeCall
	conns map[string]*vici.Message // load-conn sections by IKE name, in load order below
	order []string
	sas   []*vici.Message // list-sa events
	fail  map[string]int  // commands to refuse, and how many times
}

// newFakeCharon starts a fake charon; it stops in t.Cleanup.
func newFakeCharon(t *testing.T) *fakeCharon {
	t.Helper()
	path := filepath.Join(t.TempDir(), "charon.vici")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatalf("fake charon: %v", err)
	}
	f := &fakeCharon{t: t, socket: "unix://" + path, ln: ln, conns: map[string]*vici.Message{}, fail: map[string]int{}}
	var wg sync.WaitGroup
	var connsMu sync.Mutex
	var open []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			connsMu.Lock()
			open = append(open, c)
			connsMu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				f.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		connsMu.Lock()
		for _, c := range open {
			_ = c.Close()
		}
		connsMu.Unlock()
		wg.Wait()
	})
	return f
}

// setSAs replaces what list-sas returns (one list-sa event each).
func (f *fakeCharon) setSAs(evs ...*vici.Message) {
	f.mu.Lock()
	f.sas = evs
	f.mu.Unlock()
}

// failNext makes charon refuse the next n cmd commands.
func (f *fakeCharon) failNext(cmd string, n int) {
	f.mu.Lock()
	f.fail[cmd] = n
	f.mu.Unlock()
}

// takeCalls returns the commands received since the last call, without
// the read-only list-* queries.
func (f *fakeCharon) takeCalls() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeCall
	for _, c := range f.calls {
		if c.Cmd != "list-conns" && c.Cmd != "list-sas" && c.Cmd != "list-policies" {
			out = append(out, c)
		}
	}
	f.calls = nil
	return out
}

func (f *fakeCharon) serve(c net.Conn) {
	for {
		p, err := readPacket(c)
		if err != nil || len(p) < 2 {
			return
		}
		typ, n := p[0], int(p[1])
		if len(p) < 2+n {
			return
		}
		name, body := string(p[2:2+n]), p[2+n:]
		switch typ {
		case pktEventRegister, pktEventUnregister:
			if writePacket(c, []byte{pktEventConfirm}) != nil {
				return
			}
		case pktCmdRequest:
			in, err := decodeVICI(body)
			if err != nil {
				f.t.Errorf("fake charon: command %s: %v", name, err)
				return
			}
			evName, events, resp := f.handle(name, in)
			for _, ev := range events {
				if writePacket(c, append(append([]byte{pktEvent, byte(len(evName))}, evName...), encodeVICI(ev)...)) != nil {
					return
				}
			}
			if writePacket(c, append([]byte{pktCmdResponse}, encodeVICI(resp)...)) != nil {
				return
			}
		default:
			return
		}
	}
}

func okMsg(kv ...string) *vici.Message {
	m := msgOf("success", "yes")
	for i := 0; i+1 < len(kv); i += 2 {
		_ = m.Set(kv[i], kv[i+1])
	}
	return m
}

// handle answers one command: the streamed events (with their name) and
// the response.
func (f *fakeCharon) handle(cmd string, in *vici.Message) (string, []*vici.Message, *vici.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fakeCall{Cmd: cmd, Msg: in})
	if f.fail[cmd] > 0 {
		f.fail[cmd]--
		return "", nil, msgOf("success", "no", "errmsg", "injected failure")
	}
	switch cmd {
	case "list-conns":
		var evs []*vici.Message
		for _, name := range f.order {
			conn := f.conns[name]
			children := vici.NewMessage()
			if ch, ok := conn.Get("children").(*vici.Message); ok {
				for _, k := range ch.Keys() {
					_ = children.Set(k, msgOf("mode", "TRANSPORT"))
				}
			}
			sec := vici.NewMessage()
			_ = sec.Set("children", children)
			ev := vici.NewMessage()
			_ = ev.Set(name, sec)
			evs = append(evs, ev)
		}
		return "list-conn", evs, vici.NewMessage()
	case "list-sas":
		ike, _ := in.Get("ike").(string)
		var evs []*vici.Message
		for _, ev := range f.sas {
			if ike == "" || slices.Contains(ev.Keys(), ike) {
				evs = append(evs, ev)
			}
		}
		return "list-sa", evs, vici.NewMessage()
	case "list-policies":
		return "list-policy", nil, vici.NewMessage()
	case "load-conn":
		for _, name := range in.Keys() {
			sec, _ := in.Get(name).(*vici.Message)
			if _, ok := f.conns[name]; !ok {
				f.order = append(f.order, name)
			}
			f.conns[name] = sec
		}
		return "", nil, okMsg()
	case "unload-conn":
		name, _ := in.Get("name").(string)
		if _, ok := f.conns[name]; !ok {
			return "", nil, msgOf("success", "no", "errmsg", "connection '"+name+"' not found")
		}
		delete(f.conns, name)
		f.order = slices.DeleteFunc(f.order, func(n string) bool { return n == name })
		return "", nil, okMsg()
	case "load-key":
		data, _ := in.Get("data").(string)
		return "", nil, okMsg("id", fingerprint([]byte(data))[:16])
	case "load-cert", "load-shared", "unload-shared", "unload-key":
		return "", nil, okMsg()
	case "initiate", "terminate":
		return "control-log", nil, okMsg()
	}
	return "", nil, msgOf("success", "no", "errmsg", "fake charon: unknown command "+cmd)
}

// encodeVICI encodes a message's elements as VICI puts them on the wire.
func encodeVICI(m *vici.Message) []byte {
	var b bytes.Buffer
	encodeElements(&b, m)
	return b.Bytes()
}

func encodeElements(b *bytes.Buffer, m *vici.Message) {
	for _, k := range m.Keys() {
		switch v := m.Get(k).(type) {
		case string:
			b.WriteByte(elKeyValue)
			b.WriteByte(byte(len(k)))
			b.WriteString(k)
			_ = binary.Write(b, binary.BigEndian, uint16(len(v)))
			b.WriteString(v)
		case []string:
			b.WriteByte(elListStart)
			b.WriteByte(byte(len(k)))
			b.WriteString(k)
			for _, item := range v {
				b.WriteByte(elListItem)
				_ = binary.Write(b, binary.BigEndian, uint16(len(item)))
				b.WriteString(item)
			}
			b.WriteByte(elListEnd)
		case *vici.Message:
			b.WriteByte(elSectionStart)
			b.WriteByte(byte(len(k)))
			b.WriteString(k)
			encodeElements(b, v)
			b.WriteByte(elSectionEnd)
		}
	}
}

// decodeVICI decodes a message body.
func decodeVICI(body []byte) (*vici.Message, error) {
	r := bytes.NewReader(body)
	m, err := decodeElements(r, false)
	if err != nil {
		return nil, fmt.Errorf("decode VICI message: %w", err)
	}
	return m, nil
}

func decodeElements(r *bytes.Reader, inSection bool) (*vici.Message, error) {
	m := vici.NewMessage()
	name := func() (string, error) {
		n, err := r.ReadByte()
		if err != nil {
			return "", err
		}
		buf := make([]byte, n)
		_, err = io.ReadFull(r, buf)
		return string(buf), err
	}
	value := func() (string, error) {
		var n uint16
		if err := binary.Read(r, binary.BigEndian, &n); err != nil {
			return "", err
		}
		buf := make([]byte, n)
		_, err := io.ReadFull(r, buf)
		return string(buf), err
	}
	for {
		typ, err := r.ReadByte()
		if err == io.EOF && !inSection {
			return m, nil
		}
		if err != nil {
			return nil, err
		}
		switch typ {
		case elSectionEnd:
			if !inSection {
				return nil, errors.New("section end outside a section")
			}
			return m, nil
		case elSectionStart:
			k, err := name()
			if err != nil {
				return nil, err
			}
			sec, err := decodeElements(r, true)
			if err != nil {
				return nil, err
			}
			if err := m.Set(k, sec); err != nil {
				return nil, err
			}
		case elKeyValue:
			k, err := name()
			if err != nil {
				return nil, err
			}
			v, err := value()
			if err != nil {
				return nil, err
			}
			if err := m.Set(k, v); err != nil {
				return nil, err
			}
		case elListStart:
			k, err := name()
			if err != nil {
				return nil, err
			}
			list := []string{}
			for {
				t, err := r.ReadByte()
				if err != nil {
					return nil, err
				}
				if t == elListEnd {
					break
				}
				if t != elListItem {
					return nil, fmt.Errorf("element %d inside list %s", t, k)
				}
				v, err := value()
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			if err := m.Set(k, list); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unknown element type %d", typ)
		}
	}
}

// TestFakeCharonCodec checks the fake's wire codec against govici's own.
func TestFakeCharonCodec(t *testing.T) {
	m := msg(t, "a", "1", "l", []string{"x", "y"}, "s", msg(t, "b", "2", "e", []string{}, "t", msg(t, "c", "3")))
	body := viciEncode(t, m)
	if got := encodeVICI(m); !bytes.Equal(got, body) {
		t.Fatalf("encodeVICI = %x\ngovici    = %x", got, body)
	}
	back, err := decodeVICI(body)
	if err != nil {
		t.Fatal(err)
	}
	if back.String() != m.String() {
		t.Errorf("decodeVICI = %s, want %s", back, m)
	}
}
