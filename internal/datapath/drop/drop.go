// Package drop names why a packet path dropped a packet: one set of reasons
// shared by the OVS attachment's frame loop (ovsbridge), its ESP hook
// (esphook) and the TUN attachment (tun), with one mapping from the ESP
// engine's errors (FromESP). The names are stable: tunnels/show prints them
// and metrics use them as label values, so a reason is never renamed and new
// ones are only appended.
//
// Counting costs what it did before: a packet path tallies a batch in a
// Counts on its stack and adds it to shared Counters once per batch (one
// atomic add per reason that occurred); nothing allocates or locks.
package drop

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/ovnsec/ovnsec/internal/esp"
)

// Reason is why a packet was dropped.
type Reason uint8

// The reasons. Values index Counts and Counters; new reasons go before
// NumReasons, never between existing ones.
const (
	// Malformed: truncated or inconsistent headers, bad ESP padding, a
	// frame or datagram too short to classify, an inner packet that is
	// not IP.
	Malformed Reason = iota
	// NotIPv4: a frame of another family on a path that carries IPv4
	// only (the ESP hook: IPv6 underlays are not supported).
	NotIPv4
	// NoPeer: the packet belongs to no protected peer (the frame loop:
	// neither address is a peer, e.g. flooded broadcast; the TUN
	// attachment: the inner destination is behind no peer).
	NoPeer
	// NoPolicy: the peer has no policy in the ESP hook.
	NoPolicy
	// Policy: the outer packet or the SA does not fit the policy: wrong
	// protocol, port or address, SA mode or encapsulation mismatch, an SA
	// used in the wrong direction.
	Policy
	// Fragment: an IP fragment (transport-mode ESP protects whole
	// datagrams only).
	Fragment
	// TooBig: the packet does not fit the buffer or the underlay.
	TooBig
	// NoSA: outbound, no SA for the peer and the packet could not be held
	// (hold queue full, the packet too big for it, or discarded when the
	// negotiation failed); inbound, an unknown SPI.
	NoSA
	// WrongPeer: inbound, the SPI belongs to another peer or to none.
	WrongPeer
	// Replay: inbound, the sequence number was seen or is older than the
	// anti-replay window.
	Replay
	// Auth: inbound, the integrity check (ICV) failed.
	Auth
	// Expired: the SA reached its hard lifetime or was closed.
	Expired
	// SeqOverflow: outbound, the SA's sequence number space is exhausted.
	SeqOverflow
	// Dummy: inbound, an authentic dummy packet (next header 59, RFC 4303
	// section 2.6), discarded by design.
	Dummy
	// InnerPolicy: inbound, the decrypted packet is not one the peer's
	// policy allows (not a tunnel packet of the peer; an inner source
	// outside the peer's subnets).
	InnerPolicy
	// Keepalive: inbound, a NAT-keepalive on port 4500 (RFC 3948), which
	// carries nothing.
	Keepalive
	// Leak: outbound, a frame for the direct-to-NIC path that is not ESP
	// to its peer; sending it could leak plaintext.
	Leak
	// Send: writing to the underlay (the NIC, the UDP socket) failed.
	Send
	// Device: writing to the local device (the engine port, the TUN
	// device) failed.
	Device

	// NumReasons is the number of reasons, the length of Counts.
	NumReasons
)

// names are the stable names, one per reason.
var names = [NumReasons]string{
	Malformed:   "drop_malformed",
	NotIPv4:     "drop_not_ipv4",
	NoPeer:      "drop_no_peer",
	NoPolicy:    "drop_no_policy",
	Policy:      "drop_policy",
	Fragment:    "drop_fragment",
	TooBig:      "drop_too_big",
	NoSA:        "drop_no_sa",
	WrongPeer:   "drop_wrong_peer",
	Replay:      "drop_replay",
	Auth:        "drop_auth",
	Expired:     "drop_expired",
	SeqOverflow: "drop_seq_overflow",
	Dummy:       "drop_dummy",
	InnerPolicy: "drop_inner_policy",
	Keepalive:   "drop_keepalive",
	Leak:        "drop_leak",
	Send:        "drop_send",
	Device:      "drop_device",
}

// All returns every reason, in value order.
func All() []Reason {
	rs := make([]Reason, NumReasons)
	for i := range rs {
		rs[i] = Reason(i)
	}
	return rs
}

// Valid reports whether r is one of the reasons.
func (r Reason) Valid() bool { return r < NumReasons }

// String returns the reason's stable snake_case name ("drop_replay").
func (r Reason) String() string {
	if r.Valid() {
		return names[r]
	}
	return "drop_reason(" + strconv.Itoa(int(r)) + ")"
}

// MarshalText returns the reason's name; it fails for a value that is not
// a reason.
func (r Reason) MarshalText() ([]byte, error) {
	if !r.Valid() {
		return nil, fmt.Errorf("drop reason %d: not a reason (there are %d)", uint8(r), NumReasons)
	}
	return []byte(names[r]), nil
}

// UnmarshalText sets r from a reason's name.
func (r *Reason) UnmarshalText(b []byte) error {
	for i, n := range names {
		if n == string(b) {
			*r = Reason(i)
			return nil
		}
	}
	return fmt.Errorf("drop reason %q: unknown; want one of %s", b, strings.Join(names[:], ", "))
}

// FromESP maps an error of the ESP engine (esp's sentinel errors, possibly
// wrapped) to the reason its packet is dropped for. An error that is none
// of them maps to Malformed: the packet is dropped either way. It does not
// allocate.
func FromESP(err error) Reason {
	switch {
	case errors.Is(err, esp.ErrReplay):
		return Replay
	case errors.Is(err, esp.ErrAuth):
		return Auth
	case errors.Is(err, esp.ErrNoSA):
		return NoSA
	case errors.Is(err, esp.ErrExpired):
		return Expired
	case errors.Is(err, esp.ErrSeqOverflow):
		return SeqOverflow
	case errors.Is(err, esp.ErrDummy):
		return Dummy
	case errors.Is(err, esp.ErrFragment):
		return Fragment
	case errors.Is(err, esp.ErrShortBuffer):
		return TooBig
	case errors.Is(err, esp.ErrPolicy), errors.Is(err, esp.ErrDirection), errors.Is(err, esp.ErrIPv6Unsupported):
		return Policy
	}
	// ErrTruncated, ErrMisaligned, ErrSPIMismatch, ErrBadPadding,
	// ErrNotIPv4, ErrNotIPv6, ErrNotIP, ErrNotESP and anything else.
	return Malformed
}

// Counts is a tally of drops indexed by Reason: one batch's, kept on the
// packet path's stack, or a snapshot of Counters.
type Counts [NumReasons]uint64

// Total returns the sum over all reasons.
func (c Counts) Total() uint64 {
	var n uint64
	for _, v := range c {
		n += v
	}
	return n
}

// Map returns the reasons that occurred by name ({"drop_auth": 1}); empty,
// not nil, when none did.
func (c Counts) Map() map[string]uint64 {
	m := map[string]uint64{}
	for i, v := range c {
		if v != 0 {
			m[names[i]] = v
		}
	}
	return m
}

// String lists the reasons that occurred in value order
// ("drop_replay=2 drop_auth=1"), or "none".
func (c Counts) String() string {
	var b strings.Builder
	for i, v := range c {
		if v == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(names[i])
		b.WriteByte('=')
		b.WriteString(strconv.FormatUint(v, 10))
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// Counters are shared drop counters indexed by Reason, safe for concurrent
// use. The packet path adds a batch's Counts at once.
type Counters [NumReasons]atomic.Uint64

// AddCounts adds a batch's tally: one atomic add per reason that occurred.
func (c *Counters) AddCounts(b *Counts) {
	for i, v := range b {
		if v != 0 {
			c[i].Add(v)
		}
	}
}

// Add adds n drops for r (nothing when n is 0).
func (c *Counters) Add(r Reason, n uint64) {
	if n != 0 {
		c[r].Add(n)
	}
}

// Load returns a snapshot.
func (c *Counters) Load() Counts {
	var s Counts
	for i := range c {
		s[i] = c[i].Load()
	}
	return s
}
