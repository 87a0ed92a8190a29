// stats.go: the attachment's counters. The packet path adds a whole batch's
// counts at once (one atomic add per counter per batch, none per packet);
// Stats reads them as a snapshot.

package tun

import (
	"sync/atomic"

	"github.com/ovnsec/ovnsec/internal/datapath/drop"
)

// Reason is why the attachment dropped a packet: the reasons every packet
// path shares (drop.Reason). The ESP engine counts its own drops per SA as
// well (see esp.Stats); the attachment's are by direction of travel.
//
// Outbound: Malformed (not IPv4/IPv6, truncated), NoPeer (destination
// behind no peer), NoSA (no SA and not held, or pushed out of the hold
// queue), Policy (SA mode or encapsulation mismatch), Expired, SeqOverflow,
// TooBig, Send (underlay send failed).
//
// Inbound: Malformed (truncated, bad padding, unusable UDP payload, an
// inner packet that does not parse as the IP version its next header
// says), NoSA (unknown SPI), WrongPeer (SA bound to no peer), Policy (SA
// mode mismatch), InnerPolicy (next header not IPv4/IPv6, or the inner
// source outside the peer's subnets), Replay, Auth, Expired, Dummy
// (authentic dummy packet, RFC 4303 section 2.6, discarded by design),
// Device (TUN write failed).
type Reason = drop.Reason

// Stats is a snapshot of an attachment's counters. Bytes are inner
// (plaintext) packet bytes.
type Stats struct {
	// Outbound: read from the TUN device, sealed and handed to the
	// underlay socket; those the socket refused are also in
	// TxDrops[drop.Send].
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
	// TxDrops and RxDrops count drops by reason (index with a
	// drop.Reason; Map gives them by name).
	TxDrops, RxDrops drop.Counts
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
	drops           drop.Counts
}

func (c *counts) reset() { *c = counts{} }

// dirCounters are one direction's shared counters.
type dirCounters struct {
	packets, bytes, batches atomic.Uint64
	ike, keepalives, held   atomic.Uint64
	drops                   drop.Counters
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
	d.drops.AddCounts(&c.drops)
}
