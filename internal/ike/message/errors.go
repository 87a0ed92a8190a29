// Decode errors and the notification a responder sends back for each.

package message

import (
	"errors"
	"fmt"
)

// ErrInvalidSyntax is wrapped by every error that reports a malformed
// message or payload. A responder answers it with INVALID_SYNTAX (only once
// the message is authenticated, RFC 7296 §2.21.2); errors.Is works.
var ErrInvalidSyntax = errors.New("invalid syntax")

// CriticalPayloadError reports a payload of a type we do not understand with
// the critical bit set (RFC 7296 §2.5). The responder rejects the whole
// message with UNSUPPORTED_CRITICAL_PAYLOAD carrying the type as one octet.
type CriticalPayloadError struct {
	Type PayloadType
}

func (e *CriticalPayloadError) Error() string {
	return fmt.Sprintf("ike message: unsupported critical payload %s", e.Type)
}

// VersionError reports an IKE header whose major version is not 2. A
// responder answers a higher major version with INVALID_MAJOR_VERSION
// (RFC 7296 §2.5); other versions (IKEv1) are dropped.
type VersionError struct {
	Major, Minor uint8
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("ike message: unsupported version %d.%d (want 2.x)", e.Major, e.Minor)
}

// NotifyFor maps a Decode/DecodePayloads error to the error notification a
// responder sends and its notification data (nil if none). It returns
// INVALID_SYNTAX for any other error.
func NotifyFor(err error) (NotifyType, []byte) {
	var ce *CriticalPayloadError
	if errors.As(err, &ce) {
		return UNSUPPORTED_CRITICAL_PAYLOAD, []byte{byte(ce.Type)}
	}
	var ve *VersionError
	if errors.As(err, &ve) {
		return INVALID_MAJOR_VERSION, nil
	}
	return INVALID_SYNTAX, nil
}

func syntaxErr(format string, args ...any) error {
	return fmt.Errorf("ike message: %w: %s", ErrInvalidSyntax, fmt.Sprintf(format, args...))
}
