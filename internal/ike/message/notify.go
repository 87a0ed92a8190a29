// Helpers for notification data with a defined structure.

package message

import "encoding/binary"

// HashAlgorithmsData encodes the data of a SIGNATURE_HASH_ALGORITHMS
// notification (RFC 7427 §4): a list of 16-bit hash algorithm numbers.
func HashAlgorithmsData(hs ...HashAlgorithm) []byte {
	b := make([]byte, 2*len(hs))
	for i, h := range hs {
		binary.BigEndian.PutUint16(b[2*i:], uint16(h))
	}
	return b
}

// ParseHashAlgorithms decodes SIGNATURE_HASH_ALGORITHMS notification data.
func ParseHashAlgorithms(data []byte) ([]HashAlgorithm, error) {
	if len(data)%2 != 0 {
		return nil, syntaxErr("SIGNATURE_HASH_ALGORITHMS data of odd length %d", len(data))
	}
	hs := make([]HashAlgorithm, len(data)/2)
	for i := range hs {
		hs[i] = HashAlgorithm(binary.BigEndian.Uint16(data[2*i:]))
	}
	return hs, nil
}

// InvalidKEData encodes the data of an INVALID_KE_PAYLOAD notification: the
// DH group the responder wants (RFC 7296 §1.2).
func InvalidKEData(g DHGroup) []byte {
	return binary.BigEndian.AppendUint16(nil, uint16(g))
}

// ParseInvalidKE decodes INVALID_KE_PAYLOAD notification data.
func ParseInvalidKE(data []byte) (DHGroup, error) {
	if len(data) != 2 {
		return 0, syntaxErr("INVALID_KE_PAYLOAD data of %d bytes, want 2", len(data))
	}
	return DHGroup(binary.BigEndian.Uint16(data)), nil
}
