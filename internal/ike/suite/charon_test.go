// Interoperability with strongSwan's charon: a Go initiator built from
// package message and package suite runs IKE_SA_INIT, IKE_AUTH (PSK,
// childless, optionally fragmented) and an INFORMATIONAL delete against a
// real charon responder on loopback. This checks the wire format, DH
// encodings, key schedule, SK AEAD, NAT-D and AUTH against an independent
// implementation, for PSK and for certificates with AUTH methods 1, 9 and
// 14 (ECDSA, RSA PKCS#1 v1.5 and RSASSA-PSS). charon runs in a private mount namespace (its own /run)
// on free high ports (so, as on port 4500, messages carry the non-ESP
// marker). It installs no routing rule (routing_table = 0) and, with
// childless IKE SAs only, no XFRM state or policy: no kernel state changes.

package suite_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/ike/message"
	"github.com/ovnsec/ovnsec/internal/ike/suite"
	"github.com/ovnsec/ovnsec/internal/testenv"
)

const (
	interopSecret = "ovnsec interop secret"
	interopIDi    = "initiator.ovnsec.test"
	interopIDr    = "responder.ovnsec.test"
)

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// startCharon runs a charon responder and returns its IKE port. Its
// credentials are in pki (see newInteropPKI).
func startCharon(t *testing.T, pki *interopPKI) int {
	t.Helper()
	paths := testenv.NeedCommands(t, "/usr/lib/ipsec/charon", "swanctl", "unshare", "mount")
	testenv.NeedRoot(t)
	dir := pki.dir
	port, natt := freeUDPPort(t), freeUDPPort(t)
	vici := filepath.Join(dir, "charon.vici")
	logf := filepath.Join(dir, "charon.log")
	conf := fmt.Sprintf(`charon {
	port = %d
	port_nat_t = %d
	install_routes = no
	routing_table = 0
	fragment_size = 400
	install_virtual_ip = no
	load_modular = no
	load = random nonce openssl pem pkcs1 pkcs8 pubkey x509 sha1 sha2 hmac gcm aes kdf gmp kernel-netlink socket-default vici
	plugins {
		vici {
			socket = unix://%s
		}
	}
	syslog {
		daemon {
			default = -1
		}
	}
	filelog {
		ikec {
			path = %s
			default = 1
			ike = 2
			cfg = 2
			flush_line = yes
		}
	}
}
`, port, natt, vici, logf)
	proposals := "aes256gcm16-prfsha256-modp2048, aes256gcm16-prfsha256-ecp256, aes256gcm16-prfsha256-curve25519, " +
		"aes128gcm16-prfsha384-modp2048, aes256gcm16-prfsha512-ecp256"
	swanctl := fmt.Sprintf(`connections {
	ikec-psk {
		version = 2
		local_addrs = 127.0.0.1
		proposals = %[1]s
		childless = force
		fragmentation = yes
		local {
			auth = psk
			id = %[2]s
		}
		remote {
			auth = psk
			id = %[3]s
		}
	}
	ikec-ecdsa {
		version = 2
		local_addrs = 127.0.0.1
		proposals = %[1]s
		childless = force
		send_cert = always
		local {
			auth = pubkey
			certs = responder-ecdsa.crt
			id = responder-ecdsa.ovnsec.test
		}
		remote {
			auth = pubkey
			cacerts = ca.crt
		}
	}
	ikec-rsa {
		version = 2
		local_addrs = 127.0.0.1
		proposals = %[1]s
		childless = force
		send_cert = always
		local {
			auth = pubkey
			certs = responder-rsa.crt
			id = responder-rsa.ovnsec.test
		}
		remote {
			auth = pubkey
			cacerts = ca.crt
		}
	}
}
secrets {
	ike-psk {
		id-a = %[2]s
		id-b = %[3]s
		secret = "%[4]s"
	}
}
`, proposals, interopIDr, interopIDi, interopSecret)
	confPath, swPath := filepath.Join(dir, "strongswan.conf"), filepath.Join(dir, "swanctl.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(swPath, []byte(swanctl), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(paths[2], "-m", "--propagation", "private", "sh", "-c",
		"mount -t tmpfs ovnsec-ikec-run /run && exec "+paths[0])
	cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+confPath)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start charon: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() || os.Getenv("OVNSEC_CHARON_LOG") != "" {
			if b, err := os.ReadFile(logf); err == nil {
				t.Logf("charon log:\n%s", b)
			}
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		load := exec.Command(paths[1], "--load-all", "--file", swPath, "--uri", "unix://"+vici)
		load.Env = append(os.Environ(), "SWANCTL_DIR="+dir) // credentials in dir/x509, dir/ecdsa, ...
		out, err := load.CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("swanctl --load-all: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return port
}

// interopPKI is a CA with ECDSA and RSA end-entity certificates for both
// sides, written as PEM into dir for charon.
type interopPKI struct {
	dir                string
	caSKI              [20]byte // SHA-1 of the CA's SubjectPublicKeyInfo, for CERTREQ
	initECDSA, initRSA interopCred
}

type interopCred struct {
	key  crypto.Signer
	cert []byte // DER
	name string // dNSName, used as ID_FQDN
}

func newInteropPKI(t *testing.T) *interopPKI {
	t.Helper()
	p := &interopPKI{dir: t.TempDir()}
	for _, d := range []string{"x509ca", "x509", "ecdsa", "rsa"} {
		if err := os.Mkdir(filepath.Join(p.dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ovnsec interop CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p.caSKI = sha1.Sum(ca.RawSubjectPublicKeyInfo)
	writePEM(t, filepath.Join(p.dir, "x509ca", "ca.crt"), "CERTIFICATE", caDER)
	issue := func(name string, key crypto.Signer, serial int64) []byte {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	ecKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	rsaKey := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	re, rr := ecKey(), rsaKey()
	writePEM(t, filepath.Join(p.dir, "x509", "responder-ecdsa.crt"), "CERTIFICATE", issue("responder-ecdsa.ovnsec.test", re, 2))
	reDER, _ := x509.MarshalECPrivateKey(re)
	writePEM(t, filepath.Join(p.dir, "ecdsa", "responder-ecdsa.key"), "EC PRIVATE KEY", reDER)
	writePEM(t, filepath.Join(p.dir, "x509", "responder-rsa.crt"), "CERTIFICATE", issue("responder-rsa.ovnsec.test", rr, 3))
	writePEM(t, filepath.Join(p.dir, "rsa", "responder-rsa.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rr))
	ie, ir := ecKey(), rsaKey()
	p.initECDSA = interopCred{ie, issue("initiator-ecdsa.ovnsec.test", ie, 4), "initiator-ecdsa.ovnsec.test"}
	p.initRSA = interopCred{ir, issue("initiator-rsa.ovnsec.test", ir, 5), "initiator-rsa.ovnsec.test"}
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

type interopCase struct {
	name     string
	group    message.DHGroup
	prf      message.PRFID
	keyBits  uint16
	fragment int // fragment IKE_AUTH into messages of at most this size

	// Certificate authentication instead of PSK.
	cred      *interopCred
	method    message.AuthMethod
	scheme    SigScheme
	responder string // charon's identity, which selects its connection
}

// SigScheme is suite.SigScheme, shortened for the case table.
type SigScheme = suite.SigScheme

func TestCharonInterop(t *testing.T) {
	testenv.Short(t)
	testenv.NeedRoot(t)
	pki := newInteropPKI(t)
	port := startCharon(t, pki)
	const (
		dh14, ecp, x25519 = message.MODP_2048, message.ECP_256, message.CURVE_25519
		sha256, sha384    = message.PRF_HMAC_SHA2_256, message.PRF_HMAC_SHA2_384
		sha512            = message.PRF_HMAC_SHA2_512
	)
	ecdsaResp, rsaResp := "responder-ecdsa.ovnsec.test", "responder-rsa.ovnsec.test"
	for _, tc := range []interopCase{
		{name: "psk-modp2048-aes256-sha256", group: dh14, prf: sha256, keyBits: 256},
		{name: "psk-ecp256-aes256-sha256-fragmented", group: ecp, prf: sha256, keyBits: 256, fragment: 140},
		{name: "psk-curve25519-aes256-sha256", group: x25519, prf: sha256, keyBits: 256},
		{name: "psk-modp2048-aes128-sha384", group: dh14, prf: sha384, keyBits: 128},
		{name: "psk-ecp256-aes256-sha512-fragmented", group: ecp, prf: sha512, keyBits: 256, fragment: 100},
		{name: "ecdsa-method9", group: x25519, prf: sha256, keyBits: 256, cred: &pki.initECDSA, method: message.AuthECDSAP256, responder: ecdsaResp},
		{name: "ecdsa-method14-sha256-fragmented", group: ecp, prf: sha256, keyBits: 256, fragment: 400, cred: &pki.initECDSA, method: message.AuthDigitalSignature, scheme: suite.SigECDSASHA256, responder: ecdsaResp},
		{name: "rsa-method1", group: dh14, prf: sha256, keyBits: 256, cred: &pki.initRSA, method: message.AuthRSASig, responder: rsaResp},
		{name: "rsa-method14-pkcs1-sha256", group: dh14, prf: sha256, keyBits: 256, cred: &pki.initRSA, method: message.AuthDigitalSignature, scheme: suite.SigRSAPKCS1SHA256, responder: rsaResp},
		{name: "rsa-method14-pss-sha256", group: x25519, prf: sha256, keyBits: 256, cred: &pki.initRSA, method: message.AuthDigitalSignature, scheme: suite.SigRSAPSSSHA256, responder: rsaResp},
	} {
		t.Run(tc.name, func(t *testing.T) { runInterop(t, port, pki, tc) })
	}
}

// peer is a minimal IKE initiator talking to one responder over UDP.
type peer struct {
	t    *testing.T
	conn *net.UDPConn
	to   *net.UDPAddr
}

func (p *peer) send(bs ...[]byte) {
	p.t.Helper()
	for _, b := range bs {
		// Neither port is 500, so like on port 4500 every IKE message
		// carries the non-ESP marker (RFC 3948 §2.2).
		b = append(make([]byte, message.NonESPMarkerLen), b...)
		if _, err := p.conn.WriteToUDP(b, p.to); err != nil {
			p.t.Fatalf("send: %v", err)
		}
	}
}

func (p *peer) recv() *message.Message {
	p.t.Helper()
	buf := make([]byte, 65536)
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := p.conn.ReadFromUDP(buf)
	if err != nil {
		p.t.Fatalf("no response from charon: %v", err)
	}
	b, ok := message.StripNonESPMarker(buf[:n])
	if !ok {
		p.t.Fatalf("charon's message lacks the non-ESP marker")
	}
	m, err := message.Decode(b)
	if err != nil {
		p.t.Fatalf("decode charon's message: %v", err)
	}
	return m
}

func notifyErrors(t *testing.T, ps []message.Payload) {
	t.Helper()
	for _, p := range ps {
		if n, ok := p.(*message.Notify); ok && n.NotifyType.IsError() {
			t.Fatalf("charon answered with %s", n.NotifyType)
		}
	}
}

func runInterop(t *testing.T, port int, pki *interopPKI, tc interopCase) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := &peer{t: t, conn: conn, to: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}}
	local := conn.LocalAddr().(*net.UDPAddr)
	lo := netip.MustParseAddr("127.0.0.1")

	// IKE_SA_INIT
	var spii message.SPI
	rand.Read(spii[:])
	ni := make([]byte, 32)
	rand.Read(ni)
	dh, err := suite.NewDH(tc.group, nil)
	if err != nil {
		t.Fatal(err)
	}
	sa := &message.SA{Proposals: []message.Proposal{{Num: 1, Protocol: message.ProtoIKE, Transforms: []message.Transform{
		{Type: message.TransformENCR, ID: uint16(message.ENCR_AES_GCM_16), Attributes: message.KeyLengthAttr(tc.keyBits)},
		{Type: message.TransformPRF, ID: uint16(tc.prf)},
		{Type: message.TransformDH, ID: uint16(tc.group)},
	}}}}
	natSrc := suite.NATDetectionHash(spii, message.SPI{}, lo, uint16(local.Port))
	natDst := suite.NATDetectionHash(spii, message.SPI{}, lo, uint16(port))
	init := &message.Message{
		Header: message.Header{SPIi: spii, Exchange: message.IKE_SA_INIT, Flags: message.FlagInitiator},
		Payloads: []message.Payload{
			sa,
			&message.KE{Group: tc.group, Data: dh.Public()},
			&message.Nonce{Data: ni},
			&message.Notify{NotifyType: message.NAT_DETECTION_SOURCE_IP, Data: natSrc[:]},
			&message.Notify{NotifyType: message.NAT_DETECTION_DESTINATION_IP, Data: natDst[:]},
			&message.Notify{NotifyType: message.IKEV2_FRAGMENTATION_SUPPORTED},
			&message.Notify{NotifyType: message.CHILDLESS_IKEV2_SUPPORTED},
			&message.Notify{NotifyType: message.SIGNATURE_HASH_ALGORITHMS, Data: message.HashAlgorithmsData(message.HashSHA2_256, message.HashSHA2_384)},
		},
	}
	initReq, err := init.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	p.send(initReq)
	resp := p.recv()
	notifyErrors(t, resp.Payloads)
	if !resp.IsResponse() || resp.SPIi != spii || resp.SPIr.IsZero() || resp.Exchange != message.IKE_SA_INIT {
		t.Fatalf("bad IKE_SA_INIT response header %+v", resp.Header)
	}
	initResp, _ := (&message.Message{Header: resp.Header, Payloads: resp.Payloads}).Encode(nil)
	spir := resp.SPIr
	rsa, ok := resp.Find(message.PayloadSA).(*message.SA)
	if !ok || len(rsa.Proposals) != 1 {
		t.Fatal("no single chosen proposal")
	}
	chosen, err := suite.FromProposal(&rsa.Proposals[0])
	if err != nil || chosen.DH != tc.group || chosen.PRF != tc.prf || chosen.KeyBits != int(tc.keyBits) {
		t.Fatalf("charon chose %+v (%v)", chosen, err)
	}
	ke := resp.Find(message.PayloadKE).(*message.KE)
	nr := resp.Find(message.PayloadNonce).(*message.Nonce).Data
	// charon's NAT-D must match our hashes: no NAT on loopback.
	wantSrc := suite.NATDetectionHash(spii, spir, lo, uint16(port))
	wantDst := suite.NATDetectionHash(spii, spir, lo, uint16(local.Port))
	for nt, want := range map[message.NotifyType][20]byte{message.NAT_DETECTION_SOURCE_IP: wantSrc, message.NAT_DETECTION_DESTINATION_IP: wantDst} {
		ns := message.Notifies(resp.Payloads, nt)
		if len(ns) != 1 || !bytes.Equal(ns[0].Data, want[:]) {
			t.Fatalf("%s from charon does not match our hash", nt)
		}
	}
	if len(message.Notifies(resp.Payloads, message.IKEV2_FRAGMENTATION_SUPPORTED)) != 1 {
		t.Fatal("charon did not announce fragmentation")
	}
	gir, err := dh.Shared(ke.Data)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := suite.NewIKEKeys(chosen.Params, gir, ni, nr, spii, spir)
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Zero()
	prf, _ := suite.NewPRF(chosen.PRF)
	seal, err := suite.NewAEAD(chosen.Encr, keys.Ei)
	if err != nil {
		t.Fatal(err)
	}
	open, err := suite.NewAEAD(chosen.Encr, keys.Er)
	if err != nil {
		t.Fatal(err)
	}

	// IKE_AUTH (childless), PSK or certificate
	var idi *message.ID
	var inner []message.Payload
	if tc.cred == nil {
		idi = &message.ID{IDType: message.ID_FQDN, Data: []byte(interopIDi)}
		signed := suite.SignedOctets(prf, keys.Pi, initReq, nr, idi.Body())
		inner = []message.Payload{
			idi,
			&message.ID{Responder: true, IDType: message.ID_FQDN, Data: []byte(interopIDr)},
			&message.Auth{Method: message.AuthPSK, Data: suite.PSKAuth(prf, []byte(interopSecret), signed)},
		}
	} else {
		idi = &message.ID{IDType: message.ID_FQDN, Data: []byte(tc.cred.name)}
		signed := suite.SignedOctets(prf, keys.Pi, initReq, nr, idi.Body())
		sig, err := suite.Sign(tc.cred.key, tc.method, tc.scheme, signed)
		if err != nil {
			t.Fatal(err)
		}
		inner = []message.Payload{
			idi,
			&message.Cert{Encoding: message.CertX509Signature, Data: tc.cred.cert},
			&message.CertReq{Encoding: message.CertX509Signature, Data: pki.caSKI[:]},
			&message.ID{Responder: true, IDType: message.ID_FQDN, Data: []byte(tc.responder)},
			&message.Auth{Method: tc.method, Data: sig},
		}
	}
	inner = append(inner, &message.Notify{NotifyType: message.INITIAL_CONTACT})
	auth := &message.Message{Header: message.Header{SPIi: spii, SPIr: spir, Exchange: message.IKE_AUTH, Flags: message.FlagInitiator, MessageID: 1}}
	if tc.fragment > 0 {
		frags, err := auth.EncodeFragments(inner, seal, tc.fragment)
		if err != nil {
			t.Fatal(err)
		}
		if len(frags) < 2 {
			t.Fatalf("IKE_AUTH not fragmented (%d)", len(frags))
		}
		p.send(frags...)
	} else {
		b, err := auth.EncodeSK(nil, inner, seal)
		if err != nil {
			t.Fatal(err)
		}
		p.send(b)
	}
	resp = p.recv()
	if !resp.IsResponse() || resp.MessageID != 1 || resp.Exchange != message.IKE_AUTH {
		t.Fatalf("bad IKE_AUTH response header %+v", resp.Header)
	}
	var rinner []message.Payload
	_, fragmented := resp.Find(message.PayloadSKF).(*message.EncryptedFragment)
	// charon's fragment_size makes its certificate-bearing responses
	// fragmented, which exercises OpenFragment and the Reassembler.
	if fragmented != (tc.cred != nil) {
		t.Fatalf("IKE_AUTH response fragmented=%v for a %s case", fragmented, map[bool]string{true: "certificate", false: "PSK"}[tc.cred != nil])
	}
	if fragmented {
		var r message.Reassembler
		for {
			f, err := resp.OpenFragment(open)
			if err != nil {
				t.Fatal(err)
			}
			next, stream, done, err := r.Add(time.Now(), f)
			if err != nil {
				t.Fatal(err)
			}
			if done {
				if rinner, err = message.DecodePayloads(next, stream); err != nil {
					t.Fatal(err)
				}
				break
			}
			resp = p.recv()
		}
	} else if rinner, err = resp.Decrypt(open); err != nil {
		t.Fatalf("decrypt IKE_AUTH response: %v", err)
	}
	notifyErrors(t, rinner)
	wantIDr := interopIDr
	if tc.cred != nil {
		wantIDr = tc.responder
	}
	idr, ok := message.Find(rinner, message.PayloadIDr).(*message.ID)
	if !ok || string(idr.Data) != wantIDr {
		t.Fatalf("IDr %+v", idr)
	}
	rauth, ok := message.Find(rinner, message.PayloadAUTH).(*message.Auth)
	if !ok {
		t.Fatal("no AUTH from charon")
	}
	signedR := suite.SignedOctets(prf, keys.Pr, initResp, ni, idr.Body())
	if tc.cred == nil {
		if rauth.Method != message.AuthPSK || !suite.VerifyPSKAuth(prf, []byte(interopSecret), signedR, rauth.Data) {
			t.Fatalf("charon's AUTH (%s) does not verify", rauth.Method)
		}
	} else {
		// We announced SIGNATURE_HASH_ALGORITHMS, so charon signs with
		// method 14 (RFC 7427) and the certificate it sends.
		rcert, ok := message.Find(rinner, message.PayloadCERT).(*message.Cert)
		if !ok || rcert.Encoding != message.CertX509Signature {
			t.Fatal("no X.509 certificate from charon")
		}
		c, err := x509.ParseCertificate(rcert.Data)
		if err != nil {
			t.Fatal(err)
		}
		if rauth.Method != message.AuthDigitalSignature {
			t.Fatalf("charon used AUTH method %s", rauth.Method)
		}
		scheme, err := suite.Verify(c.PublicKey, rauth.Method, signedR, rauth.Data)
		if err != nil {
			t.Fatalf("charon's AUTH (%s) does not verify: %v", scheme, err)
		}
		t.Logf("charon signed with %s", scheme)
	}

	// INFORMATIONAL: delete the IKE SA.
	del := &message.Message{Header: message.Header{SPIi: spii, SPIr: spir, Exchange: message.INFORMATIONAL, Flags: message.FlagInitiator, MessageID: 2}}
	b, err := del.EncodeSK(nil, []message.Payload{&message.Delete{Protocol: message.ProtoIKE}}, seal)
	if err != nil {
		t.Fatal(err)
	}
	p.send(b)
	resp = p.recv()
	if resp.Exchange != message.INFORMATIONAL || resp.MessageID != 2 || !resp.IsResponse() {
		t.Fatalf("bad delete response %+v", resp.Header)
	}
	if _, err := resp.Decrypt(open); err != nil {
		t.Fatalf("decrypt delete response: %v", err)
	}
}
