// Frame parsing stage: the engine port receives raw Ethernet frames from
// OVS; this file reads just enough of them (Ethernet, one optional VLAN tag,
// IPv4 or IPv6, UDP ports) to tell the direction and the peer. It never
// allocates and never trusts a length field it has not checked.

package ovsbridge

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// Ethernet and IP constants.
const (
	ethHeader     = 14
	vlanTag       = 4
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
	etherTypeVLAN = 0x8100
	etherTypeQinQ = 0x88a8
	protoUDP      = 17
)

// Parse errors. They are values so the packet loop can count them without
// allocating.
var (
	ErrShortFrame  = errors.New("frame shorter than its headers")
	ErrNotIP       = errors.New("frame is not IPv4 or IPv6")
	ErrBadIPHeader = errors.New("malformed IP header")
	ErrBadIPLength = errors.New("IP length exceeds the frame")
)

// Info is what the packet loop needs to know about one frame.
type Info struct {
	L3       int // offset of the IP header in the frame
	L3Len    int // IP total length (header + payload) as stated by the header
	Src, Dst netip.Addr
	Proto    uint8 // IPv4 protocol / IPv6 next header
	// Fragment is true for every fragment of a fragmented IPv4 packet;
	// Later is true for fragments other than the first (they carry no L4
	// header, so SrcPort/DstPort are 0).
	Fragment, Later  bool
	SrcPort, DstPort uint16 // UDP only
}

// ParseFrame reads the headers of an Ethernet frame carrying IPv4 or IPv6.
func ParseFrame(b []byte) (Info, error) {
	var in Info
	if len(b) < ethHeader {
		return in, ErrShortFrame
	}
	off := 12
	et := binary.BigEndian.Uint16(b[off:])
	off += 2
	for i := 0; i < 2 && (et == etherTypeVLAN || et == etherTypeQinQ); i++ {
		if len(b) < off+vlanTag {
			return in, ErrShortFrame
		}
		et = binary.BigEndian.Uint16(b[off+2:])
		off += vlanTag
	}
	in.L3 = off
	switch et {
	case etherTypeIPv4:
		return parseIPv4(b, in)
	case etherTypeIPv6:
		return parseIPv6(b, in)
	}
	return in, ErrNotIP
}

func parseIPv4(b []byte, in Info) (Info, error) {
	h := b[in.L3:]
	if len(h) < ipv4Header {
		return in, ErrShortFrame
	}
	if h[0]>>4 != 4 {
		return in, ErrBadIPHeader
	}
	ihl := int(h[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(h[2:]))
	if ihl < ipv4Header || total < ihl {
		return in, ErrBadIPHeader
	}
	if total > len(h) {
		return in, ErrBadIPLength
	}
	in.L3Len = total
	in.Proto = h[9]
	in.Src = netip.AddrFrom4([4]byte(h[12:16]))
	in.Dst = netip.AddrFrom4([4]byte(h[16:20]))
	frag := binary.BigEndian.Uint16(h[6:])
	offset := frag & 0x1fff
	more := frag&0x2000 != 0
	in.Fragment = more || offset != 0
	in.Later = offset != 0
	if in.Proto == protoUDP && !in.Later {
		parseUDP(h[ihl:total], &in)
	}
	return in, nil
}

func parseIPv6(b []byte, in Info) (Info, error) {
	h := b[in.L3:]
	if len(h) < ipv6Header {
		return in, ErrShortFrame
	}
	if h[0]>>4 != 6 {
		return in, ErrBadIPHeader
	}
	total := ipv6Header + int(binary.BigEndian.Uint16(h[4:]))
	if total > len(h) {
		return in, ErrBadIPLength
	}
	in.L3Len = total
	in.Proto = h[6]
	in.Src = netip.AddrFrom16([16]byte(h[8:24]))
	in.Dst = netip.AddrFrom16([16]byte(h[24:40]))
	if in.Proto == protoUDP {
		parseUDP(h[ipv6Header:total], &in)
	}
	return in, nil
}

func parseUDP(l4 []byte, in *Info) {
	if len(l4) < udpHeader {
		return
	}
	in.SrcPort = binary.BigEndian.Uint16(l4[0:])
	in.DstPort = binary.BigEndian.Uint16(l4[2:])
}
