// Hook stage: the interface through which the packet loop hands steered
// frames to whatever transforms them (the ESP engine; Passthrough for the
// bench), and the frame buffers it hands over.

package ovsbridge

import "net/netip"

// Headroom and Tailroom are the spare bytes every frame buffer has before
// and after the frame as read, so that a hook can grow a frame in place (an
// ESP header after the IP header, padding and ICV at the end) without
// copying to another buffer.
const (
	Headroom = 128
	Tailroom = 128
)

// Direction is where a frame steered to the engine is going.
type Direction uint8

const (
	// Outbound: a tunnel packet from LOCAL (after OVS's tnl_push) to a peer;
	// the frame's IP destination is the peer.
	Outbound Direction = iota + 1
	// Inbound: a packet from the NIC that came from a peer (ESP, ESP-in-UDP,
	// IKE on 4500 with EncapUDP4500, or bench plaintext); the frame's IP
	// source is the peer.
	Inbound
)

func (d Direction) String() string {
	switch d {
	case Outbound:
		return "outbound"
	case Inbound:
		return "inbound"
	}
	return "none"
}

// Verdict is what the hook decided for one frame. The zero value drops,
// so a hook that forgets a frame fails closed.
type Verdict uint8

const (
	VerdictDrop Verdict = iota // discard (the hook counts its own reasons)
	VerdictPass                // write Bytes() back to the engine port; OVS forwards it by address
	VerdictHold                // outbound only, frame unmodified: queue until the peer's SA is ready (Loop.Release)
)

// Frame is one Ethernet frame in a preallocated buffer. The loop owns it;
// a hook may read and rewrite it in place during the call only.
type Frame struct {
	buf      []byte
	off, n   int
	Dir      Direction
	Peer     netip.Addr // the peer this frame goes to (Outbound) or came from (Inbound)
	Info     Info       // parsed headers, as read (not updated by SetBounds)
	Verdict  Verdict
	readSize int
}

func newFrame(size int) *Frame {
	return &Frame{buf: make([]byte, Headroom+size+Tailroom)}
}

// Bytes returns the frame.
func (f *Frame) Bytes() []byte { return f.buf[f.off : f.off+f.n] }

// Buffer returns the whole buffer the frame lives in, headroom and
// tailroom included; Offset is where the frame starts in it.
func (f *Frame) Buffer() []byte { return f.buf }

// Offset returns the start of the frame within Buffer.
func (f *Frame) Offset() int { return f.off }

// SetBounds moves the frame to Buffer()[off:off+n], after the hook has
// rewritten it in place. It refuses (returns false, leaving the frame as
// it was) bounds outside the buffer or shorter than an Ethernet header.
func (f *Frame) SetBounds(off, n int) bool {
	if off < 0 || n < ethHeader || off > len(f.buf) || n > len(f.buf)-off {
		return false
	}
	f.off, f.n = off, n
	return true
}

// reset prepares f for a read of up to size bytes at Headroom.
func (f *Frame) readArea(size int) []byte { return f.buf[Headroom : Headroom+size] }

// load sets f to hold a frame of n bytes read at Headroom.
func (f *Frame) load(n int) {
	f.off, f.n = Headroom, n
	f.Verdict = VerdictDrop
	f.Dir = 0
	f.Peer = netip.Addr{}
	f.Info = Info{}
}

// Hook transforms frames steered to the engine port. The loop calls
// Outbound with the outbound frames of one read batch and Inbound with the
// inbound ones, in arrival order; the hook sets each frame's Verdict and may
// rewrite frames in place (SetBounds). Frames with VerdictPass are written
// back to the engine port, where OVS forwards them by address: to the NIC if
// the IP destination is a peer, to LOCAL if the source is (so a decrypted
// Geneve packet gets popped as usual).
//
// With EncapUDP4500 every UDP packet from the peer to our port 4500 (from
// any source port: a NAT may have mapped the peer's) is steered to the
// engine, IKE included: Inbound must pass packets that carry the non-ESP
// marker (four zero bytes after the UDP header) unchanged, so that they
// reach the host's IKE socket through LOCAL.
//
// A hook returns VerdictHold for an outbound frame whose peer has no SA
// yet; whoever installs the SA then calls Loop.Release (or Loop.Discard when
// IKE failed). Frames passed between the SA becoming ready and Release may
// overtake held ones.
//
// Outbound may be called concurrently with itself (Loop.Release flushes
// held frames from the caller's goroutine); the frames of different calls
// never overlap. A hook must not keep a Frame or its bytes after returning.
type Hook interface {
	Outbound(frames []*Frame)
	Inbound(frames []*Frame)
}

// Passthrough turns every steered frame around unchanged: mode (b) of the
// bench, "steering without encrypting". Use it only with
// ModeBenchPassthrough policies; with ModeProtected policies OVS drops its
// plaintext output to a peer (KindDropEngineLeak).
type Passthrough struct{}

// Outbound passes every frame.
func (Passthrough) Outbound(frames []*Frame) { passAll(frames) }

// Inbound passes every frame.
func (Passthrough) Inbound(frames []*Frame) { passAll(frames) }

func passAll(frames []*Frame) {
	for _, f := range frames {
		f.Verdict = VerdictPass
	}
}
