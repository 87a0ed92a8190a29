// sa.go: one security association: sealing outbound packets and opening
// inbound ones with AES-GCM-16, sequence numbers, replay check, lifetimes.

package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/esp/replay"
)

// Lifetime limits an SA's use. A zero field means no limit. Soft limits
// ask for a rekey once (Event SoftExpired); hard limits make the SA refuse
// every further packet (Event HardExpired, drops counted as lifetime).
// Bytes are payload (plaintext) bytes. Time runs from NewSA and is checked
// by CheckTime (Table.Sweep), not per packet. Under concurrent Seal the
// packet and byte limits may be exceeded by the packets in flight.
type Lifetime struct {
	SoftBytes, HardBytes     uint64
	SoftPackets, HardPackets uint64
	SoftTime, HardTime       time.Duration
}

// EventKind is what happened to an SA.
type EventKind uint8

const (
	// SoftExpired: a soft limit was reached; rekey now.
	SoftExpired EventKind = iota + 1
	// HardExpired: a hard limit was reached; the SA refuses packets.
	HardExpired
)

func (k EventKind) String() string {
	switch k {
	case SoftExpired:
		return "soft-expired"
	case HardExpired:
		return "hard-expired"
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Limit names the limit behind an Event.
type Limit uint8

const (
	LimitBytes Limit = iota + 1
	LimitPackets
	LimitTime
	// LimitSequence: the sequence number space is (nearly) exhausted.
	LimitSequence
)

func (l Limit) String() string {
	switch l {
	case LimitBytes:
		return "bytes"
	case LimitPackets:
		return "packets"
	case LimitTime:
		return "time"
	case LimitSequence:
		return "sequence"
	}
	return fmt.Sprintf("limit(%d)", uint8(l))
}

// Event reports a lifetime transition; each kind is reported at most once
// per SA.
type Event struct {
	SPI   SPI
	Dir   Direction
	Kind  EventKind
	Limit Limit
}

// SoftSeqMargin: an SA without ESN asks for a rekey (SoftExpired,
// LimitSequence) when this many sequence numbers are left.
const SoftSeqMargin = 1 << 20

// Config describes an SA.
type Config struct {
	SPI   SPI
	Dir   Direction
	Mode  Mode
	Encap Encap
	// Key is the AES key and salt; NewSA copies what it needs and the
	// caller may Zero the Key afterwards.
	Key Key
	// ESN enables 64-bit extended sequence numbers (RFC 4303 §2.2.1).
	ESN bool
	// ReplayWindow is the inbound anti-replay window in packets;
	// 0 means replay.DefaultSize.
	ReplayWindow int
	Lifetime     Lifetime
	// Notify receives lifetime events. It is called on the packet path
	// or from CheckTime and must not block (send on a buffered channel
	// with select/default, for example). Nil means no notification.
	Notify func(Event)
	// Clock gives the install time for time lifetimes; nil is the system
	// clock.
	Clock clock.Clock
	// Resume continues an SA of an earlier process (a restart or an
	// upgrade that kept the SA): nil for a new SA.
	Resume *Resume
}

// Resume is where a restored SA continues. An (SPI, sequence number) pair
// must never be sent twice with one key (AES-GCM's nonce is the sequence
// number), so an outbound SA resumes after LastSeq plus a margin that
// covers every packet the earlier process may have sent after it saved
// LastSeq; an inbound SA rejects everything up to ReplayTop.
type Resume struct {
	LastSeq   uint64 // outbound: the last sequence number used
	ReplayTop uint64 // inbound: the highest sequence number accepted
}

// ResumeMargin is how far past the saved LastSeq a resumed outbound SA
// starts.
const ResumeMargin = 1 << 16

// SA states.
const (
	stateLive uint32 = iota
	stateExpired
	stateClosed
)

// scratch holds the nonce and AAD of one operation. It lives in the SA
// (Open) or a per-SA pool (Seal) because slices passed to cipher.AEAD (an
// interface) escape, and stack arrays would be heap-allocated per packet.
type scratch struct {
	nonce [12]byte
	aad   [12]byte
}

// SA is one security association. Seal may be called from many goroutines
// at once. Open must be called from one goroutine at a time per SA (the
// anti-replay window is not locked; the data path receives each SA on one
// goroutine). Stats, CheckTime and Close are safe from any goroutine.
type SA struct {
	spi     SPI
	dir     Direction
	mode    Mode
	encap   Encap
	esn     bool
	aead    cipher.AEAD
	salt    [saltLen]byte
	life    Lifetime
	notify  func(Event)
	created time.Time

	state     atomic.Uint32
	softFired atomic.Bool
	seq       atomic.Uint64 // outbound: last sequence number used
	topIn     atomic.Uint64 // inbound: highest accepted, for Stats

	win  replay.Window // inbound only
	rx   scratch       // Open's nonce and AAD: one receiver per SA
	pool sync.Pool     // Seal's scratch: many senders per SA

	c counters
}

// NewSA builds an SA from cfg. It is how the IKE engine installs negotiated
// keys and how tests install static ones.
func NewSA(cfg Config) (*SA, error) {
	if cfg.SPI == 0 {
		return nil, fmt.Errorf("esp SA: SPI 0 is reserved; use a nonzero SPI")
	}
	if cfg.Dir != Inbound && cfg.Dir != Outbound {
		return nil, fmt.Errorf("esp SA %v: direction %v: want in or out", cfg.SPI, cfg.Dir)
	}
	if cfg.Mode != Transport && cfg.Mode != Tunnel {
		return nil, fmt.Errorf("esp SA %v: mode %v: want transport or tunnel", cfg.SPI, cfg.Mode)
	}
	if cfg.Encap.Type != EncapNone && cfg.Encap.Type != EncapUDP {
		return nil, fmt.Errorf("esp SA %v: unknown encapsulation %d", cfg.SPI, cfg.Encap.Type)
	}
	if cfg.Encap.Type == EncapUDP && (cfg.Encap.SrcPort == 0 || cfg.Encap.DstPort == 0) {
		return nil, fmt.Errorf("esp SA %v: UDP encapsulation needs both ports (normally %d)", cfg.SPI, NATTPort)
	}
	if n := cfg.Key.Len(); n != 16+saltLen && n != 32+saltLen {
		return nil, fmt.Errorf("esp SA %v: key is %d bytes (zeroed or unset?); want 20 or 36 including salt", cfg.SPI, n)
	}
	block, err := aes.NewCipher(cfg.Key.aesKey())
	if err != nil {
		return nil, fmt.Errorf("esp SA %v: AES key: %w", cfg.SPI, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("esp SA %v: AES-GCM: %w", cfg.SPI, err)
	}
	clk := clock.Or(cfg.Clock)
	sa := &SA{
		spi:     cfg.SPI,
		dir:     cfg.Dir,
		mode:    cfg.Mode,
		encap:   cfg.Encap,
		esn:     cfg.ESN,
		aead:    aead,
		life:    cfg.Lifetime,
		notify:  cfg.Notify,
		created: clk.Now(),
	}
	copy(sa.salt[:], cfg.Key.salt())
	sa.pool.New = func() any { return new(scratch) }
	if cfg.Dir == Inbound {
		if err := sa.win.Init(cfg.ReplayWindow); err != nil {
			return nil, fmt.Errorf("esp SA %v: %w", cfg.SPI, err)
		}
	}
	if r := cfg.Resume; r != nil {
		if cfg.Dir == Outbound {
			next := r.LastSeq + ResumeMargin
			if next < r.LastSeq || (!cfg.ESN && next >= 1<<32) {
				return nil, fmt.Errorf("esp SA %v: resuming after sequence number %d leaves no room; rekey instead", cfg.SPI, r.LastSeq)
			}
			sa.seq.Store(next)
		} else {
			sa.win.Resume(r.ReplayTop)
			sa.topIn.Store(r.ReplayTop)
		}
	}
	return sa, nil
}

// Saved returns what a later process needs to resume the SA (Config.Resume).
// Call it once nothing uses the SA any more (the packet path stopped).
func (sa *SA) Saved() Resume {
	if sa.dir == Outbound {
		return Resume{LastSeq: sa.seq.Load()}
	}
	return Resume{ReplayTop: sa.topIn.Load()}
}

// SPI returns the SA's SPI.
func (sa *SA) SPI() SPI { return sa.spi }

// Dir returns the SA's direction.
func (sa *SA) Dir() Direction { return sa.dir }

// Mode returns the SA's mode.
func (sa *SA) Mode() Mode { return sa.mode }

// Encap returns the SA's encapsulation.
func (sa *SA) Encap() Encap { return sa.encap }

// Usable reports whether the SA still accepts packets.
func (sa *SA) Usable() bool { return sa.state.Load() == stateLive }

// Close makes the SA refuse every further packet. Operations already
// running finish normally. Erasing the Key it was built from is the
// caller's job (Key.Zero).
func (sa *SA) Close() {
	sa.state.Store(stateClosed)
}

func (sa *SA) String() string {
	return fmt.Sprintf("esp SA %v %v %v encap %v", sa.spi, sa.dir, sa.mode, sa.encap)
}

// Seal encrypts payload as one ESP packet with next header nextHeader and
// returns it as dst[:SealedLen(len(payload))]. dst's capacity must be at
// least that (else ErrShortBuffer); nothing is allocated. To seal in place,
// put the payload at dst[Headroom:] (payload == dst[Headroom:Headroom+n])
// with MaxTailroom spare bytes after it: the payload is then not moved.
// Otherwise payload may lie anywhere in dst or outside it.
func (sa *SA) Seal(dst, payload []byte, nextHeader byte) ([]byte, error) {
	if sa.dir != Outbound {
		return nil, ErrDirection
	}
	if sa.state.Load() != stateLive {
		sa.c.dropLifetime.Add(1)
		return nil, ErrExpired
	}
	n := len(payload)
	body := paddedLen(n)
	total := Headroom + body + ICVLen
	if cap(dst) < total {
		return nil, ErrShortBuffer
	}
	if !sa.admit(uint64(n), &sa.c.packetsOut, &sa.c.bytesOut) {
		sa.c.dropLifetime.Add(1)
		return nil, ErrExpired
	}
	seq := sa.seq.Add(1)
	if (!sa.esn && seq > math.MaxUint32) || seq == 0 {
		sa.c.dropSeqOverflow.Add(1)
		sa.expire(LimitSequence)
		return nil, ErrSeqOverflow
	}
	if !sa.esn && seq == math.MaxUint32-SoftSeqMargin {
		sa.soft(LimitSequence)
	}

	out := dst[:total]
	pt := out[Headroom : Headroom+body]
	// Move the payload before writing the header: it may overlap it.
	if n > 0 && &payload[0] != &pt[0] {
		copy(pt, payload)
	}
	pad := body - n - TrailerLen
	for i := range pad {
		pt[n+i] = byte(i + 1) // RFC 4303 §2.4 default padding 1, 2, 3...
	}
	pt[body-2] = byte(pad)
	pt[body-1] = nextHeader
	binary.BigEndian.PutUint32(out[0:4], uint32(sa.spi))
	binary.BigEndian.PutUint32(out[4:8], uint32(seq))
	binary.BigEndian.PutUint64(out[8:16], seq)

	sc := sa.pool.Get().(*scratch)
	copy(sc.nonce[:saltLen], sa.salt[:])
	copy(sc.nonce[saltLen:], out[8:16])
	aad := sa.aad(sc, out[0:8], seq)
	sa.aead.Seal(pt[:0], sc.nonce[:], pt, aad)
	sa.pool.Put(sc)

	sa.account(uint64(n), &sa.c.packetsOut, &sa.c.bytesOut)
	return out, nil
}

// aad returns the additional authenticated data (RFC 4106 §5): SPI and the
// 32-bit sequence number as on the wire, or SPI and the full 64-bit
// extended sequence number with ESN.
func (sa *SA) aad(sc *scratch, hdr []byte, seq uint64) []byte {
	if !sa.esn {
		return hdr // SPI | seq, exactly as sent
	}
	copy(sc.aad[0:4], hdr[0:4])
	binary.BigEndian.PutUint64(sc.aad[4:12], seq)
	return sc.aad[:]
}

// Open checks and decrypts one ESP packet (starting at the SPI) and returns
// its payload and next header. The plaintext is written to dst's capacity
// (which must hold len(packet)-Headroom-ICVLen bytes), or, when dst is nil,
// in place: the payload then aliases packet[Headroom:]. The caller has
// looked the SA up by the packet's SPI. Every drop is counted by reason;
// nothing is allocated. A non-nil dst must not overlap packet. After a
// failed integrity check the bytes of dst (or of the packet, in place) are
// undefined.
func (sa *SA) Open(dst, packet []byte) (payload []byte, nextHeader byte, err error) {
	if sa.dir != Inbound {
		return nil, 0, ErrDirection
	}
	n := len(packet)
	if n < Headroom+4+ICVLen {
		sa.c.dropMalformed.Add(1)
		return nil, 0, ErrTruncated
	}
	ctLen := n - Headroom
	if (ctLen-ICVLen)%4 != 0 {
		sa.c.dropMalformed.Add(1)
		return nil, 0, ErrMisaligned
	}
	if SPI(binary.BigEndian.Uint32(packet[0:4])) != sa.spi {
		sa.c.dropMalformed.Add(1)
		return nil, 0, ErrSPIMismatch
	}
	if sa.state.Load() != stateLive {
		sa.c.dropLifetime.Add(1)
		return nil, 0, ErrExpired
	}
	lo := binary.BigEndian.Uint32(packet[4:8])
	seq := uint64(lo)
	if sa.esn {
		var ok bool
		if seq, ok = sa.win.Infer(lo); !ok {
			sa.c.dropReplay.Add(1)
			return nil, 0, ErrReplay
		}
	}
	// Replay check before spending a decryption on the packet.
	if !sa.win.Check(seq) {
		sa.c.dropReplay.Add(1)
		return nil, 0, ErrReplay
	}
	ct := packet[Headroom:]
	var out []byte
	if dst == nil {
		out = ct[:0]
	} else {
		if cap(dst) < ctLen-ICVLen {
			return nil, 0, ErrShortBuffer
		}
		out = dst[:0]
	}

	sc := &sa.rx
	copy(sc.nonce[:saltLen], sa.salt[:])
	copy(sc.nonce[saltLen:], packet[8:16])
	pt, aerr := sa.aead.Open(out, sc.nonce[:], ct, sa.aad(sc, packet[0:8], seq))
	if aerr != nil {
		sa.c.dropAuth.Add(1)
		return nil, 0, ErrAuth
	}
	// Authentic: only now does the packet move the window.
	if !sa.win.Update(seq) {
		sa.c.dropReplay.Add(1)
		return nil, 0, ErrReplay
	}
	if top := sa.win.Top(); top != sa.topIn.Load() {
		sa.topIn.Store(top)
	}
	padLen := int(pt[len(pt)-2])
	nh := pt[len(pt)-1]
	end := len(pt) - TrailerLen - padLen
	if end < 0 {
		sa.c.dropMalformed.Add(1)
		return nil, 0, ErrBadPadding
	}
	for i, b := range pt[end : len(pt)-TrailerLen] {
		if b != byte(i+1) {
			sa.c.dropMalformed.Add(1)
			return nil, 0, ErrBadPadding
		}
	}
	if nh == 59 {
		// RFC 4303 §2.6: dummy packets are discarded silently.
		sa.c.dummy.Add(1)
		return nil, 0, ErrDummy
	}
	// Hard limits need the payload length, known only now.
	if !sa.admit(uint64(end), &sa.c.packetsIn, &sa.c.bytesIn) {
		sa.c.dropLifetime.Add(1)
		return nil, 0, ErrExpired
	}
	sa.account(uint64(end), &sa.c.packetsIn, &sa.c.bytesIn)
	return pt[:end], nh, nil
}

// admit reports whether one more packet of n bytes stays within the hard
// limits, expiring the SA if not.
func (sa *SA) admit(n uint64, packets, bytes *atomic.Uint64) bool {
	l := &sa.life
	if l.HardPackets != 0 && packets.Load() >= l.HardPackets {
		sa.expire(LimitPackets)
		return false
	}
	if l.HardBytes != 0 && bytes.Load()+n > l.HardBytes {
		sa.expire(LimitBytes)
		return false
	}
	return true
}

// account counts a packet of n bytes and raises the soft event when a soft
// limit is reached.
func (sa *SA) account(n uint64, packets, bytes *atomic.Uint64) {
	p := packets.Add(1)
	b := bytes.Add(n)
	l := &sa.life
	if l.SoftPackets != 0 && p >= l.SoftPackets {
		sa.soft(LimitPackets)
	} else if l.SoftBytes != 0 && b >= l.SoftBytes {
		sa.soft(LimitBytes)
	}
}

func (sa *SA) soft(l Limit) {
	if sa.softFired.Load() || !sa.softFired.CompareAndSwap(false, true) {
		return
	}
	if sa.notify != nil {
		sa.notify(Event{SPI: sa.spi, Dir: sa.dir, Kind: SoftExpired, Limit: l})
	}
}

func (sa *SA) expire(l Limit) {
	if !sa.state.CompareAndSwap(stateLive, stateExpired) {
		return
	}
	if sa.notify != nil {
		sa.notify(Event{SPI: sa.spi, Dir: sa.dir, Kind: HardExpired, Limit: l})
	}
}

// CheckTime applies the time lifetimes at now: past HardTime the SA
// expires, past SoftTime it asks for a rekey. Table.Sweep calls it.
func (sa *SA) CheckTime(now time.Time) {
	age := now.Sub(sa.created)
	if sa.life.HardTime > 0 && age >= sa.life.HardTime {
		sa.expire(LimitTime)
		return
	}
	if sa.life.SoftTime > 0 && age >= sa.life.SoftTime {
		sa.soft(LimitTime)
	}
}

// CountPolicyDrop counts a packet the caller dropped because it did not
// match the SA's policy (for example a disallowed inner protocol).
func (sa *SA) CountPolicyDrop() { sa.c.dropPolicy.Add(1) }
