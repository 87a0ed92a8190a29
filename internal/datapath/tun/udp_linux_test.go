package tun

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func listenLoopback(t *testing.T, opt UDPOptions) *UDPConn {
	t.Helper()
	c, err := ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// receive reads until want datagrams arrived (splitting GRO messages) or
// the deadline passes.
func receive(t *testing.T, c *UDPConn, want int) (dgrams [][]byte, from []netip.AddrPort, coalesced int) {
	t.Helper()
	msgs := make([]Message, 16)
	for i := range msgs {
		msgs[i].Buf = make([]byte, maxPacket)
	}
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.conn.SetReadDeadline(time.Time{})
	for len(dgrams) < want {
		n, err := c.ReadBatch(msgs)
		if err != nil {
			t.Fatalf("after %d of %d datagrams: %v", len(dgrams), want, err)
		}
		for _, m := range msgs[:n] {
			seg := m.Seg
			if seg == 0 {
				seg = m.N
			} else {
				coalesced++
			}
			for off := 0; off < m.N; off += seg {
				dgrams = append(dgrams, append([]byte(nil), m.Buf[off:min(off+seg, m.N)]...))
				from = append(from, m.Addr)
			}
		}
	}
	return dgrams, from, coalesced
}

func payload(i, n int) []byte {
	b := bytes.Repeat([]byte{byte(i)}, n)
	binary.BigEndian.PutUint32(b, uint32(i))
	return b
}

func TestUDPBatchRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name         string
		noGSO, noGRO bool
	}{
		{"gso+gro", false, false},
		{"gso only", false, true},
		{"gro only", true, false},
		{"plain", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tx := listenLoopback(t, UDPOptions{NoGSO: tc.noGSO, NoGRO: tc.noGRO})
			rx1 := listenLoopback(t, UDPOptions{NoGSO: tc.noGSO, NoGRO: tc.noGRO})
			rx2 := listenLoopback(t, UDPOptions{NoGSO: tc.noGSO, NoGRO: tc.noGRO})
			if gso, gro := tx.Offloads(); gso == tc.noGSO || gro == tc.noGRO {
				t.Logf("kernel offloads differ from the request: gso %v gro %v", gso, gro)
			}
			// A run of 40 equal datagrams and a shorter one to rx1,
			// then datagrams alternating between rx1 and rx2, then a
			// run whose sizes grow (must not be merged wrongly).
			var msgs []Message
			var want1, want2 [][]byte
			add := func(to *UDPConn, b []byte) {
				msgs = append(msgs, Message{Buf: b, Addr: to.LocalAddr()})
				if to == rx1 {
					want1 = append(want1, b)
				} else {
					want2 = append(want2, b)
				}
			}
			i := 0
			for ; i < 40; i++ {
				add(rx1, payload(i, 1200))
			}
			add(rx1, payload(i, 300))
			for i = 41; i < 60; i++ {
				add([]*UDPConn{rx1, rx2}[i%2], payload(i, 900))
			}
			for i = 60; i < 70; i++ {
				add(rx2, payload(i, 100+i))
			}
			sent, err := tx.WriteBatch(msgs)
			if err != nil || sent != len(msgs) {
				t.Fatalf("sent %d of %d: %v", sent, len(msgs), err)
			}
			for _, r := range []struct {
				c    *UDPConn
				want [][]byte
			}{{rx1, want1}, {rx2, want2}} {
				got, from, coalesced := receive(t, r.c, len(r.want))
				t.Logf("%v: %d datagrams, %d GRO messages", r.c.LocalAddr(), len(got), coalesced)
				for j := range r.want {
					if !bytes.Equal(got[j], r.want[j]) {
						t.Fatalf("datagram %d: got %d bytes starting %x, want %d starting %x", j, len(got[j]), got[j][:4], len(r.want[j]), r.want[j][:4])
					}
					if from[j] != tx.LocalAddr() {
						t.Fatalf("datagram %d from %v, want %v", j, from[j], tx.LocalAddr())
					}
				}
			}
		})
	}
}

// TestUDPWriteBatchSkipsRefused: a message the kernel refuses is skipped,
// the rest are sent, and the error is reported.
func TestUDPWriteBatchSkipsRefused(t *testing.T) {
	for _, noGSO := range []bool{false, true} {
		tx := listenLoopback(t, UDPOptions{NoGSO: noGSO})
		rx := listenLoopback(t, UDPOptions{NoGRO: true})
		bad := netip.MustParseAddrPort("127.0.0.1:0") // port 0: EINVAL
		msgs := []Message{
			{Buf: payload(1, 100), Addr: rx.LocalAddr()},
			{Buf: payload(2, 100), Addr: bad},
			{Buf: payload(3, 100), Addr: bad},
			{Buf: payload(4, 100), Addr: rx.LocalAddr()},
		}
		sent, err := tx.WriteBatch(msgs)
		if sent != 2 || !errors.Is(err, unix.EINVAL) {
			t.Fatalf("noGSO=%v: sent %d, err %v; want 2 and EINVAL", noGSO, sent, err)
		}
		if gso, _ := tx.Offloads(); gso == noGSO {
			t.Fatalf("noGSO=%v: GSO now %v: a refused message must not turn GSO off", noGSO, gso)
		}
		got, _, _ := receive(t, rx, 2)
		if !bytes.Equal(got[0], msgs[0].Buf) || !bytes.Equal(got[1], msgs[3].Buf) {
			t.Fatalf("noGSO=%v: wrong datagrams arrived", noGSO)
		}
	}
}

func TestUDPWriteBatchInvalid(t *testing.T) {
	tx := listenLoopback(t, UDPOptions{})
	for _, m := range []Message{
		{Buf: nil, Addr: netip.MustParseAddrPort("127.0.0.1:9")},
		{Buf: []byte{1}, Addr: netip.MustParseAddrPort("[::1]:9")},
	} {
		if _, err := tx.WriteBatch([]Message{m}); err == nil {
			t.Errorf("%v accepted", m)
		}
	}
	if _, err := tx.ReadBatch([]Message{{}}); err == nil {
		t.Error("ReadBatch without a buffer accepted")
	}
	tx.Close()
	if _, err := tx.WriteBatch([]Message{{Buf: []byte{1}, Addr: netip.MustParseAddrPort("127.0.0.1:9")}}); !errors.Is(err, os.ErrClosed) && err == nil {
		t.Errorf("write after close: %v", err)
	}
}

func TestGROSize(t *testing.T) {
	cmsg := func(level, typ int32, data []byte) []byte {
		b := make([]byte, unix.CmsgSpace(len(data)))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = level, typ
		h.SetLen(unix.CmsgLen(len(data)))
		copy(b[unix.SizeofCmsghdr:], data)
		return b
	}
	four := binary.NativeEndian.AppendUint32(nil, 1448)
	for _, tc := range []struct {
		name string
		oob  []byte
		want int
	}{
		{"gro", cmsg(unix.SOL_UDP, unix.UDP_GRO, four), 1448},
		{"other first", append(cmsg(unix.SOL_SOCKET, 1, []byte{1, 2, 3}), cmsg(unix.SOL_UDP, unix.UDP_GRO, four)...), 1448},
		{"wrong type", cmsg(unix.SOL_UDP, unix.UDP_SEGMENT, four), 0},
		{"too short data", cmsg(unix.SOL_UDP, unix.UDP_GRO, []byte{1, 2}), 0},
		{"truncated header", cmsg(unix.SOL_UDP, unix.UDP_GRO, four)[:10], 0},
		{"bad length", func() []byte { b := cmsg(unix.SOL_UDP, unix.UDP_GRO, four); b[0] = 200; return b }(), 0},
		{"empty", nil, 0},
	} {
		if got := groSize(tc.oob); got != tc.want {
			t.Errorf("%s: groSize = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestUDPBatchNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	tx := listenLoopback(t, UDPOptions{})
	rx := listenLoopback(t, UDPOptions{})
	out := make([]Message, 32)
	for i := range out {
		out[i] = Message{Buf: payload(i, 1400), Addr: rx.LocalAddr()}
	}
	in := make([]Message, 32)
	for i := range in {
		in[i].Buf = make([]byte, maxPacket)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if n, err := tx.WriteBatch(out); err != nil || n != len(out) {
			t.Fatalf("write: %d %v", n, err)
		}
		got := 0
		for got < len(out) {
			n, err := rx.ReadBatch(in)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range in[:n] {
				if m.Seg > 0 {
					got += (m.N + m.Seg - 1) / m.Seg
				} else {
					got++
				}
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch, want 0", allocs)
	}
}
