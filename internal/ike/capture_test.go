// Captures the IKE messages charon sends during a full life (fragmented
// certificate IKE_AUTH, rekeys, liveness, delete) and writes them as seeds
// for internal/ike/message's FuzzDecode (IKE_CAPTURE_SEEDS=<dir>).

package ike

import (
	"crypto/x509"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/ike/message"
)

// recConn records every datagram received (without the non-ESP marker).
type recConn struct {
	PacketConn
	mu  sync.Mutex
	got [][]byte
}

func (r *recConn) ReadFrom(p Port, b []byte) (int, netip.AddrPort, error) {
	n, from, err := r.PacketConn.ReadFrom(p, b)
	if err == nil {
		m := b[:n]
		ok := true
		if p == PortNATT {
			m, ok = message.StripNonESPMarker(m)
		}
		if ok {
			r.mu.Lock()
			r.got = append(r.got, append([]byte(nil), m...))
			r.mu.Unlock()
		}
	}
	return n, from, err
}

func TestCharonCaptureSeeds(t *testing.T) {
	dir := os.Getenv("IKE_CAPTURE_SEEDS")
	if dir == "" {
		t.Skip("set IKE_CAPTURE_SEEDS=<FuzzDecode corpus dir> to capture charon's messages")
	}
	setupNetns(t)
	ca := newCA(t, "ovnsec test CA")
	inter := issueCA(t, &ca, "ovnsec intermediate")
	ours := issue(t, &inter, idA, "rsa", time.Now().Add(time.Hour))
	theirs := issue(t, &inter, idB, "rsa", time.Now().Add(time.Hour))
	c := startCharon(t)
	c.installCert(t, "charon.pem", theirs)
	c.installCert(t, "inter.pem", inter)
	c.installKey(t, "charon.key", theirs)
	c.installCA(t, "ca.pem", ca)
	c.load(swanConf{proposals: "aes256gcm16-prfsha256-modp2048", auth: "pubkey", certFile: "charon.pem,inter.pem", keyFile: "charon.key",
		caFile: "ca.pem", dpd: "1s", esp: "aes256gcm16-x25519", extra: "  fragmentation = yes\n"}.String())
	var rc *recConn
	inNetns(t, nsA, func() {
		u, err := listenUDP(mustAddr(ipA), 500, 4500)
		if err != nil {
			t.Fatal(err)
		}
		rc = &recConn{PacketConn: u}
	})
	s := startOvnsec(t, func(cfg *Config) { cfg.Conn = rc; cfg.HalfOpenLimit = -1 })
	p := charonPeer(false)
	p.Auth = Auth{Cert: []*x509.Certificate{ours.cert, inter.cert}, Key: ours.key, CAs: []*x509.Certificate{ca.cert}}
	p.ESPProposals = []string{"aes256gcm16-x25519"}
	p.DPDInterval = time.Minute
	if err := s.e.AddPeer(p); err != nil {
		t.Fatal(err)
	}
	c.swanctl(false, "--initiate", "--child", "tun", "--timeout", "10")
	st := checkUp(t, c, s)
	c.swanctl(false, "--rekey", "--child", "tun")
	waitChildReplaced(t, c, s, st)
	c.swanctl(false, "--rekey", "--ike", "ovn")
	time.Sleep(2500 * time.Millisecond) // DPD
	// Our requests, for charon's responses.
	if err := s.e.RekeyChild("charon", "tun"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := s.e.CheckLiveness("charon"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := s.e.RekeyIKE("charon"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := s.e.DeleteIKE("charon"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	// And a fresh IKE SA that ovnsec initiates (IKE_SA_INIT and IKE_AUTH
	// responses, fragmented), deleted by charon.
	if err := s.e.Initiate("charon"); err != nil {
		t.Fatal(err)
	}
	checkUp(t, c, s)
	c.swanctl(false, "--terminate", "--ike", "ovn", "--timeout", "5")
	waitReason(t, s, "peer deleted the IKE SA")
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) < 8 {
		t.Fatalf("captured only %d messages", len(rc.got))
	}
	for i, b := range rc.got {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("charon-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %d charon messages to %s", len(rc.got), dir)
}
