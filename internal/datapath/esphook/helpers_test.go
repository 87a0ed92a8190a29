package esphook

import (
	"context"
	"encoding/binary"
	"io"
	"net/netip"
	"sync"
	"testing"

	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/esp"
)

var (
	addrA = netip.MustParseAddr("198.51.100.1")
	addrB = netip.MustParseAddr("198.51.100.2")
	addrC = netip.MustParseAddr("198.51.100.3")
	macA  = []byte{0x02, 0, 0, 0, 0, 0x0a}
	macB  = []byte{0x02, 0, 0, 0, 0, 0x0b}
)

func key(seed byte) []byte {
	k := make([]byte, 20)
	for i := range k {
		k[i] = seed ^ byte(i*37)
	}
	return k
}

var udp4500 = esp.Encap{Type: esp.EncapUDP, SrcPort: esp.NATTPort, DstPort: esp.NATTPort}

// frame builds an Ethernet+IPv4 frame from src to dst carrying proto: for
// UDP a header with dport and payload bytes, for anything else the payload
// only. The IPv4 header checksum is valid.
func frame(src, dst netip.Addr, proto uint8, dport uint16, payload int) []byte {
	l4 := payload
	if proto == protoUDP {
		l4 += udpHeader
	}
	b := make([]byte, 14+ipv4MinHeader+l4)
	copy(b[0:6], macB)
	copy(b[6:12], macA)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(ipv4MinHeader+l4))
	binary.BigEndian.PutUint16(ip[4:], 0x1234)
	ip[6] = 0x40 // DF, as OVS sends tunnel packets
	ip[8] = 64
	ip[9] = proto
	s, d := src.As4(), dst.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip[:ipv4MinHeader]))
	body := ip[ipv4MinHeader:]
	if proto == protoUDP {
		binary.BigEndian.PutUint16(body[0:], 51000)
		binary.BigEndian.PutUint16(body[2:], dport)
		binary.BigEndian.PutUint16(body[4:], uint16(l4))
		body = body[udpHeader:]
	}
	for i := range body {
		body[i] = byte(i * 7)
	}
	return b
}

func checksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// fakeDev is an engine port that hands out queued batches, then io.EOF,
// and records what the loop writes.
type fakeDev struct {
	mu      sync.Mutex
	batches [][][]byte
	written [][]byte
}

func (d *fakeDev) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.batches) == 0 {
		return 0, io.EOF
	}
	b := d.batches[0]
	d.batches = d.batches[1:]
	n := 0
	for i, f := range b {
		if i >= len(bufs) {
			break
		}
		sizes[i] = copy(bufs[i], f)
		n++
	}
	return n, nil
}

func (d *fakeDev) WriteBatch(frames [][]byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range frames {
		d.written = append(d.written, append([]byte(nil), f...))
	}
	return len(frames), nil
}

func (d *fakeDev) Close() error { return nil }

func (d *fakeDev) take() [][]byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.written
	d.written = nil
	return w
}

// node is one host's hook behind a real ovsbridge.Loop on a fake port.
type node struct {
	t     testing.TB
	local netip.Addr
	h     *Hook
	dev   *fakeDev
	loop  *ovsbridge.Loop
}

func policies(peer netip.Addr, encap ovsbridge.Encap) []ovsbridge.Policy {
	return []ovsbridge.Policy{
		{PeerIP: peer, Proto: ovsbridge.ProtoGeneve, Encap: encap},
		{PeerIP: peer, Proto: ovsbridge.ProtoVXLAN, Encap: encap},
		{PeerIP: peer, Proto: ovsbridge.ProtoGRE, Encap: encap},
	}
}

func newNode(t testing.TB, local netip.Addr, ps []ovsbridge.Policy) *node {
	t.Helper()
	h := New(Config{})
	dev := &fakeDev{}
	l, err := ovsbridge.NewLoop(ovsbridge.LoopConfig{Device: dev, Hook: h, MaxFrame: 9000})
	if err != nil {
		t.Fatal(err)
	}
	h.SetReleaser(l)
	if err := h.SetPolicies(local, ps); err != nil {
		t.Fatal(err)
	}
	l.SetPeers(ps)
	return &node{t: t, local: local, h: h, dev: dev, loop: l}
}

// push runs the loop over one batch and returns what it wrote back.
func (n *node) push(frames ...[]byte) [][]byte {
	n.dev.mu.Lock()
	n.dev.batches = append(n.dev.batches, frames)
	n.dev.mu.Unlock()
	if err := n.loop.Run(context.Background()); err == nil {
		n.t.Fatal("loop ended without the fake port's EOF")
	}
	return n.dev.take()
}

// pairAB returns two nodes with static SAs between them (spi 0x1001 a->b,
// 0x2002 b->a).
func pairAB(t testing.TB, encap ovsbridge.Encap) (a, b *node) {
	t.Helper()
	a = newNode(t, addrA, policies(addrB, encap))
	b = newNode(t, addrB, policies(addrA, encap))
	var e esp.Encap
	if encap == ovsbridge.EncapUDP4500 {
		e = udp4500
	}
	if err := a.h.InstallStatic(addrB, StaticSA{InSPI: 0x2002, OutSPI: 0x1001, InKey: key(2), OutKey: key(1), Encap: e}); err != nil {
		t.Fatal(err)
	}
	if err := b.h.InstallStatic(addrA, StaticSA{InSPI: 0x1001, OutSPI: 0x2002, InKey: key(1), OutKey: key(2), Encap: e}); err != nil {
		t.Fatal(err)
	}
	return a, b
}
