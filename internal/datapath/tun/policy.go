// policy.go: the attachment's security policy: which peer serves an inner
// destination (longest-prefix match over the peers' remote subnets), which
// peer an inbound SA belongs to, and whether a decrypted packet's inner
// source is allowed from that peer. A policy is immutable once published;
// changes build a new one (copy on write), so the packet path reads it with
// one atomic load per batch and no lock.

package tun

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/ovnsec/ovnsec/internal/esp"
)

// Peer is a remote tunnel end: its underlay address and the inner subnets
// behind it. Outbound packets to those subnets are sealed with the table's
// outbound SA for Addr; inbound packets opened with an SA bound to the peer
// must come from one of them.
type Peer struct {
	Addr   netip.Addr     // underlay IPv4 address; the key of esp.Table.Outbound
	Remote []netip.Prefix // inner IPv4/IPv6 subnets behind the peer
}

func (p Peer) String() string { return fmt.Sprintf("peer %v %v", p.Addr, p.Remote) }

type policy struct {
	peers  []Peer
	lens4  []int // distinct IPv4 prefix lengths, longest first
	lens6  []int
	routes map[netip.Prefix]int // masked prefix -> index into peers
	bySPI  map[esp.SPI]int      // inbound SPI -> index into peers
}

// newPolicy validates peers and builds their lookup tables. bind carries
// the SPI bindings (by peer address) over from the previous policy.
func newPolicy(peers []Peer, bind map[esp.SPI]netip.Addr) (*policy, error) {
	p := &policy{
		peers:  make([]Peer, len(peers)),
		routes: map[netip.Prefix]int{},
		bySPI:  map[esp.SPI]int{},
	}
	byAddr := map[netip.Addr]int{}
	for i, peer := range peers {
		if !peer.Addr.Is4() {
			return nil, fmt.Errorf("%v: underlay address must be IPv4 (ESP-in-UDP over IPv4)", peer)
		}
		if _, dup := byAddr[peer.Addr]; dup {
			return nil, fmt.Errorf("%v: peer listed twice; merge its subnets into one entry", peer)
		}
		byAddr[peer.Addr] = i
		if len(peer.Remote) == 0 {
			return nil, fmt.Errorf("%v: no remote subnets; give at least one", peer)
		}
		remote := make([]netip.Prefix, len(peer.Remote))
		for j, pfx := range peer.Remote {
			if !pfx.IsValid() {
				return nil, fmt.Errorf("%v: invalid remote subnet %v", peer, pfx)
			}
			pfx = pfx.Masked()
			if other, dup := p.routes[pfx]; dup {
				return nil, fmt.Errorf("%v: subnet %v already belongs to %v", peer, pfx, peers[other].Addr)
			}
			p.routes[pfx] = i
			remote[j] = pfx
			if pfx.Addr().Is4() {
				p.lens4 = append(p.lens4, pfx.Bits())
			} else {
				p.lens6 = append(p.lens6, pfx.Bits())
			}
		}
		p.peers[i] = Peer{Addr: peer.Addr, Remote: remote}
	}
	for _, l := range []*[]int{&p.lens4, &p.lens6} {
		slices.SortFunc(*l, func(a, b int) int { return cmp.Compare(b, a) })
		*l = slices.Compact(*l)
	}
	for spi, addr := range bind {
		if i, ok := byAddr[addr]; ok {
			p.bySPI[spi] = i
		}
	}
	return p, nil
}

// route returns the index of the peer whose subnet holds dst (longest
// prefix wins), or -1.
func (p *policy) route(dst netip.Addr) int {
	lens := p.lens4
	if !dst.Is4() {
		lens = p.lens6
	}
	for _, bits := range lens {
		pfx, err := dst.Prefix(bits)
		if err != nil {
			continue
		}
		if i, ok := p.routes[pfx]; ok {
			return i
		}
	}
	return -1
}

// allowed reports whether an inner source address may arrive through an
// SA bound to peer i.
func (p *policy) allowed(i int, src netip.Addr) bool {
	for _, pfx := range p.peers[i].Remote {
		if pfx.Contains(src) {
			return true
		}
	}
	return false
}

// innerAddrs returns the source and destination of an inner IP packet and
// its length from its header, or ok false if pkt is not a whole IPv4 or
// IPv6 packet.
func innerAddrs(pkt []byte) (src, dst netip.Addr, n int, ok bool) {
	if len(pkt) == 0 {
		return
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < 20 || pkt[0]&0x0f < 5 {
			return
		}
		n = int(binary.BigEndian.Uint16(pkt[2:4]))
		if n < int(pkt[0]&0x0f)*4 || n > len(pkt) {
			return
		}
		return netip.AddrFrom4([4]byte(pkt[12:16])), netip.AddrFrom4([4]byte(pkt[16:20])), n, true
	case 6:
		if len(pkt) < 40 {
			return
		}
		n = 40 + int(binary.BigEndian.Uint16(pkt[4:6]))
		if n > len(pkt) {
			return
		}
		return netip.AddrFrom16([16]byte(pkt[8:24])), netip.AddrFrom16([16]byte(pkt[24:40])), n, true
	}
	return
}
