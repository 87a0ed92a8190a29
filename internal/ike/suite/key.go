// Secret key material: a byte slice that can wipe itself and never prints.

package suite

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
)

// Key is secret key material. Formatting (fmt with any verb, slog) prints
// only its length; call Zero when the key is no longer needed.
type Key []byte

// Zero overwrites the key with zeros.
func (k Key) Zero() { clear(k) }

func (k Key) String() string { return "Key(" + strconv.Itoa(len(k)) + " bytes, redacted)" }

// GoString redacts the key for %#v.
func (k Key) GoString() string { return k.String() }

// Format redacts the key for every fmt verb, including %x and %d.
func (k Key) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// LogValue redacts the key in slog output.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// zeroAll wipes each key.
func zeroAll(keys ...Key) {
	for _, k := range keys {
		k.Zero()
	}
}
