// stats.go: per-SA counters, updated atomically on the packet path and read
// as a snapshot.

package esp

import (
	"math"
	"sync/atomic"
)

type counters struct {
	packetsOut, bytesOut atomic.Uint64
	_                    [48]byte // keep the send and receive sides apart
	packetsIn, bytesIn   atomic.Uint64

	dropReplay      atomic.Uint64
	dropAuth        atomic.Uint64
	dropMalformed   atomic.Uint64
	dropPolicy      atomic.Uint64
	dropLifetime    atomic.Uint64
	dropSeqOverflow atomic.Uint64
	dummy           atomic.Uint64
}

// Stats is a read-only snapshot of an SA's counters. Bytes are payload
// (plaintext) bytes.
type Stats struct {
	SPI  SPI
	Dir  Direction
	Mode Mode

	PacketsOut, BytesOut uint64
	PacketsIn, BytesIn   uint64

	DropReplay    uint64 // replayed or older than the window
	DropAuth      uint64 // integrity check (ICV) failed
	DropMalformed uint64 // truncated, misaligned, bad padding, SPI mismatch
	DropPolicy    uint64 // wrong mode/encapsulation/inner protocol, unsupported packet; or CountPolicyDrop
	DropLifetime  uint64 // refused after a hard lifetime or Close
	// DropSeqOverflow: outbound packets refused because the sequence
	// number space was exhausted.
	DropSeqOverflow uint64
	Dummy           uint64 // authentic dummy packets (next header 59) discarded

	// LastSeq is the last sequence number sent (outbound) or the highest
	// accepted (inbound).
	LastSeq     uint64
	SoftExpired bool
	Usable      bool
}

// Stats returns a snapshot of the SA's counters. It may be called from any
// goroutine.
func (sa *SA) Stats() Stats {
	s := Stats{
		SPI:             sa.spi,
		Dir:             sa.dir,
		Mode:            sa.mode,
		PacketsOut:      sa.c.packetsOut.Load(),
		BytesOut:        sa.c.bytesOut.Load(),
		PacketsIn:       sa.c.packetsIn.Load(),
		BytesIn:         sa.c.bytesIn.Load(),
		DropReplay:      sa.c.dropReplay.Load(),
		DropAuth:        sa.c.dropAuth.Load(),
		DropMalformed:   sa.c.dropMalformed.Load(),
		DropPolicy:      sa.c.dropPolicy.Load(),
		DropLifetime:    sa.c.dropLifetime.Load(),
		DropSeqOverflow: sa.c.dropSeqOverflow.Load(),
		Dummy:           sa.c.dummy.Load(),
		SoftExpired:     sa.softFired.Load(),
		Usable:          sa.Usable(),
	}
	if sa.dir == Outbound {
		s.LastSeq = sa.seq.Load()
		if !sa.esn && s.LastSeq > math.MaxUint32 {
			s.LastSeq = math.MaxUint32
		}
	} else {
		s.LastSeq = sa.topIn.Load()
	}
	return s
}
