// ip4.go: IPv4 framing around ESP: transport mode (the IP header is kept and
// its payload protected), tunnel mode (a whole inner packet behind a new
// outer header), ESP-in-UDP (RFC 3948) and telling ESP from IKE on port 4500.

package esp

import (
	"encoding/binary"
	"net/netip"
)

// IP protocol numbers.
const (
	ProtoIPv4 = 4
	ProtoUDP  = 17
	ProtoIPv6 = 41
	ProtoESP  = 50
	ProtoNone = 59
)

const ipv4MinHeader = 20

// ipv4 validates an IPv4 header and returns its length and the packet's
// total length (trailing link-layer padding beyond it is ignored).
func ipv4(pkt []byte) (ihl, total int, ok bool) {
	if len(pkt) < ipv4MinHeader || pkt[0]>>4 != 4 {
		return 0, 0, false
	}
	ihl = int(pkt[0]&0x0f) * 4
	total = int(binary.BigEndian.Uint16(pkt[2:4]))
	if ihl < ipv4MinHeader || total < ihl || total > len(pkt) {
		return 0, 0, false
	}
	return ihl, total, true
}

func isFragment(hdr []byte) bool {
	return binary.BigEndian.Uint16(hdr[6:8])&0x3fff != 0 // MF or offset
}

// setIPv4 fixes protocol, total length and header checksum of hdr.
func setIPv4(hdr []byte, proto byte, total int) {
	hdr[9] = proto
	binary.BigEndian.PutUint16(hdr[2:4], uint16(total))
	hdr[10], hdr[11] = 0, 0
	binary.BigEndian.PutUint16(hdr[10:12], ipv4Checksum(hdr))
}

// ipv4Checksum is the Internet checksum (RFC 1071) of an IPv4 header.
func ipv4Checksum(hdr []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(hdr); i += 2 {
		sum += uint32(hdr[i])<<8 | uint32(hdr[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// putUDP writes the ESP-in-UDP header (RFC 3948 §2.1: checksum 0).
func (sa *SA) putUDP(b []byte, espLen int) {
	binary.BigEndian.PutUint16(b[0:2], sa.encap.SrcPort)
	binary.BigEndian.PutUint16(b[2:4], sa.encap.DstPort)
	binary.BigEndian.PutUint16(b[4:6], uint16(UDPHeaderLen+espLen))
	b[6], b[7] = 0, 0
}

// TransportHeadroom is the space SealTransport4 needs in front of the IPv4
// packet to seal in place: Headroom plus the UDP header if encapsulated.
func (sa *SA) TransportHeadroom() int { return Headroom + sa.encap.Len() }

// SealTransport4 protects an IPv4 packet in transport mode: the header is
// kept (protocol set to ESP, or UDP with encapsulation; length and checksum
// fixed) and the rest becomes the ESP payload. The result is written to dst,
// whose capacity must be at least len(pkt)+sa.TransportHeadroom()+
// MaxTailroom. To seal in place, read the packet into dst at
// dst[sa.TransportHeadroom():]; only its header then moves. pkt may also
// start anywhere before that in dst, or lie outside dst. Fragments are
// refused (ESP applies to whole datagrams). On error pkt is unchanged, so
// the caller may retry with another SA.
func (sa *SA) SealTransport4(dst, pkt []byte) ([]byte, error) {
	if sa.mode != Transport {
		sa.c.dropPolicy.Add(1)
		return nil, ErrPolicy
	}
	ihl, total, ok := ipv4(pkt)
	if !ok {
		sa.c.dropMalformed.Add(1)
		return nil, ErrNotIPv4
	}
	if isFragment(pkt) {
		sa.c.dropPolicy.Add(1)
		return nil, ErrFragment
	}
	enc := sa.encap.Len()
	plen := total - ihl
	if cap(dst) < ihl+enc+SealedLen(plen) {
		return nil, ErrShortBuffer
	}
	// Keep the header aside: in place, Seal's ESP header overwrites it.
	var hdr [60]byte
	copy(hdr[:ihl], pkt[:ihl])
	dst = dst[:cap(dst)]
	esp, err := sa.Seal(dst[ihl+enc:], pkt[ihl:total], pkt[9])
	if err != nil {
		return nil, err // pkt is unchanged: Seal fails before writing
	}
	copy(dst[:ihl], hdr[:ihl])
	outer := ProtoESP
	if enc != 0 {
		sa.putUDP(dst[ihl:], len(esp))
		outer = ProtoUDP
	}
	n := ihl + enc + len(esp)
	setIPv4(dst[:ihl], byte(outer), n)
	return dst[:n], nil
}

// OpenTransport4 opens a transport-mode IPv4 ESP packet in place (pkt as
// received, ESP or ESP-in-UDP) and returns the original packet, which
// aliases pkt (its header moved next to the decrypted payload).
func (sa *SA) OpenTransport4(pkt []byte) ([]byte, error) {
	if sa.mode != Transport {
		sa.c.dropPolicy.Add(1)
		return nil, ErrPolicy
	}
	ihl, off, total, err := sa.espOffset4(pkt)
	if err != nil {
		return nil, err
	}
	pt, nh, err := sa.Open(nil, pkt[off:total])
	if err != nil {
		return nil, err
	}
	start := off + Headroom - ihl
	copy(pkt[start:start+ihl], pkt[:ihl])
	n := ihl + len(pt)
	setIPv4(pkt[start:start+ihl], nh, n)
	return pkt[start : start+n], nil
}

// espOffset4 finds the ESP header inside an IPv4 packet and checks that
// its encapsulation matches the SA's.
func (sa *SA) espOffset4(pkt []byte) (ihl, off, total int, err error) {
	ihl, total, ok := ipv4(pkt)
	if !ok {
		sa.c.dropMalformed.Add(1)
		return 0, 0, 0, ErrNotIPv4
	}
	if isFragment(pkt) {
		// Reassembly is the caller's job (RFC 4303 §3.4.1).
		sa.c.dropMalformed.Add(1)
		return 0, 0, 0, ErrFragment
	}
	off, kind := espIn4(pkt, ihl, total)
	switch {
	case kind != KindESP:
		sa.c.dropMalformed.Add(1)
		return 0, 0, 0, ErrNotESP
	case (off > ihl) != (sa.encap.Type == EncapUDP):
		sa.c.dropPolicy.Add(1)
		return 0, 0, 0, ErrPolicy
	}
	return ihl, off, total, nil
}

// espIn4 locates ESP in a validated IPv4 packet: right after the header
// (protocol 50) or after a UDP header on port 4500 (RFC 3948).
func espIn4(pkt []byte, ihl, total int) (off int, kind Kind) {
	switch pkt[9] {
	case ProtoESP:
		if total-ihl < HeaderLen {
			return 0, KindInvalid
		}
		return ihl, KindESP
	case ProtoUDP:
		if total-ihl < UDPHeaderLen || binary.BigEndian.Uint16(pkt[ihl+2:ihl+4]) != NATTPort {
			return 0, KindInvalid
		}
		return ihl + UDPHeaderLen, Classify4500(pkt[ihl+UDPHeaderLen : total])
	}
	return 0, KindInvalid
}

// Outer4 is the outer IPv4 header of a tunnel-mode packet.
type Outer4 struct {
	Src, Dst netip.Addr
	TTL      uint8 // 0 means 64
	TOS      uint8
	ID       uint16
	DF       bool
}

// TunnelHeadroom4 is the space SealTunnel4 needs in front of the inner
// packet to seal in place: outer header, UDP header if any, ESP header.
func (sa *SA) TunnelHeadroom4() int { return ipv4MinHeader + sa.encap.Len() + Headroom }

// SealTunnel4 protects a whole inner IPv4 or IPv6 packet in tunnel mode
// behind the outer IPv4 header o. dst's capacity must be at least
// len(inner)+sa.TunnelHeadroom4()+MaxTailroom; to seal in place, put inner
// at dst[sa.TunnelHeadroom4():].
func (sa *SA) SealTunnel4(dst, inner []byte, o Outer4) ([]byte, error) {
	if sa.mode != Tunnel || !o.Src.Is4() || !o.Dst.Is4() {
		sa.c.dropPolicy.Add(1)
		return nil, ErrPolicy
	}
	nh, ok := innerProto(inner)
	if !ok {
		sa.c.dropMalformed.Add(1)
		return nil, ErrNotIP
	}
	enc := sa.encap.Len()
	hl := ipv4MinHeader + enc
	if cap(dst) < hl+SealedLen(len(inner)) {
		return nil, ErrShortBuffer
	}
	esp, err := sa.Seal(dst[hl:cap(dst)], inner, nh)
	if err != nil {
		return nil, err
	}
	out := dst[:hl+len(esp)]
	h := out[:ipv4MinHeader]
	h[0] = 0x45
	h[1] = o.TOS
	binary.BigEndian.PutUint16(h[4:6], o.ID)
	h[6], h[7] = 0, 0
	if o.DF {
		h[6] = 0x40
	}
	h[8] = o.TTL
	if h[8] == 0 {
		h[8] = 64
	}
	src, dstIP := o.Src.As4(), o.Dst.As4()
	copy(h[12:16], src[:])
	copy(h[16:20], dstIP[:])
	proto := byte(ProtoESP)
	if enc != 0 {
		sa.putUDP(out[ipv4MinHeader:], len(esp))
		proto = ProtoUDP
	}
	setIPv4(h, proto, len(out))
	return out, nil
}

// OpenTunnel4 opens a tunnel-mode ESP packet with an outer IPv4 header in
// place and returns the inner IP packet, which aliases pkt. TFC padding
// after the inner packet (RFC 4303 §2.7) is trimmed.
func (sa *SA) OpenTunnel4(pkt []byte) ([]byte, error) {
	if sa.mode != Tunnel {
		sa.c.dropPolicy.Add(1)
		return nil, ErrPolicy
	}
	_, off, total, err := sa.espOffset4(pkt)
	if err != nil {
		return nil, err
	}
	pt, nh, err := sa.Open(nil, pkt[off:total])
	if err != nil {
		return nil, err
	}
	return sa.innerPacket(pt, nh)
}

// Kind is what a UDP datagram on port 4500 carries.
type Kind uint8

const (
	KindInvalid   Kind = iota // too short or otherwise not usable
	KindESP                   // ESP packet (non-zero SPI)
	KindIKE                   // IKE message after the 4-byte non-ESP marker
	KindKeepalive             // NAT-keepalive, one 0xff byte (RFC 3948 §2.3)
)

func (k Kind) String() string {
	switch k {
	case KindESP:
		return "esp"
	case KindIKE:
		return "ike"
	case KindKeepalive:
		return "nat-keepalive"
	}
	return "invalid"
}

// Classify4500 tells what a UDP payload received on port 4500 is (RFC 3948
// §2.2): a NAT-keepalive (single 0xff byte), IKE (starts with the non-ESP
// marker, four zero bytes, where an SPI of 0 cannot appear) or ESP (an
// SPI and sequence number at least).
func Classify4500(b []byte) Kind {
	switch {
	case len(b) == 1 && b[0] == 0xff:
		return KindKeepalive
	case len(b) >= 4 && b[0]|b[1]|b[2]|b[3] == 0:
		return KindIKE
	case len(b) >= HeaderLen:
		return KindESP
	}
	return KindInvalid
}

// OpenIPv4 is the receive path for an IPv4 packet carrying ESP (protocol 50
// or UDP 4500): it finds the SA by SPI and opens the packet in place in the
// SA's mode, returning the decrypted IPv4 packet (transport) or inner IP
// packet (tunnel), which aliases pkt. IKE messages and NAT-keepalives on
// port 4500 return ErrNotESP without being counted as drops; callers that
// serve IKE classify with Classify4500 first.
func (t *Table) OpenIPv4(pkt []byte) ([]byte, *SA, error) {
	ihl, total, ok := ipv4(pkt)
	if !ok {
		t.malformed.Add(1)
		return nil, nil, ErrNotIPv4
	}
	off, kind := espIn4(pkt, ihl, total)
	switch kind {
	case KindESP:
	case KindIKE, KindKeepalive:
		return nil, nil, ErrNotESP // not ours to count: IKE's traffic
	default:
		t.malformed.Add(1)
		return nil, nil, ErrNotESP
	}
	sa := t.Inbound(SPI(binary.BigEndian.Uint32(pkt[off : off+4])))
	if sa == nil {
		t.noSA.Add(1)
		return nil, nil, ErrNoSA
	}
	var out []byte
	var err error
	if sa.mode == Transport {
		out, err = sa.OpenTransport4(pkt)
	} else {
		out, err = sa.OpenTunnel4(pkt)
	}
	return out, sa, err
}
