// tx.go: the outbound direction: read a batch of inner packets from the
// device, find each one's peer and outbound SA (or hold the packet until
// there is one), seal it in place and send the batch to the peers with one
// sendmmsg.

package tun

import (
	"errors"
	"fmt"
	"net/netip"

	wgtun "golang.zx2c4.com/wireguard/tun"

	"github.com/ovnsec/ovnsec/internal/datapath/drop"
)

// txState is the outbound goroutine's buffers, allocated once.
type txState struct {
	bufs  [][]byte
	sizes []int
	msgs  []Message
	c     counts
}

func newTxState(batch int) *txState {
	t := &txState{
		bufs:  make([][]byte, batch),
		sizes: make([]int, batch),
		msgs:  make([]Message, batch),
	}
	for i := range t.bufs {
		t.bufs[i] = make([]byte, bufSize)
	}
	return t
}

func (a *Attachment) runTx() error {
	for {
		err := a.txStep()
		switch {
		case err == nil:
			continue
		case a.closed.Load():
			return nil
		case errors.Is(err, wgtun.ErrTooManySegments):
			// A super-packet had more segments than the batch holds:
			// the rest is lost, TCP retransmits it.
			t := a.tx
			t.c.reset()
			t.c.drops[drop.TooBig]++
			a.txc.add(&t.c)
			continue
		}
		return fmt.Errorf("tun attachment: read from device: %w", err)
	}
}

// txStep moves one device read's worth of packets to the underlay and
// returns the read's error (the packets read before it are sent).
func (a *Attachment) txStep() error {
	t := a.tx
	n, err := a.dev.Read(t.bufs, t.sizes, txOffset)
	if n > 0 {
		if k := a.sealBatch(t, n); k > 0 {
			a.sendMu.Lock()
			sent, werr := a.conn.WriteBatch(t.msgs[:k])
			a.sendMu.Unlock()
			if sent < k {
				t.c.drops[drop.Send] += uint64(k - sent)
				if werr != nil && !a.closed.Load() {
					a.log.Debug("tun attachment: underlay send failed", "dropped", k-sent, "err", werr)
				}
			}
		}
		a.txc.add(&t.c)
		a.txc.batches.Add(1)
	}
	return err
}

// sealBatch seals the n packets the device read into t.bufs and fills
// t.msgs with the ESP datagrams to send; it returns their number. Drops
// and the batch's totals are tallied in t.c (reset first).
func (a *Attachment) sealBatch(t *txState, n int) int {
	t.c.reset()
	pol := a.pol.Load()
	k := 0
	for i := range n {
		buf := t.bufs[i]
		pkt := buf[txOffset : txOffset+t.sizes[i]]
		_, dst, plen, ok := innerAddrs(pkt)
		if !ok {
			t.c.drops[drop.Malformed]++
			continue
		}
		pkt = pkt[:plen]
		p := pol.route(dst)
		if p < 0 {
			t.c.drops[drop.NoPeer]++
			continue
		}
		peer := pol.peers[p].Addr
		sa := a.table.Outbound(peer)
		if sa == nil {
			a.noSA(t, peer, pkt)
			continue
		}
		out, err := sealOne(sa, buf, pkt)
		if err != nil {
			t.c.drops[drop.FromESP(err)]++
			continue
		}
		t.msgs[k] = Message{Buf: out, Addr: netip.AddrPortFrom(peer, sa.Encap().DstPort)}
		k++
		t.c.packets++
		t.c.bytes += uint64(plen)
	}
	return k
}

// noSA holds (or drops) a packet for a peer without an outbound SA and
// asks for SAs when it is the peer's first packet waiting.
func (a *Attachment) noSA(t *txState, peer netip.Addr, pkt []byte) {
	ok, evicted, first := false, false, false
	if a.hold != nil {
		ok, evicted, first = a.hold.put(peer, pkt)
	}
	if evicted || !ok {
		a.table.CountNoSA()
		t.c.drops[drop.NoSA]++
	}
	if ok {
		t.c.held++
		// The SA may have been installed after the lookup and
		// before the packet was held, too late for Install's release.
		if a.table.Outbound(peer) != nil {
			a.release(peer)
		}
	}
	if (first || a.hold == nil) && a.onNoSA != nil {
		a.onNoSA(peer)
	}
}
