// The Traffic Selector payloads TSi and TSr (RFC 7296 §3.13).

package message

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
)

// TrafficSelectors is the TSi or TSr payload.
type TrafficSelectors struct {
	Responder bool // TSr if set, TSi otherwise
	Selectors []Selector
}

// Selector is one traffic selector. For the IP range types Start and End
// are addresses of the matching family and Data is nil; selectors of other
// types keep their type-specific bytes (after the ports) in Data.
type Selector struct {
	Type       TSType
	IPProtocol uint8 // 0 = any
	StartPort  uint16
	EndPort    uint16
	Start, End netip.Addr
	Data       []byte
}

func (s Selector) String() string {
	if s.Type != TS_IPV4_ADDR_RANGE && s.Type != TS_IPV6_ADDR_RANGE {
		return fmt.Sprintf("%s(%d bytes)", s.Type, len(s.Data))
	}
	return fmt.Sprintf("%s-%s proto %d ports %d-%d", s.Start, s.End, s.IPProtocol, s.StartPort, s.EndPort)
}

func (p *TrafficSelectors) Type() PayloadType {
	if p.Responder {
		return PayloadTSr
	}
	return PayloadTSi
}

const tsHeaderLen = 8

func (s *Selector) len() (int, error) {
	switch s.Type {
	case TS_IPV4_ADDR_RANGE:
		if !s.Start.Is4() || !s.End.Is4() || s.Data != nil {
			return 0, fmt.Errorf("ike message: IPv4 traffic selector %s needs two IPv4 addresses", s)
		}
		return tsHeaderLen + 8, nil
	case TS_IPV6_ADDR_RANGE:
		if !s.Start.Is6() || !s.End.Is6() || s.Start.Zone() != "" || s.End.Zone() != "" || s.Data != nil {
			return 0, fmt.Errorf("ike message: IPv6 traffic selector %s needs two IPv6 addresses without zone", s)
		}
		return tsHeaderLen + 32, nil
	}
	if s.Start.IsValid() || s.End.IsValid() {
		return 0, fmt.Errorf("ike message: traffic selector type %s cannot carry IP addresses", s.Type)
	}
	if tsHeaderLen+len(s.Data) > math.MaxUint16 {
		return 0, fmt.Errorf("ike message: traffic selector of %d bytes is too long", len(s.Data))
	}
	return tsHeaderLen + len(s.Data), nil
}

func (p *TrafficSelectors) bodyLen() (int, error) {
	if len(p.Selectors) > math.MaxUint8 {
		return 0, fmt.Errorf("ike message: %s: %d selectors is too many", p.Type(), len(p.Selectors))
	}
	n := 4
	for i := range p.Selectors {
		l, err := p.Selectors[i].len()
		if err != nil {
			return 0, err
		}
		n += l
	}
	return n, nil
}

func (p *TrafficSelectors) putBody(b []byte) {
	b[0], b[1], b[2], b[3] = byte(len(p.Selectors)), 0, 0, 0
	off := 4
	for i := range p.Selectors {
		s := &p.Selectors[i]
		l, _ := s.len()
		sb := b[off : off+l]
		sb[0] = byte(s.Type)
		sb[1] = s.IPProtocol
		binary.BigEndian.PutUint16(sb[2:4], uint16(l))
		binary.BigEndian.PutUint16(sb[4:6], s.StartPort)
		binary.BigEndian.PutUint16(sb[6:8], s.EndPort)
		switch s.Type {
		case TS_IPV4_ADDR_RANGE:
			a, z := s.Start.As4(), s.End.As4()
			copy(sb[8:12], a[:])
			copy(sb[12:16], z[:])
		case TS_IPV6_ADDR_RANGE:
			a, z := s.Start.As16(), s.End.As16()
			copy(sb[8:24], a[:])
			copy(sb[24:40], z[:])
		default:
			copy(sb[8:], s.Data)
		}
		off += l
	}
}

func decodeTS(t PayloadType, b []byte) (Payload, error) {
	if len(b) < 4 {
		return nil, syntaxErr("%s payload body of %d bytes is too short", t, len(b))
	}
	p := &TrafficSelectors{Responder: t == PayloadTSr}
	n := int(b[0])
	b = b[4:]
	if n*tsHeaderLen > len(b) {
		return nil, syntaxErr("%s: %d selectors cannot fit %d bytes", t, n, len(b))
	}
	if n > 0 {
		p.Selectors = make([]Selector, 0, n)
	}
	for i := 0; i < n; i++ {
		if len(b) < tsHeaderLen {
			return nil, syntaxErr("%s: selector %d is truncated", t, i+1)
		}
		s := Selector{
			Type:       TSType(b[0]),
			IPProtocol: b[1],
			StartPort:  binary.BigEndian.Uint16(b[4:6]),
			EndPort:    binary.BigEndian.Uint16(b[6:8]),
		}
		l := int(binary.BigEndian.Uint16(b[2:4]))
		if l < tsHeaderLen || l > len(b) {
			return nil, syntaxErr("%s: selector length %d does not fit %d bytes", t, l, len(b))
		}
		switch s.Type {
		case TS_IPV4_ADDR_RANGE:
			if l != tsHeaderLen+8 {
				return nil, syntaxErr("%s: IPv4 selector of length %d", t, l)
			}
			s.Start = netip.AddrFrom4([4]byte(b[8:12]))
			s.End = netip.AddrFrom4([4]byte(b[12:16]))
		case TS_IPV6_ADDR_RANGE:
			if l != tsHeaderLen+32 {
				return nil, syntaxErr("%s: IPv6 selector of length %d", t, l)
			}
			s.Start = netip.AddrFrom16([16]byte(b[8:24]))
			s.End = netip.AddrFrom16([16]byte(b[24:40]))
		default:
			s.Data = rest(b[tsHeaderLen:l])
		}
		p.Selectors = append(p.Selectors, s)
		b = b[l:]
	}
	if len(b) != 0 {
		return nil, syntaxErr("%s: %d bytes follow the selectors", t, len(b))
	}
	return p, nil
}
