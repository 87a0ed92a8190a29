// Interop with charon using certificates (CA-signed with CN = SAN DNS,
// pinned self-signed), and the authentication failures: wrong PSK,
// unknown CA, expired certificate, unexpected peer name.

package ike

import (
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// certSetup writes the charon side's credentials and returns the conf.
type certSetup struct {
	ca, otherCA      testCert
	ours, theirs     testCert
	caName, certName string
}

func (c *charon) installCert(t *testing.T, name string, tc testCert) {
	writePEM(t, filepath.Join(c.dir, "x509", name), "CERTIFICATE", tc.cert.Raw)
}

func (c *charon) installCA(t *testing.T, name string, tc testCert) {
	writePEM(t, filepath.Join(c.dir, "x509ca", name), "CERTIFICATE", tc.cert.Raw)
}

func (c *charon) installKey(t *testing.T, name string, tc testCert) {
	writeKey(t, filepath.Join(c.dir, "private", name), tc.key)
}

func waitReason(t *testing.T, s *side, want string) PeerStatus {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var st PeerStatus
	for time.Now().Before(deadline) {
		st = s.e.Status("charon")
		if strings.Contains(st.Reason, want) {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("reason %q does not contain %q (status %+v)", st.Reason, want, st)
	return st
}

func TestCharonCert(t *testing.T) {
	setupNetns(t)
	ca := newCA(t, "ovnsec test CA")
	for _, tc := range []struct {
		name      string
		initiator string
		pinned    bool
		ourKind   string
		theirKind string
		proposal  string
	}{
		{name: "ca-ovnsec-initiates-rsa", initiator: "ovnsec", ourKind: "rsa", theirKind: "ec", proposal: "aes256gcm16-prfsha256-modp2048"},
		{name: "ca-charon-initiates-ec", initiator: "charon", ourKind: "ec", theirKind: "rsa", proposal: "aes256gcm16-prfsha256-x25519"},
		{name: "pinned-ovnsec-initiates", initiator: "ovnsec", pinned: true, ourKind: "ec", theirKind: "ec", proposal: "aes256gcm16-prfsha256-x25519"},
		{name: "pinned-charon-initiates", initiator: "charon", pinned: true, ourKind: "rsa", theirKind: "rsa", proposal: "aes256gcm16-prfsha256-modp2048"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ours, theirs testCert
			if tc.pinned {
				ours = issue(t, nil, idA, tc.ourKind, time.Now().Add(time.Hour))
				theirs = issue(t, nil, idB, tc.theirKind, time.Now().Add(time.Hour))
			} else {
				ours = issue(t, &ca, idA, tc.ourKind, time.Now().Add(time.Hour))
				theirs = issue(t, &ca, idB, tc.theirKind, time.Now().Add(time.Hour))
			}
			c := startCharon(t)
			s := startOvnsec(t, nil)
			c.installCert(t, "charon.pem", theirs)
			c.installKey(t, "charon.key", theirs)
			sc := swanConf{proposals: tc.proposal, auth: "pubkey", certFile: "charon.pem", keyFile: "charon.key"}
			p := charonPeer(tc.initiator == "ovnsec")
			p.Auth = Auth{Cert: []*x509.Certificate{ours.cert}, Key: ours.key}
			if tc.pinned {
				c.installCert(t, "ovnsec.pem", ours)
				sc.peerCert = "ovnsec.pem"
				p.Auth.PeerCert = theirs.cert
			} else {
				c.installCA(t, "ca.pem", ca)
				sc.caFile = "ca.pem"
				p.Auth.CAs = []*x509.Certificate{ca.cert}
			}
			c.load(sc.String())
			if err := s.e.AddPeer(p); err != nil {
				t.Fatal(err)
			}
			if tc.initiator == "charon" {
				c.swanctl(false, "--initiate", "--child", "tun", "--timeout", "10")
			}
			checkUp(t, c, s)
		})
	}
}

func TestCharonAuthFailures(t *testing.T) {
	setupNetns(t)
	ca := newCA(t, "ovnsec test CA")
	other := newCA(t, "some other CA")
	for _, tc := range []struct {
		name      string
		initiator string
		psk       string // charon's PSK; "" = certificates
		theirCert func() testCert
		theirID   string
		want      string
		code      ReasonCode // what our status classifies it as
	}{
		{name: "wrong-psk-ovnsec-initiates", initiator: "ovnsec", psk: "not-the-same-psk-0000", want: "AUTHENTICATION_FAILED from peer", code: ReasonPeerRefusedAuth},
		{name: "wrong-psk-charon-initiates", initiator: "charon", psk: "not-the-same-psk-0000", want: "pre-shared key mismatch", code: ReasonAuthFailed},
		{name: "unknown-ca", initiator: "ovnsec", theirCert: func() testCert { return issue(t, &other, idB, "ec", time.Now().Add(time.Hour)) }, want: "certificate not signed by the configured CA", code: ReasonCertUntrusted},
		{name: "unknown-ca-charon-initiates", initiator: "charon", theirCert: func() testCert { return issue(t, &other, idB, "ec", time.Now().Add(time.Hour)) }, want: "certificate not signed by the configured CA", code: ReasonCertUntrusted},
		{name: "expired", initiator: "ovnsec", theirCert: func() testCert { return issue(t, &ca, idB, "ec", time.Now().Add(-time.Hour)) }, want: "expired", code: ReasonCertUntrusted},
		{name: "wrong-name-charon-initiates", initiator: "charon", theirID: "intruder.test", theirCert: func() testCert { return issue(t, &ca, "intruder.test", "ec", time.Now().Add(time.Hour)) }, want: `peer ID "intruder.test" does not match expected charon.test`, code: ReasonIdentityMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCharon(t)
			s := startOvnsec(t, nil)
			p := charonPeer(tc.initiator == "ovnsec")
			var sc swanConf
			if tc.psk != "" {
				sc = swanConf{auth: "psk", psk: tc.psk}
				p.Auth.PSK = []byte(testPSK)
			} else {
				theirs := tc.theirCert()
				ours := issue(t, &ca, idA, "ec", time.Now().Add(time.Hour))
				c.installCert(t, "charon.pem", theirs)
				c.installKey(t, "charon.key", theirs)
				c.installCA(t, "ca.pem", ca)
				sc = swanConf{auth: "pubkey", certFile: "charon.pem", keyFile: "charon.key", caFile: "ca.pem", localID: tc.theirID}
				p.Auth = Auth{Cert: []*x509.Certificate{ours.cert}, Key: ours.key, CAs: []*x509.Certificate{ca.cert}}
			}
			c.load(sc.String())
			if err := s.e.AddPeer(p); err != nil {
				t.Fatal(err)
			}
			if tc.initiator == "charon" {
				c.swanctl(true, "--initiate", "--child", "tun", "--timeout", "5")
			}
			st := waitReason(t, s, tc.want)
			if st.Up() {
				t.Errorf("IKE SA is up despite the failure: %+v", st)
			}
			if st.Code != tc.code {
				t.Errorf("code %q for %q, want %q", st.Code, st.Reason, tc.code)
			}
			time.Sleep(300 * time.Millisecond)
			if out := c.swanctl(true, "--list-sas"); strings.Contains(out, "ESTABLISHED") {
				t.Errorf("charon has an SA:\n%s", out)
			}
			if tc.initiator == "charon" && !strings.Contains(c.log(), "AUTHENTICATION_FAILED") {
				t.Errorf("charon did not receive AUTHENTICATION_FAILED:\n%s", tail(c.log(), 30))
			}
		})
	}
}
