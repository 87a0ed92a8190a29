package tun

import (
	"net/netip"
	"testing"
)

// BenchmarkSealBatch seals a batch of 64 packets of 1400 bytes, as read from
// the device (fake), into datagrams for the underlay (not sent).
func BenchmarkSealBatch(b *testing.B) {
	A, _ := newSides(b, nil, nil, nil, nil)
	const n = 64
	pkt := ip4(innerA, innerB, 1400)
	b.SetBytes(n * int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		for i := range n {
			A.a.tx.sizes[i] = copy(A.a.tx.bufs[i][txOffset:], pkt)
		}
		if A.a.sealBatch(A.a.tx, n) != n {
			b.Fatal("lost packets")
		}
		A.a.txc.add(&A.a.tx.c)
	}
}

// BenchmarkSealOpenBatch seals a batch of 64 packets of 1400 bytes on one
// side and opens it on the other (fake device and fake socket: the cost of
// the per-batch processing without system calls).
func BenchmarkSealOpenBatch(b *testing.B) {
	A, B := newSides(b, nil, nil, nil, nil)
	B.dev.record = false
	const n = 64
	pkt := ip4(innerA, innerB, 1400)
	b.SetBytes(n * int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		for i := range n {
			A.a.tx.sizes[i] = copy(A.a.tx.bufs[i][txOffset:], pkt)
		}
		k := A.a.sealBatch(A.a.tx, n)
		for i := range k {
			B.a.rx.msgs[i].N = copy(B.a.rx.rbufs[i], A.a.tx.msgs[i].Buf)
		}
		if B.a.openBatch(B.a.rx, k); B.a.rx.c.packets != n {
			b.Fatal("lost packets")
		}
		A.a.txc.add(&A.a.tx.c)
		B.a.rxc.add(&B.a.rx.c)
	}
}

// benchDev is a device whose every Read returns the same batch of packets
// and whose writes are only counted; nothing is allocated.
type benchDev struct {
	pkt     []byte
	batch   int
	written int
}

func (d *benchDev) Read(bufs [][]byte, sizes []int, off int) (int, error) {
	n := min(d.batch, len(bufs))
	for i := range n {
		sizes[i] = copy(bufs[i][off:], d.pkt)
	}
	return n, nil
}
func (d *benchDev) Write(bufs [][]byte, _ int) (int, error) {
	d.written += len(bufs)
	return len(bufs), nil
}
func (d *benchDev) BatchSize() int { return d.batch }
func (d *benchDev) Close() error   { return nil }

// benchConn is an underlay whose writes are copied into preallocated slots
// that the peer's reads return.
type benchConn struct {
	from  netip.AddrPort
	peer  *benchConn
	slots [][]byte
	lens  []int
	n     int
}

func newBenchConns(batch int) (*benchConn, *benchConn) {
	mk := func(from netip.Addr) *benchConn {
		c := &benchConn{from: netip.AddrPortFrom(from, 4500), slots: make([][]byte, batch), lens: make([]int, batch)}
		for i := range c.slots {
			c.slots[i] = make([]byte, 2048)
		}
		return c
	}
	a, b := mk(underA), mk(underB)
	a.peer, b.peer = b, a
	return a, b
}

func (c *benchConn) WriteBatch(msgs []Message) (int, error) {
	p := c.peer
	for i, m := range msgs {
		p.lens[i] = copy(p.slots[i], m.Buf)
	}
	p.n = len(msgs)
	return len(msgs), nil
}

func (c *benchConn) ReadBatch(msgs []Message) (int, error) {
	n := min(c.n, len(msgs))
	for i := range n {
		msgs[i].N = copy(msgs[i].Buf, c.slots[i][:c.lens[i]])
		msgs[i].Seg = 0
		msgs[i].Addr = c.peer.from
	}
	c.n = 0
	return n, nil
}
func (c *benchConn) Close() error { return nil }

// BenchmarkStep runs one full outbound step on A (device read, seal,
// underlay write) and one full inbound step on B (underlay read, open,
// policy, device write) per iteration: 64 packets of 1400 bytes, through
// the Device and Conn interfaces, with fakes that allocate nothing.
func BenchmarkStep(b *testing.B) {
	const n = 64
	devA, devB := &benchDev{pkt: ip4(innerA, innerB, 1400), batch: n}, &benchDev{batch: n}
	connA, connB := newBenchConns(n)
	A, B := newSides(b, devA, devB, connA, connB)
	b.SetBytes(n * 1400)
	b.ReportAllocs()
	for b.Loop() {
		if err := A.a.txStep(); err != nil {
			b.Fatal(err)
		}
		if err := B.a.rxStep(); err != nil {
			b.Fatal(err)
		}
	}
	if devB.written != b.N*n && b.N > 0 {
		b.Fatalf("%d packets written to B's device, want %d; %+v", devB.written, b.N*n, B.a.Stats())
	}
}
