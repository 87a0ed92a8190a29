// Certificate policy, engine against engine over loopback: in CA-signed
// mode the certificate's CN must be the expected remote name as well as a
// SAN DNS name (OVN: CN = SAN DNS = chassis name), and in both modes the
// end-entity certificate's keyUsage and extendedKeyUsage must allow IKE.
// Also: the certificates ovs-pki and ovnsec pki issue keep working.

package ike

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/testenv"
)

// certSpec describes an end-entity certificate for the policy tests.
type certSpec struct {
	cn       string
	extraCNs []string // more CN attributes after cn
	dns      []string
	ku       x509.KeyUsage // 0: no keyUsage extension
	eku      []x509.ExtKeyUsage
	ekuOIDs  []asn1.ObjectIdentifier
	basic    bool // basicConstraints CA:false, as ovs-pki and ovnsec pki sign add
}

// mkCert issues s, signed by ca or self-signed when ca is nil.
func mkCert(t testing.TB, ca *testCert, s certSpec) testCert {
	t.Helper()
	k := newKey(t, "ec")
	// A raw RDN sequence: pkix.Name would merge several CNs into one.
	var rdns pkix.RDNSequence
	for _, cn := range append([]string{s.cn}, s.extraCNs...) {
		rdns = append(rdns, pkix.RelativeDistinguishedNameSET{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: cn}})
	}
	subj, err := asn1.Marshal(rdns)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), RawSubject: subj, DNSNames: s.dns,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: s.ku, ExtKeyUsage: s.eku, UnknownExtKeyUsage: s.ekuOIDs,
		BasicConstraintsValid: s.basic,
	}
	parent, pk := tmpl, k
	if ca != nil {
		parent, pk = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, k.Public(), pk)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{c, k}
}

// certRun is one handshake: a initiates with its chain, b answers.
type certRun struct {
	idA, idB     string // the identities each side claims (LocalID)
	wantA, wantB string // the remote ID each side expects
	chainA       []*x509.Certificate
	keyA         testCert
	chainB       []*x509.Certificate
	keyB         testCert
	authA, authB Auth // CAs or PeerCert
}

// result runs r and returns both statuses once both are up or one side
// has a reason matching fail (or 5 s passed).
func (r certRun) result(t *testing.T, fail string) (sa, sb PeerStatus) {
	t.Helper()
	a := newSide(t, "127.0.0.1", nil)
	b := newSide(t, "127.0.0.2", nil)
	pa, pb := peerOf(a, b, "b", true), peerOf(b, a, "a", false)
	pa.LocalID, pa.RemoteID = r.idA, r.wantB
	pb.LocalID, pb.RemoteID = r.idB, r.wantA
	pa.Auth, pb.Auth = r.authA, r.authB
	pa.Auth.Cert, pa.Auth.Key = r.chainA, r.keyA.key
	pb.Auth.Cert, pb.Auth.Key = r.chainB, r.keyB.key
	if err := b.e.AddPeer(pb); err != nil {
		t.Fatal(err)
	}
	if err := a.e.AddPeer(pa); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		sa, sb = a.e.Status("b"), b.e.Status("a")
		if sa.Up() && sb.Up() && len(sa.Children) > 0 && len(sb.Children) > 0 {
			return sa, sb
		}
		if fail != "" && (strings.Contains(sa.Reason, fail) || strings.Contains(sb.Reason, fail)) {
			return sa, sb
		}
		time.Sleep(5 * time.Millisecond)
	}
	return sa, sb
}

// TestCertCNIsRemoteName: a certificate from the right CA whose SAN lists
// the victim's name but whose CN is another chassis must not authenticate
// as the victim, in either role; nor one with the right CN but without
// the name in its SAN; the normal certificate does.
func TestCertCNIsRemoteName(t *testing.T) {
	ca := newCA(t, "ovn CA")
	good := func(name string) testCert {
		return mkCert(t, &ca, certSpec{cn: name, dns: []string{name}, ku: x509.KeyUsageDigitalSignature})
	}
	for _, tc := range []struct {
		name   string
		cert   certSpec // of the side claiming to be "victim"
		reason string   // "" = both up
	}{
		{"normal", certSpec{cn: "victim", dns: []string{"victim"}}, ""},
		{"other-chassis-cn-with-victim-san", certSpec{cn: "attacker", dns: []string{"attacker", "victim"}}, `peer certificate CN "attacker" is not the expected remote name "victim"`},
		{"victim-san-only-cn-other", certSpec{cn: "attacker", dns: []string{"victim"}}, `peer certificate CN "attacker" is not the expected remote name "victim"`},
		{"cn-right-san-missing", certSpec{cn: "victim", dns: []string{"attacker"}}, `peer ID victim is not a DNS name in its certificate (SAN [attacker])`},
		{"cn-right-no-san", certSpec{cn: "victim"}, `peer ID victim is not a DNS name in its certificate (SAN [])`},
		{"two-cns", certSpec{cn: "attacker", extraCNs: []string{"victim"}, dns: []string{"victim"}}, `peer certificate has 2 CNs ["attacker" "victim"]; the expected remote name "victim" must be its only CN`},
	} {
		for _, role := range []string{"initiator", "responder"} {
			t.Run(tc.name+"/"+role, func(t *testing.T) {
				bad := mkCert(t, &ca, tc.cert)
				r := certRun{authA: Auth{CAs: []*x509.Certificate{ca.cert}}, authB: Auth{CAs: []*x509.Certificate{ca.cert}}}
				if role == "initiator" {
					// a claims to be the victim; b checks it.
					other := good("bee")
					r.idA, r.wantA, r.chainA, r.keyA = "victim", "victim", []*x509.Certificate{bad.cert}, bad
					r.idB, r.wantB, r.chainB, r.keyB = "bee", "bee", []*x509.Certificate{other.cert}, other
				} else {
					other := good("ay")
					r.idA, r.wantA, r.chainA, r.keyA = "ay", "ay", []*x509.Certificate{other.cert}, other
					r.idB, r.wantB, r.chainB, r.keyB = "victim", "victim", []*x509.Certificate{bad.cert}, bad
				}
				sa, sb := r.result(t, tc.reason)
				if tc.reason == "" {
					if !sa.Up() || !sb.Up() {
						t.Fatalf("normal certificate refused:\na %+v\nb %+v", sa, sb)
					}
					return
				}
				checker, other := sb, sa // the side that checks the victim's certificate
				if role == "responder" {
					checker, other = sa, sb
				}
				if sa.Up() || sb.Up() || !strings.Contains(checker.Reason, tc.reason) {
					t.Fatalf("want refusal %q\nchecking side: %q (%s)\nother side: %q (%s)", tc.reason, checker.Reason, checker.State, other.Reason, other.State)
				}
			})
		}
	}
}

// TestCertPinnedCNUnchanged: in self-signed mode (pinned certificate) the
// CN is not compared: ovs-pki self-sign without -u makes CN "name id:..."
// with SAN DNS "name".
func TestCertPinnedCNUnchanged(t *testing.T) {
	la := mkCert(t, nil, certSpec{cn: "hv1 id:7d4b83e3-b863-4e7c-906d-cef4f704605a", dns: []string{"hv1"}})
	lb := mkCert(t, nil, certSpec{cn: "hv2 id:73e355b4-b3da-4d16-8270-cd6239abecf0", dns: []string{"hv2"}})
	r := certRun{idA: "hv1", wantA: "hv1", idB: "hv2", wantB: "hv2",
		chainA: []*x509.Certificate{la.cert}, keyA: la, chainB: []*x509.Certificate{lb.cert}, keyB: lb,
		authA: Auth{PeerCert: lb.cert}, authB: Auth{PeerCert: la.cert}}
	if sa, sb := r.result(t, ""); !sa.Up() || !sb.Up() {
		t.Fatalf("pinned certificates refused:\na %+v\nb %+v", sa, sb)
	}
}

var oidIPsecIKE = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 17}

// TestCertUsage: keyUsage must allow digitalSignature when present, and
// extendedKeyUsage must be absent or allow serverAuth, clientAuth,
// ipsecIKE or anyExtendedKeyUsage, for CA-signed and pinned certificates.
func TestCertUsage(t *testing.T) {
	ca := newCA(t, "ovn CA")
	for _, tc := range []struct {
		name   string
		spec   certSpec
		reason string // "" = accepted
	}{
		{"ovs-pki-like", certSpec{basic: true}, ""},
		{"ovnsec-pki-like", certSpec{basic: true, ku: x509.KeyUsageDigitalSignature}, ""},
		{"ku-ds-ke", certSpec{ku: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}, ""},
		{"eku-server", certSpec{eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ""},
		{"eku-client", certSpec{eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ""},
		{"eku-any", certSpec{eku: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}, ""},
		{"eku-ipsecike", certSpec{ekuOIDs: []asn1.ObjectIdentifier{oidIPsecIKE}}, ""},
		{"eku-codesigning-and-server", certSpec{eku: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning, x509.ExtKeyUsageServerAuth}}, ""},
		{"eku-codesigning", certSpec{eku: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}, "extendedKeyUsage [codeSigning] allows none of serverAuth, clientAuth, ipsecIKE and anyExtendedKeyUsage"},
		{"eku-email-timestamp", certSpec{eku: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection, x509.ExtKeyUsageTimeStamping}}, "extendedKeyUsage [emailProtection timeStamping] allows none"},
		{"ku-keyencipherment", certSpec{ku: x509.KeyUsageKeyEncipherment}, "keyUsage extension does not allow digitalSignature"},
		{"ku-certsign", certSpec{ku: x509.KeyUsageCertSign, basic: true}, "keyUsage extension does not allow digitalSignature"},
	} {
		for _, mode := range []string{"ca", "pinned"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				spec := tc.spec
				spec.cn, spec.dns = "victim", []string{"victim"}
				var issuer *testCert
				if mode == "ca" {
					issuer = &ca
				}
				la := mkCert(t, issuer, spec)
				lb := mkCert(t, issuer, certSpec{cn: "bee", dns: []string{"bee"}, ku: x509.KeyUsageDigitalSignature})
				r := certRun{idA: "victim", wantA: "victim", idB: "bee", wantB: "bee",
					chainA: []*x509.Certificate{la.cert}, keyA: la, chainB: []*x509.Certificate{lb.cert}, keyB: lb}
				if mode == "ca" {
					r.authA, r.authB = Auth{CAs: []*x509.Certificate{ca.cert}}, Auth{CAs: []*x509.Certificate{ca.cert}}
				} else {
					r.authA, r.authB = Auth{PeerCert: lb.cert}, Auth{PeerCert: la.cert}
				}
				sa, sb := r.result(t, tc.reason)
				if tc.reason == "" {
					if !sa.Up() || !sb.Up() {
						t.Fatalf("certificate refused:\na %+v\nb %+v", sa, sb)
					}
					return
				}
				if sa.Up() || sb.Up() || !strings.Contains(sb.Reason, tc.reason) || !strings.Contains(sb.Reason, "not usable for IKE") {
					t.Fatalf("want refusal %q\nb (checks): %q (%s)\na: %q (%s)", tc.reason, sb.Reason, sb.State, sa.Reason, sa.State)
				}
			})
		}
	}
}

// TestCertOVSPKI: certificates made by the real ovs-pki (as OVN's IPsec
// tutorial makes them: req -u, sign, and self-sign) authenticate in
// CA-signed and pinned mode.
func TestCertOVSPKI(t *testing.T) {
	testenv.NeedCommands(t, "ovs-pki", "openssl")
	dir := t.TempDir()
	pki := func(args ...string) {
		t.Helper()
		cmd := exec.Command("ovs-pki", append([]string{"--dir=" + filepath.Join(dir, "pki"), "--log=" + filepath.Join(dir, "log")}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ovs-pki %v: %v\n%s", args, err, out)
		}
	}
	pki("init")
	for _, n := range []string{"hv1", "hv2"} {
		pki("req", "-u", n)
		pki("-b", "sign", n, "switch")
		if err := os.Rename(filepath.Join(dir, n+"-cert.pem"), filepath.Join(dir, n+"-ca-cert.pem")); err != nil {
			t.Fatal(err)
		}
		pki("self-sign", n)
	}
	load := func(n string) testCert {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		certs, err := parsePEMCerts(b)
		if err != nil || len(certs) == 0 {
			t.Fatalf("%s: %v", n, err)
		}
		return testCert{cert: certs[0]}
	}
	loadKey := func(n string) testCert {
		t.Helper()
		k, err := parsePEMKey(filepath.Join(dir, n+"-privkey.pem"))
		if err != nil {
			t.Fatal(err)
		}
		return testCert{key: k}
	}
	caCert := load(filepath.Join("pki", "switchca", "cacert.pem")).cert
	for _, mode := range []string{"ca", "pinned"} {
		t.Run(mode, func(t *testing.T) {
			suffix := "-cert.pem"
			if mode == "ca" {
				suffix = "-ca-cert.pem"
			}
			ca, cb := load("hv1"+suffix).cert, load("hv2"+suffix).cert
			r := certRun{idA: "hv1", wantA: "hv1", idB: "hv2", wantB: "hv2",
				chainA: []*x509.Certificate{ca}, keyA: loadKey("hv1"), chainB: []*x509.Certificate{cb}, keyB: loadKey("hv2")}
			if mode == "ca" {
				r.authA, r.authB = Auth{CAs: []*x509.Certificate{caCert}}, Auth{CAs: []*x509.Certificate{caCert}}
			} else {
				r.authA, r.authB = Auth{PeerCert: cb}, Auth{PeerCert: ca}
			}
			if sa, sb := r.result(t, ""); !sa.Up() || !sb.Up() {
				t.Fatalf("ovs-pki certificates refused:\na %+v\nb %+v\nhv1 CN %q SAN %v", sa, sb, ca.Subject.CommonName, ca.DNSNames)
			}
		})
	}
}

// parsePEMCerts returns the certificates of a PEM file's contents.
func parsePEMCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out, nil
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

// parsePEMKey reads a PKCS#8 or PKCS#1 private key file.
func parsePEMKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: key type %T cannot sign", path, k)
	}
	return s, nil
}
