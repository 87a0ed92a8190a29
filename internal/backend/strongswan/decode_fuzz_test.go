// Fuzzing of the VICI reply decoders. The fuzz input is the encoded body
// of a VICI message as charon sends it; govici's own wire decoder turns it
// into a *vici.Message (through a session over an in-memory connection,
// as govici exports no decoder), which then goes through every decoder of
// this package and the renderers fed from them. The seed corpus holds the
// messages the unit tests build and replies captured from real charons
// (charon-* files), both rewritten by
//
//	CI=true go test -run 'TestIntegrationTwoCharons|TestVICISeeds' . -args -update-vici-seeds

package strongswan

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strongswan/govici/vici"

	"github.com/ovnsec/ovnsec/internal/clock"
)

var updateSeeds = flag.Bool("update-vici-seeds", false, "write the FuzzDecodeVICI seed corpus (synthetic, and charon-* from the integration test)")

const seedDir = "testdata/fuzz/FuzzDecodeVICI"

// VICI packet types (the VICI README).
const (
	pktCmdRequest  = 0
	pktCmdResponse = 1
	pktEvent       = 7
)

// pipeSession returns a govici session whose peer is the returned
// connection.
func pipeSession(tb testing.TB) (*vici.Session, net.Conn) {
	tb.Helper()
	client, server := net.Pipe()
	s, err := vici.NewSession(vici.WithDialContext(func(context.Context, string, string) (net.Conn, error) {
		return client, nil
	}))
	if err != nil {
		tb.Fatal(err)
	}
	return s, server
}

// readPacket reads one length-prefixed VICI packet.
func readPacket(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	p := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	_, err := io.ReadFull(r, p)
	return p, err
}

func writePacket(w io.Writer, p []byte) error {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(p)))
	_, err := w.Write(append(hdr[:], p...))
	return err
}

// viciEncode returns m's elements as govici puts them on the wire: the
// body of the command request carrying m.
func viciEncode(tb testing.TB, m *vici.Message) []byte {
	tb.Helper()
	s, server := pipeSession(tb)
	defer s.Close()
	got := make(chan []byte, 1)
	go func() {
		defer server.Close()
		p, err := readPacket(server)
		if err != nil || len(p) < 2 || p[0] != pktCmdRequest || len(p) < 2+int(p[1]) {
			got <- nil
			return
		}
		got <- p[2+int(p[1]):]
		_ = writePacket(server, []byte{pktCmdResponse})
		_, _ = io.Copy(io.Discard, server) // until the session closes: an early EOF races the response
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Call(ctx, "encode", m); err != nil {
		tb.Fatalf("encode %s: %v", m, err)
	}
	body := <-got
	if body == nil {
		tb.Fatalf("encode %s: no request seen", m)
	}
	return body
}

// viciDecode decodes a message body with govici's wire decoder; false when
// govici rejects it.
func viciDecode(tb testing.TB, body []byte) (*vici.Message, bool) {
	tb.Helper()
	s, server := pipeSession(tb)
	defer s.Close()
	go func() {
		defer server.Close()
		if _, err := readPacket(server); err != nil {
			return
		}
		_ = writePacket(server, append([]byte{pktCmdResponse}, body...))
		_, _ = io.Copy(io.Discard, server) // until the session closes
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := s.Call(ctx, "decode", nil)
	if m == nil {
		if err == nil {
			tb.Fatal("govici returned neither a message nor an error")
		}
		return nil, false
	}
	return m, true // err may be a "success no" in the body: still a message
}

// checkDecoders runs every decoder on m and checks what they return
// against m itself.
func checkDecoders(t *testing.T, m *vici.Message) {
	noPanic := func(what string, err error) {
		if errors.Is(err, errDecodePanic) {
			t.Fatalf("%s: %v\nmessage: %s", what, err, m)
		}
	}
	keys := m.Keys()

	sas, err := decodeListSA(m)
	noPanic("decodeListSA", err)
	if err == nil {
		if len(sas) != len(keys) {
			t.Fatalf("decodeListSA: %d IKE_SAs from %d sections", len(sas), len(keys))
		}
		for i, sa := range sas {
			sec := m.Get(keys[i]).(*vici.Message) // decoded: a section
			if string(sa.Conn) != keys[i] {
				t.Fatalf("IKE_SA %d named %q, section %q", i, sa.Conn, keys[i])
			}
			if v, ok := sec.Get("state").(string); ok && v != sa.State || !ok && sa.State != "" {
				t.Fatalf("IKE_SA %q state %q, message %v", sa.Conn, sa.State, sec.Get("state"))
			}
			kids := keysOf(sec, "child-sas")
			if len(sa.Children) != len(kids) {
				t.Fatalf("IKE_SA %q: %d children from %d sections", sa.Conn, len(sa.Children), len(kids))
			}
			cs := sec.Get("child-sas")
			for j, c := range sa.Children {
				want, _ := cs.(*vici.Message).Get(kids[j]).(*vici.Message).Get("spi-in").(string)
				if c.SPIIn != want {
					t.Fatalf("IKE_SA %q child %q spi-in %q, message %q", sa.Conn, kids[j], c.SPIIn, want)
				}
				_ = statusLine(c)
				_ = childLine(c)
				_ = childStatus(time.Now(), sa, c)
			}
			_ = ikeLine(sa)
		}
		if is := ikeStatus(time.Now(), sas); (is == nil) != (len(sas) == 0) {
			t.Fatalf("ikeStatus of %d IKE_SAs = %+v", len(sas), is)
		}
		_ = activeReport(sas, []string{"gnv0", "x-in"})
		_ = xfrmReport(sas, nil, false)
		_ = xfrmReport(sas, nil, true)
		_ = childUpOrBusy(sas, "gnv0-1", "gnv0-out-1")
	}

	conns, err := decodeListConn(m)
	noPanic("decodeListConn", err)
	if err == nil {
		if len(conns) != len(keys) {
			t.Fatalf("decodeListConn: %d connections from %d sections", len(conns), len(keys))
		}
		for i, c := range conns {
			if string(c.Name) != keys[i] || c.Children == nil {
				t.Fatalf("connection %d = %+v, section %q", i, c, keys[i])
			}
			if n := len(keysOf(m.Get(keys[i]).(*vici.Message), "children")); len(c.Children) != n {
				t.Fatalf("connection %q: %d children from %d sections", c.Name, len(c.Children), n)
			}
			_, _, _ = ownedConn(c)
		}
	}

	pols, err := decodeListPolicy(m)
	noPanic("decodeListPolicy", err)
	if err == nil {
		if len(pols) != len(keys) {
			t.Fatalf("decodeListPolicy: %d policies from %d sections", len(pols), len(keys))
		}
		_ = xfrmReport(nil, pols, true)
	}

	lb := newLogBook(clock.Real{})
	err = lb.add(m)
	noPanic("logBook.add", err)
	if id, ok := m.Get("ikesa-uniqueid").(string); ok && err == nil && id != "" {
		msg, _ := m.Get("msg").(string)
		group, _ := m.Get("group").(string)
		sa, _, _ := lb.lookup(id, "")
		if recorded := len(sa.Kernel)+len(sa.Errors) > 0; recorded != (group != "ENC" && classifyLog(strings.TrimSpace(msg)) != logIgnore) {
			t.Fatalf("log event %s recorded %v", m, recorded)
		}
	}

	var r loadKeyReply
	err = unmarshal(m, &r)
	noPanic("load-key reply", err)
	if want, ok := m.Get("id").(string); err == nil && ok && r.ID != want {
		t.Fatalf("load-key id %q, message %q", r.ID, want)
	}
}

func FuzzDecodeVICI(f *testing.F) {
	// The corpus in testdata is the seed; nothing added here, so that
	// `go test` runs exactly the committed inputs.
	f.Fuzz(func(t *testing.T, body []byte) {
		m, ok := viciDecode(t, body)
		if !ok {
			return
		}
		checkDecoders(t, m)
	})
}

// syntheticSeeds are the charon replies the unit tests build, and some odd
// shapes.
func syntheticSeeds(t testing.TB) map[string]*vici.Message {
	out := childMsg(t, "gnv0-out-1", "3", "INSTALLED", "c1000001", "c2000002", []string{"192.0.2.1/32[udp]"}, []string{"192.0.2.2/32[udp/6081]"})
	in := childMsg(t, "gnv0-in-1", "4", "INSTALLED", "c3000003", "c4000004", []string{"192.0.2.1/32[udp/6081]"}, []string{"192.0.2.2/32[udp]"})
	return map[string]*vici.Message{
		"list-sa-up":         listSAEvent(t, "gnv0-1", "7", "ESTABLISHED", out, in),
		"list-sa-installing": listSAEvent(t, "gnv0-1", "7", "ESTABLISHED", out, childMsg(t, "gnv0-in-1", "9", "INSTALLING", "", "", nil, nil)),
		"list-sa-connecting": listSAEvent(t, "gnv0-1", "8", "CONNECTING"),
		"list-sa-odd":        msg(t, "x", "not a section", "y", msg(t, "state", []string{"list?"}, "child-sas", "str")),
		"list-conn": msg(t, "gnv0-1", msg(t, "children", msg(t,
			"gnv0-in-1", msg(t, "mode", "TRANSPORT", "local-ts", []string{"dynamic[udp/6081]"}, "remote-ts", []string{"dynamic[udp]"}),
			"gnv0-out-1", msg(t, "mode", "TRANSPORT", "local-ts", []string{"dynamic[udp]"}, "remote-ts", []string{"dynamic[udp/6081]"})))),
		"list-policy": msg(t, "gre0-1/gre0-1", msg(t, "child", "gre0-1", "ike", "gre0-1", "mode", "TRANSPORT",
			"local-ts", []string{"192.0.2.1/32[gre]"}, "remote-ts", []string{"192.0.2.3/32[gre]"})),
		"log":          msg(t, "group", "KNL", "level", "1", "ikesa-name", "gnv0-1", "ikesa-uniqueid", "7", "msg", "received netlink error: Function not implemented (38)"),
		"log-odd":      msg(t, "group", "IKE", "ikesa-uniqueid", msg(t), "msg", []string{"giving up"}),
		"load-key":     msg(t, "success", "yes", "id", "2f9c"),
		"load-key-odd": msg(t, "success", "no", "errmsg", "parsing failed", "id", []string{"x"}),
	}
}

// writeSeed stores body as a seed file in the go test fuzz v1 format.
func writeSeed(t testing.TB, name string, body []byte) {
	t.Helper()
	if err := os.MkdirAll(seedDir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", body)
	if err := os.WriteFile(filepath.Join(seedDir, name), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readSeeds returns the committed seeds by file name.
func readSeeds(t testing.TB) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(seedDir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(seedDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lit, ok := strings.CutPrefix(strings.TrimSpace(string(data)), "go test fuzz v1\n[]byte(")
		lit, ok2 := strings.CutSuffix(lit, ")")
		s, err := strconv.Unquote(lit)
		if !ok || !ok2 || err != nil {
			t.Fatalf("seed %s is not a go test fuzz v1 []byte: %v", e.Name(), err)
		}
		out[e.Name()] = []byte(s)
	}
	return out
}

// The wire helpers round-trip: a message survives encoding and govici's
// decoding, so the fuzz target sees what the unit tests build.
func TestVICIWireRoundTrip(t *testing.T) {
	for name, m := range syntheticSeeds(t) {
		back, ok := viciDecode(t, viciEncode(t, m))
		if !ok || back.String() != m.String() || !reflect.DeepEqual(back.Keys(), m.Keys()) {
			t.Errorf("%s: round trip gave %v (%v), want %s", name, back, ok, m)
		}
	}
	if _, ok := viciDecode(t, []byte{3, 5, 'a'}); ok {
		t.Error("a truncated key-value decoded")
	}
}

// The committed seeds are the synthetic messages plus real charon replies,
// and the real replies decode into what the integration test saw.
func TestVICISeeds(t *testing.T) {
	if *updateSeeds {
		for name, m := range syntheticSeeds(t) {
			writeSeed(t, name, viciEncode(t, m))
		}
	}
	seeds := readSeeds(t)
	for name, m := range syntheticSeeds(t) {
		if got, ok := seeds[name]; !ok || !bytes.Equal(got, viciEncode(t, m)) {
			t.Errorf("seed %s missing or stale: go test -run TestVICISeeds -update-vici-seeds", name)
		}
	}
	var real []string
	for name := range seeds {
		if strings.HasPrefix(name, "charon-") {
			real = append(real, name)
		}
	}
	sort.Strings(real)
	kinds := map[string]int{}
	for _, name := range real {
		m, ok := viciDecode(t, seeds[name])
		if !ok {
			t.Errorf("%s: govici cannot decode it", name)
			continue
		}
		var err error
		var n int
		switch {
		case strings.Contains(name, "-list-sa-"):
			var sas []ikeSA
			sas, err = decodeListSA(m)
			n = len(sas)
			for _, sa := range sas {
				if sa.State == "" || sa.UniqueID == "" || sa.LocalHost == "" {
					t.Errorf("%s: IKE_SA without state, id or host: %+v", name, sa)
				}
			}
			kinds["list-sa"]++
		case strings.Contains(name, "-list-conn-"):
			var cs []loadedConn
			cs, err = decodeListConn(m)
			n = len(cs)
			for _, c := range cs {
				if _, _, ok := ownedConn(c); !ok {
					t.Errorf("%s: %s is not ovnsec-shaped: %+v", name, c.Name, c)
				}
			}
			kinds["list-conn"]++
		case strings.Contains(name, "-list-policy-"):
			var ps []policy
			ps, err = decodeListPolicy(m)
			n = len(ps)
			for _, p := range ps {
				if p.Child == "" || len(p.LocalTS) == 0 || len(p.RemoteTS) == 0 {
					t.Errorf("%s: incomplete policy %+v", name, p)
				}
			}
			kinds["list-policy"]++
		default:
			t.Errorf("%s: unknown kind of charon reply", name)
			continue
		}
		if err != nil || n != 1 {
			t.Errorf("%s: %d decoded, %v", name, n, err)
		}
	}
	for _, k := range []string{"list-sa", "list-conn", "list-policy"} {
		if kinds[k] == 0 {
			t.Errorf("no real charon %s reply among the seeds: run the integration test with CI=true and -update-vici-seeds", k)
		}
	}
}

// recordingConn keeps a copy of everything read from charon.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.buf.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// captureCharonReplies writes charon's list-sa, list-conn and list-policy
// events for the IKE connection ike as charon-<tag>-* seeds. It does
// nothing without -update-vici-seeds.
func captureCharonReplies(t *testing.T, h *host, tag string, ike ConnName) {
	t.Helper()
	if !*updateSeeds {
		return
	}
	rec := &recordingConn{}
	s, err := vici.NewSession(vici.WithDialContext(func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", strings.TrimPrefix(h.socket, "unix://"))
		rec.Conn = c
		return rec, err
	}))
	if err != nil {
		t.Fatalf("connect to charon in %s: %v", h.ns, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range []struct {
		cmd, event string
		in         *vici.Message
	}{
		{"list-sas", "list-sa", msgOf("ike", string(ike))}, // blocking: busy IKE_SAs too
		{"list-conns", "list-conn", msgOf("ike", string(ike))},
		{"list-policies", "list-policy", msgOf("trap", "yes", "drop", "yes", "pass", "yes", "ike", string(ike))},
	} {
		for _, err := range s.CallStreaming(ctx, c.cmd, c.event, c.in) {
			if err != nil {
				t.Fatalf("%s in %s: %v", c.cmd, h.ns, err)
			}
		}
	}
	_ = s.Close()
	rec.mu.Lock()
	stream := bytes.NewReader(rec.buf.Bytes())
	rec.mu.Unlock()
	count := map[string]int{}
	for {
		p, err := readPacket(stream)
		if err != nil {
			break
		}
		if len(p) < 2 || p[0] != pktEvent || len(p) < 2+int(p[1]) {
			continue
		}
		event := string(p[2 : 2+int(p[1])])
		writeSeed(t, fmt.Sprintf("charon-%s-%s-%d", tag, event, count[event]), p[2+int(p[1]):])
		count[event]++
	}
	t.Logf("captured charon replies for %s: %v", ike, count)
}
