// ip6.go: IPv6 framing around ESP: transport mode for packets without
// extension headers and tunnel mode behind a new outer IPv6 header. ESP-in-
// UDP is IPv4-only here (RFC 3948 NAT traversal).

package esp

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

const ipv6HeaderLen = 40

// ErrIPv6Unsupported reports an IPv6 packet this engine does not protect:
// one with extension headers (transport mode), a jumbogram, or an SA with
// UDP encapsulation.
var ErrIPv6Unsupported = errors.New("esp: IPv6 packet with extension headers, jumbogram or UDP encapsulation not supported")

// ipv6 validates an IPv6 header and returns the packet's total length
// (trailing link-layer padding is ignored).
func ipv6(pkt []byte) (total int, ok bool) {
	if len(pkt) < ipv6HeaderLen || pkt[0]>>4 != 6 {
		return 0, false
	}
	total = ipv6HeaderLen + int(binary.BigEndian.Uint16(pkt[4:6]))
	if total > len(pkt) {
		return 0, false
	}
	return total, true
}

// isExtHeader reports whether an IPv6 next header value is an extension
// header that transport-mode ESP would have to be inserted after or before.
func isExtHeader(nh byte) bool {
	switch nh {
	case 0, 43, 44, 51, 60, 135, 139, 140, 253, 254, ProtoESP:
		return true
	}
	return false
}

// SealTransport6 protects an IPv6 packet without extension headers in
// transport mode: the fixed header is kept (next header ESP, payload length
// fixed) and the rest becomes the ESP payload. Buffer rules are those of
// SealTransport4 (in place: pkt at dst[Headroom:]). On error pkt is
// unchanged.
func (sa *SA) SealTransport6(dst, pkt []byte) ([]byte, error) {
	if sa.mode != Transport {
		sa.c.dropPolicy.Add(1)
		return nil, ErrPolicy
	}
	total, ok := ipv6(pkt)
	if !ok {
		sa.c.dropMalformed.Add(1)
		return nil, ErrNotIPv6
	}
	if sa.encap.Type != EncapNone || isExtHeader(pkt[6]) {
		sa.c.dropPolicy.Add(1)
		return nil, ErrIPv6Unsupported
	}
	if cap(dst) < ipv6HeaderLen+SealedLen(total-ipv6HeaderLen) {
		return nil, ErrShortBuffer
	}
	var hdr [ipv6HeaderLen]byte
	copy(hdr[:], pkt[:ipv6HeaderLen])
	dst = dst[:cap(dst)]
	esp, err := sa.Seal(dst[ipv6HeaderLen:], pkt[ipv6HeaderLen:total], pkt[6])
	if err != nil {
		return nil, err
	}
	copy(dst[:ipv6HeaderLen], hdr[:])
	dst[6] = ProtoESP
	binary.BigEndian.PutUint16(dst[4:6], uint16(len(esp)))
	return dst[:ipv6HeaderLen+len(esp)], nil
}

// espOffset6 checks an IPv6 packet carries ESP right after its header.
func (sa *SA) espOffset6(pkt []byte) (total int, err error) {
	total, ok := ipv6(pkt)
	if !ok {
		sa.c.dropMalformed.Add(1)
		return 0, ErrNotIPv6
	}
	if pkt[6] != ProtoESP {
		sa.c.dropMalformed.Add(1)
		return 0, ErrNotESP
	}
	if sa.encap.Type != EncapNone {
		sa.c.dropPolicy.Add(1)
		return 0, ErrPolicy
	}
	return total, nil
}

// OpenTransport6 opens a transport-mode IPv6 ESP packet (ESP directly
// after the fixed header) in place and returns the original packet, which
// aliases pkt.
func (sa *SA) OpenTransport6(pkt []byte) ([]byte, error) {
	if sa.mode != Transport {
		sa.c.dropPolicy.Add(1)
		return nil, ErrPolicy
	}
	total, err := sa.espOffset6(pkt)
	if err != nil {
		return nil, err
	}
	pt, nh, err := sa.Open(nil, pkt[ipv6HeaderLen:total])
	if err != nil {
		return nil, err
	}
	if len(pt) > 0xffff {
		sa.c.dropMalformed.Add(1)
		return nil, ErrIPv6Unsupported
	}
	const start = Headroom
	copy(pkt[start:start+ipv6HeaderLen], pkt[:ipv6HeaderLen])
	h := pkt[start : start+ipv6HeaderLen]
	h[6] = nh
	binary.BigEndian.PutUint16(h[4:6], uint16(len(pt)))
	return pkt[start : start+ipv6HeaderLen+len(pt)], nil
}

// Outer6 is the outer IPv6 header of a tunnel-mode packet.
type Outer6 struct {
	Src, Dst     netip.Addr
	HopLimit     uint8 // 0 means 64
	TrafficClass uint8
	FlowLabel    uint32 // low 20 bits
}

// TunnelHeadroom6 is the space SealTunnel6 needs in front of the inner
// packet to seal in place.
func TunnelHeadroom6() int { return ipv6HeaderLen + Headroom }

// SealTunnel6 protects a whole inner IPv4 or IPv6 packet in tunnel mode
// behind the outer IPv6 header o. dst's capacity must be at least
// len(inner)+TunnelHeadroom6()+MaxTailroom; to seal in place, put inner at
// dst[TunnelHeadroom6():].
func (sa *SA) SealTunnel6(dst, inner []byte, o Outer6) ([]byte, error) {
	if sa.mode != Tunnel || !o.Src.Is6() || !o.Dst.Is6() || o.Src.Is4In6() || o.Dst.Is4In6() {
		sa.c.dropPolicy.Add(1)
		return nil, ErrPolicy
	}
	if sa.encap.Type != EncapNone {
		sa.c.dropPolicy.Add(1)
		return nil, ErrIPv6Unsupported
	}
	nh, ok := innerProto(inner)
	if !ok {
		sa.c.dropMalformed.Add(1)
		return nil, ErrNotIP
	}
	if cap(dst) < ipv6HeaderLen+SealedLen(len(inner)) {
		return nil, ErrShortBuffer
	}
	esp, err := sa.Seal(dst[ipv6HeaderLen:cap(dst)], inner, nh)
	if err != nil {
		return nil, err
	}
	if len(esp) > 0xffff {
		return nil, ErrIPv6Unsupported
	}
	h := dst[:ipv6HeaderLen]
	binary.BigEndian.PutUint32(h[0:4], 6<<28|uint32(o.TrafficClass)<<20|o.FlowLabel&0xfffff)
	binary.BigEndian.PutUint16(h[4:6], uint16(len(esp)))
	h[6] = ProtoESP
	h[7] = o.HopLimit
	if h[7] == 0 {
		h[7] = 64
	}
	src, d := o.Src.As16(), o.Dst.As16()
	copy(h[8:24], src[:])
	copy(h[24:40], d[:])
	return dst[:ipv6HeaderLen+len(esp)], nil
}

// OpenTunnel6 opens a tunnel-mode ESP packet with an outer IPv6 header in
// place and returns the inner IP packet, which aliases pkt.
func (sa *SA) OpenTunnel6(pkt []byte) ([]byte, error) {
	if sa.mode != Tunnel {
		sa.c.dropPolicy.Add(1)
		return nil, ErrPolicy
	}
	total, err := sa.espOffset6(pkt)
	if err != nil {
		return nil, err
	}
	pt, nh, err := sa.Open(nil, pkt[ipv6HeaderLen:total])
	if err != nil {
		return nil, err
	}
	return sa.innerPacket(pt, nh)
}

// innerProto returns the ESP next header for an inner IP packet.
func innerProto(inner []byte) (byte, bool) {
	switch {
	case len(inner) >= ipv4MinHeader && inner[0]>>4 == 4:
		return ProtoIPv4, true
	case len(inner) >= ipv6HeaderLen && inner[0]>>4 == 6:
		return ProtoIPv6, true
	}
	return 0, false
}

// innerPacket checks a decrypted tunnel-mode payload is an IP packet of the
// kind its next header says and trims TFC padding after it.
func (sa *SA) innerPacket(pt []byte, nh byte) ([]byte, error) {
	var n int
	switch {
	case nh == ProtoIPv4 && len(pt) >= ipv4MinHeader && pt[0]>>4 == 4:
		n = int(binary.BigEndian.Uint16(pt[2:4]))
		if n < ipv4MinHeader {
			sa.c.dropMalformed.Add(1)
			return nil, ErrTruncated
		}
	case nh == ProtoIPv6 && len(pt) >= ipv6HeaderLen && pt[0]>>4 == 6:
		n = ipv6HeaderLen + int(binary.BigEndian.Uint16(pt[4:6]))
	default:
		sa.c.dropPolicy.Add(1)
		return nil, ErrPolicy
	}
	if n > len(pt) {
		sa.c.dropMalformed.Add(1)
		return nil, ErrTruncated
	}
	return pt[:n], nil
}

// OpenIPv6 is the receive path for an IPv6 packet whose next header is ESP:
// it finds the SA by SPI and opens the packet in place in the SA's mode.
func (t *Table) OpenIPv6(pkt []byte) ([]byte, *SA, error) {
	total, ok := ipv6(pkt)
	if !ok {
		t.malformed.Add(1)
		return nil, nil, ErrNotIPv6
	}
	if pkt[6] != ProtoESP || total-ipv6HeaderLen < HeaderLen {
		t.malformed.Add(1)
		return nil, nil, ErrNotESP
	}
	sa := t.Inbound(SPI(binary.BigEndian.Uint32(pkt[ipv6HeaderLen : ipv6HeaderLen+4])))
	if sa == nil {
		t.noSA.Add(1)
		return nil, nil, ErrNoSA
	}
	var out []byte
	var err error
	if sa.mode == Transport {
		out, err = sa.OpenTransport6(pkt)
	} else {
		out, err = sa.OpenTunnel6(pkt)
	}
	return out, sa, err
}

// OpenIP dispatches on the IP version to OpenIPv4 or OpenIPv6.
func (t *Table) OpenIP(pkt []byte) ([]byte, *SA, error) {
	if len(pkt) > 0 && pkt[0]>>4 == 6 {
		return t.OpenIPv6(pkt)
	}
	return t.OpenIPv4(pkt)
}
