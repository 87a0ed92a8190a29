// stats.go: the attachment's counters. The packet path adds a whole batch's
// counts at once (one atomic add per counter per batch, none per packet);
// Stats reads them as a snapshot.

package tun

import "sync/atomic"

// Reason is why the attachment dropped a packet.
type Reason uint8

// Drop reasons. The ESP engine counts its own drops per SA as well (see
// esp.Stats); these are the attachment's view, by direction of travel.
const (
	DropNoRoute   Reason = iota // outbound: destination behind no peer
	DropNoSA                    // no SA: outbound none for the peer (not held, or pushed out of the hold queue), inbound unknown SPI
	DropPolicy                  // SA mode/encapsulation mismatch, inner source outside the peer's subnets, unbound SPI
	DropReplay                  // inbound: replayed or too old
	DropAuth                    // inbound: integrity check (ICV) failed
	DropMalformed               // not IPv4/IPv6, truncated, bad padding, unusable UDP payload
	DropLifetime                // SA expired or closed
	DropTooBig                  // outbound: packet does not fit the buffer or the underlay
	DropSend                    // underlay send failed
	DropDevice                  // TUN write failed
	DropDummy                   // inbound: authentic dummy packet (RFC 4303 §2.6), discarded by design
	numReasons
)

var reasonNames = [numReasons]string{
	DropNoRoute:   "no-route",
	DropNoSA:      "no-sa",
	DropPolicy:    "policy",
	DropReplay:    "replay",
	DropAuth:      "auth",
	DropMalformed: "malformed",
	DropLifetime:  "lifetime",
	DropTooBig:    "too-big",
	DropSend:      "send",
	DropDevice:    "device",
	DropDummy:     "dummy",
}

func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "reason(?)"
}

// Stats is a snapshot of an attachment's counters. Bytes are inner
// (plaintext) packet bytes.
type Stats struct {
	// Outbound: read from the TUN device, sealed and handed to the
	// underlay socket; those the socket refused are also in
	// TxDrops[DropSend].
	TxPackets, TxBytes uint64
	// Inbound: opened and written to the TUN device.
	RxPackets, RxBytes uint64
	// IKE messages handed to the IKE callback, NAT-keepalives received.
	IKE, Keepalives uint64
	// Held counts outbound packets put in the hold queue for lack of an
	// SA; they are sent when one is installed (and then counted in
	// TxPackets) or dropped as no-SA when the queue overflows.
	Held uint64
	// TxBatches and RxBatches count device reads and underlay receives
	// that returned packets; packets per batch shows how well batching
	// and offloads work.
	TxBatches, RxBatches uint64
	// TxDrops and RxDrops count drops by reason (index with a Reason).
	TxDrops, RxDrops [numReasons]uint64
}

// TxDropped returns the outbound drops for one reason.
func (s Stats) TxDropped(r Reason) uint64 { return s.TxDrops[r] }

// RxDropped returns the inbound drops for one reason.
func (s Stats) RxDropped(r Reason) uint64 { return s.RxDrops[r] }

// counts is one batch's tally, kept on the goroutine's stack or in its
// per-direction state and flushed into counters once per batch.
type counts struct {
	packets, bytes  uint64
	ike, keepalives uint64
	held            uint64
	drops           [numReasons]uint64
}

func (c *counts) reset() { *c = counts{} }

// dirCounters are one direction's shared counters.
type dirCounters struct {
	packets, bytes, batches atomic.Uint64
	ike, keepalives, held   atomic.Uint64
	drops                   [numReasons]atomic.Uint64
	_                       [64]byte // keep the two directions on separate cache lines
}

func (d *dirCounters) add(c *counts) {
	if c.held != 0 {
		d.held.Add(c.held)
	}
	if c.packets != 0 {
		d.packets.Add(c.packets)
		d.bytes.Add(c.bytes)
	}
	if c.ike != 0 {
		d.ike.Add(c.ike)
	}
	if c.keepalives != 0 {
		d.keepalives.Add(c.keepalives)
	}
	for i, n := range c.drops {
		if n != 0 {
			d.drops[i].Add(n)
		}
	}
}

func (d *dirCounters) dropSnapshot() (out [numReasons]uint64) {
	for i := range d.drops {
		out[i] = d.drops[i].Load()
	}
	return out
}
