// Protected messages: building and opening the SK payload (RFC 7296 §3.14
// with AEAD per RFC 5282) and splitting a message into SKF fragments
// (RFC 7383).

package message

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Sealer encrypts the body of SK and SKF payloads with an AEAD cipher
// (RFC 5282). suite.AEAD implements it.
type Sealer interface {
	// IVLen is the length of the explicit IV sent before the ciphertext.
	IVLen() int
	// ICVLen is the length of the integrity check value after it.
	ICVLen() int
	// Seal writes a fresh, never repeated IV into iv, encrypts plaintext in
	// place authenticating aad as well, and writes the ICV directly after
	// it, into plaintext[len(plaintext):len(plaintext)+ICVLen()], which the
	// capacity of plaintext must hold.
	Seal(iv, plaintext, aad []byte) error
}

// Opener authenticates and decrypts SK and SKF payload bodies.
type Opener interface {
	IVLen() int
	ICVLen() int
	// Open authenticates body (IV | ciphertext | ICV) together with aad and
	// appends the plaintext to dst. It must not modify body.
	Open(dst, body, aad []byte) ([]byte, error)
}

// ErrNotProtected is returned when opening a message that has no SK or SKF
// payload, or was not produced by Decode.
var ErrNotProtected = errors.New("ike message: message has no encrypted payload to open")

// skOverhead is what one SK/SKF payload adds around its inner plaintext.
func skOverhead(s Sealer, fragment bool) int {
	n := PayloadHeaderLen + s.IVLen() + 1 + s.ICVLen() // header, IV, pad length, ICV
	if fragment {
		n += 4
	}
	return n
}

// EncodeSK appends m to dst with inner protected in an SK payload. The
// payloads in m.Payloads (normally none) go in clear before the SK payload.
// The padding is empty; the pad length octet is zero. m.NextPayload and
// m.Length are set. Associated data is the IKE header through the SK
// payload header (RFC 5282 §5). No allocation if dst has the capacity.
func (m *Message) EncodeSK(dst []byte, inner []Payload, s Sealer) ([]byte, error) {
	clearLen, err := payloadsLen(m.Payloads)
	if err != nil {
		return dst, err
	}
	for _, p := range m.Payloads {
		switch p.(type) {
		case *Encrypted, *EncryptedFragment:
			return dst, fmt.Errorf("ike message: %s payload in the clear part of an SK message", p.Type())
		}
	}
	in, err := payloadsLen(inner)
	if err != nil {
		return dst, err
	}
	skLen := skOverhead(s, false) + in
	if skLen > math.MaxUint16 {
		return dst, fmt.Errorf("ike message: SK payload of %d bytes exceeds 64 KiB; fragment the message", skLen)
	}
	total := HeaderLen + clearLen + skLen
	m.NextPayload = PayloadSK
	if len(m.Payloads) > 0 {
		m.NextPayload = m.Payloads[0].Type()
	}
	m.Length = uint32(total)
	start := len(dst)
	dst, b := grow(dst, total)
	m.Header.put(b)
	off := HeaderLen + putPayloads(b[HeaderLen:], m.Payloads, PayloadSK)
	first := PayloadNone
	if len(inner) > 0 {
		first = inner[0].Type()
	}
	b[off] = byte(first)
	b[off+1] = 0
	binary.BigEndian.PutUint16(b[off+2:], uint16(skLen))
	off += PayloadHeaderLen
	aad := b[:off]
	iv := b[off : off+s.IVLen()]
	off += s.IVLen()
	n := putPayloads(b[off:], inner, PayloadNone)
	b[off+n] = 0 // pad length
	pt := b[off : off+n+1 : off+n+1+s.ICVLen()]
	if err := s.Seal(iv, pt, aad); err != nil {
		return dst[:start], fmt.Errorf("ike message: seal SK payload: %w", err)
	}
	return dst, nil
}

// unpad strips the padding and pad length octet (RFC 7296 §3.14).
func unpad(pt []byte) ([]byte, error) {
	if len(pt) == 0 {
		return nil, syntaxErr("encrypted payload has no pad length octet")
	}
	pad := int(pt[len(pt)-1])
	if pad+1 > len(pt) {
		return nil, syntaxErr("pad length %d exceeds the %d-byte plaintext", pad, len(pt))
	}
	return pt[:len(pt)-1-pad], nil
}

// open authenticates and decrypts the last payload of a decoded message,
// appending the unpadded plaintext to dst.
func (m *Message) open(o Opener, dst []byte) ([]byte, error) {
	if m.raw == nil || m.skBody == 0 {
		return dst, ErrNotProtected
	}
	body := m.raw[m.skBody:]
	if len(body) < o.IVLen()+1+o.ICVLen() {
		return dst, syntaxErr("encrypted payload body of %d bytes is shorter than IV, pad length and ICV", len(body))
	}
	start := len(dst)
	out, err := o.Open(dst, body, m.raw[:m.skBody])
	if err != nil {
		return dst, fmt.Errorf("ike message: open encrypted payload of %s message %d: %w", m.Exchange, m.MessageID, err)
	}
	pt, err := unpad(out[start:])
	if err != nil {
		return dst, err
	}
	return out[:start+len(pt)], nil
}

// Open authenticates and decrypts the SK payload of a message returned by
// Decode and appends the inner payload stream (padding removed) to dst.
// Decode the stream with DecodePayloads(sk.NextPayload, stream). With a
// reused dst of sufficient capacity Open does not allocate.
func (m *Message) Open(o Opener, dst []byte) ([]byte, error) {
	if _, ok := m.last().(*Encrypted); !ok {
		return dst, ErrNotProtected
	}
	return m.open(o, dst)
}

// Decrypt opens the SK payload of a message returned by Decode and decodes
// the inner payloads into freshly allocated memory.
func (m *Message) Decrypt(o Opener) ([]Payload, error) {
	sk, ok := m.last().(*Encrypted)
	if !ok {
		return nil, ErrNotProtected
	}
	pt, err := m.open(o, nil)
	if err != nil {
		return nil, err
	}
	return DecodePayloads(sk.NextPayload, pt)
}

func (m *Message) last() Payload {
	if len(m.Payloads) == 0 {
		return nil
	}
	return m.Payloads[len(m.Payloads)-1]
}

// Fragment is one authenticated, decrypted SKF fragment, ready for a
// Reassembler.
type Fragment struct {
	MessageID   uint32
	Response    bool
	Number      uint16
	Total       uint16
	NextPayload PayloadType // first inner payload type; meaningful in fragment 1
	Data        []byte      // plaintext piece of the inner payload stream
}

// OpenFragment authenticates and decrypts the SKF payload of a message
// returned by Decode (RFC 7383 §2.6: fragments are verified one by one
// before reassembly).
func (m *Message) OpenFragment(o Opener) (Fragment, error) {
	f, ok := m.last().(*EncryptedFragment)
	if !ok {
		return Fragment{}, ErrNotProtected
	}
	pt, err := m.open(o, nil)
	if err != nil {
		return Fragment{}, err
	}
	return Fragment{
		MessageID:   m.MessageID,
		Response:    m.IsResponse(),
		Number:      f.Number,
		Total:       f.Total,
		NextPayload: f.NextPayload,
		Data:        pt,
	}, nil
}

// EncodeFragments encodes m with inner protected and split over SKF
// messages of at most maxLen bytes each (RFC 7383 §2.5; maxLen is the IKE
// message size, without IP/UDP headers or non-ESP marker). Every fragment
// has m's header and message ID and its own IV and ICV; the associated data
// of each is its IKE header through the SKF header including the fragment
// number and total. m.Payloads must be empty. A message that fits is still
// returned as one fragment (1 of 1).
func (m *Message) EncodeFragments(inner []Payload, s Sealer, maxLen int) ([][]byte, error) {
	if len(m.Payloads) != 0 {
		return nil, errors.New("ike message: fragmented messages carry no clear payloads")
	}
	stream, err := EncodePayloads(nil, inner)
	if err != nil {
		return nil, err
	}
	over := HeaderLen + skOverhead(s, true)
	chunk := maxLen - over
	if chunk < 1 {
		return nil, fmt.Errorf("ike message: fragment size %d leaves no room after %d bytes of overhead", maxLen, over)
	}
	if chunk > math.MaxUint16-skOverhead(s, true) {
		chunk = math.MaxUint16 - skOverhead(s, true)
	}
	total := (len(stream) + chunk - 1) / chunk
	if total == 0 {
		total = 1
	}
	if total > math.MaxUint16 {
		return nil, fmt.Errorf("ike message: %d bytes need %d fragments of %d bytes, more than 65535", len(stream), total, maxLen)
	}
	first := PayloadNone
	if len(inner) > 0 {
		first = inner[0].Type()
	}
	backing := make([]byte, 0, total*over+len(stream))
	out := make([][]byte, 0, total)
	h := m.Header
	h.NextPayload = PayloadSKF
	for i := 0; i < total; i++ {
		piece := stream[min(i*chunk, len(stream)):min((i+1)*chunk, len(stream))]
		size := over + len(piece)
		start := len(backing)
		var b []byte
		backing, b = grow(backing, size)
		h.Length = uint32(size)
		h.put(b)
		off := HeaderLen
		next := PayloadNone
		if i == 0 {
			next = first
		}
		b[off] = byte(next)
		b[off+1] = 0
		binary.BigEndian.PutUint16(b[off+2:], uint16(size-HeaderLen))
		binary.BigEndian.PutUint16(b[off+4:], uint16(i+1))
		binary.BigEndian.PutUint16(b[off+6:], uint16(total))
		off += PayloadHeaderLen + 4
		aad := b[:off]
		iv := b[off : off+s.IVLen()]
		off += s.IVLen()
		copy(b[off:], piece)
		b[off+len(piece)] = 0 // pad length
		pt := b[off : off+len(piece)+1 : off+len(piece)+1+s.ICVLen()]
		if err := s.Seal(iv, pt, aad); err != nil {
			return nil, fmt.Errorf("ike message: seal fragment %d of %d: %w", i+1, total, err)
		}
		out = append(out, backing[start:start+size:start+size])
	}
	return out, nil
}
