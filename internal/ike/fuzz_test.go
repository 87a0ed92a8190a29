// Fuzzing the engine's receive path: arbitrary datagrams on both ports,
// from a configured peer, aimed at a live IKE SA (its SPIs patched in) and
// at the responder's IKE_SA_INIT handling. Nothing may panic; everything
// malformed is dropped and counted.

package ike

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
)

func FuzzEngineReceive(f *testing.F) {
	f.Add(uint8(0), []byte{})
	f.Add(uint8(1), []byte{0xff})
	f.Add(uint8(1), []byte{0, 0, 0, 0, 1, 2, 3})
	f.Add(uint8(2), make([]byte, 28))
	w := newFuzzWorld(f)
	st := w.a.e.Status("peer")
	f.Fuzz(func(t *testing.T, mode uint8, b []byte) {
		b = append([]byte(nil), b...)
		port := PortIKE
		if mode&1 != 0 {
			port = PortNATT
		}
		if mode&2 != 0 && len(b) >= 16 {
			// Aim at the live SA.
			off := 0
			if port == PortNATT && len(b) >= 20 {
				off = 4
				copy(b, []byte{0, 0, 0, 0})
			}
			copy(b[off:off+8], st.SPIi[:])
			copy(b[off+8:off+16], st.SPIr[:])
		}
		from := netip.AddrPortFrom(w.b.ip, 500)
		if port == PortNATT {
			from = netip.AddrPortFrom(w.b.ip, 4500)
		}
		w.a.e.receive(port, b, from)
	})
}

// newFuzzWorld makes two engines on the in-memory network with an
// established IKE SA (a is the initiator).
func newFuzzWorld(f *testing.F) *fakeWorld {
	w := &fakeWorld{net: newMemNet(), clock: clocktest.New(time.Unix(1_800_000_000, 0))}
	mk := func(ip string) *fakeSide {
		s := &fakeSide{rec: &Recorder{}, ip: netip.MustParseAddr(ip)}
		e, err := New(Config{Conn: w.net.conn(s.ip, 500, 4500), Handler: s.rec, Clock: w.clock, Logger: testLogger()})
		if err != nil {
			f.Fatal(err)
		}
		s.e = e
		go e.events.run(nil)
		go e.readLoop(PortIKE)
		go e.readLoop(PortNATT)
		return s
	}
	w.a, w.b = mk("192.0.2.1"), mk("192.0.2.2")
	if err := w.b.e.AddPeer(fakePeer(w.b, w.a, false)); err != nil {
		f.Fatal(err)
	}
	if err := w.a.e.AddPeer(fakePeer(w.a, w.b, true)); err != nil {
		f.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !w.a.e.Status("peer").Up() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if !w.a.e.Status("peer").Up() {
		f.Fatal("fuzz world did not come up")
	}
	// Stop the network: the fuzzer feeds a directly.
	w.net.setFilter(func(netip.AddrPort, netip.AddrPort, []byte) bool { return false })
	f.Cleanup(func() {
		w.a.e.closed.Store(true)
		w.b.e.closed.Store(true)
		w.a.e.conn.Close()
		w.b.e.conn.Close()
		w.a.e.events.close()
		w.b.e.events.close()
	})
	return w
}

// TestWriteSeeds writes the datagrams of a real handshake, rekeys and
// deletes as FuzzEngineReceive seeds (IKE_WRITE_SEEDS=1).
func TestWriteSeeds(t *testing.T) {
	if os.Getenv("IKE_WRITE_SEEDS") == "" {
		t.Skip("set IKE_WRITE_SEEDS=1 to regenerate testdata/fuzz/FuzzEngineReceive")
	}
	w := newFakeWorld(t, nil, nil)
	pa, pb := fakePeer(w.a, w.b, true), fakePeer(w.b, w.a, false)
	pa.ForceEncap = true
	w.add(pa, pb)
	w.waitUp()
	if err := w.a.e.RekeyChild("peer", "c"); err != nil {
		t.Fatal(err)
	}
	settle()
	if err := w.b.e.RekeyIKE("peer"); err != nil {
		t.Fatal(err)
	}
	settle()
	if err := w.a.e.CheckLiveness("peer"); err != nil {
		t.Fatal(err)
	}
	settle()
	if err := w.a.e.DeleteIKE("peer"); err != nil {
		t.Fatal(err)
	}
	settle()
	dir := filepath.Join("testdata", "fuzz", "FuzzEngineReceive")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, p := range w.net.packets() {
		mode := 0
		if p.to.Port() == 4500 {
			mode = 1
		}
		body := fmt.Sprintf("go test fuzz v1\nuint8(%d)\n[]byte(%s)\n", mode, strconv.Quote(string(p.b)))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("handshake-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
