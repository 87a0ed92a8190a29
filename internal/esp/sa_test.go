package esp

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
)

func TestNewKey(t *testing.T) {
	for _, n := range []int{0, 16, 19, 20, 21, 32, 36, 37} {
		_, err := NewKey(make([]byte, n))
		if want := n == 20 || n == 36; (err == nil) != want {
			t.Errorf("NewKey(%d bytes) err = %v, want ok %v", n, err, want)
		}
	}
}

func TestKeyNeverPrints(t *testing.T) {
	raw := []byte("SECRETSECRETSECRETSECRETSECRETSECRET")
	k := mustKey(t, raw)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("k", "key", k)
	j, _ := json.Marshal(struct{ K Key }{k})
	outs := []string{
		fmt.Sprint(k), fmt.Sprintf("%s %v %+v %#v %x %X %q %d", k, k, k, k, k, k, k, k),
		fmt.Sprintf("%v", &k), fmt.Sprintf("%v", Config{Key: k}), fmt.Sprintf("%+v", Config{Key: k}),
		logs.String(), string(j),
	}
	for _, o := range outs {
		if strings.Contains(strings.ToUpper(o), "SECRET") || strings.Contains(o, fmt.Sprintf("%x", raw[:4])) {
			t.Errorf("key material printed: %s", o)
		}
	}
	c := k // copies share the bytes
	k.Zero()
	if k.Len() != 0 || !bytes.Equal(c.b, make([]byte, 36)) {
		t.Fatalf("Zero left key bytes: %x", c.b)
	}
	if _, err := NewSA(Config{SPI: 1, Dir: Outbound, Mode: Transport, Key: k}); err == nil {
		t.Fatal("NewSA accepted a zeroed key")
	}
}

func TestNewSAValidation(t *testing.T) {
	key := mustKey(t, testKey128)
	good := Config{SPI: 0x100, Dir: Inbound, Mode: Transport, Key: key}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"good", func(*Config) {}, true},
		{"spi zero", func(c *Config) { c.SPI = 0 }, false},
		{"no direction", func(c *Config) { c.Dir = 0 }, false},
		{"no mode", func(c *Config) { c.Mode = 0 }, false},
		{"bad encap", func(c *Config) { c.Encap.Type = 9 }, false},
		{"udp without ports", func(c *Config) { c.Encap = Encap{Type: EncapUDP} }, false},
		{"udp", func(c *Config) { c.Encap = Encap{EncapUDP, 4500, 4500} }, true},
		{"no key", func(c *Config) { c.Key = Key{} }, false},
		{"window too big", func(c *Config) { c.ReplayWindow = 1 << 30 }, false},
		{"window 64", func(c *Config) { c.ReplayWindow = 64 }, true},
	} {
		c := good
		tc.mod(&c)
		_, err := NewSA(c)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// refSeal builds the ESP packet of RFC 4303/4106 independently with
// crypto/cipher, from a plaintext body chosen by the caller.
func refSeal(t testing.TB, keymat []byte, spi SPI, seq uint64, esn bool, body []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(keymat[:len(keymat)-4])
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	pkt := binary.BigEndian.AppendUint32(nil, uint32(spi))
	pkt = binary.BigEndian.AppendUint32(pkt, uint32(seq))
	iv := binary.BigEndian.AppendUint64(nil, seq)
	pkt = append(pkt, iv...)
	nonce := append(append([]byte{}, keymat[len(keymat)-4:]...), iv...)
	aad := binary.BigEndian.AppendUint32(nil, uint32(spi))
	if esn {
		aad = binary.BigEndian.AppendUint64(aad, seq)
	} else {
		aad = binary.BigEndian.AppendUint32(aad, uint32(seq))
	}
	return g.Seal(pkt, nonce, body, aad)
}

// refBody is payload | 1,2,3.. padding to 4 bytes | pad length | next header.
func refBody(payload []byte, nh byte) []byte {
	b := append([]byte{}, payload...)
	pad := (4 - (len(payload)+2)%4) % 4
	for i := 1; i <= pad; i++ {
		b = append(b, byte(i))
	}
	return append(b, byte(pad), nh)
}

func TestSealMatchesIndependentConstruction(t *testing.T) {
	for _, keymat := range [][]byte{testKey128, testKey256} {
		for _, esn := range []bool{false, true} {
			out, _ := pair(t, Config{SPI: 0xdeadbeef, Key: mustKey(t, keymat), ESN: esn})
			if esn {
				out.seq.Store(math.MaxUint32 - 2) // cross 2^32
			}
			for n := range 70 {
				p := payloadOf(n)
				got, err := out.Seal(make([]byte, SealedLen(n)), p, 17)
				if err != nil {
					t.Fatal(err)
				}
				seq := out.seq.Load()
				want := refSeal(t, keymat, 0xdeadbeef, seq, esn, refBody(p, 17))
				if !bytes.Equal(got, want) {
					t.Fatalf("key %d esn %v len %d seq %#x:\n got %x\nwant %x", len(keymat), esn, n, seq, got, want)
				}
				if len(got) != SealedLen(n) || (len(got)-Headroom-ICVLen)%4 != 0 {
					t.Fatalf("len %d: sealed length %d, SealedLen %d", n, len(got), SealedLen(n))
				}
			}
		}
	}
}

func TestOpenIndependentPackets(t *testing.T) {
	// Packets made by refSeal, including padding other implementations
	// may choose (longer TFC-style padding), must open.
	for _, esn := range []bool{false, true} {
		_, in := pair(t, Config{SPI: 0x4242, ESN: esn})
		for i, body := range [][]byte{
			refBody([]byte("hello"), 6),
			refBody(nil, 17),
			append(append([]byte("abcdef"), 1, 2, 3, 4, 5, 6, 7, 8), 8, 4),                 // 8 bytes of padding
			append([]byte("ab"), 0, 41),                                                    // no padding
			append(append([]byte{}, payloadOf(250)...), append(seqBytes(252), 252, 99)...), // max-ish pad
		} {
			seq := uint64(i + 1)
			pkt := refSeal(t, testKey128, 0x4242, seq, esn, body)
			pl, nh, err := in.Open(nil, pkt)
			if err != nil {
				t.Fatalf("esn %v packet %d: %v", esn, i, err)
			}
			pad := int(body[len(body)-2])
			if want := body[:len(body)-2-pad]; !bytes.Equal(pl, want) || nh != body[len(body)-1] {
				t.Fatalf("packet %d: got %x/%d, want %x/%d", i, pl, nh, want, body[len(body)-1])
			}
		}
	}
}

func seqBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i + 1)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 2, 3, 4, 5, 63, 64, 65, 1400, 8192}
	for _, keymat := range [][]byte{testKey128, testKey256} {
		for _, esn := range []bool{false, true} {
			for _, inPlace := range []bool{false, true} {
				name := fmt.Sprintf("aes%d/esn=%v/inplace=%v", (len(keymat)-4)*8, esn, inPlace)
				t.Run(name, func(t *testing.T) {
					out, in := pair(t, Config{Key: mustKey(t, keymat), ESN: esn})
					for _, n := range sizes {
						p := payloadOf(n)
						buf := make([]byte, n+Headroom+MaxTailroom)
						src := p
						if inPlace {
							src = buf[Headroom : Headroom+n]
							copy(src, p)
						}
						pkt, err := out.Seal(buf, src, byte(n))
						if err != nil {
							t.Fatal(err)
						}
						if &pkt[0] != &buf[0] {
							t.Fatal("Seal did not use dst")
						}
						var dst []byte
						if !inPlace {
							dst = make([]byte, 0, n+3+TrailerLen)
						}
						got, nh, err := in.Open(dst, pkt)
						if err != nil {
							t.Fatalf("len %d: %v", n, err)
						}
						if !bytes.Equal(got, p) || nh != byte(n) {
							t.Fatalf("len %d: round trip mismatch", n)
						}
						if inPlace && n > 0 && &got[0] != &pkt[Headroom] {
							t.Fatal("Open(nil) did not decrypt in place")
						}
					}
					so, si := out.Stats(), in.Stats()
					var total uint64
					for _, n := range sizes {
						total += uint64(n)
					}
					if so.PacketsOut != uint64(len(sizes)) || so.BytesOut != total || si.PacketsIn != so.PacketsOut || si.BytesIn != total {
						t.Fatalf("counters out %+v in %+v", so, si)
					}
					if si.LastSeq != uint64(len(sizes)) || so.LastSeq != uint64(len(sizes)) {
						t.Fatalf("last seq out %d in %d", so.LastSeq, si.LastSeq)
					}
				})
			}
		}
	}
}

func TestSealBufferRules(t *testing.T) {
	out, in := pair(t, Config{})
	p := payloadOf(10)
	if _, err := out.Seal(make([]byte, SealedLen(10)-1), p, 6); !errors.Is(err, ErrShortBuffer) {
		t.Fatalf("short buffer: %v", err)
	}
	// Payload at the start of dst (overlapping the header) still works.
	buf := make([]byte, 64)
	copy(buf, p)
	pkt, err := out.Seal(buf, buf[:10], 6)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := in.Open(nil, pkt); err != nil || !bytes.Equal(got, p) {
		t.Fatalf("overlapping payload: %v %x", err, got)
	}
	pkt2, _ := out.Seal(make([]byte, 64), p, 6)
	if _, _, err := in.Open(make([]byte, 0, 3), pkt2); !errors.Is(err, ErrShortBuffer) {
		t.Fatalf("short open buffer: %v", err)
	}
	if _, err := in.Seal(buf, p, 6); !errors.Is(err, ErrDirection) {
		t.Fatalf("Seal on inbound SA: %v", err)
	}
	if _, _, err := out.Open(nil, pkt); !errors.Is(err, ErrDirection) {
		t.Fatalf("Open on outbound SA: %v", err)
	}
}

func TestPadding(t *testing.T) {
	out, _ := pair(t, Config{Key: mustKey(t, testKey128)})
	block, _ := aes.NewCipher(testKey128[:16])
	g, _ := cipher.NewGCM(block)
	for n := range 12 {
		pkt, err := out.Seal(make([]byte, 64), payloadOf(n), 4)
		if err != nil {
			t.Fatal(err)
		}
		nonce := append(append([]byte{}, testKey128[16:]...), pkt[8:16]...)
		pt, err := g.Open(nil, nonce, pkt[16:], pkt[:8])
		if err != nil {
			t.Fatal(err)
		}
		pad := (4 - (n+2)%4) % 4
		if len(pt)%4 != 0 || int(pt[len(pt)-2]) != pad || pt[len(pt)-1] != 4 {
			t.Fatalf("len %d: body %x", n, pt)
		}
		for i := range pad {
			if pt[n+i] != byte(i+1) {
				t.Fatalf("len %d: padding %x not 1,2,3", n, pt[n:n+pad])
			}
		}
	}
}

// TestOpenDrops feeds every class of bad packet and checks the error, the
// counter and that the window and later good packets are unaffected.
func TestOpenDrops(t *testing.T) {
	const spi = 0x5151
	mk := func(seq uint64, body []byte) []byte { return refSeal(t, testKey128, spi, seq, false, body) }
	good := mk(7, refBody([]byte("payload"), 17))
	flip := func(b []byte, i int) []byte {
		c := append([]byte{}, b...)
		c[i] ^= 0x80
		return c
	}
	type counter func(Stats) uint64
	malformed := counter(func(s Stats) uint64 { return s.DropMalformed })
	auth := counter(func(s Stats) uint64 { return s.DropAuth })
	for _, tc := range []struct {
		name string
		pkt  []byte
		err  error
		cnt  counter
	}{
		{"empty", nil, ErrTruncated, malformed},
		{"header only", good[:8], ErrTruncated, malformed},
		{"no ciphertext", good[:Headroom+ICVLen], ErrTruncated, malformed},
		{"one byte short of minimum", good[:Headroom+ICVLen+3], ErrTruncated, malformed},
		{"truncated by one", good[:len(good)-1], ErrMisaligned, malformed},
		{"truncated by four", good[:len(good)-4], ErrAuth, auth},
		{"spi mismatch", flip(good, 0), ErrSPIMismatch, malformed},
		{"seq changed", flip(good, 7), ErrAuth, auth},
		{"iv changed", flip(good, 12), ErrAuth, auth},
		{"ciphertext changed", flip(good, 20), ErrAuth, auth},
		{"icv changed", flip(good, len(good)-1), ErrAuth, auth},
		{"pad length too big", mk(8, []byte{1, 2, 200, 17}), ErrBadPadding, malformed},
		{"pad length covers all", mk(9, []byte{1, 2, 3, 17}), ErrBadPadding, malformed},
		{"pad not monotonic", mk(10, []byte{'x', 1, 3, 4, 5, 1, 5, 17}), ErrBadPadding, malformed},
		{"pad starts at zero", mk(11, []byte{'a', 'b', 0, 2, 3, 4, 4, 17}), ErrBadPadding, malformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, in := pair(t, Config{SPI: spi})
			before := tc.cnt(in.Stats())
			_, _, err := in.Open(nil, append([]byte{}, tc.pkt...))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if got := tc.cnt(in.Stats()); got != before+1 {
				t.Fatalf("drop counter %d, want %d", got, before+1)
			}
			if s := in.Stats(); s.PacketsIn != 0 || s.BytesIn != 0 {
				t.Fatalf("dropped packet counted as received: %+v", s)
			}
			// The good packet still opens: a drop before the ICV never
			// moves the window.
			if _, _, err := in.Open(nil, append([]byte{}, good...)); err != nil {
				t.Fatalf("good packet after drop: %v", err)
			}
		})
	}
}

func TestOpenDummyPacket(t *testing.T) {
	_, in := pair(t, Config{SPI: 0x77})
	pkt := refSeal(t, testKey128, 0x77, 1, false, refBody([]byte("chaff"), ProtoNone))
	if _, _, err := in.Open(nil, pkt); !errors.Is(err, ErrDummy) {
		t.Fatalf("err = %v, want ErrDummy", err)
	}
	if s := in.Stats(); s.Dummy != 1 || s.PacketsIn != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestOpenReplay(t *testing.T) {
	out, in := pair(t, Config{ReplayWindow: 64})
	var pkts [][]byte
	for range 200 {
		p, err := out.Seal(make([]byte, 64), []byte("x"), 17)
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, p)
	}
	open := func(i int) error {
		_, _, err := in.Open(nil, append([]byte{}, pkts[i]...))
		return err
	}
	steps := []struct {
		i   int // packet index (seq = i+1)
		err error
	}{
		{0, nil}, {0, ErrReplay}, // duplicate
		{2, nil}, {1, nil}, // reordered
		{99, nil},                   // jump
		{40, nil},                   // seq 41: inside the window (100-64 < 41)
		{35, ErrReplay},             // seq 36: 100-36 = 64, just outside
		{99, ErrReplay},             // duplicate of top
		{199, nil}, {99, ErrReplay}, // far past
	}
	for n, s := range steps {
		if err := open(s.i); !errors.Is(err, s.err) && !(err == nil && s.err == nil) {
			t.Fatalf("step %d (seq %d): err = %v, want %v", n, s.i+1, err, s.err)
		}
	}
	if got := in.Stats().DropReplay; got != 4 {
		t.Fatalf("DropReplay = %d, want 4", got)
	}

	// A forged packet with a high sequence number fails the ICV and must
	// not move the window; a replayed packet with a broken ICV is counted
	// as a replay: the window is checked before decryption.
	forged := append([]byte{}, pkts[199]...)
	binary.BigEndian.PutUint32(forged[4:8], 5000)
	if _, _, err := in.Open(nil, forged); !errors.Is(err, ErrAuth) {
		t.Fatalf("forged: %v", err)
	}
	if in.win.Top() != 200 {
		t.Fatalf("forged packet moved the window to %d", in.win.Top())
	}
	bad := append([]byte{}, pkts[1]...)
	bad[len(bad)-1] ^= 1
	before := in.Stats()
	if _, _, err := in.Open(nil, bad); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed with bad ICV: %v", err)
	}
	if after := in.Stats(); after.DropAuth != before.DropAuth {
		t.Fatal("replayed packet was decrypted")
	}
}

func TestSeqOverflow(t *testing.T) {
	var ev events
	out, in := pair(t, Config{Notify: ev.notify, ReplayWindow: 64})
	out.seq.Store(math.MaxUint32 - SoftSeqMargin - 1)
	buf := make([]byte, 64)
	if _, err := out.Seal(buf, []byte("a"), 17); err != nil {
		t.Fatal(err)
	}
	if evs := ev.list(); len(evs) != 1 || evs[0].Kind != SoftExpired || evs[0].Limit != LimitSequence {
		t.Fatalf("events at soft margin: %v", evs)
	}
	out.seq.Store(math.MaxUint32 - 1)
	pkt, err := out.Seal(buf, []byte("last"), 17)
	if err != nil {
		t.Fatalf("seq 2^32-1: %v", err)
	}
	if binary.BigEndian.Uint32(pkt[4:8]) != math.MaxUint32 {
		t.Fatalf("seq %x", pkt[4:8])
	}
	in.win.Update(math.MaxUint32 - 10)
	if _, _, err := in.Open(nil, pkt); err != nil {
		t.Fatalf("open seq 2^32-1: %v", err)
	}
	for range 2 {
		if _, err := out.Seal(buf, []byte("x"), 17); !errors.Is(err, ErrSeqOverflow) && !errors.Is(err, ErrExpired) {
			t.Fatalf("after 2^32-1: %v", err)
		}
	}
	s := out.Stats()
	if s.DropSeqOverflow != 1 || s.DropLifetime != 1 || s.Usable || s.LastSeq != math.MaxUint32 {
		t.Fatalf("stats after overflow %+v", s)
	}
	if evs := ev.list(); len(evs) != 2 || evs[1].Kind != HardExpired || evs[1].Limit != LimitSequence {
		t.Fatalf("events: %v", evs)
	}
}

func TestESNAcrossWrap(t *testing.T) {
	out, in := pair(t, Config{ESN: true, ReplayWindow: 128})
	start := uint64(math.MaxUint32 - 50)
	out.seq.Store(start)
	in.win.Update(start)
	var pkts [][]byte
	for range 120 {
		p, err := out.Seal(make([]byte, 64), []byte("esn"), 17)
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, p)
	}
	// Deliver with reordering across the boundary.
	for i := 0; i+1 < len(pkts); i += 2 {
		for _, j := range []int{i + 1, i} {
			if _, _, err := in.Open(nil, append([]byte{}, pkts[j]...)); err != nil {
				t.Fatalf("packet %d (seq %#x): %v", j, start+uint64(j)+1, err)
			}
		}
	}
	if top := in.Stats().LastSeq; top != start+120 {
		t.Fatalf("inbound top %#x, want %#x", top, start+120)
	}
	// Replays on both sides of the boundary.
	for _, j := range []int{10, 100} {
		if _, _, err := in.Open(nil, append([]byte{}, pkts[j]...)); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay of %d: %v", j, err)
		}
	}
	// A non-ESN receiver cannot open ESN packets from the next subspace.
	_, in32 := pair(t, Config{ESN: false})
	if _, _, err := in32.Open(nil, append([]byte{}, pkts[len(pkts)-1]...)); !errors.Is(err, ErrAuth) {
		t.Fatalf("ESN packet on non-ESN SA: %v", err)
	}
}

func TestLifetimes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		life      Lifetime
		packets   int // packets of 100 bytes sent
		softAt    int // packet index (1-based) when soft fires, 0 never
		hardAt    int // first refused packet, 0 never
		softLimit Limit
		hardLimit Limit
	}{
		{"packets", Lifetime{SoftPackets: 3, HardPackets: 5}, 8, 3, 6, LimitPackets, LimitPackets},
		{"bytes", Lifetime{SoftBytes: 250, HardBytes: 400}, 8, 3, 5, LimitBytes, LimitBytes},
		{"none", Lifetime{}, 8, 0, 0, 0, 0},
	} {
		for _, dir := range []Direction{Outbound, Inbound} {
			t.Run(tc.name+"/"+dir.String(), func(t *testing.T) {
				var ev events
				cfg := Config{Lifetime: tc.life}
				if dir == Outbound {
					cfg.Notify = ev.notify
				}
				out, in := pair(t, cfg)
				if dir == Inbound {
					in.notify = ev.notify
					out.life = Lifetime{}
				} else {
					in.notify = nil
					in.life = Lifetime{}
				}
				for i := 1; i <= tc.packets; i++ {
					pkt, err := out.Seal(make([]byte, 200), payloadOf(100), 17)
					if err == nil {
						_, _, err = in.Open(nil, pkt)
					}
					refused := tc.hardAt != 0 && i >= tc.hardAt
					if refused != (err != nil) {
						t.Fatalf("packet %d: err %v, want refused %v", i, err, refused)
					}
					if refused && !errors.Is(err, ErrExpired) {
						t.Fatalf("packet %d: %v, want ErrExpired", i, err)
					}
					evs := ev.list()
					wantEv := 0
					if tc.softAt != 0 && i >= tc.softAt {
						wantEv++
					}
					if refused {
						wantEv++
					}
					if len(evs) != wantEv {
						t.Fatalf("packet %d: events %v, want %d", i, evs, wantEv)
					}
					if wantEv >= 1 && (evs[0].Kind != SoftExpired || evs[0].Limit != tc.softLimit || evs[0].Dir != dir) {
						t.Fatalf("soft event %v", evs[0])
					}
					if wantEv == 2 && (evs[1].Kind != HardExpired || evs[1].Limit != tc.hardLimit) {
						t.Fatalf("hard event %v", evs[1])
					}
				}
				sa := out
				if dir == Inbound {
					sa = in
				}
				if tc.hardAt != 0 {
					want := uint64(tc.packets - tc.hardAt + 1)
					if s := sa.Stats(); s.DropLifetime != want || s.Usable {
						t.Fatalf("DropLifetime %d, want %d; usable %v", s.DropLifetime, want, s.Usable)
					}
				}
			})
		}
	}
}

func TestTimeLifetime(t *testing.T) {
	clk := clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var ev events
	out, _ := pair(t, Config{Clock: clk, Notify: ev.notify, Lifetime: Lifetime{SoftTime: 50 * time.Minute, HardTime: 60 * time.Minute}})
	steps := []struct {
		advanceMin int
		events     int
		usable     bool
	}{{10, 0, true}, {39, 0, true}, {1, 1, true}, {5, 1, true}, {5, 2, false}, {60, 2, false}}
	for i, s := range steps {
		clk.Advance(time.Duration(s.advanceMin) * time.Minute)
		out.CheckTime(clk.Now())
		if n := len(ev.list()); n != s.events || out.Usable() != s.usable {
			t.Fatalf("step %d: %d events, usable %v; want %d, %v", i, n, out.Usable(), s.events, s.usable)
		}
	}
	if _, err := out.Seal(make([]byte, 64), nil, 17); !errors.Is(err, ErrExpired) {
		t.Fatalf("Seal after hard time: %v", err)
	}
	if evs := ev.list(); evs[0].Limit != LimitTime || evs[1].Kind != HardExpired {
		t.Fatalf("events %v", evs)
	}
}

func TestConcurrentSeal(t *testing.T) {
	out, in := pair(t, Config{ReplayWindow: 4096})
	const workers, per = 4, 500
	pkts := make(chan []byte, workers*per)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				p, err := out.Seal(make([]byte, 160), payloadOf((w*per+i)%100), byte(w))
				if err != nil {
					t.Error(err)
					return
				}
				pkts <- p
				_ = out.Stats()
			}
		}()
	}
	wg.Wait()
	close(pkts)
	seen := map[uint32]bool{}
	for p := range pkts {
		seq := binary.BigEndian.Uint32(p[4:8])
		if seen[seq] {
			t.Fatalf("sequence %d used twice", seq)
		}
		seen[seq] = true
		if _, _, err := in.Open(nil, p); err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
	}
	if len(seen) != workers*per || out.Stats().PacketsOut != workers*per {
		t.Fatalf("%d packets", len(seen))
	}
}

func TestNoAllocations(t *testing.T) {
	for _, esn := range []bool{false, true} {
		out, in := pair(t, Config{ESN: esn})
		buf := make([]byte, 2048)
		n := 1400
		allocs := testing.AllocsPerRun(500, func() {
			pkt, err := out.Seal(buf, buf[Headroom:Headroom+n], 17)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := in.Open(nil, pkt); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Fatalf("esn %v: %v allocations per Seal+Open", esn, allocs)
		}
		// Drops do not allocate either.
		bad := make([]byte, 64)
		allocs = testing.AllocsPerRun(200, func() { _, _, _ = in.Open(nil, bad) })
		if allocs != 0 {
			t.Fatalf("%v allocations per dropped packet", allocs)
		}
	}
}

func TestMaxPayload(t *testing.T) {
	for space := 0; space < 200; space++ {
		n := MaxPayload(space)
		if n == 0 {
			if space >= SealedLen(0) {
				t.Fatalf("MaxPayload(%d) = 0 but an empty payload fits", space)
			}
			continue
		}
		if SealedLen(n) > space || SealedLen(n+1) <= space {
			t.Fatalf("MaxPayload(%d) = %d: SealedLen %d, next %d", space, n, SealedLen(n), SealedLen(n+1))
		}
	}
	if got := MaxPayload(1500 - 20); got != 1446 {
		t.Fatalf("MaxPayload(1480) = %d, want 1446", got)
	}
}

// TestOpenExternalVector opens an ESN packet from the AES-GCM ESP test
// cases of draft-mcgrew-gcm-test-01 (also in the Linux kernel's crypto test
// vectors): SPI 0x4321, 64-bit sequence number 0x87654321_00000000 (only
// the low 32 bits, 0, on the wire), an IV that is not the sequence number,
// and AES-128 with salt 0x2e443b68. It checks the ESN AAD layout
// (SPI | seq high | seq low) and the nonce (salt | IV) against an
// independent implementation.
func TestOpenExternalVector(t *testing.T) {
	h := func(s string) []byte {
		b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	keymat := h("4c80cdef bb5d10da 906ac73c 3613a634 2e443b68")
	packet := h("00004321 00000000 4956ed7e 3b244cfe" +
		"fecf537e 729d5b07 dc30df52 8dd22b76 8d1b9873 6696a6fd 348509fa 13ceac34" +
		"cfa2436f 14a3f3cf 65925bf1 f4a13c5d 15b21e18 84f5ff62 47aeabb7 86b93bce" +
		"61bc17d7 68fd9732 45901814 8f6cbe72 2fd04796 562dfdb4")
	plain := h("45000048 699a0000 80114db7 c0a80102 c0a80101 0a9bf156 38d30100 00010000" +
		"00000000 045f7369 70045f75 64700373 69700963 79626572 63697479 02646b00" +
		"00210001") // then padding 01 02, pad length 2, next header 1
	sa, err := NewSA(Config{SPI: 0x4321, Dir: Inbound, Mode: Tunnel, Key: mustKey(t, keymat), ESN: true})
	if err != nil {
		t.Fatal(err)
	}
	// The receiver has seen packets up to just below 2^32 * 0x87654321.
	sa.win.Update(0x87654321_00000000 - 5)
	got, nh, err := sa.Open(nil, append([]byte{}, packet...))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if !bytes.Equal(got, plain) || nh != 1 {
		t.Fatalf("got %x nh %d\nwant %x nh 1", got, nh, plain)
	}
	if top := sa.Stats().LastSeq; top != 0x87654321_00000000 {
		t.Fatalf("window top %#x", top)
	}
	// The same bytes under a non-ESN SA (AAD without the high bits) fail.
	sa32, err := NewSA(Config{SPI: 0x4321, Dir: Inbound, Mode: Tunnel, Key: mustKey(t, keymat)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := sa32.Open(nil, append([]byte{}, packet...)); !errors.Is(err, ErrReplay) {
		// sequence number 0 is never valid without ESN
		t.Fatalf("non-ESN SA: %v", err)
	}
}
