// An in-memory datagram network for engine tests: deterministic, with
// packet filters to drop, duplicate or capture traffic.

package ike

import (
	"net"
	"net/netip"
	"sync"
)

type memNet struct {
	mu     sync.Mutex
	eps    map[netip.AddrPort]*memConn
	nat    map[netip.AddrPort]netip.AddrPort            // private -> public source
	rnat   map[netip.AddrPort]netip.AddrPort            // public -> private destination
	filter func(from, to netip.AddrPort, b []byte) bool // false drops
	log    []memPacket
}

type memPacket struct {
	from, to netip.AddrPort
	b        []byte
}

func newMemNet() *memNet {
	return &memNet{eps: map[netip.AddrPort]*memConn{}, nat: map[netip.AddrPort]netip.AddrPort{}, rnat: map[netip.AddrPort]netip.AddrPort{}}
}

// addNAT makes packets from priv appear to come from pub, and packets to
// pub go to priv (a port-mapping NAT in front of priv).
func (n *memNet) addNAT(priv, pub netip.AddrPort) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nat[priv] = pub
	n.rnat[pub] = priv
}

type memConn struct {
	n      *memNet
	addr   netip.Addr
	ports  [2]uint16
	queues [2]chan memPacket
	done   chan struct{}
	once   sync.Once
}

func (n *memNet) conn(addr netip.Addr, ike, natt uint16) *memConn {
	c := &memConn{n: n, addr: addr, ports: [2]uint16{ike, natt}, done: make(chan struct{})}
	for i := range c.queues {
		c.queues[i] = make(chan memPacket, 256)
	}
	n.mu.Lock()
	n.eps[netip.AddrPortFrom(addr, ike)] = c
	n.eps[netip.AddrPortFrom(addr, natt)] = c
	n.mu.Unlock()
	return c
}

func (c *memConn) ReadFrom(p Port, b []byte) (int, netip.AddrPort, error) {
	select {
	case pkt := <-c.queues[p]:
		return copy(b, pkt.b), pkt.from, nil
	case <-c.done:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

func (c *memConn) WriteTo(p Port, b []byte, dst netip.AddrPort) error {
	from := netip.AddrPortFrom(c.addr, c.ports[p])
	c.n.mu.Lock()
	if pub, ok := c.n.nat[from]; ok {
		from = pub
	}
	if priv, ok := c.n.rnat[dst]; ok {
		dst = priv
	}
	pkt := memPacket{from, dst, append([]byte(nil), b...)}
	f := c.n.filter
	c.n.log = append(c.n.log, pkt)
	to := c.n.eps[dst]
	c.n.mu.Unlock()
	if f != nil && !f(from, dst, b) {
		return nil
	}
	if to == nil {
		return nil
	}
	q := PortIKE
	if dst.Port() == to.ports[PortNATT] {
		q = PortNATT
	}
	select {
	case to.queues[q] <- pkt:
	default: // full: dropped like UDP
	}
	return nil
}

func (c *memConn) LocalPort(p Port) uint16 { return c.ports[p] }

func (c *memConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

func (n *memNet) setFilter(f func(from, to netip.AddrPort, b []byte) bool) {
	n.mu.Lock()
	n.filter = f
	n.mu.Unlock()
}

func (n *memNet) packets() []memPacket {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]memPacket(nil), n.log...)
}
