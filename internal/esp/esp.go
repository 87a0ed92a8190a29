// Package esp is the native ESP engine (RFC 4303) with AES-GCM-16 (RFC 4106)
// and ESP-in-UDP (RFC 3948): security associations that seal and open
// packets in place, an anti-replay window, lifetimes, per-SA counters and a
// lock-free SA table with make-before-break rekeying.
//
// Packet layout written by Seal and read by Open:
//
//	SPI(4) | Seq low 32(4) | IV(8) | ciphertext(payload|padding|padlen|nexthdr) | ICV(16)
//
// The IV is the 64-bit sequence number, which RFC 4106 §3.1 allows because
// it never repeats under one key. Keys come only from the IKE engine (or
// tests), never from configuration.
package esp

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
)

// SPI is a Security Parameters Index. 0 is reserved (RFC 4303 §2.1) and
// 1-255 are reserved by IANA.
type SPI uint32

func (s SPI) String() string { return fmt.Sprintf("0x%08x", uint32(s)) }

// Sizes of the ESP framing with AES-GCM-16.
const (
	HeaderLen  = 8  // SPI and sequence number
	IVLen      = 8  // explicit IV
	ICVLen     = 16 // AES-GCM-16 integrity check value
	TrailerLen = 2  // pad length and next header
	// Headroom is the space Seal needs in front of the payload to seal
	// in place: pass dst with the payload at dst[Headroom:].
	Headroom = HeaderLen + IVLen
	// MaxTailroom is the most Seal writes after the payload: up to 3
	// padding bytes, the trailer and the ICV.
	MaxTailroom = 3 + TrailerLen + ICVLen
	// UDPHeaderLen is the ESP-in-UDP header (RFC 3948).
	UDPHeaderLen = 8
	// NATTPort is the IKE/ESP-in-UDP port (RFC 3948).
	NATTPort = 4500
	saltLen  = 4
)

// SealedLen returns the length of the ESP packet Seal makes from a payload
// of n bytes.
func SealedLen(n int) int { return Headroom + paddedLen(n) + ICVLen }

// Overhead returns SealedLen(n) - n, the bytes ESP adds to a payload of n
// bytes: 34 to 37 depending on alignment, plus Encap.Len() on the wire.
func Overhead(n int) int { return SealedLen(n) - n }

// MaxPayload returns the largest payload whose ESP packet fits in space
// bytes (the link MTU minus the outer IP and any UDP header), or 0 if none
// does. The overlay MTU of a transport-mode tunnel is MaxPayload(underlay
// MTU - IP header - Encap.Len()) + IP header - tunnel header.
func MaxPayload(space int) int {
	body := (space - Headroom - ICVLen) &^ 3
	if body < 4 {
		return 0
	}
	return body - TrailerLen
}

// paddedLen is the encrypted length: payload, padding to a 4-byte boundary
// (RFC 4303 §2.4) and the trailer.
func paddedLen(n int) int { return (n + TrailerLen + 3) &^ 3 }

// Direction says whether an SA protects sent or received packets.
type Direction uint8

const (
	Outbound Direction = iota + 1
	Inbound
)

func (d Direction) String() string {
	switch d {
	case Outbound:
		return "out"
	case Inbound:
		return "in"
	}
	return "direction(" + strconv.Itoa(int(d)) + ")"
}

// Mode is the IPsec mode of an SA.
type Mode uint8

const (
	// Transport protects the payload of an IP packet and keeps its header.
	Transport Mode = iota + 1
	// Tunnel protects a whole inner IP packet behind a new outer header.
	Tunnel
)

func (m Mode) String() string {
	switch m {
	case Transport:
		return "transport"
	case Tunnel:
		return "tunnel"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// EncapType selects the ESP encapsulation on the wire.
type EncapType uint8

const (
	// EncapNone is plain ESP, IP protocol 50.
	EncapNone EncapType = iota
	// EncapUDP is ESP-in-UDP (RFC 3948), normally on port 4500.
	EncapUDP
)

// Encap is an SA's encapsulation. For EncapUDP the ports are those of the
// outer UDP header this host sends (SrcPort, DstPort), normally both 4500.
type Encap struct {
	Type             EncapType
	SrcPort, DstPort uint16
}

// Len returns the bytes the encapsulation adds in front of the ESP header.
func (e Encap) Len() int {
	if e.Type == EncapUDP {
		return UDPHeaderLen
	}
	return 0
}

func (e Encap) String() string {
	if e.Type == EncapUDP {
		return fmt.Sprintf("udp %d->%d", e.SrcPort, e.DstPort)
	}
	return "none"
}

// Key is AES-GCM keying material as IKE derives it (RFC 4106 §8.1): a 16- or
// 32-byte AES key followed by the 4-byte salt. It never prints its bytes
// (fmt, slog) and Zero erases them; copies of a Key share the bytes, so Zero
// erases every copy.
type Key struct {
	b []byte
}

// NewKey copies raw (20 or 36 bytes: AES-128 or AES-256 key and salt) into
// a Key. It is for the IKE engine and tests; keys never come from
// configuration.
func NewKey(raw []byte) (Key, error) {
	switch len(raw) {
	case 16 + saltLen, 32 + saltLen:
	default:
		return Key{}, fmt.Errorf("esp key: %d bytes, want 20 (AES-128-GCM) or 36 (AES-256-GCM) including the 4-byte salt", len(raw))
	}
	return Key{b: append([]byte(nil), raw...)}, nil
}

// Export returns a copy of the key material, for handing an SA over to the
// next process (hitless restart); zero the copy once it is stored.
func (k Key) Export() []byte { return append([]byte(nil), k.b...) }

// Len returns the length of the material including the salt (0 after Zero).
func (k Key) Len() int { return len(k.b) }

// Zero erases the key bytes. The SA built from the key keeps the expanded
// AES key schedule inside crypto/aes, which cannot be erased from outside.
func (k *Key) Zero() {
	clear(k.b)
	k.b = nil
}

func (k Key) aesKey() []byte { return k.b[:len(k.b)-saltLen] }
func (k Key) salt() []byte   { return k.b[len(k.b)-saltLen:] }

const redacted = "esp.Key(redacted)"

// String hides the key.
func (k Key) String() string { return redacted }

// GoString hides the key from %#v.
func (k Key) GoString() string { return redacted }

// Format hides the key from every fmt verb (%x included).
func (k Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue hides the key from log/slog.
func (k Key) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText serialises the redacted placeholder, never the key.
func (k Key) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// UnmarshalText accepts only the redacted placeholder (an empty Key), so
// that a record holding a Key round-trips through JSON; key material is
// never read from text.
func (k *Key) UnmarshalText(b []byte) error {
	if string(b) != redacted {
		return errors.New("esp key: key material is never read from text")
	}
	*k = Key{}
	return nil
}

// Errors returned on the packet path. They are sentinel values so that a
// drop never allocates; the drop is also counted in the SA's Stats.
var (
	ErrShortBuffer = errors.New("esp: destination buffer too small (see SealedLen/Headroom)")
	ErrDirection   = errors.New("esp: SA used in the wrong direction")
	ErrExpired     = errors.New("esp: SA expired or closed; rekey needed")
	ErrSeqOverflow = errors.New("esp: sequence number space exhausted; SA needs rekey")
	ErrTruncated   = errors.New("esp: packet truncated")
	ErrMisaligned  = errors.New("esp: ciphertext not a multiple of 4 bytes")
	ErrSPIMismatch = errors.New("esp: packet SPI does not match the SA")
	ErrReplay      = errors.New("esp: sequence number replayed or older than the window")
	ErrAuth        = errors.New("esp: integrity check failed")
	ErrBadPadding  = errors.New("esp: invalid padding")
	ErrDummy       = errors.New("esp: dummy packet (next header 59) discarded")
	ErrNoSA        = errors.New("esp: no SA for SPI")
	ErrPolicy      = errors.New("esp: packet does not match the SA's policy")
	ErrNotIPv4     = errors.New("esp: not a valid IPv4 packet")
	ErrNotIPv6     = errors.New("esp: not a valid IPv6 packet")
	ErrNotIP       = errors.New("esp: inner packet is neither IPv4 nor IPv6")
	ErrFragment    = errors.New("esp: IPv4 fragment cannot be protected in transport mode")
	ErrNotESP      = errors.New("esp: not an ESP packet")
)
