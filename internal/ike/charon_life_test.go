// Interop with charon over an IKE SA's life: Child SA and IKE SA rekeying
// started by either side, deletion by either side, liveness checks in
// both directions and detection of a dead peer.

package ike

import (
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/ike/message"
)

func TestCharonLifecycle(t *testing.T) {
	setupNetns(t)
	for _, tc := range []struct {
		name string
		act  func(t *testing.T, c *charon, s *side, st PeerStatus)
		dpd  time.Duration // ours; default 1s
	}{
		{"ovnsec-rekeys-child", func(t *testing.T, c *charon, s *side, st PeerStatus) {
			if err := s.e.RekeyChild("charon", "tun"); err != nil {
				t.Fatal(err)
			}
			waitChildReplaced(t, c, s, st)
		}, 0},
		{"charon-rekeys-child", func(t *testing.T, c *charon, s *side, st PeerStatus) {
			c.swanctl(false, "--rekey", "--child", "tun")
			waitChildReplaced(t, c, s, st)
		}, 0},
		{"ovnsec-rekeys-child-pfs", func(t *testing.T, c *charon, s *side, st PeerStatus) {
			if err := s.e.RekeyChild("charon", "tun"); err != nil {
				t.Fatal(err)
			}
			waitChildReplaced(t, c, s, st)
			if !strings.Contains(c.swanctl(true, "--list-sas"), "ESP:AES_GCM_16-256/CURVE_25519") {
				t.Errorf("charon's rekeyed child has no PFS:\n%s", c.swanctl(true, "--list-sas"))
			}
		}, 0},
		{"charon-rekeys-child-pfs", func(t *testing.T, c *charon, s *side, st PeerStatus) {
			c.swanctl(false, "--rekey", "--child", "tun")
			waitChildReplaced(t, c, s, st)
			if evs := s.rec.Events(); evs[1].SA.PFSGroup != message.CURVE_25519 {
				t.Errorf("rekeyed child PFS group %v", evs[1].SA.PFSGroup)
			}
		}, 0},
		{"ovnsec-rekeys-child-ovsesp", func(t *testing.T, c *charon, s *side, st PeerStatus) {
			// charon configured like OVS does (esp=aes256gcm16-modp2048),
			// ovnsec with the default (no PFS): the rekey is retried with PFS.
			if err := s.e.RekeyChild("charon", "tun"); err != nil {
				t.Fatal(err)
			}
			waitChildReplaced(t, c, s, st)
			if evs := s.rec.Events(); evs[1].SA.PFSGroup == message.DH_NONE {
				t.Errorf("rekeyed child without PFS")
			}
		}, 0},
		{"charon-rekeys-child-ovsesp", func(t *testing.T, c *charon, s *side, st PeerStatus) {
			c.swanctl(false, "--rekey", "--child", "tun")
			waitChildReplaced(t, c, s, st)
			if evs := s.rec.Events(); evs[1].SA.PFSGroup != message.MODP_2048 {
				t.Errorf("rekeyed child PFS group %v, want MODP_2048", evs[1].SA.PFSGroup)
			}
		}, 0},
		{"ovnsec-rekeys-ike", func(t *testing.T, c *charon, s *side, st PeerStatus) {
			if err := s.e.RekeyIKE("charon"); err != nil {
				t.Fatal(err)
			}
			waitIKEReplaced(t, c, s, st)
		}, 0},
		{"charon-rekeys-ike", func(t *testing.T, c *charon, s *side, st PeerStatus) {
			c.swanctl(false, "--rekey", "--ike", "ovn")
			waitIKEReplaced(t, c, s, st)
		}, 0},
		{"ovnsec-deletes-ike", func(t *testing.T, c *charon, s *side, st PeerStatus) {
			if err := s.e.DeleteIKE("charon"); err != nil {
				t.Fatal(err)
			}
			waitGone(t, c, s, "deleted locally")
		}, 0},
		{"charon-deletes-ike", func(t *testing.T, c *charon, s *side, st PeerStatus) {
			c.swanctl(false, "--terminate", "--ike", "ovn", "--timeout", "5")
			waitGone(t, c, s, "peer deleted the IKE SA")
		}, 0},
		{"ovnsec-deletes-child", func(t *testing.T, c *charon, s *side, st PeerStatus) {
			if err := s.e.DeleteChild("charon", "tun"); err != nil {
				t.Fatal(err)
			}
			waitChildGone(t, c, s)
		}, 0},
		{"charon-deletes-child", func(t *testing.T, c *charon, s *side, st PeerStatus) {
			c.swanctl(false, "--terminate", "--child", "tun", "--timeout", "5")
			waitChildGone(t, c, s)
		}, 0},
		{"liveness-both-ways", func(t *testing.T, c *charon, s *side, st PeerStatus) {
			if err := s.e.CheckLiveness("charon"); err != nil {
				t.Fatal(err)
			}
			// charon runs DPD every second (dpd_delay); wait for two.
			deadline := time.Now().Add(10 * time.Second)
			for strings.Count(c.log(), "sending DPD request") < 2 && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			if n := strings.Count(c.log(), "sending DPD request"); n < 2 {
				t.Fatalf("charon sent %d DPD requests", n)
			}
			if _, ok := c.waitSAs(time.Second, "ESTABLISHED", st.SPIi.String()); !ok {
				t.Fatal("charon dropped the IKE SA after DPD")
			}
			if !s.e.Status("charon").Up() {
				t.Fatalf("ovnsec dropped the IKE SA: %+v", s.e.Status("charon"))
			}
		}, 30 * time.Second},
		{"dead-peer", func(t *testing.T, c *charon, s *side, st PeerStatus) {
			c.stop()
			waitReason(t, s, "peer dead: no answer to liveness check after 3 tries")
			if !s.rec.Wait(5*time.Second, func(evs []RecordedEvent) bool { return Count(evs, ChildDeleted) == 1 }) {
				t.Fatalf("no ChildDeleted event: %+v", s.rec.Events())
			}
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCharon(t)
			s := startOvnsec(t, func(cfg *Config) {
				cfg.RetransmitBase = 100 * time.Millisecond
				cfg.RetransmitTries = 3
			})
			sc := swanConf{proposals: "aes256gcm16-prfsha256-x25519", auth: "psk", psk: testPSK, dpd: "1s"}
			p := charonPeer(true)
			p.Auth.PSK = []byte(testPSK)
			if strings.HasSuffix(tc.name, "-pfs") {
				sc.esp = "aes256gcm16-x25519"
				p.ESPProposals = []string{"aes256gcm16-x25519"}
			}
			if strings.HasSuffix(tc.name, "-ovsesp") {
				sc.esp = "aes256gcm16-modp2048"
			}
			c.load(sc.String())
			p.DPDInterval = time.Second
			if tc.dpd != 0 {
				p.DPDInterval = tc.dpd
			}
			if err := s.e.AddPeer(p); err != nil {
				t.Fatal(err)
			}
			st := checkUp(t, c, s)
			tc.act(t, c, s, st)
		})
	}
}

func waitChildReplaced(t *testing.T, c *charon, s *side, old PeerStatus) {
	t.Helper()
	if !s.rec.Wait(10*time.Second, func(evs []RecordedEvent) bool {
		return Count(evs, ChildRekeyed) == 1 && Count(evs, ChildDeleted) == 1
	}) {
		t.Fatalf("events: %+v", s.rec.Events())
	}
	evs := s.rec.Events()
	var newIn, newOut string
	for _, e := range evs {
		if e.Event == ChildRekeyed {
			if e.SA.Replaces != old.Children[0].InSPI {
				t.Errorf("rekeyed SA replaces %v, want %v", e.SA.Replaces, old.Children[0].InSPI)
			}
			newIn, newOut = strings.TrimPrefix(e.SA.InSPI.String(), "0x"), strings.TrimPrefix(e.SA.OutSPI.String(), "0x")
		}
		if e.Event == ChildDeleted && e.SA.InSPI != old.Children[0].InSPI {
			t.Errorf("deleted %v, want the old %v", e.SA.InSPI, old.Children[0].InSPI)
		}
	}
	out, ok := c.waitSAs(10*time.Second, newIn, newOut, "INSTALLED")
	if !ok {
		t.Fatalf("charon lacks the new child %s/%s:\n%s", newIn, newOut, out)
	}
	oldIn := strings.TrimPrefix(old.Children[0].InSPI.String(), "0x")
	deadline := time.Now().Add(5 * time.Second)
	for strings.Contains(out, oldIn) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		out = c.swanctl(true, "--list-sas")
	}
	if strings.Contains(out, oldIn) {
		t.Errorf("charon still has the old child %s:\n%s", oldIn, out)
	}
	st := s.e.Status("charon")
	if len(st.Children) != 1 || st.Children[0].State != ChildSAInstalled {
		t.Errorf("ovnsec children: %+v", st.Children)
	}
}

func waitIKEReplaced(t *testing.T, c *charon, s *side, old PeerStatus) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var st PeerStatus
	for time.Now().Before(deadline) {
		st = s.e.Status("charon")
		if st.Up() && st.SPIi != old.SPIi {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !st.Up() || st.SPIi == old.SPIi || len(st.Children) != 1 {
		t.Fatalf("IKE SA not rekeyed: %+v", st)
	}
	out, ok := c.waitSAs(10*time.Second, st.SPIi.String(), st.SPIr.String(), "INSTALLED")
	if !ok {
		t.Fatalf("charon lacks the new IKE SA %s/%s:\n%s", st.SPIi, st.SPIr, out)
	}
	for strings.Contains(out, old.SPIi.String()) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		out = c.swanctl(true, "--list-sas")
	}
	if strings.Contains(out, old.SPIi.String()) {
		t.Errorf("charon still has the old IKE SA:\n%s", out)
	}
	// The child survived and works under the new IKE SA: rekey it there.
	if err := s.e.RekeyChild("charon", "tun"); err != nil {
		t.Fatal(err)
	}
	if !s.rec.Wait(10*time.Second, func(evs []RecordedEvent) bool { return Count(evs, ChildRekeyed) == 1 }) {
		t.Fatalf("child rekey under the new IKE SA failed: %+v", s.rec.Events())
	}
	if Count(s.rec.Events(), ChildEstablished) != 1 {
		t.Errorf("events: %+v", s.rec.Events())
	}
}

func waitGone(t *testing.T, c *charon, s *side, reason string) {
	t.Helper()
	waitReason(t, s, reason)
	if !s.rec.Wait(5*time.Second, func(evs []RecordedEvent) bool { return Count(evs, ChildDeleted) == 1 }) {
		t.Fatalf("no ChildDeleted: %+v", s.rec.Events())
	}
	deadline := time.Now().Add(5 * time.Second)
	out := c.swanctl(true, "--list-sas")
	for strings.Contains(out, "ESTABLISHED") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		out = c.swanctl(true, "--list-sas")
	}
	if strings.Contains(out, "ESTABLISHED") {
		t.Errorf("charon still has the IKE SA:\n%s", out)
	}
}

func waitChildGone(t *testing.T, c *charon, s *side) {
	t.Helper()
	if !s.rec.Wait(5*time.Second, func(evs []RecordedEvent) bool { return Count(evs, ChildDeleted) == 1 }) {
		t.Fatalf("no ChildDeleted: %+v", s.rec.Events())
	}
	deadline := time.Now().Add(5 * time.Second)
	out := c.swanctl(true, "--list-sas")
	for strings.Contains(out, "INSTALLED") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		out = c.swanctl(true, "--list-sas")
	}
	if strings.Contains(out, "INSTALLED") || !strings.Contains(out, "ESTABLISHED") {
		t.Errorf("charon should keep the IKE SA without the child:\n%s", out)
	}
	st := s.e.Status("charon")
	if !st.Up() || len(st.Children) != 0 {
		t.Errorf("ovnsec status: %+v", st)
	}
}

// TestCharonRekeyCollision: ovnsec and charon rekey the same Child SA and
// then the IKE SA at the same moment; both must end with one IKE SA and
// one child that match.
func TestCharonRekeyCollision(t *testing.T) {
	setupNetns(t)
	c := startCharon(t)
	// Our rekey request leaves 400ms late, after charon's arrived: the
	// requests cross.
	var dc *delayConn
	inNetns(t, nsA, func() {
		u, err := listenUDP(mustAddr(ipA), 500, 4500)
		if err != nil {
			t.Fatal(err)
		}
		dc = &delayConn{PacketConn: u}
	})
	s := startOvnsec(t, func(cfg *Config) { cfg.Conn = dc })
	c.load(swanConf{proposals: "aes256gcm16-prfsha256-x25519", auth: "psk", psk: testPSK}.String())
	p := charonPeer(true)
	p.Auth.PSK = []byte(testPSK)
	if err := s.e.AddPeer(p); err != nil {
		t.Fatal(err)
	}
	checkUp(t, c, s)
	for _, what := range []string{"child", "ike"} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			if what == "child" {
				c.swanctl(true, "--rekey", "--child", "tun")
			} else {
				c.swanctl(true, "--rekey", "--ike", "ovn")
			}
		}()
		dc.sendDelay.Store(int64(400 * time.Millisecond))
		var err error
		if what == "child" {
			err = s.e.RekeyChild("charon", "tun")
		} else {
			err = s.e.RekeyIKE("charon")
		}
		dc.sendDelay.Store(0)
		if err != nil {
			t.Fatal(err)
		}
		<-done
		deadline := time.Now().Add(20 * time.Second)
		var out string
		var st PeerStatus
		logged := false
		start := time.Now()
		for time.Now().Before(deadline) {
			if !logged && time.Since(start) > 5*time.Second {
				logged = true
				t.Logf("%s: slow to converge; charon:\n%s\novnsec: %+v\nlog:\n%s", what, out, st, tail(c.log(), 60))
			}
			out = c.swanctl(true, "--list-sas")
			st = s.e.Status("charon")
			if st.Up() && len(st.Children) == 1 && strings.Count(out, "ESTABLISHED") == 1 && strings.Count(out, "INSTALLED") == 1 &&
				!strings.Contains(out, "REKEYED") && strings.Contains(out, st.SPIi.String()) &&
				strings.Contains(out, strings.TrimPrefix(st.Children[0].InSPI.String(), "0x")) &&
				strings.Contains(out, strings.TrimPrefix(st.Children[0].OutSPI.String(), "0x")) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if !st.Up() || len(st.Children) != 1 || !strings.Contains(out, st.SPIi.String()) ||
			!strings.Contains(out, strings.TrimPrefix(st.Children[0].InSPI.String(), "0x")) || strings.Count(out, "INSTALLED") != 1 {
			t.Fatalf("%s rekey collision did not converge:\n%s\novnsec %+v", what, out, st)
		}
	}
}
