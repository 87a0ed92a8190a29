// The Security Association payload: proposals, transforms and transform
// attributes (RFC 7296 §3.3).

package message

import (
	"encoding/binary"
	"fmt"
	"math"
)

// SA is the Security Association payload.
type SA struct {
	Proposals []Proposal
}

// Proposal is one proposal substructure. Num starts at 1 and is the same for
// all proposals of an AND-combination (not used in IKEv2 practice).
type Proposal struct {
	Num        uint8
	Protocol   ProtocolID
	SPI        []byte // empty in IKE_SA_INIT, 8 bytes for IKE rekey, 4 for ESP
	Transforms []Transform
}

// Transform is one transform substructure.
type Transform struct {
	Type       TransformType
	ID         uint16 // EncrID, PRFID, IntegID, DHGroup or ESN depending on Type
	Attributes []Attribute
}

// Attribute is a transform attribute. Only KEY_LENGTH (TV format) is used by
// IKEv2; other attributes round-trip unchanged.
type Attribute struct {
	Type  AttributeType
	TLV   bool   // false: TV format, Value holds the value
	Value uint16 // TV value
	Data  []byte // TLV value
}

// KeyLength returns the KEY_LENGTH attribute in bits, if present.
func (t *Transform) KeyLength() (int, bool) {
	for _, a := range t.Attributes {
		if a.Type == AttrKeyLength && !a.TLV {
			return int(a.Value), true
		}
	}
	return 0, false
}

// KeyLengthAttr returns a KEY_LENGTH attribute for bits.
func KeyLengthAttr(bits uint16) []Attribute {
	return []Attribute{{Type: AttrKeyLength, Value: bits}}
}

func (t Transform) String() string {
	s := t.Type.String() + ":" + TransformIDString(t.Type, t.ID)
	if kl, ok := t.KeyLength(); ok {
		s += fmt.Sprintf("_%d", kl)
	}
	return s
}

func (*SA) Type() PayloadType { return PayloadSA }

const (
	proposalHeaderLen  = 8
	transformHeaderLen = 8
	lastProposal       = 0
	moreProposals      = 2
	lastTransform      = 0
	moreTransforms     = 3
	attrFormatTV       = 0x8000
)

func (a *Attribute) len() (int, error) {
	if a.Type&attrFormatTV != 0 {
		return 0, fmt.Errorf("ike message: attribute type %d uses the format bit", uint16(a.Type))
	}
	if !a.TLV {
		if a.Data != nil {
			return 0, fmt.Errorf("ike message: TV attribute %s has data", a.Type)
		}
		return 4, nil
	}
	if a.Value != 0 {
		return 0, fmt.Errorf("ike message: TLV attribute %s has a TV value", a.Type)
	}
	if len(a.Data) > math.MaxUint16 {
		return 0, fmt.Errorf("ike message: attribute %s of %d bytes is too long", a.Type, len(a.Data))
	}
	return 4 + len(a.Data), nil
}

func (t *Transform) len() (int, error) {
	n := transformHeaderLen
	for i := range t.Attributes {
		l, err := t.Attributes[i].len()
		if err != nil {
			return 0, err
		}
		n += l
	}
	if n > math.MaxUint16 {
		return 0, fmt.Errorf("ike message: transform %s is too long", t)
	}
	return n, nil
}

func (p *Proposal) len() (int, error) {
	if len(p.SPI) > math.MaxUint8 {
		return 0, fmt.Errorf("ike message: proposal %d: SPI of %d bytes is too long", p.Num, len(p.SPI))
	}
	if len(p.Transforms) > math.MaxUint8 {
		return 0, fmt.Errorf("ike message: proposal %d: %d transforms is too many", p.Num, len(p.Transforms))
	}
	n := proposalHeaderLen + len(p.SPI)
	for i := range p.Transforms {
		l, err := p.Transforms[i].len()
		if err != nil {
			return 0, fmt.Errorf("ike message: proposal %d: %w", p.Num, err)
		}
		n += l
	}
	if n > math.MaxUint16 {
		return 0, fmt.Errorf("ike message: proposal %d is too long", p.Num)
	}
	return n, nil
}

func (s *SA) bodyLen() (int, error) {
	n := 0
	for i := range s.Proposals {
		l, err := s.Proposals[i].len()
		if err != nil {
			return 0, err
		}
		n += l
	}
	return n, nil
}

func (s *SA) putBody(b []byte) {
	off := 0
	for i := range s.Proposals {
		p := &s.Proposals[i]
		plen, _ := p.len()
		pb := b[off : off+plen]
		pb[0] = moreProposals
		if i == len(s.Proposals)-1 {
			pb[0] = lastProposal
		}
		pb[1] = 0
		binary.BigEndian.PutUint16(pb[2:4], uint16(plen))
		pb[4] = p.Num
		pb[5] = byte(p.Protocol)
		pb[6] = byte(len(p.SPI))
		pb[7] = byte(len(p.Transforms))
		toff := proposalHeaderLen + copy(pb[proposalHeaderLen:], p.SPI)
		for j := range p.Transforms {
			t := &p.Transforms[j]
			tlen, _ := t.len()
			tb := pb[toff : toff+tlen]
			tb[0] = moreTransforms
			if j == len(p.Transforms)-1 {
				tb[0] = lastTransform
			}
			tb[1] = 0
			binary.BigEndian.PutUint16(tb[2:4], uint16(tlen))
			tb[4] = byte(t.Type)
			tb[5] = 0
			binary.BigEndian.PutUint16(tb[6:8], t.ID)
			aoff := transformHeaderLen
			for k := range t.Attributes {
				a := &t.Attributes[k]
				if !a.TLV {
					binary.BigEndian.PutUint16(tb[aoff:], uint16(a.Type)|attrFormatTV)
					binary.BigEndian.PutUint16(tb[aoff+2:], a.Value)
					aoff += 4
					continue
				}
				binary.BigEndian.PutUint16(tb[aoff:], uint16(a.Type))
				binary.BigEndian.PutUint16(tb[aoff+2:], uint16(len(a.Data)))
				aoff += 4 + copy(tb[aoff+4:], a.Data)
			}
			toff += tlen
		}
		off += plen
	}
}

func decodeSA(b []byte) (Payload, error) {
	sa := &SA{}
	for len(b) > 0 {
		if len(b) < proposalHeaderLen {
			return nil, syntaxErr("SA: %d trailing bytes are not a proposal", len(b))
		}
		last, plen := b[0], int(binary.BigEndian.Uint16(b[2:4]))
		if plen < proposalHeaderLen || plen > len(b) {
			return nil, syntaxErr("SA: proposal length %d does not fit %d bytes", plen, len(b))
		}
		switch {
		case last == lastProposal && plen != len(b):
			return nil, syntaxErr("SA: bytes follow the last proposal")
		case last == moreProposals && plen == len(b):
			return nil, syntaxErr("SA: proposal announces another that is missing")
		case last != lastProposal && last != moreProposals:
			return nil, syntaxErr("SA: proposal last-substructure %d", last)
		}
		p, err := decodeProposal(b[:plen])
		if err != nil {
			return nil, err
		}
		sa.Proposals = append(sa.Proposals, p)
		b = b[plen:]
	}
	return sa, nil
}

func decodeProposal(b []byte) (Proposal, error) {
	p := Proposal{Num: b[4], Protocol: ProtocolID(b[5])}
	spiSize, n := int(b[6]), int(b[7])
	if proposalHeaderLen+spiSize > len(b) {
		return p, syntaxErr("SA proposal %d: SPI size %d exceeds the proposal", p.Num, spiSize)
	}
	p.SPI = rest(b[proposalHeaderLen : proposalHeaderLen+spiSize])
	b = b[proposalHeaderLen+spiSize:]
	if n*transformHeaderLen > len(b) {
		return p, syntaxErr("SA proposal %d: %d transforms cannot fit %d bytes", p.Num, n, len(b))
	}
	if n > 0 {
		p.Transforms = make([]Transform, 0, n)
	}
	for i := 0; i < n; i++ {
		if len(b) < transformHeaderLen {
			return p, syntaxErr("SA proposal %d: transform %d is truncated", p.Num, i+1)
		}
		last, tlen := b[0], int(binary.BigEndian.Uint16(b[2:4]))
		if tlen < transformHeaderLen || tlen > len(b) {
			return p, syntaxErr("SA proposal %d: transform length %d does not fit %d bytes", p.Num, tlen, len(b))
		}
		final := i == n-1
		if (final && last != lastTransform) || (!final && last != moreTransforms) {
			return p, syntaxErr("SA proposal %d: transform %d of %d has last-substructure %d", p.Num, i+1, n, last)
		}
		t := Transform{Type: TransformType(b[4]), ID: binary.BigEndian.Uint16(b[6:8])}
		attrs := b[transformHeaderLen:tlen]
		for len(attrs) > 0 {
			if len(attrs) < 4 {
				return p, syntaxErr("SA proposal %d: truncated transform attribute", p.Num)
			}
			at := binary.BigEndian.Uint16(attrs[0:2])
			v := binary.BigEndian.Uint16(attrs[2:4])
			if at&attrFormatTV != 0 {
				t.Attributes = append(t.Attributes, Attribute{Type: AttributeType(at &^ attrFormatTV), Value: v})
				attrs = attrs[4:]
				continue
			}
			if 4+int(v) > len(attrs) {
				return p, syntaxErr("SA proposal %d: attribute length %d exceeds the transform", p.Num, v)
			}
			t.Attributes = append(t.Attributes, Attribute{Type: AttributeType(at), TLV: true, Data: rest(attrs[4 : 4+int(v)])})
			attrs = attrs[4+int(v):]
		}
		p.Transforms = append(p.Transforms, t)
		b = b[tlen:]
	}
	if len(b) != 0 {
		return p, syntaxErr("SA proposal %d: %d bytes follow its transforms", p.Num, len(b))
	}
	return p, nil
}
