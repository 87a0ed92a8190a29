// The fixed IKE header (RFC 7296 §3.1).

package message

import (
	"encoding/binary"
	"encoding/hex"
)

// SPI is an IKE SA security parameter index (8 octets, RFC 7296 §3.1).
type SPI [8]byte

// IsZero reports whether s is all zeros (the responder SPI of a first
// IKE_SA_INIT request).
func (s SPI) IsZero() bool { return s == SPI{} }

func (s SPI) String() string { return hex.EncodeToString(s[:]) }

// Header is the IKE header. NextPayload and Length mirror the wire: Decode
// sets them and Encode recomputes them from the payloads.
type Header struct {
	SPIi, SPIr  SPI
	NextPayload PayloadType
	Exchange    ExchangeType
	Flags       Flags
	MessageID   uint32
	Length      uint32
}

// IsResponse reports whether the R flag is set.
func (h *Header) IsResponse() bool { return h.Flags&FlagResponse != 0 }

// IsInitiator reports whether the I flag is set (sender is the original
// initiator of the IKE SA).
func (h *Header) IsInitiator() bool { return h.Flags&FlagInitiator != 0 }

// ParseHeader parses the IKE header at the start of b without looking at the
// payloads. It checks the version and that Length is at least HeaderLen and
// at most len(b); it is the cheap first step of dispatching a datagram.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderLen {
		return h, syntaxErr("message of %d bytes is shorter than the IKE header", len(b))
	}
	if v := b[17]; v>>4 != MajorVersion {
		return h, &VersionError{Major: v >> 4, Minor: v & 0x0f}
	}
	copy(h.SPIi[:], b[0:8])
	copy(h.SPIr[:], b[8:16])
	h.NextPayload = PayloadType(b[16])
	h.Exchange = ExchangeType(b[18])
	h.Flags = Flags(b[19])
	h.MessageID = binary.BigEndian.Uint32(b[20:24])
	h.Length = binary.BigEndian.Uint32(b[24:28])
	if h.Length < HeaderLen || uint64(h.Length) > uint64(len(b)) {
		return h, syntaxErr("header length %d does not fit a %d-byte message", h.Length, len(b))
	}
	return h, nil
}

// put writes h into b[:HeaderLen] with version 2.0.
func (h *Header) put(b []byte) {
	copy(b[0:8], h.SPIi[:])
	copy(b[8:16], h.SPIr[:])
	b[16] = byte(h.NextPayload)
	b[17] = Version
	b[18] = byte(h.Exchange)
	b[19] = byte(h.Flags)
	binary.BigEndian.PutUint32(b[20:24], h.MessageID)
	binary.BigEndian.PutUint32(b[24:28], h.Length)
}

// StripNonESPMarker removes the four-zero-octet non-ESP marker from a
// datagram received on port 4500 (RFC 3948 §2.2). It reports false if b does
// not start with the marker, i.e. it is ESP-in-UDP (or a NAT keepalive).
func StripNonESPMarker(b []byte) ([]byte, bool) {
	if len(b) < NonESPMarkerLen || b[0]|b[1]|b[2]|b[3] != 0 {
		return b, false
	}
	return b[NonESPMarkerLen:], true
}
