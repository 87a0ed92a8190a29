// Secret: key material that no formatting path prints (the pattern of
// internal/tunnel's Secret, with Format, LogValue and MarshalText added so
// that %d, %x, slog and JSON redact it too).

package nsconf

import (
	"fmt"
	"log/slog"
)

// Secret is a pre-shared key. Every way of printing it redacts it; Reveal
// gives the bytes to the engine. The key sits behind a pointer so that
// even fmt's reflection (a wrong verb such as %p skips Format) prints an
// address, not the key.
type Secret struct{ k *string }

// NewSecret wraps s.
func NewSecret(s string) Secret {
	if s == "" {
		return Secret{}
	}
	return Secret{k: &s}
}

// Reveal returns the key for the engine. Never log the result.
func (s Secret) Reveal() string {
	if s.k == nil {
		return ""
	}
	return *s.k
}

// IsSet reports whether a non-empty key is held.
func (s Secret) IsSet() bool { return s.k != nil }

// String redacts the key.
func (s Secret) String() string {
	if s.k == nil {
		return "None"
	}
	return "<redacted>"
}

// GoString redacts the key in %#v.
func (s Secret) GoString() string { return s.String() }

// Format redacts the key whatever the verb (%d and %t would otherwise
// print the struct's field).
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// LogValue redacts the key in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText redacts the key in JSON and other encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
