package tun

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
	"github.com/ovnsec/ovnsec/internal/datapath/drop"
	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/esp/esptest"
)

func TestRoundTrip(t *testing.T) {
	A, B := newSides(t, nil, nil, nil, nil)
	v6src, v6dst := netip.MustParseAddr("2001:db8:a::1"), netip.MustParseAddr("2001:db8:b::1")
	// Let IPv6 through too: B's subnet gets a v6 prefix on A, A's on B.
	if err := A.a.SetPeers([]Peer{{Addr: underB, Remote: []netip.Prefix{netB, netip.MustParsePrefix("2001:db8:b::/48")}}}); err != nil {
		t.Fatal(err)
	}
	if err := B.a.SetPeers([]Peer{{Addr: underA, Remote: []netip.Prefix{netA, netip.MustParsePrefix("2001:db8:a::/48")}}}); err != nil {
		t.Fatal(err)
	}
	pkts := [][]byte{ip4(innerA, innerB, 28), ip4(innerA, innerB, 1400), ip6(v6src, v6dst, 48), ip4(innerA, innerB, 1438)}
	dg := A.seal(t, pkts...)
	if len(dg) != len(pkts) {
		t.Fatalf("sealed %d of %d", len(dg), len(pkts))
	}
	for i, m := range dg {
		if m.Addr != netip.AddrPortFrom(underB, 4500) {
			t.Errorf("datagram %d to %v", i, m.Addr)
		}
		if spi := esp.SPI(binary.BigEndian.Uint32(m.Buf)); spi != spiAB {
			t.Errorf("datagram %d SPI %v", i, spi)
		}
		if bytes.Contains(m.Buf, pkts[i][28:]) && len(pkts[i]) > 40 {
			t.Errorf("datagram %d carries the plaintext", i)
		}
		if len(m.Buf) != esp.SealedLen(len(pkts[i])) {
			t.Errorf("datagram %d is %d bytes, want %d", i, len(m.Buf), esp.SealedLen(len(pkts[i])))
		}
	}
	bufs := make([][]byte, len(dg))
	for i := range dg {
		bufs[i] = dg[i].Buf
	}
	got := B.open(t, underA, bufs...)
	if len(got) != len(pkts) {
		t.Fatalf("opened %d of %d; stats %+v", len(got), len(pkts), B.a.Stats())
	}
	for i := range got {
		if !bytes.Equal(got[i], pkts[i]) {
			t.Errorf("packet %d differs after the round trip", i)
		}
	}
	as, bs := A.a.Stats(), B.a.Stats()
	var total uint64
	for _, p := range pkts {
		total += uint64(len(p))
	}
	if as.TxPackets != 4 || as.TxBytes != total || bs.RxPackets != 4 || bs.RxBytes != total {
		t.Fatalf("stats A %+v B %+v", as, bs)
	}
	// The reverse direction uses the other SA pair.
	back := B.seal(t, ip4(innerB, innerA, 100))
	if len(back) != 1 || esp.SPI(binary.BigEndian.Uint32(back[0].Buf)) != spiBA {
		t.Fatalf("reverse: %v", back)
	}
	if got := A.open(t, underB, back[0].Buf); len(got) != 1 {
		t.Fatalf("reverse open failed: %+v", A.a.Stats())
	}
}

// TestTxDrops checks every outbound drop reason.
func TestTxDrops(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, s *side)
		pkt   []byte
		want  drop.Reason
	}{
		{"no route", nil, ip4(innerA, netip.MustParseAddr("198.51.100.1"), 60), drop.NoPeer},
		{"malformed", nil, []byte{0x45, 0, 0, 10}, drop.Malformed},
		{"not ip", nil, bytes.Repeat([]byte{0x10}, 40), drop.Malformed},
		{"no SA, not held (too big)", func(t *testing.T, s *side) { s.table.RemoveOutbound(underB) }, ip4(innerA, innerB, holdMaxPacket+1), drop.NoSA},
		{"closed SA", func(t *testing.T, s *side) { s.table.Outbound(underB).Close() }, ip4(innerA, innerB, 60), drop.Expired},
		{"transport SA", func(t *testing.T, s *side) {
			out, _ := esptest.Pair(t, esp.Config{SPI: 0x3003, Mode: esp.Transport, Encap: esp.Encap{Type: esp.EncapUDP, SrcPort: 4500, DstPort: 4500}})
			s.table.SetOutbound(underB, out)
		}, ip4(innerA, innerB, 60), drop.Policy},
		{"plain ESP SA", func(t *testing.T, s *side) {
			out, _ := esptest.Pair(t, esp.Config{SPI: 0x3003, Mode: esp.Tunnel})
			s.table.SetOutbound(underB, out)
		}, ip4(innerA, innerB, 60), drop.Policy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			A, _ := newSides(t, nil, nil, nil, nil)
			if tc.setup != nil {
				tc.setup(t, A)
			}
			if dg := A.seal(t, tc.pkt); len(dg) != 0 {
				t.Fatalf("packet was sealed")
			}
			st := A.a.Stats()
			for r := range drop.NumReasons {
				want := uint64(0)
				if r == tc.want {
					want = 1
				}
				if st.TxDropped(r) != want {
					t.Errorf("drops[%v] = %d, want %d", r, st.TxDropped(r), want)
				}
			}
			if st.TxPackets != 0 {
				t.Errorf("TxPackets = %d", st.TxPackets)
			}
		})
	}
}

// TestRxDrops checks every inbound drop reason, with a good packet in the
// same batch passing.
func TestRxDrops(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bad   func(t *testing.T, A, B *side) []byte
		want  drop.Reason
		check func(t *testing.T, B *side)
	}{
		{"replay", func(t *testing.T, A, B *side) []byte {
			d := A.seal(t, ip4(innerA, innerB, 100))[0].Buf
			if len(B.open(t, underA, d)) != 1 {
				t.Fatal("first copy refused")
			}
			return d
		}, drop.Replay, func(t *testing.T, B *side) {
			if B.table.Inbound(spiAB).Stats().DropReplay != 1 {
				t.Error("SA did not count the replay")
			}
		}},
		{"flipped bit", func(t *testing.T, A, B *side) []byte {
			d := A.seal(t, ip4(innerA, innerB, 100))[0].Buf
			d[40] ^= 0x01
			return d
		}, drop.Auth, func(t *testing.T, B *side) {
			if B.table.Inbound(spiAB).Stats().DropAuth != 1 {
				t.Error("SA did not count the auth failure")
			}
		}},
		{"wrong SPI", func(t *testing.T, A, B *side) []byte {
			d := A.seal(t, ip4(innerA, innerB, 100))[0].Buf
			binary.BigEndian.PutUint32(d, 0xdead)
			return d
		}, drop.NoSA, func(t *testing.T, B *side) {
			if B.table.Stats().NoSA != 1 {
				t.Error("table did not count the unknown SPI")
			}
		}},
		{"inner source outside peer subnet", func(t *testing.T, A, B *side) []byte {
			// A is allowed to send to B but claims a source that is
			// not behind A.
			return A.seal(t, ip4(netip.MustParseAddr("203.0.113.77"), innerB, 100))[0].Buf
		}, drop.InnerPolicy, func(t *testing.T, B *side) {
			if B.table.Inbound(spiAB).Stats().DropPolicy != 1 {
				t.Error("SA did not count the policy drop")
			}
		}},
		{"unbound SA", func(t *testing.T, A, B *side) []byte {
			// An inbound SA put into the table behind the
			// attachment's back is not trusted for any subnet.
			cfg := esp.Config{SPI: 0x4004, Mode: esp.Tunnel, Encap: esp.Encap{Type: esp.EncapUDP, SrcPort: 4500, DstPort: 4500}}
			out, in := esptest.Pair(t, cfg)
			if err := B.table.AddInbound(in); err != nil {
				t.Fatal(err)
			}
			good, _ := A.table.SetOutbound(underB, out)
			d := A.seal(t, ip4(innerA, innerB, 100))[0].Buf
			A.table.SetOutbound(underB, good)
			return d
		}, drop.WrongPeer, nil},
		{"transport-mode SA", func(t *testing.T, A, B *side) []byte {
			// The attachment carries tunnel mode only; an SA of
			// another mode in its table is refused after Open.
			out, in := esptest.Pair(t, esp.Config{SPI: 0x5005, Mode: esp.Transport})
			if err := B.table.AddInbound(in); err != nil {
				t.Fatal(err)
			}
			d, err := out.Seal(make([]byte, 200), ip4(innerA, innerB, 60), esp.ProtoIPv4)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}, drop.Policy, func(t *testing.T, B *side) {
			if B.table.Inbound(0x5005).Stats().DropPolicy != 1 {
				t.Error("SA did not count the policy drop")
			}
		}},
		{"inbound SA closed", func(t *testing.T, A, B *side) []byte {
			d := A.seal(t, ip4(innerA, innerB, 100))[0].Buf
			old := B.table.Inbound(spiAB)
			// The good packet goes under fresh SAs; d meets the closed one.
			cfg := esp.Config{Mode: esp.Tunnel, Encap: esp.Encap{Type: esp.EncapUDP, SrcPort: 4500, DstPort: 4500}}
			aOut, aIn, bOut, bIn := esptest.Peers(t, cfg, 0x7007, 0x8008)
			if err := A.a.Install(underB, aIn, aOut); err != nil {
				t.Fatal(err)
			}
			if err := B.a.Install(underA, bIn, bOut); err != nil {
				t.Fatal(err)
			}
			old.Close()
			return d
		}, drop.Expired, func(t *testing.T, B *side) {
			if B.table.Inbound(spiAB).Stats().DropLifetime != 1 {
				t.Error("SA did not count the expired drop")
			}
		}},
		{"truncated", func(t *testing.T, A, B *side) []byte {
			return A.seal(t, ip4(innerA, innerB, 100))[0].Buf[:30]
		}, drop.Malformed, nil},
		{"too short to classify", func(t *testing.T, A, B *side) []byte { return []byte{1, 2, 3} }, drop.Malformed, nil},
		{"dummy", func(t *testing.T, A, B *side) []byte {
			sa := A.table.Outbound(underB)
			d, err := sa.Seal(make([]byte, 200), []byte("dummy payload"), esp.ProtoNone)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}, drop.Dummy, nil},
		{"inner not IP", func(t *testing.T, A, B *side) []byte {
			sa := A.table.Outbound(underB)
			d, err := sa.Seal(make([]byte, 200), bytes.Repeat([]byte{0x45}, 40), esp.ProtoIPv4)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}, drop.Malformed, nil},
		{"next header says UDP", func(t *testing.T, A, B *side) []byte {
			sa := A.table.Outbound(underB)
			d, err := sa.Seal(make([]byte, 200), ip4(innerA, innerB, 60), esp.ProtoUDP)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}, drop.InnerPolicy, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			A, B := newSides(t, nil, nil, nil, nil)
			bad := tc.bad(t, A, B)
			before := B.a.Stats()
			good := A.seal(t, ip4(innerA, innerB, 64))
			if len(good) != 1 {
				t.Fatalf("good packet not sealed: %+v", A.a.Stats())
			}
			got := B.open(t, underA, bad, good[0].Buf)
			if len(got) != 1 || !bytes.Equal(got[0], ip4(innerA, innerB, 64)) {
				t.Fatalf("good packet in the batch: got %d packets", len(got))
			}
			st := B.a.Stats()
			for r := range drop.NumReasons {
				want := before.RxDropped(r)
				if r == tc.want {
					want++
				}
				if st.RxDropped(r) != want {
					t.Errorf("drops[%v] = %d, want %d", r, st.RxDropped(r), want)
				}
			}
			if tc.check != nil {
				tc.check(t, B)
			}
		})
	}
}

func TestIKEAndKeepalive(t *testing.T) {
	var gotMsg []byte
	var gotFrom netip.AddrPort
	table := esp.NewTable(nil)
	dev := &recDev{record: true}
	a, err := New(Config{Device: dev, Conn: nopConn{}, Table: table,
		Peers: []Peer{{Addr: underB, Remote: []netip.Prefix{netB}}},
		OnIKE: func(msg []byte, from netip.AddrPort) { gotMsg, gotFrom = append([]byte(nil), msg...), from }})
	if err != nil {
		t.Fatal(err)
	}
	s := &side{a: a, table: table, dev: dev}
	ike := append([]byte{0, 0, 0, 0}, []byte("IKE_SA_INIT header and payloads")...)
	if got := s.open(t, underB, ike, []byte{0xff}); len(got) != 0 {
		t.Fatalf("IKE/keepalive reached the device")
	}
	if string(gotMsg) != "IKE_SA_INIT header and payloads" || gotFrom != netip.AddrPortFrom(underB, 4500) {
		t.Fatalf("IKE callback got %q from %v", gotMsg, gotFrom)
	}
	st := a.Stats()
	if st.IKE != 1 || st.Keepalives != 1 || st.RxPackets != 0 {
		t.Fatalf("stats %+v", st)
	}
	for r := range drop.NumReasons {
		if st.RxDropped(r) != 0 {
			t.Errorf("drops[%v] = %d", r, st.RxDropped(r))
		}
	}
}

func TestInstallAndRekey(t *testing.T) {
	A, B := newSides(t, nil, nil, nil, nil)
	cfg := esp.Config{Mode: esp.Tunnel, Encap: esp.Encap{Type: esp.EncapUDP, SrcPort: 4500, DstPort: 4500}}
	aOut, aIn, bOut, bIn := esptest.Peers(t, cfg, 0x5005, 0x6006)
	// Errors first: unknown peer, wrong mode/direction.
	if err := A.a.Install(netip.MustParseAddr("192.0.2.99"), aIn, aOut); err == nil {
		t.Error("install for an unknown peer accepted")
	}
	if err := A.a.Install(underB, aOut, aIn); err == nil {
		t.Error("install with swapped directions accepted")
	}
	// Installing an inbound SPI again fails and keeps the installed one.
	if err := A.a.Install(underB, A.table.Inbound(spiBA), aOut); err == nil {
		t.Error("install of an installed inbound SPI accepted")
	}
	if got := A.open(t, underB, B.seal(t, ip4(innerB, innerA, 80))[0].Buf); len(got) != 1 {
		t.Fatalf("after failed install B's packet was refused: %+v", A.a.Stats())
	}
	// Rekey both sides; old packets in flight still open during grace.
	old := A.seal(t, ip4(innerA, innerB, 80))[0].Buf
	if err := B.a.Rekey(underA, bIn, bOut, spiAB, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := A.a.Rekey(underB, aIn, aOut, spiBA, time.Hour); err != nil {
		t.Fatal(err)
	}
	nw := A.seal(t, ip4(innerA, innerB, 80))[0].Buf
	if spi := esp.SPI(binary.BigEndian.Uint32(nw)); spi != 0x5005 {
		t.Fatalf("after rekey A sends with %v", spi)
	}
	if got := B.open(t, underA, old, nw); len(got) != 2 {
		t.Fatalf("old+new after rekey: %d opened; %+v", len(got), B.a.Stats())
	}
	// Rekey with an inbound SPI already installed fails and leaves the
	// installed SA's binding alone: B's packets still pass.
	dupOut, dupIn, _, _ := esptest.Peers(t, cfg, 0x7007, 0x6006)
	if err := A.a.Rekey(underB, dupIn, dupOut, 0, 0); err == nil {
		t.Fatal("rekey with duplicate SPI accepted")
	}
	if got := A.open(t, underB, B.seal(t, ip4(innerB, innerA, 80))[0].Buf); len(got) != 1 {
		t.Fatalf("after failed rekey B's packet was refused: %+v", A.a.Stats())
	}
}

func TestSweepUnbindsRetired(t *testing.T) {
	clk := clocktest.New(time.Unix(1000, 0))
	table := esp.NewTable(clk)
	a, err := New(Config{Device: nopDev{}, Conn: nopConn{}, Table: table, Peers: []Peer{{Addr: underB, Remote: []netip.Prefix{netB}}}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := esp.Config{Mode: esp.Tunnel, Encap: esp.Encap{Type: esp.EncapUDP, SrcPort: 4500, DstPort: 4500}}
	o1, i1, _, _ := esptest.Peers(t, cfg, 0x100, 0x101)
	o2, i2, _, _ := esptest.Peers(t, cfg, 0x200, 0x201)
	if err := a.Install(underB, i1, o1); err != nil {
		t.Fatal(err)
	}
	if err := a.Rekey(underB, i2, o2, i1.SPI(), time.Second); err != nil {
		t.Fatal(err)
	}
	if n := len(a.pol.Load().bySPI); n != 2 {
		t.Fatalf("%d bindings before sweep", n)
	}
	a.Sweep()
	if n := len(a.pol.Load().bySPI); n != 2 {
		t.Fatalf("%d bindings before grace ends", n)
	}
	clk.Advance(2 * time.Second)
	a.Sweep()
	if _, ok := a.pol.Load().bySPI[i1.SPI()]; ok || len(a.pol.Load().bySPI) != 1 || table.Inbound(i1.SPI()) != nil {
		t.Fatalf("retired SA still bound or installed: %v", a.pol.Load().bySPI)
	}
}

type fakeRoutes struct{ got [][]netip.Prefix }

func (r *fakeRoutes) Set(p []netip.Prefix) error {
	r.got = append(r.got, append([]netip.Prefix(nil), p...))
	return nil
}

func TestSetPeersUpdatesRoutes(t *testing.T) {
	r := &fakeRoutes{}
	a, err := New(Config{Device: nopDev{}, Conn: nopConn{}, Table: esp.NewTable(nil), Routes: r,
		Peers: []Peer{{Addr: underB, Remote: []netip.Prefix{netB}}}})
	if err != nil {
		t.Fatal(err)
	}
	n2 := netip.MustParsePrefix("198.51.100.0/24")
	if err := a.SetPeers([]Peer{{Addr: underB, Remote: []netip.Prefix{netB, n2}}}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetPeers([]Peer{{Addr: underB, Remote: nil}}); err == nil {
		t.Fatal("invalid peers accepted")
	}
	if len(r.got) != 2 || len(r.got[1]) != 2 || r.got[1][1] != n2 {
		t.Fatalf("routes set: %v", r.got)
	}
	if p := a.Peers(); len(p) != 1 || len(p[0].Remote) != 2 {
		t.Fatalf("Peers() = %v", p)
	}
}

// TestRun runs two attachments over in-memory devices and an in-memory
// underlay and checks that packets cross both ways and Run stops cleanly.
func TestRun(t *testing.T) {
	devA, devB := newChanDev(), newChanDev()
	connA, connB := newChanConns(underA, underB)
	A, B := newSides(t, devA, devB, connA, connB)
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { errs <- A.a.Run(ctx) }()
	go func() { errs <- B.a.Run(ctx) }()
	for i := range 20 {
		p := ip4(innerA, innerB, 100+i)
		devA.in <- p
		select {
		case got := <-devB.out:
			if !bytes.Equal(got, p) {
				t.Fatalf("packet %d changed", i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("packet %d did not arrive; A %+v B %+v", i, A.a.Stats(), B.a.Stats())
		}
		q := ip4(innerB, innerA, 100+i)
		devB.in <- q
		select {
		case got := <-devA.out:
			if !bytes.Equal(got, q) {
				t.Fatalf("reply %d changed", i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("reply %d did not arrive", i)
		}
	}
	cancel()
	for range 2 {
		select {
		case err := <-errs:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not stop")
		}
	}
	if st := A.a.Stats(); st.TxPackets != 20 || st.RxPackets != 20 {
		t.Fatalf("A stats %+v", st)
	}
}

// TestRunFailsOnDeviceError: a device that fails makes Run return the error.
func TestRunFailsOnDeviceError(t *testing.T) {
	A, _ := newSides(t, nopDev{}, nil, newChanDev2(), nil)
	done := make(chan error, 1)
	go func() { done <- A.a.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Run returned nil after a device failure")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

// newChanDev2 returns a conn that blocks until closed.
func newChanDev2() Conn {
	c, _ := newChanConns(underA, underB)
	return c
}

// TestBatchNoAlloc proves the per-batch functions allocate nothing.
func TestBatchNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	A, B := newSides(t, nil, nil, nil, nil)
	B.dev.record = false
	const n = 64
	pkt := ip4(innerA, innerB, 1400)
	allocs := testing.AllocsPerRun(50, func() {
		for i := range n {
			A.a.tx.sizes[i] = copy(A.a.tx.bufs[i][txOffset:], pkt)
		}
		k := A.a.sealBatch(A.a.tx, n)
		for i := range k {
			B.a.rx.msgs[i].N = copy(B.a.rx.rbufs[i], A.a.tx.msgs[i].Buf)
		}
		if B.a.openBatch(B.a.rx, k); B.a.rx.c.packets != n {
			t.Fatal("batch lost packets")
		}
		A.a.txc.add(&A.a.tx.c)
		B.a.rxc.add(&B.a.rx.c)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch, want 0", allocs)
	}
}

// TestDropBatchNoAlloc: the drop path allocates nothing either: a batch
// of replayed and forged datagrams is mapped with drop.FromESP and counted
// under drop's names.
func TestDropBatchNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	A, B := newSides(t, nil, nil, nil, nil)
	B.dev.record = false
	const n = 64
	pkts := make([][]byte, n)
	for i := range pkts {
		pkts[i] = ip4(innerA, innerB, 200)
	}
	// Half the batch is replays of packets B accepted, half forgeries
	// of packets it never saw (a replay is refused before the ICV check).
	var dgrams [][]byte
	for _, m := range A.seal(t, pkts[:n/2]...) {
		dgrams = append(dgrams, m.Buf)
	}
	B.open(t, underA, dgrams...)
	if len(dgrams) != n/2 || B.a.Stats().RxPackets != n/2 {
		t.Fatalf("%d sealed, stats %+v", len(dgrams), B.a.Stats())
	}
	for _, m := range A.seal(t, pkts[n/2:]...) {
		m.Buf[len(m.Buf)-1] ^= 0x80 // forged ICV
		dgrams = append(dgrams, m.Buf)
	}
	r := B.a.rx
	runs := 0
	allocs := testing.AllocsPerRun(50, func() {
		runs++
		for i, d := range dgrams {
			r.msgs[i].N = copy(r.rbufs[i], d)
		}
		if B.a.openBatch(r, n); r.c.packets != 0 {
			t.Fatal("a replayed or forged packet was accepted")
		}
		B.a.rxc.add(&r.c)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch of drops, want 0", allocs)
	}
	got := B.a.Stats().RxDrops.Map()
	if want := uint64(runs * n / 2); got["drop_replay"] != want || got["drop_auth"] != want || len(got) != 2 {
		t.Fatalf("drops %v, want %d drop_replay and drop_auth", got, want)
	}
}

// TestOpenBatchGRO delivers GRO-coalesced messages (several datagrams in
// one buffer, the last shorter) and more packets than the device batch
// holds, so the packet buffers are flushed mid-batch.
func TestOpenBatchGRO(t *testing.T) {
	A, B := newSides(t, nil, nil, nil, nil)
	var pkts [][]byte
	for i := range 300 {
		n := 1000
		if i%50 == 49 {
			n = 500 // each run of 50 ends with a shorter one
		}
		pkts = append(pkts, ip4(innerA, innerB, n))
	}
	var dgrams []Message
	for i := 0; i < len(pkts); i += 100 {
		dgrams = append(dgrams, A.seal(t, pkts[i:i+100]...)...)
	}
	r := B.a.rx
	for m := range 6 {
		run := dgrams[m*50 : m*50+50]
		n := 0
		for _, d := range run {
			n += copy(r.rbufs[m][n:], d.Buf)
		}
		r.msgs[m].N, r.msgs[m].Seg, r.msgs[m].Addr = n, len(run[0].Buf), netip.AddrPortFrom(underA, 4500)
	}
	B.dev.got = nil
	B.a.openBatch(r, 6)
	B.a.rxc.add(&r.c)
	if len(B.dev.got) != len(pkts) {
		t.Fatalf("%d of %d packets reached the device; %+v", len(B.dev.got), len(pkts), B.a.Stats())
	}
	for i := range pkts {
		if !bytes.Equal(B.dev.got[i], pkts[i]) {
			t.Fatalf("packet %d differs", i)
		}
	}
}

// TestStepNoAlloc: a full outbound and inbound step through the Device
// and Conn interfaces allocates nothing.
func TestStepNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	const n = 64
	devA, devB := &benchDev{pkt: ip4(innerA, innerB, 1400), batch: n}, &benchDev{batch: n}
	connA, connB := newBenchConns(n)
	A, B := newSides(t, devA, devB, connA, connB)
	allocs := testing.AllocsPerRun(50, func() {
		if err := A.a.txStep(); err != nil {
			t.Fatal(err)
		}
		if err := B.a.rxStep(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per step, want 0", allocs)
	}
	if st := B.a.Stats(); st.RxPackets != 51*n {
		t.Fatalf("B received %d packets, want %d", st.RxPackets, 51*n)
	}
}

// TestPeerRemovedAndBack: a peer dropped from the list carries no traffic;
// listed again, its installed SAs work again. RemoveSAs removes them.
func TestPeerRemovedAndBack(t *testing.T) {
	A, B := newSides(t, nil, nil, nil, nil)
	other := Peer{Addr: netip.MustParseAddr("192.0.2.50"), Remote: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}}
	if err := B.a.SetPeers([]Peer{other}); err != nil {
		t.Fatal(err)
	}
	if got := B.open(t, underA, A.seal(t, ip4(innerA, innerB, 80))[0].Buf); len(got) != 0 {
		t.Fatal("packet from an unlisted peer delivered")
	}
	if dg := B.seal(t, ip4(innerB, innerA, 80)); len(dg) != 0 {
		t.Fatal("packet to an unlisted peer sealed")
	}
	if err := B.a.SetPeers([]Peer{other, {Addr: underA, Remote: []netip.Prefix{netA}}}); err != nil {
		t.Fatal(err)
	}
	if got := B.open(t, underA, A.seal(t, ip4(innerA, innerB, 80))[0].Buf); len(got) != 1 {
		t.Fatalf("listed again, peer's packet refused: %+v", B.a.Stats())
	}
	if n := B.a.RemoveSAs(underA); n != 2 {
		t.Fatalf("RemoveSAs removed %d SAs, want 2", n)
	}
	if B.table.Inbound(spiAB) != nil || B.table.Outbound(underA) != nil || len(B.a.bind) != 0 {
		t.Fatal("SAs or bindings left after RemoveSAs")
	}
	before := B.a.Stats().RxDropped(drop.NoSA)
	if got := B.open(t, underA, A.seal(t, ip4(innerA, innerB, 80))[0].Buf); len(got) != 0 || B.a.Stats().RxDropped(drop.NoSA) != before+1 {
		t.Fatal("packet for a removed SA not dropped as no-SA")
	}
}

func TestHoldQueue(t *testing.T) {
	for _, tc := range []struct {
		name     string
		hold     int
		send     int
		wantHeld int // delivered after Install, the newest ones
		wantDrop int
		acquires int
	}{
		{"held and released", 0, 3, 3, 0, 1},
		{"overflow drops oldest", 2, 5, 2, 3, 1},
		{"disabled", -1, 3, 0, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := &recConn{}
			var acquired []netip.Addr
			A, B := newSidesCfg(t, func(c *Config) {
				c.HoldPackets = tc.hold
				c.OnNoSA = func(p netip.Addr) { acquired = append(acquired, p) }
			}, nil, nil, conn, nil)
			A.a.RemoveSAs(underB)
			B.a.RemoveSAs(underA)
			var pkts [][]byte
			for i := range tc.send {
				pkts = append(pkts, ip4(innerA, innerB, 100+i))
			}
			if dg := A.seal(t, pkts...); len(dg) != 0 {
				t.Fatal("sealed without an SA")
			}
			st := A.a.Stats()
			if st.TxDropped(drop.NoSA) != uint64(tc.wantDrop) || len(acquired) != tc.acquires {
				t.Fatalf("no-SA drops %d (want %d), acquires %v (want %d)", st.TxDropped(drop.NoSA), tc.wantDrop, acquired, tc.acquires)
			}
			for _, p := range acquired {
				if p != underB {
					t.Fatalf("acquire for %v", p)
				}
			}
			// IKE completes: new SAs on both sides; A sends what it held.
			cfg := esp.Config{Mode: esp.Tunnel, Encap: esp.Encap{Type: esp.EncapUDP, SrcPort: 4500, DstPort: 4500}}
			aOut, aIn, bOut, bIn := esptest.Peers(t, cfg, 0x8008, 0x9009)
			if err := B.a.Install(underA, bIn, bOut); err != nil {
				t.Fatal(err)
			}
			if err := A.a.Install(underB, aIn, aOut); err != nil {
				t.Fatal(err)
			}
			if len(conn.got) != tc.wantHeld {
				t.Fatalf("%d held packets sent, want %d", len(conn.got), tc.wantHeld)
			}
			var dgrams [][]byte
			for _, m := range conn.got {
				if m.Addr != netip.AddrPortFrom(underB, 4500) {
					t.Fatalf("held packet sent to %v", m.Addr)
				}
				dgrams = append(dgrams, m.Buf)
			}
			got := B.open(t, underA, dgrams...)
			want := pkts[len(pkts)-tc.wantHeld:]
			if len(got) != len(want) {
				t.Fatalf("B opened %d of %d", len(got), len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("held packet %d differs (order?)", i)
				}
			}
			if A.a.hold != nil && A.a.hold.len() != 0 {
				t.Fatalf("%d packets left in the queue", A.a.hold.len())
			}
			if st := A.a.Stats(); st.TxPackets != uint64(tc.wantHeld) {
				t.Fatalf("TxPackets %d, want %d", st.TxPackets, tc.wantHeld)
			}
		})
	}
}

func TestHoldQueueKeepsOthersInOrder(t *testing.T) {
	q := newHoldQueue(4)
	p1, p2 := netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.12")
	for i, p := range []netip.Addr{p1, p2, p1, p2} {
		if ok, evicted, first := q.put(p, []byte{byte(i), 0x45}); !ok || evicted || first != (i < 2) {
			t.Fatalf("put %d: ok %v evicted %v first %v", i, ok, evicted, first)
		}
	}
	if ok, evicted, _ := q.put(p1, []byte{4}); !ok || !evicted {
		t.Fatal("full queue did not evict")
	}
	if ok, _, _ := q.put(p1, make([]byte, holdMaxPacket+1)); ok {
		t.Fatal("oversized packet held")
	}
	var got []byte
	q.mu.Lock()
	q.drainLocked(p2, func(_, pkt []byte) { got = append(got, pkt[0]) })
	q.mu.Unlock()
	if !bytes.Equal(got, []byte{1, 3}) {
		t.Fatalf("drained %v for p2, want [1 3]", got)
	}
	got = nil
	q.mu.Lock()
	q.drainLocked(p1, func(_, pkt []byte) { got = append(got, pkt[0]) })
	q.mu.Unlock()
	if !bytes.Equal(got, []byte{2, 4}) || q.len() != 0 {
		t.Fatalf("drained %v for p1 (want [2 4]), %d left", got, q.len())
	}
}

// TestHoldRacesInstall: packets flow while the SAs are installed; every
// packet is delivered or counted as dropped, none stays held.
func TestHoldRacesInstall(t *testing.T) {
	devA, devB := newChanDev(), newChanDev()
	devB.out = make(chan []byte, 1024)
	connA, connB := newChanConns(underA, underB)
	A, B := newSides(t, devA, devB, connA, connB)
	A.a.RemoveSAs(underB)
	B.a.RemoveSAs(underA)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go A.a.Run(ctx)
	go B.a.Run(ctx)
	cfg := esp.Config{Mode: esp.Tunnel, Encap: esp.Encap{Type: esp.EncapUDP, SrcPort: 4500, DstPort: 4500}}
	aOut, aIn, bOut, bIn := esptest.Peers(t, cfg, 0x8008, 0x9009)
	if err := B.a.Install(underA, bIn, bOut); err != nil {
		t.Fatal(err)
	}
	const total = 200
	go func() {
		for i := range total {
			devA.in <- ip4(innerA, innerB, 100)
			if i == total/2 {
				if err := A.a.Install(underB, aIn, aOut); err != nil {
					t.Error(err)
				}
			}
		}
	}()
	delivered := 0
	deadline := time.After(10 * time.Second)
	for {
		st := A.a.Stats()
		if delivered+int(st.TxDropped(drop.NoSA)) == total {
			break
		}
		select {
		case <-devB.out:
			delivered++
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("delivered %d, dropped %d of %d; held now %d; A %+v", delivered, st.TxDropped(drop.NoSA), total, A.a.hold.len(), st)
		}
	}
	if A.a.hold.len() != 0 || delivered < total/2 {
		t.Fatalf("delivered %d of %d, %d still held", delivered, total, A.a.hold.len())
	}
}

// TestDropNamesMatchESPHook: the TUN attachment names its drops as the
// ESP hook does (drop_expired for a closed SA, drop_replay for a replay),
// not with names of its own (it said "lifetime" and "replay").
func TestDropNamesMatchESPHook(t *testing.T) {
	A, B := newSides(t, nil, nil, nil, nil)
	d := A.seal(t, ip4(innerA, innerB, 100))[0].Buf
	B.open(t, underA, d)
	B.open(t, underA, d)
	A.table.Outbound(underB).Close()
	A.seal(t, ip4(innerA, innerB, 100))
	tx, rx := A.a.Stats().TxDrops.Map(), B.a.Stats().RxDrops.Map()
	if len(tx) != 1 || tx["drop_expired"] != 1 {
		t.Errorf("tx drops %v, want drop_expired=1", tx)
	}
	if len(rx) != 1 || rx["drop_replay"] != 1 {
		t.Errorf("rx drops %v, want drop_replay=1", rx)
	}
}
