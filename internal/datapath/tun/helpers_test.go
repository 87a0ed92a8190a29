// helpers_test.go: packets, SAs and in-memory devices and sockets for the
// unit tests and benchmarks.

package tun

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"testing"

	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/esp/esptest"
)

var (
	underA = netip.MustParseAddr("192.0.2.1")
	underB = netip.MustParseAddr("192.0.2.2")
	innerA = netip.MustParseAddr("203.0.113.1")
	innerB = netip.MustParseAddr("203.0.113.2")
	netA   = netip.MustParsePrefix("203.0.113.1/32")
	netB   = netip.MustParsePrefix("203.0.113.2/32")
)

const (
	spiAB esp.SPI = 0x1001
	spiBA esp.SPI = 0x2002
)

// ip4 builds an IPv4/UDP packet of total length n (at least 28).
func ip4(src, dst netip.Addr, n int) []byte {
	p := make([]byte, n)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:4], uint16(n))
	p[8] = 64
	p[9] = 17
	s, d := src.As4(), dst.As4()
	copy(p[12:16], s[:])
	copy(p[16:20], d[:])
	binary.BigEndian.PutUint16(p[20:22], 5000)
	binary.BigEndian.PutUint16(p[22:24], 5001)
	binary.BigEndian.PutUint16(p[24:26], uint16(n-20))
	for i := 28; i < n; i++ {
		p[i] = byte(i)
	}
	return p
}

// ip6 builds an IPv6/UDP packet of total length n (at least 48).
func ip6(src, dst netip.Addr, n int) []byte {
	p := make([]byte, n)
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:6], uint16(n-40))
	p[6] = 17
	p[7] = 64
	s, d := src.As16(), dst.As16()
	copy(p[8:24], s[:])
	copy(p[24:40], d[:])
	return p
}

// nopDev and nopConn satisfy the interfaces for tests that call the batch
// functions directly.
type nopDev struct{}

func (nopDev) Read([][]byte, []int, int) (int, error) { return 0, errors.New("nop") }
func (nopDev) Write(b [][]byte, _ int) (int, error)   { return len(b), nil }
func (nopDev) BatchSize() int                         { return 128 }
func (nopDev) Close() error                           { return nil }

// recDev is a device whose writes are recorded (copied) if record is set.
type recDev struct {
	nopDev
	record bool
	got    [][]byte
}

func (d *recDev) Write(bufs [][]byte, off int) (int, error) {
	if d.record {
		for _, b := range bufs {
			d.got = append(d.got, append([]byte(nil), b[off:]...))
		}
	}
	return len(bufs), nil
}

type nopConn struct{}

func (nopConn) ReadBatch([]Message) (int, error)    { return 0, errors.New("nop") }
func (nopConn) WriteBatch(m []Message) (int, error) { return len(m), nil }
func (nopConn) Close() error                        { return nil }

// side is one end of a two-host setup: its attachment and table.
type side struct {
	a     *Attachment
	table *esp.Table
	under netip.Addr
	dev   *recDev // the device, unless the test gave one
}

// newSides builds hosts A and B (A: 203.0.113.1 behind 192.0.2.1, B:
// 203.0.113.2 behind 192.0.2.2) with installed tunnel-mode SAs, over the
// given devices and conns (nil: a recording device, a no-op conn).
func newSides(tb testing.TB, devA, devB Device, connA, connB Conn) (A, B *side) {
	tb.Helper()
	return newSidesCfg(tb, nil, devA, devB, connA, connB)
}

// newSidesCfg is newSides with modA applied to A's Config.
func newSidesCfg(tb testing.TB, modA func(*Config), devA, devB Device, connA, connB Conn) (A, B *side) {
	tb.Helper()
	cfg := esp.Config{Mode: esp.Tunnel, Encap: esp.Encap{Type: esp.EncapUDP, SrcPort: 4500, DstPort: 4500}}
	aOut, aIn, bOut, bIn := esptest.Peers(tb, cfg, spiAB, spiBA)
	mk := func(dev Device, conn Conn, under, peer netip.Addr, remote netip.Prefix, in, out *esp.SA, mod func(*Config)) *side {
		var rd *recDev
		if dev == nil {
			rd = &recDev{record: true}
			dev = rd
		}
		if conn == nil {
			conn = nopConn{}
		}
		table := esp.NewTable(nil)
		cfg := Config{Device: dev, Conn: conn, Table: table, Peers: []Peer{{Addr: peer, Remote: []netip.Prefix{remote}}}}
		if mod != nil {
			mod(&cfg)
		}
		a, err := New(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		if err := a.Install(peer, in, out); err != nil {
			tb.Fatal(err)
		}
		return &side{a: a, table: table, under: under, dev: rd}
	}
	return mk(devA, connA, underA, underB, netB, aIn, aOut, modA), mk(devB, connB, underB, underA, netA, bIn, bOut, nil)
}

// seal puts pkts into s's transmit buffers and seals them; it returns the
// datagrams (copies) and their destinations.
func (s *side) seal(tb testing.TB, pkts ...[]byte) []Message {
	tb.Helper()
	t := s.a.tx
	for i, p := range pkts {
		t.sizes[i] = copy(t.bufs[i][txOffset:], p)
	}
	k := s.a.sealBatch(t, len(pkts))
	s.a.txc.add(&t.c)
	out := make([]Message, k)
	for i := range k {
		out[i] = Message{Buf: append([]byte(nil), t.msgs[i].Buf...), Addr: t.msgs[i].Addr}
	}
	return out
}

// open delivers datagrams from `from` to s and returns the inner packets
// it would write to the device (copies).
func (s *side) open(tb testing.TB, from netip.Addr, dgrams ...[]byte) [][]byte {
	tb.Helper()
	r := s.a.rx
	for i, d := range dgrams {
		r.msgs[i].N = copy(r.rbufs[i], d)
		r.msgs[i].Seg = 0
		r.msgs[i].Addr = netip.AddrPortFrom(from, 4500)
	}
	s.dev.got = nil
	s.a.openBatch(r, len(dgrams))
	s.a.rxc.add(&r.c)
	return s.dev.got
}

// chanDev is a device fed and drained through channels, for Run tests.
type chanDev struct {
	in, out chan []byte
	done    chan struct{}
	once    sync.Once
}

func newChanDev() *chanDev {
	return &chanDev{in: make(chan []byte, 256), out: make(chan []byte, 256), done: make(chan struct{})}
}

func (d *chanDev) Read(bufs [][]byte, sizes []int, off int) (int, error) {
	select {
	case p := <-d.in:
		sizes[0] = copy(bufs[0][off:], p)
	case <-d.done:
		return 0, errors.New("closed")
	}
	n := 1
	for ; n < len(bufs); n++ {
		select {
		case p := <-d.in:
			sizes[n] = copy(bufs[n][off:], p)
		default:
			return n, nil
		}
	}
	return n, nil
}

func (d *chanDev) Write(bufs [][]byte, off int) (int, error) {
	for _, b := range bufs {
		select {
		case d.out <- append([]byte(nil), b[off:]...):
		case <-d.done:
			return 0, errors.New("closed")
		}
	}
	return len(bufs), nil
}

func (d *chanDev) BatchSize() int { return 8 }
func (d *chanDev) Close() error   { d.once.Do(func() { close(d.done) }); return nil }

// chanConn is one end of an in-memory underlay: datagrams written to it
// arrive at peer, from local.
type chanConn struct {
	local netip.AddrPort
	peer  *chanConn
	in    chan Message
	done  chan struct{}
	once  sync.Once
}

func newChanConns(a, b netip.Addr) (*chanConn, *chanConn) {
	ca := &chanConn{local: netip.AddrPortFrom(a, 4500), in: make(chan Message, 256), done: make(chan struct{})}
	cb := &chanConn{local: netip.AddrPortFrom(b, 4500), in: make(chan Message, 256), done: make(chan struct{})}
	ca.peer, cb.peer = cb, ca
	return ca, cb
}

func (c *chanConn) ReadBatch(msgs []Message) (int, error) {
	select {
	case m := <-c.in:
		msgs[0].N = copy(msgs[0].Buf, m.Buf)
		msgs[0].Addr = m.Addr
	case <-c.done:
		return 0, errors.New("closed")
	}
	return 1, nil
}

func (c *chanConn) WriteBatch(msgs []Message) (int, error) {
	for _, m := range msgs {
		if m.Addr.Addr() != c.peer.local.Addr() {
			continue // nowhere to go
		}
		select {
		case c.peer.in <- Message{Buf: append([]byte(nil), m.Buf...), Addr: c.local}:
		case <-c.done:
			return 0, errors.New("closed")
		}
	}
	return len(msgs), nil
}

func (c *chanConn) Close() error { c.once.Do(func() { close(c.done) }); return nil }

// recConn records (copies) what is written to it.
type recConn struct {
	nopConn
	got []Message
}

func (c *recConn) WriteBatch(msgs []Message) (int, error) {
	for _, m := range msgs {
		c.got = append(c.got, Message{Buf: append([]byte(nil), m.Buf...), Addr: m.Addr})
	}
	return len(msgs), nil
}
