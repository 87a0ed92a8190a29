// Messages: the IKE header plus a chain of payloads, encoded into caller
// buffers and decoded with strict bounds checks (RFC 7296 §3).

package message

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// Message is one IKE message. Payloads are in wire order; an *Encrypted or
// *EncryptedFragment payload can only be the last one.
type Message struct {
	Header
	Payloads []Payload

	// Set by Decode: the message's private copy of the wire bytes and, if
	// the last payload is SK or SKF, where its body (IV onwards) starts.
	raw    []byte
	skBody int
}

// Find returns the first payload of type t, or nil.
func (m *Message) Find(t PayloadType) Payload {
	return Find(m.Payloads, t)
}

// Find returns the first payload of type t in ps, or nil.
func Find(ps []Payload, t PayloadType) Payload {
	for _, p := range ps {
		if p.Type() == t {
			return p
		}
	}
	return nil
}

// Notifies returns the Notify payloads in ps of type n.
func Notifies(ps []Payload, n NotifyType) []*Notify {
	var out []*Notify
	for _, p := range ps {
		if nt, ok := p.(*Notify); ok && nt.NotifyType == n {
			out = append(out, nt)
		}
	}
	return out
}

// payloadsLen validates ps and returns the length of their encoding.
func payloadsLen(ps []Payload) (int, error) {
	n := 0
	for i, p := range ps {
		if p == nil {
			return 0, fmt.Errorf("ike message: payload %d is nil", i)
		}
		l, err := p.bodyLen()
		if err != nil {
			return 0, err
		}
		if l > maxBody {
			return 0, fmt.Errorf("ike message: %s payload of %d bytes exceeds 64 KiB", p.Type(), l)
		}
		switch p.(type) {
		case *Encrypted, *EncryptedFragment:
			if i != len(ps)-1 {
				return 0, fmt.Errorf("ike message: %s payload must be the last payload", p.Type())
			}
		}
		n += PayloadHeaderLen + l
	}
	return n, nil
}

// putPayloads writes ps (validated by payloadsLen) into b and returns the
// number of bytes written. The Next Payload field of the last payload is
// last, except that SK and SKF carry their inner type.
func putPayloads(b []byte, ps []Payload, last PayloadType) int {
	off := 0
	for i, p := range ps {
		l, _ := p.bodyLen()
		next := last
		if i+1 < len(ps) {
			next = ps[i+1].Type()
		}
		crit := byte(0)
		switch q := p.(type) {
		case *Encrypted:
			next = q.NextPayload
		case *EncryptedFragment:
			next = q.NextPayload
		case *Opaque:
			if q.Critical {
				crit = 0x80
			}
		}
		b[off] = byte(next)
		b[off+1] = crit
		binary.BigEndian.PutUint16(b[off+2:], uint16(PayloadHeaderLen+l))
		p.putBody(b[off+PayloadHeaderLen : off+PayloadHeaderLen+l])
		off += PayloadHeaderLen + l
	}
	return off
}

// grow extends dst by n bytes and returns the new slice and the extension.
func grow(dst []byte, n int) ([]byte, []byte) {
	dst = slices.Grow(dst, n)
	start := len(dst)
	dst = dst[:start+n]
	return dst, dst[start:]
}

// Encode appends the wire form of m to dst. It sets m.NextPayload and
// m.Length to the values written. It allocates only if dst lacks capacity.
func (m *Message) Encode(dst []byte) ([]byte, error) {
	n, err := payloadsLen(m.Payloads)
	if err != nil {
		return dst, err
	}
	if HeaderLen+n > math.MaxUint32 {
		return dst, fmt.Errorf("ike message: %d bytes is too long", HeaderLen+n)
	}
	m.NextPayload = PayloadNone
	if len(m.Payloads) > 0 {
		m.NextPayload = m.Payloads[0].Type()
	}
	m.Length = uint32(HeaderLen + n)
	dst, b := grow(dst, HeaderLen+n)
	m.Header.put(b)
	putPayloads(b[HeaderLen:], m.Payloads, PayloadNone)
	return dst, nil
}

// EncodePayloads appends the encoding of a payload chain (as found inside
// an SK payload) to dst. The chain's first type is ps[0].Type().
func EncodePayloads(dst []byte, ps []Payload) ([]byte, error) {
	n, err := payloadsLen(ps)
	if err != nil {
		return dst, err
	}
	for _, p := range ps {
		switch p.(type) {
		case *Encrypted, *EncryptedFragment:
			return dst, fmt.Errorf("ike message: %s payload cannot be nested", p.Type())
		}
	}
	dst, b := grow(dst, n)
	putPayloads(b, ps, PayloadNone)
	return dst, nil
}

// Decode parses one IKE message (without the non-ESP marker). b must hold
// exactly the message: Length must equal len(b). Decode copies b once; the
// payloads refer to that private copy, so b may be reused afterwards.
//
// Errors wrap ErrInvalidSyntax, or are a *VersionError or
// *CriticalPayloadError; NotifyFor maps them to the notification to send.
// An SK or SKF payload stays encrypted: use Open, Decrypt or OpenFragment.
func Decode(b []byte) (*Message, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if int(h.Length) != len(b) {
		return nil, syntaxErr("header length %d but %d bytes received", h.Length, len(b))
	}
	m := &Message{Header: h, raw: slices.Clone(b)}
	m.Payloads, m.skBody, err = decodeChain(h.NextPayload, m.raw, HeaderLen, true)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// DecodePayloads parses a payload chain starting with type next, such as
// the plaintext of an SK payload or a reassembled fragmented message. The
// payloads refer to b, which the caller must not modify while using them.
func DecodePayloads(next PayloadType, b []byte) ([]Payload, error) {
	ps, _, err := decodeChain(next, b, 0, false)
	return ps, err
}

// countPayloads walks the chain from b[off:] as far as it is plausible and
// counts its payloads (at most 32), to size the slice decodeChain fills.
func countPayloads(next PayloadType, b []byte, off int) int {
	n := 0
	for next != PayloadNone && n < 32 && len(b)-off >= PayloadHeaderLen {
		plen := int(binary.BigEndian.Uint16(b[off+2 : off+4]))
		if plen < PayloadHeaderLen {
			break
		}
		n++
		if next == PayloadSK || next == PayloadSKF {
			break
		}
		next = PayloadType(b[off])
		off += plen
	}
	return n
}

// decodeChain decodes payloads from b[off:]. It returns the offset of the
// SK/SKF body if the chain ends in one (allowed only if outer).
func decodeChain(next PayloadType, b []byte, off int, outer bool) ([]Payload, int, error) {
	var ps []Payload // nil for an empty chain
	if n := countPayloads(next, b, off); n > 0 {
		ps = make([]Payload, 0, n)
	}
	for next != PayloadNone {
		r := b[off:]
		if len(r) < PayloadHeaderLen {
			return nil, 0, syntaxErr("%s payload header truncated at offset %d", next, off)
		}
		plen := int(binary.BigEndian.Uint16(r[2:4]))
		if plen < PayloadHeaderLen || plen > len(r) {
			return nil, 0, syntaxErr("%s payload length %d does not fit %d bytes at offset %d", next, plen, len(r), off)
		}
		critical := r[1]&0x80 != 0
		p, err := decodeBody(next, critical, r[PayloadHeaderLen:plen])
		if err != nil {
			return nil, 0, err
		}
		ps = append(ps, p)
		switch q := p.(type) {
		case *Encrypted, *EncryptedFragment:
			if !outer {
				return nil, 0, syntaxErr("%s payload inside an encrypted payload", next)
			}
			if plen != len(r) {
				return nil, 0, syntaxErr("%s payload is not the last payload", next)
			}
			if e, ok := q.(*Encrypted); ok {
				e.NextPayload = PayloadType(r[0])
				return ps, off + PayloadHeaderLen, nil
			}
			f := q.(*EncryptedFragment)
			f.NextPayload = PayloadType(r[0])
			return ps, off + PayloadHeaderLen + 4, nil
		}
		next = PayloadType(r[0])
		off += plen
	}
	if off != len(b) {
		return nil, 0, syntaxErr("%d bytes follow the last payload", len(b)-off)
	}
	return ps, 0, nil
}
