// Replayed requests, on the in-memory network: a retransmitted request is
// answered only where its SA is bound, and replays of an IKE_SA_INIT
// request never create more half-open SAs than the caps allow while an
// established IKE SA keeps working. These tests use only what the engine
// had before the fixes, so they can show the old behaviour.

package ike

import (
	"bytes"
	"crypto/rand"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/ike/message"
	"github.com/ovnsec/ovnsec/internal/ike/suite"
)

// lastRequest returns the last request of exchange exch that from sent to
// to (without the non-ESP marker).
func lastRequest(t *testing.T, w *fakeWorld, exch message.ExchangeType, from, to netip.Addr) []byte {
	t.Helper()
	out := lastRequestOrNil(w, exch, from, to)
	if out == nil {
		t.Fatalf("no %s request from %v to %v captured", exch, from, to)
	}
	return out
}

// lastRequestOrNil is lastRequest without the failure.
func lastRequestOrNil(w *fakeWorld, exch message.ExchangeType, from, to netip.Addr) []byte {
	var out []byte
	for _, p := range w.net.packets() {
		b := p.b
		if p.to.Port() == 4500 {
			var ok bool
			if b, ok = message.StripNonESPMarker(b); !ok {
				continue
			}
		}
		h, err := message.ParseHeader(b)
		if err == nil && p.from.Addr() == from && p.to.Addr() == to && h.Exchange == exch && !h.IsResponse() {
			out = b
		}
	}
	return out
}

// waitAnswered waits until b has answered req (a response with its
// exchange and message ID went back to where req came from).
func waitAnswered(t *testing.T, w *fakeWorld, req []byte) {
	t.Helper()
	rh, err := message.ParseHeader(req)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range w.net.packets() {
			b := p.b
			if p.from.Port() == 4500 {
				var ok bool
				if b, ok = message.StripNonESPMarker(b); !ok {
					continue
				}
			}
			h, err := message.ParseHeader(b)
			if err == nil && p.from.Addr() == w.b.ip && h.IsResponse() && h.Exchange == rh.Exchange && h.MessageID == rh.MessageID && h.SPIi == rh.SPIi {
				return
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("b did not answer the %s request %d", rh.Exchange, rh.MessageID)
}

// sentTo returns the datagrams sent to dst after the first n packets.
func sentTo(w *fakeWorld, n int, dst netip.AddrPort) [][]byte {
	var out [][]byte
	for _, p := range w.net.packets()[n:] {
		if p.to == dst {
			out = append(out, p.b)
		}
	}
	return out
}

// inject hands the IKE message b to e as if it came from from: on the
// NAT-T port (behind the non-ESP marker) when from's port is 4500.
func inject(e *Engine, b []byte, from netip.AddrPort) {
	if from.Port() == 4500 {
		e.receive(PortNATT, append(make([]byte, message.NonESPMarkerLen), b...), from)
		return
	}
	e.receive(PortIKE, append([]byte(nil), b...), from)
}

// TestRetransmitOnlyToBoundAddress replays requests b already answered on
// an established IKE SA from other addresses and ports: b must send
// nothing there; from the SA's own address and port b answers with its
// stored response.
func TestRetransmitOnlyToBoundAddress(t *testing.T) {
	w := newFakeWorld(t, nil, nil)
	w.add(fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false))
	w.waitUp()
	bound := netip.AddrPortFrom(w.a.ip, 500)
	strangers := []netip.AddrPort{
		netip.MustParseAddrPort("198.51.100.66:500"),   // another host
		netip.MustParseAddrPort("198.51.100.66:40000"), // another host and port
		netip.AddrPortFrom(w.a.ip, 40000),              // the peer's address, another port
		netip.AddrPortFrom(w.a.ip, 4500),               // the peer's NAT-T port (the SA uses 500)
	}
	for _, step := range []struct {
		exch message.ExchangeType
		do   func() error
	}{
		{message.INFORMATIONAL, func() error { return w.a.e.CheckLiveness("peer") }},
		{message.CREATE_CHILD_SA, func() error {
			// Hold back the Delete of the old child that follows, so
			// that the rekey is the request b answered last.
			w.net.setFilter(func(from, to netip.AddrPort, b []byte) bool {
				h, err := message.ParseHeader(b)
				return err != nil || from.Addr() != w.a.ip || h.Exchange != message.INFORMATIONAL
			})
			return w.a.e.RekeyChild("peer", "c")
		}},
	} {
		if err := step.do(); err != nil {
			t.Fatal(err)
		}
		var req []byte
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(2 * time.Millisecond) {
			if req = lastRequestOrNil(w, step.exch, w.a.ip, w.b.ip); req != nil || time.Now().After(deadline) {
				break
			}
		}
		if req == nil {
			t.Fatalf("no %s request from a captured", step.exch)
		}
		waitAnswered(t, w, req)
		settle() // a takes the answer (and the rekey its Delete, held back)
		n := len(w.net.packets())
		for _, from := range strangers {
			inject(w.b.e, req, from)
			if got := sentTo(w, n, from); len(got) != 0 {
				t.Errorf("%s: a replay from %v was answered there (%d datagrams)", step.exch, from, len(got))
			}
		}
		inject(w.b.e, req, bound)
		got := sentTo(w, n, bound)
		if len(got) != 1 {
			t.Fatalf("%s: a retransmission from the SA's address got %d answers, want 1", step.exch, len(got))
		}
		if h, err := message.ParseHeader(got[0]); err != nil || !h.IsResponse() || h.Exchange != step.exch {
			t.Fatalf("%s: answer %+v %v", step.exch, h, err)
		}
	}
	// The SA is still bound to the peer and working.
	w.net.setFilter(nil)
	if err := w.b.e.CheckLiveness("peer"); err != nil {
		t.Fatal(err)
	}
	settle()
	if sa, sb := w.a.e.Status("peer"), w.b.e.Status("peer"); !sa.Up() || !sb.Up() || sa.SPIi != sb.SPIi {
		t.Fatalf("after the replays:\na %+v\nb %+v", sa, sb)
	}
}

// TestInitRetransmitOnlyToBoundAddress: the same for a half-open SA (the
// IKE_AUTH request never arrives): a replay of the IKE_SA_INIT request
// from another port of the peer's address gets nothing, a retransmission
// from the address and port it came from gets the stored response, and
// neither makes another half-open SA.
func TestInitRetransmitOnlyToBoundAddress(t *testing.T) {
	w := newFakeWorld(t, nil, nil)
	w.net.setFilter(func(from, to netip.AddrPort, b []byte) bool {
		h, err := message.ParseHeader(b)
		return err != nil || h.Exchange == message.IKE_SA_INIT
	})
	w.add(fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false))
	var req []byte
	for deadline := time.Now().Add(5 * time.Second); req == nil && time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		req = lastRequestOrNil(w, message.IKE_SA_INIT, w.a.ip, w.b.ip)
	}
	if req == nil {
		t.Fatal("a sent no IKE_SA_INIT")
	}
	waitAnswered(t, w, req)
	if n := w.b.e.halfOpen.Load(); n != 1 {
		t.Fatalf("%d half-open SAs, want 1", n)
	}
	var first []byte
	for _, p := range w.net.packets() {
		if h, err := message.ParseHeader(p.b); err == nil && h.Exchange == message.IKE_SA_INIT && h.IsResponse() {
			first = p.b
		}
	}
	n := len(w.net.packets())
	for _, from := range []netip.AddrPort{netip.AddrPortFrom(w.a.ip, 40000), netip.AddrPortFrom(w.a.ip, 4500)} {
		inject(w.b.e, req, from)
		if got := sentTo(w, n, from); len(got) != 0 {
			t.Errorf("a replay from %v was answered there (%d datagrams)", from, len(got))
		}
	}
	bound := netip.AddrPortFrom(w.a.ip, 500)
	inject(w.b.e, req, bound)
	got := sentTo(w, n, bound)
	if len(got) != 1 || !bytes.Equal(got[0], first) {
		t.Fatalf("a retransmission from the SA's address got %d answers, want the stored response once", len(got))
	}
	if n := w.b.e.halfOpen.Load(); n != 1 {
		t.Fatalf("%d half-open SAs after the replays, want 1", n)
	}
	w.a.e.RemovePeer("peer") // no new attempt
	settle()
	w.clock.Advance(time.Minute)
	settle()
	if n := w.b.e.halfOpen.Load(); n != 0 {
		t.Errorf("%d half-open SAs after they expired", n)
	}
}

// countingReader counts the bytes read from the engine's randomness: new
// SPIs, nonces and Diffie-Hellman private keys all come from it.
type countingReader struct{ n atomic.Int64 }

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := rand.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// initFlooder forges IKE_SA_INIT requests in the name of a's address. It
// sits on the path: it reads what b sends to the address it spoofs (the
// in-memory network logs every datagram), so it can collect cookies.
type initFlooder struct {
	t      *testing.T
	w      *fakeWorld
	prop   []proposal
	shares [][]byte // valid x25519 key shares
}

func newInitFlooder(t *testing.T, w *fakeWorld) *initFlooder {
	pr, err := parseProposal(DefaultIKEProposal, message.ProtoIKE)
	if err != nil {
		t.Fatal(err)
	}
	f := &initFlooder{t: t, w: w, prop: []proposal{pr}}
	for range 4 {
		dh, err := suite.NewDH(message.CURVE_25519, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		f.shares = append(f.shares, dh.Public())
	}
	return f
}

// request encodes an IKE_SA_INIT request.
func (f *initFlooder) request(spi message.SPI, ni, share, cookie []byte) []byte {
	var ps []message.Payload
	if cookie != nil {
		ps = append(ps, notify(message.COOKIE, cookie))
	}
	ps = append(ps, offer(f.prop, nil, message.CURVE_25519, true),
		&message.KE{Group: message.CURVE_25519, Data: share}, &message.Nonce{Data: ni})
	m := &message.Message{Header: message.Header{SPIi: spi, Exchange: message.IKE_SA_INIT, Flags: message.FlagInitiator}, Payloads: ps}
	b, err := m.Encode(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

// send hands req to b as if from from and returns the COOKIE b demanded
// in answer, if any.
func (f *initFlooder) send(req []byte, from netip.AddrPort) []byte {
	n := len(f.w.net.packets())
	f.w.b.e.receive(PortIKE, req, from)
	for _, b := range sentTo(f.w, n, from) {
		if m, err := message.Decode(b); err == nil {
			if c := message.Notifies(m.Payloads, message.COOKIE); len(c) > 0 {
				return c[0].Data
			}
		}
	}
	return nil
}

// sasOf counts the engine's IKE SAs and the peer's SAs besides the current.
func sasOf(e *Engine) (all, others int) {
	e.sas.Range(func(any, any) bool { all++; return true })
	p := e.peer("peer")
	p.mu.Lock()
	others = len(p.others)
	p.unlock()
	return all, others
}

// TestInitFloodBounded floods b, which has an established IKE SA with a,
// with IKE_SA_INIT requests in a's name: fresh ones, each with the cookie
// b demands, and hundreds of replays of accepted ones (identical, from
// other ports, with other key shares: the cookie covers only Ni, IPi and
// SPIi). The half-open SAs never exceed the cap, a replay never makes a
// second SA nor costs Diffie-Hellman work, the established IKE SA keeps
// working (a Child SA rekey and a liveness check complete during the
// flood, the child's ESP keys stay installed), and once the half-open
// SAs expire b holds no more state than before.
func TestInitFloodBounded(t *testing.T) {
	rnd := &countingReader{}
	w := newFakeWorld(t, nil, func(c *Config) { c.HalfOpenLimit = 2; c.Rand = rnd })
	pa, pb := fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false)
	pa.DPDInterval, pb.DPDInterval = -1, -1
	w.add(pa, pb)
	w.waitUp()
	baseAll, baseOthers := sasOf(w.b.e)
	const limit = DefaultHalfOpenMaxPerAddr // one spoofed address: the per-address cap binds
	maxSeen := 0
	check := func(when string) {
		t.Helper()
		h := int(w.b.e.halfOpen.Load())
		maxSeen = max(maxSeen, h)
		all, others := sasOf(w.b.e)
		if h > limit || all > baseAll+limit || others > baseOthers+limit {
			t.Fatalf("%s: %d half-open SAs (cap %d), %d IKE SAs (%d before), %d others (%d before)", when, h, limit, all, baseAll, others, baseOthers)
		}
	}
	f := newInitFlooder(t, w)
	src := func(i int) netip.AddrPort { return netip.AddrPortFrom(w.a.ip, uint16(20000+i%64)) }
	type accepted struct {
		spi     message.SPI
		ni      []byte
		req     []byte
		from    netip.AddrPort
		created bool
	}
	var reqs []accepted
	// Fresh requests, each with the cookie b asks for.
	for i := range 150 {
		var spi message.SPI
		_, _ = rand.Read(spi[:])
		ni := make([]byte, 32)
		_, _ = rand.Read(ni)
		from := src(i)
		before := w.b.e.halfOpen.Load()
		req := f.request(spi, ni, f.shares[0], nil)
		if c := f.send(req, from); c != nil {
			req = f.request(spi, ni, f.shares[0], c)
			f.send(req, from)
		}
		reqs = append(reqs, accepted{spi, ni, req, from, w.b.e.halfOpen.Load() > before})
		check("fresh request " + strconv.Itoa(i))
	}
	if maxSeen == 0 {
		t.Fatal("the flood made no half-open SA at all: the test proves nothing")
	}
	// Replays of the accepted requests, and of those dropped at the cap:
	// no Diffie-Hellman (nor any other randomness) is spent on them.
	read0 := rnd.n.Load()
	for i := range 300 {
		r := reqs[i%len(reqs)]
		req := r.req
		switch i % 3 {
		case 1: // another key share under the same cookie
			m, err := message.Decode(r.req)
			if err != nil {
				t.Fatal(err)
			}
			cookie := message.Notifies(m.Payloads, message.COOKIE)
			var c []byte
			if len(cookie) > 0 {
				c = cookie[0].Data
			}
			req = f.request(r.spi, r.ni, f.shares[1+i%3], c)
		}
		from := r.from
		if i%2 == 1 {
			from = src(i + 7) // and from another port
		}
		f.send(req, from)
		check("replay " + strconv.Itoa(i))
	}
	if n := rnd.n.Load() - read0; n != 0 {
		t.Errorf("replays made b read %d random bytes (new SAs, Diffie-Hellman)", n)
	}
	// The established IKE SA keeps working while the flood goes on.
	evA, evB := len(w.a.rec.Events()), len(w.b.rec.Events())
	if err := w.a.e.RekeyChild("peer", "c"); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		var spi message.SPI
		_, _ = rand.Read(spi[:])
		ni := make([]byte, 32)
		_, _ = rand.Read(ni)
		from := src(i)
		req := f.request(spi, ni, f.shares[0], nil)
		if c := f.send(req, from); c != nil {
			f.send(f.request(spi, ni, f.shares[0], c), from)
		}
		f.send(reqs[i%len(reqs)].req, src(i+3))
		check("flood during rekey " + strconv.Itoa(i))
	}
	for _, s := range []*fakeSide{w.a, w.b} {
		ev := evA
		if s == w.b {
			ev = evB
		}
		if !s.rec.Wait(3*time.Second, func(evs []RecordedEvent) bool {
			return Count(evs[ev:], ChildRekeyed) == 1 && Count(evs[ev:], ChildDeleted) == 1
		}) {
			t.Fatalf("child rekey during the flood did not complete: %+v", s.rec.Events()[ev:])
		}
	}
	if err := w.a.e.CheckLiveness("peer"); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		f.send(reqs[i%len(reqs)].req, src(i))
		check("flood during liveness check " + strconv.Itoa(i))
	}
	settle()
	sa, sb := w.a.e.Status("peer"), w.b.e.Status("peer")
	if !sa.Up() || !sb.Up() || sa.SPIi != sb.SPIi || len(sa.Children) != 1 || len(sb.Children) != 1 ||
		sa.Children[0].InSPI != sb.Children[0].OutSPI || sa.Children[0].OutSPI != sb.Children[0].InSPI {
		t.Fatalf("established IKE SA hurt by the flood:\na %+v\nb %+v", sa, sb)
	}
	ea, eb := w.a.rec.Events(), w.b.rec.Events()
	if last := eb[len(eb)-2]; last.Event != ChildRekeyed || !espPairs(t, last.SA, ea[len(ea)-2].SA) {
		t.Fatalf("the rekeyed child's ESP keys are not installed and paired: %+v", last)
	}
	t.Logf("b: %+v; at most %d half-open SAs", w.b.e.Stats(), maxSeen)
	// Once the half-open SAs expire, nothing of the flood remains.
	w.clock.Advance(halfOpenTimeout + time.Second)
	settle()
	if h := w.b.e.halfOpen.Load(); h != 0 {
		t.Errorf("%d half-open SAs after they expired", h)
	}
	if all, others := sasOf(w.b.e); all != baseAll || others != baseOthers {
		t.Errorf("after the flood: %d IKE SAs (%d before), %d others (%d before)", all, baseAll, others, baseOthers)
	}
	if st := w.b.e.Status("peer"); !st.Up() {
		t.Errorf("b's IKE SA not up after the flood: %+v", st)
	}
}
