// Reassembly of fragmented messages (RFC 7383 §2.6) with bounded memory.

package message

import (
	"errors"
	"fmt"
	"time"
)

// Reassembler limits. The zero value of each field in Reassembler selects
// these defaults.
const (
	DefaultMaxFragments = 64
	DefaultMaxBytes     = 64 << 10
	DefaultMaxMessages  = 2
)

// ErrFragmentDiscarded wraps the reason a fragment was dropped without
// disturbing reassembly (duplicates are dropped silently, without error).
var ErrFragmentDiscarded = errors.New("fragment discarded")

// Reassembler collects decrypted fragments of the messages of one IKE SA
// and returns each message once complete. Messages are keyed by message ID
// and the response flag. It is not safe for concurrent use; the caller owns
// time: pass the receive time to Add and call Expire to drop messages whose
// fragments stopped arriving.
type Reassembler struct {
	MaxFragments int // most fragments per message
	MaxBytes     int // most plaintext bytes per message
	MaxMessages  int // most messages in progress; the oldest is evicted

	pending []*partial
}

type partial struct {
	id      uint32
	resp    bool
	total   uint16
	next    PayloadType
	frags   [][]byte
	got     int
	size    int
	started time.Time
}

func orDefault(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}

// Add stores fragment f, received at now. When f completes its message, Add
// returns done, the first inner payload type and the whole inner payload
// stream (to be decoded with DecodePayloads). f.Data is copied.
//
// Following RFC 7383 §2.6.1 a fragment whose Total is larger than the one
// stored restarts the message (the peer re-fragmented it smaller), and one
// with a smaller Total is discarded.
func (r *Reassembler) Add(now time.Time, f Fragment) (next PayloadType, stream []byte, done bool, err error) {
	maxFrags := orDefault(r.MaxFragments, DefaultMaxFragments)
	maxBytes := orDefault(r.MaxBytes, DefaultMaxBytes)
	if f.Number == 0 || f.Total == 0 || f.Number > f.Total {
		return 0, nil, false, fmt.Errorf("%w: fragment number %d of %d", ErrFragmentDiscarded, f.Number, f.Total)
	}
	if int(f.Total) > maxFrags {
		return 0, nil, false, fmt.Errorf("%w: message %d has %d fragments, limit %d", ErrFragmentDiscarded, f.MessageID, f.Total, maxFrags)
	}
	if f.Number == 1 && f.NextPayload == PayloadNone {
		return 0, nil, false, fmt.Errorf("%w: first fragment of message %d names no payload", ErrFragmentDiscarded, f.MessageID)
	}
	i := r.find(f.MessageID, f.Response)
	if i >= 0 {
		p := r.pending[i]
		switch {
		case f.Total < p.total:
			return 0, nil, false, fmt.Errorf("%w: message %d fragment claims %d fragments, already have %d", ErrFragmentDiscarded, f.MessageID, f.Total, p.total)
		case f.Total > p.total:
			r.remove(i)
			i = -1
		}
	}
	if i < 0 {
		if len(r.pending) >= orDefault(r.MaxMessages, DefaultMaxMessages) {
			r.remove(r.oldest())
		}
		r.pending = append(r.pending, &partial{
			id: f.MessageID, resp: f.Response, total: f.Total,
			frags: make([][]byte, f.Total), started: now,
		})
		i = len(r.pending) - 1
	}
	p := r.pending[i]
	k := int(f.Number) - 1
	if p.frags[k] != nil {
		return 0, nil, false, nil // duplicate
	}
	if p.size+len(f.Data) > maxBytes {
		r.remove(i)
		return 0, nil, false, fmt.Errorf("%w: message %d exceeds %d bytes", ErrFragmentDiscarded, f.MessageID, maxBytes)
	}
	p.frags[k] = append(make([]byte, 0, len(f.Data)+1), f.Data...) // never nil, even if empty
	p.got++
	p.size += len(f.Data)
	if f.Number == 1 {
		p.next = f.NextPayload
	}
	if p.got < int(p.total) {
		return 0, nil, false, nil
	}
	stream = make([]byte, 0, p.size)
	for _, b := range p.frags {
		stream = append(stream, b...)
	}
	next = p.next
	r.remove(i)
	return next, stream, true, nil
}

// Expire drops the messages whose first fragment arrived before deadline and
// returns how many it dropped.
func (r *Reassembler) Expire(deadline time.Time) int {
	n := 0
	for i := 0; i < len(r.pending); {
		if r.pending[i].started.Before(deadline) {
			r.remove(i)
			n++
			continue
		}
		i++
	}
	return n
}

// Pending returns the number of messages in progress.
func (r *Reassembler) Pending() int { return len(r.pending) }

func (r *Reassembler) find(id uint32, resp bool) int {
	for i, p := range r.pending {
		if p.id == id && p.resp == resp {
			return i
		}
	}
	return -1
}

func (r *Reassembler) oldest() int {
	o := 0
	for i, p := range r.pending {
		if p.started.Before(r.pending[o].started) {
			o = i
		}
	}
	return o
}

func (r *Reassembler) remove(i int) {
	last := len(r.pending) - 1
	r.pending[i] = r.pending[last]
	r.pending[last] = nil
	r.pending = r.pending[:last]
}
