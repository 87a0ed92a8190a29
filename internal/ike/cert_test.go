// Certificate authentication engine against engine: CA-signed chains,
// pinned certificates, RSA and ECDSA with RFC 7427 and the classic AUTH
// methods, and every certificate check with its reason.

package ike

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/ike/message"
	"github.com/ovnsec/ovnsec/internal/ike/suite"
)

func TestEngineCertificates(t *testing.T) {
	ca := newCA(t, "test CA")
	other := newCA(t, "other CA")
	inter := issueCA(t, &ca, "intermediate")
	idOf := func(s *side) string { return "host-" + s.ip.String() }
	type creds struct {
		chain []*x509.Certificate
		leaf  testCert
	}
	for _, tc := range []struct {
		name    string
		mk      func(t *testing.T, a, b *side) (ca, cb creds, pa, pb Auth)
		reasonB string // responder's reason; "" = success
	}{
		{"ca-ecdsa", func(t *testing.T, a, b *side) (creds, creds, Auth, Auth) {
			la, lb := issue(t, &ca, idOf(a), "ec", time.Now().Add(time.Hour)), issue(t, &ca, idOf(b), "ec", time.Now().Add(time.Hour))
			return creds{[]*x509.Certificate{la.cert}, la}, creds{[]*x509.Certificate{lb.cert}, lb},
				Auth{CAs: []*x509.Certificate{ca.cert}}, Auth{CAs: []*x509.Certificate{ca.cert}}
		}, ""},
		{"ca-rsa-intermediate", func(t *testing.T, a, b *side) (creds, creds, Auth, Auth) {
			la, lb := issue(t, &inter, idOf(a), "rsa", time.Now().Add(time.Hour)), issue(t, &inter, idOf(b), "rsa", time.Now().Add(time.Hour))
			return creds{[]*x509.Certificate{la.cert, inter.cert}, la}, creds{[]*x509.Certificate{lb.cert, inter.cert}, lb},
				Auth{CAs: []*x509.Certificate{ca.cert}}, Auth{CAs: []*x509.Certificate{ca.cert}}
		}, ""},
		{"pinned", func(t *testing.T, a, b *side) (creds, creds, Auth, Auth) {
			la, lb := issue(t, nil, idOf(a), "ec", time.Now().Add(time.Hour)), issue(t, nil, idOf(b), "rsa", time.Now().Add(time.Hour))
			return creds{[]*x509.Certificate{la.cert}, la}, creds{[]*x509.Certificate{lb.cert}, lb},
				Auth{PeerCert: lb.cert}, Auth{PeerCert: la.cert}
		}, ""},
		{"pinned-mismatch", func(t *testing.T, a, b *side) (creds, creds, Auth, Auth) {
			la, lb := issue(t, nil, idOf(a), "ec", time.Now().Add(time.Hour)), issue(t, nil, idOf(b), "ec", time.Now().Add(time.Hour))
			x := issue(t, nil, idOf(a), "ec", time.Now().Add(time.Hour))
			return creds{[]*x509.Certificate{la.cert}, la}, creds{[]*x509.Certificate{lb.cert}, lb},
				Auth{PeerCert: lb.cert}, Auth{PeerCert: x.cert}
		}, "is not the pinned certificate"},
		{"unknown-ca", func(t *testing.T, a, b *side) (creds, creds, Auth, Auth) {
			la, lb := issue(t, &other, idOf(a), "ec", time.Now().Add(time.Hour)), issue(t, &ca, idOf(b), "ec", time.Now().Add(time.Hour))
			return creds{[]*x509.Certificate{la.cert}, la}, creds{[]*x509.Certificate{lb.cert}, lb},
				Auth{CAs: []*x509.Certificate{ca.cert}}, Auth{CAs: []*x509.Certificate{ca.cert}}
		}, "certificate not signed by the configured CA"},
		{"expired", func(t *testing.T, a, b *side) (creds, creds, Auth, Auth) {
			la, lb := issue(t, &ca, idOf(a), "ec", time.Now().Add(-time.Minute)), issue(t, &ca, idOf(b), "ec", time.Now().Add(time.Hour))
			return creds{[]*x509.Certificate{la.cert}, la}, creds{[]*x509.Certificate{lb.cert}, lb},
				Auth{CAs: []*x509.Certificate{ca.cert}}, Auth{CAs: []*x509.Certificate{ca.cert}}
		}, "peer certificate expired"},
		{"san-mismatch", func(t *testing.T, a, b *side) (creds, creds, Auth, Auth) {
			la, lb := issue(t, &ca, "somebody.else", "ec", time.Now().Add(time.Hour)), issue(t, &ca, idOf(b), "ec", time.Now().Add(time.Hour))
			return creds{[]*x509.Certificate{la.cert}, la}, creds{[]*x509.Certificate{lb.cert}, lb},
				Auth{CAs: []*x509.Certificate{ca.cert}}, Auth{CAs: []*x509.Certificate{ca.cert}}
		}, `peer ID host-127.0.0.1 is not a DNS name in its certificate (SAN [somebody.else])`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newSide(t, "127.0.0.1", nil)
			b := newSide(t, "127.0.0.2", nil)
			ca, cb, aa, ab := tc.mk(t, a, b)
			pa, pb := peerOf(a, b, "b", true), peerOf(b, a, "a", false)
			aa.Cert, aa.Key = ca.chain, ca.leaf.key
			ab.Cert, ab.Key = cb.chain, cb.leaf.key
			pa.Auth, pb.Auth = aa, ab
			if err := b.e.AddPeer(pb); err != nil {
				t.Fatal(err)
			}
			if err := a.e.AddPeer(pa); err != nil {
				t.Fatal(err)
			}
			if tc.reasonB == "" {
				waitUp(t, a, "b")
				waitUp(t, b, "a")
				return
			}
			deadline := time.Now().Add(5 * time.Second)
			var sa, sb PeerStatus
			for time.Now().Before(deadline) {
				sa, sb = a.e.Status("b"), b.e.Status("a")
				if strings.Contains(sb.Reason, tc.reasonB) && sa.Reason == "AUTHENTICATION_FAILED from peer" {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if !strings.Contains(sb.Reason, tc.reasonB) || sa.Reason != "AUTHENTICATION_FAILED from peer" || sa.Up() || sb.Up() {
				t.Fatalf("a: %q\nb: %q, want %q", sa.Reason, sb.Reason, tc.reasonB)
			}
		})
	}
}

// TestClassicAuthMethods signs and verifies AUTH with methods 1, 9 and 14
// through the engine's own code paths, as used when the peer does or does
// not announce SIGNATURE_HASH_ALGORITHMS.
func TestClassicAuthMethods(t *testing.T) {
	for _, tc := range []struct {
		kind   string
		hashes []message.HashAlgorithm
		want   message.AuthMethod
	}{
		{"rsa", nil, message.AuthRSASig},
		{"ec", nil, message.AuthECDSAP256},
		{"rsa", ourHashes, message.AuthDigitalSignature},
		{"ec", ourHashes, message.AuthDigitalSignature},
	} {
		t.Run(tc.kind+"-"+tc.want.String(), func(t *testing.T) {
			leaf := issue(t, nil, "x.test", tc.kind, time.Now().Add(time.Hour))
			prf, _ := suite.NewPRF(message.PRF_HMAC_SHA2_256)
			keys := &suite.IKEKeys{Pi: suite.Key("pi-key-0123456789"), Pr: suite.Key("pr-key-0123456789")}
			mkSA := func(initiator bool, id string, auth Auth) *ikeSA {
				e := &Engine{clock: clock.Real{}}
				lid, _ := parseIdentity(id)
				rid, _ := parseIdentity("x.test")
				p := &peer{e: e, cfg: &peerConfig{Peer: Peer{LocalID: id, RemoteID: "x.test", Auth: auth}, localID: lid, remoteID: rid}}
				return &ikeSA{p: p, initiator: initiator, prf: prf, keys: keys, peerHashes: tc.hashes,
					initReq: []byte("init request"), initRsp: []byte("init response"), ni: []byte("nonce-i-0123456789"), nr: []byte("nonce-r-0123456789")}
			}
			signer := mkSA(true, "x.test", Auth{Cert: []*x509.Certificate{leaf.cert}, Key: leaf.key})
			id := signer.myID()
			certs, auth, err := signer.authPayloads(id)
			if err != nil {
				t.Fatal(err)
			}
			if auth.Method != tc.want {
				t.Fatalf("method %s, want %s", auth.Method, tc.want)
			}
			verifier := mkSA(false, "y.test", Auth{PeerCert: leaf.cert})
			ps := append(certs, auth)
			if err := verifier.verifyPeer(ps, id); err != nil {
				t.Fatalf("verify: %v", err)
			}
			auth.Data[len(auth.Data)-1] ^= 1
			if err := verifier.verifyPeer(ps, id); err == nil || !strings.Contains(err.Error(), "does not verify") {
				t.Fatalf("tampered AUTH accepted: %v", err)
			}
		})
	}
}

func TestEngineIPv6(t *testing.T) {
	// Both engines on ::1 with their own ports: one peer each.
	a := newSide(t, "::1", nil)
	b := newSide(t, "::1", nil)
	pa, pb := peerOf(a, b, "b", true), peerOf(b, a, "a", false)
	if err := b.e.AddPeer(pb); err != nil {
		t.Fatal(err)
	}
	if err := a.e.AddPeer(pa); err != nil {
		t.Fatal(err)
	}
	st := waitUp(t, a, "b")
	if st.Encap || st.NATLocal || st.NATRemote {
		t.Errorf("NAT detected on loopback: %+v", st)
	}
	if ts := st.Children[0].LocalTS; len(ts) != 1 || ts[0].Start != netip.MustParseAddr("::1") {
		t.Errorf("selectors %v", ts)
	}
}

// TestEngineCertificateIPIdentity: with no IDs configured the identities
// are the IP addresses, which the certificates carry as SAN IP.
func TestEngineCertificateIPIdentity(t *testing.T) {
	ca := newCA(t, "test CA")
	mk := func(ip string) testCert {
		k := newKey(t, "ec")
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: ip},
			IPAddresses: []net.IP{net.ParseIP(ip)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, k.Public(), ca.key)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return testCert{c, k}
	}
	for _, tc := range []struct {
		name    string
		certB   string
		wantErr string
	}{
		{"match", "127.0.0.2", ""},
		{"mismatch", "127.0.0.9", "peer ID 127.0.0.2 is not an IP address in its certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newSide(t, "127.0.0.1", nil)
			b := newSide(t, "127.0.0.2", nil)
			pa, pb := peerOf(a, b, "b", true), peerOf(b, a, "a", false)
			pa.LocalID, pa.RemoteID, pb.LocalID, pb.RemoteID = "", "", "", ""
			ca1, cb := mk("127.0.0.1"), mk(tc.certB)
			pa.Auth = Auth{Cert: []*x509.Certificate{ca1.cert}, Key: ca1.key, CAs: []*x509.Certificate{ca.cert}}
			pb.Auth = Auth{Cert: []*x509.Certificate{cb.cert}, Key: cb.key, CAs: []*x509.Certificate{ca.cert}}
			if err := b.e.AddPeer(pb); err != nil {
				t.Fatal(err)
			}
			if err := a.e.AddPeer(pa); err != nil {
				t.Fatal(err)
			}
			if tc.wantErr == "" {
				waitUp(t, a, "b")
				return
			}
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) && !strings.Contains(a.e.Status("b").Reason, tc.wantErr) {
				time.Sleep(5 * time.Millisecond)
			}
			if st := a.e.Status("b"); !strings.Contains(st.Reason, tc.wantErr) || st.Up() {
				t.Fatalf("status %+v", st)
			}
		})
	}
}
