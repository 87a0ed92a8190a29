// Counters stage: what the hook did with every frame, by outcome, counted
// per batch on the stack and added to shared atomics once per batch.

package esphook

import "sync/atomic"

// result is the outcome of one frame.
type result uint8

const (
	resSealed       result = iota // outbound: sealed and passed
	resOpened                     // inbound: opened, inner policy ok, passed
	resHeld                       // outbound: no usable SA yet, held
	resIKE                        // inbound: IKE on 4500 (non-ESP marker), passed unchanged
	dropNotIPv4                   // not IPv4 (IPv6 underlays are not supported)
	dropNoPolicy                  // peer has no policy in the hook
	dropPolicy                    // outer packet not allowed (wrong protocol/port/address)
	dropFragment                  // IP fragment (ESP transport mode protects whole datagrams)
	dropMalformed                 // truncated or inconsistent headers, bad padding
	dropTooBig                    // sealed frame would not fit the buffer
	dropNoSA                      // inbound: unknown SPI
	dropWrongPeer                 // inbound: SPI belongs to another peer
	dropReplay                    // inbound: replayed or too old
	dropAuth                      // inbound: ICV check failed
	dropExpired                   // inbound: SA expired or closed
	dropDummy                     // inbound: ESP dummy packet (next header 59)
	dropInnerPolicy               // inbound: decrypted packet is not a tunnel packet of the peer's policy
	dropKeepalive                 // inbound: NAT-keepalive on 4500
	numResults
)

var resultNames = [numResults]string{
	resSealed:       "sealed",
	resOpened:       "opened",
	resHeld:         "held",
	resIKE:          "ike_passed",
	dropNotIPv4:     "drop_not_ipv4",
	dropNoPolicy:    "drop_no_policy",
	dropPolicy:      "drop_policy",
	dropFragment:    "drop_fragment",
	dropMalformed:   "drop_malformed",
	dropTooBig:      "drop_too_big",
	dropNoSA:        "drop_no_sa",
	dropWrongPeer:   "drop_wrong_peer",
	dropReplay:      "drop_replay",
	dropAuth:        "drop_auth",
	dropExpired:     "drop_expired",
	dropDummy:       "drop_dummy",
	dropInnerPolicy: "drop_inner_policy",
	dropKeepalive:   "drop_keepalive",
}

func (r result) String() string {
	if r < numResults {
		return resultNames[r]
	}
	return "unknown"
}

type batchCounts [numResults]uint64

func (b *batchCounts) add(r result) { b[r]++ }

type counters [numResults]atomic.Uint64

func (c *counters) add(b *batchCounts) {
	for i, v := range b {
		if v != 0 {
			c[i].Add(v)
		}
	}
}

// Stats are the hook's counters since it was made.
type Stats struct {
	Sealed    uint64 // outbound frames sealed
	Opened    uint64 // inbound frames opened and passed
	Held      uint64 // outbound frames held for want of an SA (each time)
	IKEPassed uint64 // IKE messages on UDP 4500 passed to the host
	// Drops counts dropped frames by reason ("drop_auth", ...), only
	// reasons that occurred.
	Drops map[string]uint64
}

// Dropped returns the total of all drops.
func (s Stats) Dropped() uint64 {
	var n uint64
	for _, v := range s.Drops {
		n += v
	}
	return n
}

// Stats returns a snapshot of the counters.
func (h *Hook) Stats() Stats {
	s := Stats{
		Sealed:    h.c[resSealed].Load(),
		Opened:    h.c[resOpened].Load(),
		Held:      h.c[resHeld].Load(),
		IKEPassed: h.c[resIKE].Load(),
		Drops:     map[string]uint64{},
	}
	for r := dropNotIPv4; r < numResults; r++ {
		if v := h.c[r].Load(); v != 0 {
			s.Drops[r.String()] = v
		}
	}
	return s
}
