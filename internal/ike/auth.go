// IKE_AUTH (RFC 7296 §1.2, §2.15): identities, AUTH with a pre-shared key
// or signatures (methods 1, 9 and 14 per RFC 7427), certificates and
// CERTREQ, and the first Child SA piggy-backed on the exchange.

package ike

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/ovnsec/ovnsec/internal/ike/message"
	"github.com/ovnsec/ovnsec/internal/ike/suite"
)

func (sa *ikeSA) myID() *message.ID {
	return sa.p.cfg.localID.payload(!sa.initiator)
}

// certRequest returns our CERTREQ (SHA-1 of the CAs' public key info).
func (sa *ikeSA) certRequest() *message.CertReq {
	a := &sa.p.cfg.Auth
	if a.isPSK() || len(a.CAs) == 0 {
		return nil
	}
	var data []byte
	for _, ca := range a.CAs {
		h := sha1.Sum(ca.RawSubjectPublicKeyInfo)
		data = append(data, h[:]...)
	}
	return &message.CertReq{Encoding: message.CertX509Signature, Data: data}
}

// authPayloads returns [CERT...] and the AUTH payload for us.
func (sa *ikeSA) authPayloads(id *message.ID) (certs []message.Payload, auth *message.Auth, err error) {
	a := &sa.p.cfg.Auth
	realMsg, nonce, skp := sa.initReq, sa.nr, sa.keys.Pi
	if !sa.initiator {
		realMsg, nonce, skp = sa.initRsp, sa.ni, sa.keys.Pr
	}
	signed := suite.SignedOctets(sa.prf, skp, realMsg, nonce, id.Body())
	if a.isPSK() {
		return nil, &message.Auth{Method: message.AuthPSK, Data: suite.PSKAuthWith(sa.prf, sa.p.pskKey(sa.prf), signed)}, nil
	}
	for _, c := range a.Cert {
		certs = append(certs, &message.Cert{Encoding: message.CertX509Signature, Data: c.Raw})
	}
	method, scheme, err := sa.signMethod(a.Key)
	if err != nil {
		return nil, nil, err
	}
	data, err := suite.Sign(a.Key, method, scheme, signed)
	if err != nil {
		return nil, nil, fmt.Errorf("sign AUTH: %w", err)
	}
	return certs, &message.Auth{Method: method, Data: data}, nil
}

// signMethod picks RFC 7427 signatures when the peer announced a hash we
// can use, else the classic method for the key.
func (sa *ikeSA) signMethod(k crypto.Signer) (message.AuthMethod, suite.SigScheme, error) {
	has := func(h message.HashAlgorithm) bool { return slices.Contains(sa.peerHashes, h) }
	switch pub := k.Public().(type) {
	case *rsa.PublicKey:
		if has(message.HashSHA2_256) {
			return message.AuthDigitalSignature, suite.SigRSAPKCS1SHA256, nil
		}
		return message.AuthRSASig, 0, nil
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			if has(message.HashSHA2_256) {
				return message.AuthDigitalSignature, suite.SigECDSASHA256, nil
			}
			return message.AuthECDSAP256, 0, nil
		case elliptic.P384():
			if has(message.HashSHA2_384) {
				return message.AuthDigitalSignature, suite.SigECDSASHA384, nil
			}
			return message.AuthECDSAP384, 0, nil
		case elliptic.P521():
			if has(message.HashSHA2_512) {
				return message.AuthDigitalSignature, suite.SigECDSASHA512, nil
			}
			return message.AuthECDSAP521, 0, nil
		}
	}
	return 0, 0, fmt.Errorf("unsupported private key type %T (use RSA or ECDSA P-256/384/521)", k.Public())
}

// verifyPeer checks the peer's ID and AUTH payload.
func (sa *ikeSA) verifyPeer(ps []message.Payload, id *message.ID) error {
	cfg := sa.p.cfg
	if id == nil {
		return reasonf(ReasonProtocolError, "peer sent no identity")
	}
	if !cfg.remoteID.matches(id) {
		return reasonf(ReasonIdentityMismatch, "peer ID %s does not match expected %s", idString(id), cfg.remoteID)
	}
	auth, _ := message.Find(ps, message.PayloadAUTH).(*message.Auth)
	if auth == nil {
		return reasonf(ReasonProtocolError, "peer sent no AUTH payload")
	}
	realMsg, nonce, skp := sa.initRsp, sa.ni, sa.keys.Pr
	if !sa.initiator {
		realMsg, nonce, skp = sa.initReq, sa.nr, sa.keys.Pi
	}
	signed := suite.SignedOctets(sa.prf, skp, realMsg, nonce, id.Body())
	a := &cfg.Auth
	if a.isPSK() {
		if auth.Method != message.AuthPSK {
			return reasonf(ReasonAuthFailed, "peer authenticates with %s, we expect a pre-shared key", auth.Method)
		}
		if !suite.VerifyPSKAuthWith(sa.prf, sa.p.pskKey(sa.prf), signed, auth.Data) {
			return reasonf(ReasonAuthFailed, "pre-shared key mismatch: peer's AUTH does not verify")
		}
		return nil
	}
	switch auth.Method {
	case message.AuthRSASig, message.AuthECDSAP256, message.AuthECDSAP384, message.AuthECDSAP521, message.AuthDigitalSignature:
	default:
		return reasonf(ReasonAuthFailed, "peer authenticates with %s, we expect a certificate signature", auth.Method)
	}
	cert, err := sa.peerCert(ps)
	if err != nil {
		return err
	}
	switch id.IDType {
	case message.ID_FQDN:
		if !slices.Contains(cert.DNSNames, cfg.remoteID.text) {
			return reasonf(ReasonIdentityMismatch, "peer ID %s is not a DNS name in its certificate (SAN %v)", cfg.remoteID, cert.DNSNames)
		}
	default:
		found := false
		for _, ip := range cert.IPAddresses {
			if a, ok := netip.AddrFromSlice(ip); ok && a.Unmap().String() == cfg.remoteID.text {
				found = true
			}
		}
		if !found {
			return reasonf(ReasonIdentityMismatch, "peer ID %s is not an IP address in its certificate (SAN %v)", cfg.remoteID, cert.IPAddresses)
		}
	}
	if a.PeerCert == nil {
		// CA-signed (OVS remote_name): every chassis holds a certificate
		// of the same CA, so the SAN alone would let one whose SAN also
		// lists another chassis' name pass as that chassis. OVN's
		// contract is CN = SAN DNS = chassis name: the CN must be the
		// expected name too.
		if cns := commonNames(cert); len(cns) != 1 {
			// Tools disagree on which of several CNs counts (Go takes the
			// last, ovs-monitor-ipsec the first): refuse them all.
			return reasonf(ReasonIdentityMismatch, "peer certificate has %d CNs %q; the expected remote name %q must be its only CN", len(cns), cns, cfg.remoteID.text)
		}
		if cn := cert.Subject.CommonName; cn != cfg.remoteID.text {
			return reasonf(ReasonIdentityMismatch, "peer certificate CN %q is not the expected remote name %q", cn, cfg.remoteID.text)
		}
	}
	if _, err := suite.Verify(cert.PublicKey, auth.Method, signed, auth.Data); err != nil {
		return reasonf(ReasonAuthFailed, "peer's AUTH signature does not verify: %v", err)
	}
	return nil
}

// peerCert validates the peer's certificate (chain to our CAs, or equal to
// the pinned one).
func (sa *ikeSA) peerCert(ps []message.Payload) (*x509.Certificate, error) {
	a := &sa.p.cfg.Auth
	var chain []*x509.Certificate
	for _, p := range ps {
		c, ok := p.(*message.Cert)
		if !ok || c.Encoding != message.CertX509Signature {
			continue
		}
		x, err := x509.ParseCertificate(c.Data)
		if err != nil {
			return nil, reasonf(ReasonCertUntrusted, "peer's certificate does not parse: %v", err)
		}
		chain = append(chain, x)
	}
	now := sa.now()
	if a.PeerCert != nil {
		if len(chain) > 0 && !bytes.Equal(chain[0].Raw, a.PeerCert.Raw) {
			return nil, reasonf(ReasonCertUntrusted, "peer's certificate %s is not the pinned certificate %s", fingerprint(chain[0].Raw), fingerprint(a.PeerCert.Raw))
		}
		if now.Before(a.PeerCert.NotBefore) || now.After(a.PeerCert.NotAfter) {
			return nil, reasonf(ReasonCertUntrusted, "pinned peer certificate expired or not yet valid (valid %s to %s)", a.PeerCert.NotBefore.Format(time.RFC3339), a.PeerCert.NotAfter.Format(time.RFC3339))
		}
		if err := checkUsage(a.PeerCert); err != nil {
			return nil, reasonf(ReasonCertUntrusted, "pinned peer certificate %s is not usable for IKE: %v", fingerprint(a.PeerCert.Raw), err)
		}
		return a.PeerCert, nil
	}
	if len(chain) == 0 {
		return nil, reasonf(ReasonCertUntrusted, "peer sent no certificate")
	}
	leaf := chain[0]
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return nil, reasonf(ReasonCertUntrusted, "peer certificate expired or not yet valid (valid %s to %s)", leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339))
	}
	roots := x509.NewCertPool()
	for _, c := range a.CAs {
		roots.AddCert(c)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		var ce x509.CertificateInvalidError
		if errors.As(err, &ce) && ce.Reason == x509.Expired {
			return nil, reasonf(ReasonCertUntrusted, "peer certificate chain expired: %v", err)
		}
		return nil, reasonf(ReasonCertUntrusted, "certificate not signed by the configured CA: %v", err)
	}
	if err := checkUsage(leaf); err != nil {
		return nil, reasonf(ReasonCertUntrusted, "peer certificate %q is not usable for IKE: %v", leaf.Subject.CommonName, err)
	}
	return leaf, nil
}

// commonNames returns the values of every CN attribute of the subject.
func commonNames(c *x509.Certificate) []string {
	var out []string
	for _, n := range c.Subject.Names {
		if n.Type.Equal(oidCommonName) {
			s, _ := n.Value.(string)
			out = append(out, s)
		}
	}
	return out
}

// Certificate extensions and key purposes checkUsage looks at.
var (
	oidCommonName  = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidKeyUsage    = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidKPIPsecIKE  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 17} // RFC 4945 §5.1.3.12
)

// checkUsage refuses an end-entity certificate that is not meant for IKE,
// as strongSwan does: a keyUsage extension must allow digitalSignature,
// and an extendedKeyUsage extension must allow serverAuth, clientAuth,
// ipsecIKE or anyExtendedKeyUsage. Certificates without these extensions
// (ovs-pki's) pass; ovnsec pki issues keyUsage digitalSignature.
func checkUsage(c *x509.Certificate) error {
	hasKU, hasEKU := false, false
	for _, ext := range c.Extensions {
		hasKU = hasKU || ext.Id.Equal(oidKeyUsage)
		hasEKU = hasEKU || ext.Id.Equal(oidExtKeyUsage)
	}
	if hasKU && c.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return fmt.Errorf("its keyUsage extension does not allow digitalSignature (re-issue it with keyUsage digitalSignature, e.g. ovnsec pki sign)")
	}
	if !hasEKU {
		return nil
	}
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			return nil
		}
	}
	if slices.ContainsFunc(c.UnknownExtKeyUsage, oidKPIPsecIKE.Equal) {
		return nil
	}
	return fmt.Errorf("its extendedKeyUsage %s allows none of serverAuth, clientAuth, ipsecIKE and anyExtendedKeyUsage (re-issue it without extendedKeyUsage or with one of these)", ekuString(c))
}

// ekuString lists a certificate's extended key usages for a reason.
func ekuString(c *x509.Certificate) string {
	names := map[x509.ExtKeyUsage]string{
		x509.ExtKeyUsageAny: "anyExtendedKeyUsage", x509.ExtKeyUsageServerAuth: "serverAuth",
		x509.ExtKeyUsageClientAuth: "clientAuth", x509.ExtKeyUsageCodeSigning: "codeSigning",
		x509.ExtKeyUsageEmailProtection: "emailProtection", x509.ExtKeyUsageIPSECEndSystem: "ipsecEndSystem",
		x509.ExtKeyUsageIPSECTunnel: "ipsecTunnel", x509.ExtKeyUsageIPSECUser: "ipsecUser",
		x509.ExtKeyUsageTimeStamping: "timeStamping", x509.ExtKeyUsageOCSPSigning: "OCSPSigning",
	}
	var out []string
	for _, u := range c.ExtKeyUsage {
		if n, ok := names[u]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("ExtKeyUsage(%d)", u))
		}
	}
	for _, o := range c.UnknownExtKeyUsage {
		out = append(out, o.String())
	}
	return "[" + strings.Join(out, " ") + "]"
}

// sendAuth sends the initiator's IKE_AUTH request with the first child.
func (sa *ikeSA) sendAuth() {
	p := sa.p
	sa.state = stateAuthSent
	idi := sa.myID()
	certs, auth, err := sa.authPayloads(idi)
	if err != nil {
		sa.failErr(ReasonInternalError, err)
		return
	}
	ps := []message.Payload{idi}
	ps = append(ps, certs...)
	ps = append(ps, notify(message.INITIAL_CONTACT, nil))
	if cr := sa.certRequest(); cr != nil {
		ps = append(ps, cr)
	}
	ps = append(ps, p.cfg.remoteID.payload(true), auth)
	pc, err := sa.newPendingChild(p.cfg.children[0], false, nil)
	if err != nil {
		sa.failErr(ReasonInternalError, err)
		return
	}
	sa.authCh = pc
	ps = append(ps, pc.payloads(sa)...)
	pkts, err := sa.protect(sa.header(message.IKE_AUTH, 1, false), ps)
	if err != nil {
		sa.failErr(ReasonInternalError, err)
		return
	}
	sa.nextID = 2
	sa.sendRequest(&request{id: 1, exch: message.IKE_AUTH, pkts: pkts, onResp: sa.onAuthResponse,
		onTimeout: func() {
			sa.fail(ReasonPeerSilent, fmt.Sprintf("peer silent: no answer to IKE_AUTH after %d tries", sa.p.e.cfg.RetransmitTries))
		}})
}

// onAuthResponse authenticates the responder and installs the first child.
func (sa *ikeSA) onAuthResponse(_ *message.Message, _ []byte, ps []message.Payload) {
	p := sa.p
	if n := message.Notifies(ps, message.AUTHENTICATION_FAILED); len(n) > 0 {
		p.e.stats.countAuthFailure(ReasonPeerRefusedAuth)
		sa.releaseChild(sa.authCh)
		sa.fail(ReasonPeerRefusedAuth, "AUTHENTICATION_FAILED from peer")
		return
	}
	idr, _ := message.Find(ps, message.PayloadIDr).(*message.ID)
	if idr == nil {
		if n := errorNotify(ps); n != nil {
			sa.releaseChild(sa.authCh)
			sa.fail(notifyCode(n.NotifyType), fmt.Sprintf("%s from peer in IKE_AUTH", n.NotifyType))
			return
		}
	}
	if err := sa.verifyPeer(ps, idr); err != nil {
		p.e.stats.AuthErrors.Add(1)
		sa.releaseChild(sa.authCh)
		reason := failureOf(ReasonAuthFailed, err)
		p.e.stats.countAuthFailure(reason.code)
		// Tell the peer (RFC 7296 §2.21.2) and forget the SA.
		if pkts, e2 := sa.protect(sa.header(message.INFORMATIONAL, sa.nextID, false),
			[]message.Payload{notify(message.AUTHENTICATION_FAILED, nil)}); e2 == nil {
			for _, b := range pkts {
				p.e.send(sa.port, b, sa.remote)
			}
		}
		sa.fail(reason.code, reason.text)
		return
	}
	sa.setEstablished()
	sa.announce = "initiator" // on the first child's line, if it comes
	pc := sa.authCh
	sa.authCh = nil
	if sa.state == stateDead { // lost against a simultaneous IKE SA
		sa.announceUp()
		sa.releaseChild(pc)
		return
	}
	err := sa.finishChild(pc, ps)
	sa.announceUp()
	if err != nil {
		p.reason = failure{ReasonChildFailed, fmt.Sprintf("child %s: %v", pc.cfg.Name, err)}
		sa.log().Warn("ike: child SA failed", "child", pc.cfg.Name, "err", err)
	}
	for _, c := range p.cfg.children[1:] {
		sa.createChild(c)
	}
}

// announceUp logs the establishment of the IKE SA unless the line of its
// first Child SA did (installChild): one line per IKE SA and the Child SA
// set up with it, rather than two, each a formatted write to the log.
func (sa *ikeSA) announceUp() {
	if sa.announce == "" {
		return
	}
	sa.log().Info("ike: IKE SA established", "role", sa.announce, "alg", algString(sa.chosen, message.ProtoIKE), "encap", sa.encap)
	sa.announce = ""
}

// respondAuth is the responder's side of IKE_AUTH.
func (sa *ikeSA) respondAuth(ps []message.Payload) ([]message.Payload, func()) {
	p := sa.p
	idi, _ := message.Find(ps, message.PayloadIDi).(*message.ID)
	failed := func(reason failure) ([]message.Payload, func()) {
		p.e.stats.AuthErrors.Add(1)
		p.e.stats.countAuthFailure(reason.code)
		return []message.Payload{notify(message.AUTHENTICATION_FAILED, nil)}, func() {
			sa.log().Warn("ike: peer failed authentication", "reason", reason.text, "code", reason.code)
			p.reason = reason
			sa.destroy()
		}
	}
	if idr, _ := message.Find(ps, message.PayloadIDr).(*message.ID); idr != nil {
		if !p.cfg.localID.matches(idr) {
			return failed(failure{ReasonIdentityMismatch, fmt.Sprintf("peer asked for ID %s, we are %s", idString(idr), p.cfg.localID)})
		}
	}
	if err := sa.verifyPeer(ps, idi); err != nil {
		return failed(failureOf(ReasonAuthFailed, err))
	}
	sa.initialCont = hasNotify(ps, message.INITIAL_CONTACT)
	idr := sa.myID()
	certs, auth, err := sa.authPayloads(idr)
	if err != nil {
		return failed(failure{ReasonInternalError, "cannot sign our AUTH: " + err.Error()})
	}
	out := []message.Payload{idr}
	out = append(out, certs...)
	out = append(out, auth)
	sa.setEstablished()
	sa.announce = "responder" // on the first child's line, if it comes
	childOut, err := sa.acceptChild(ps, nil, nil)
	sa.announceUp()
	if err != nil {
		p.reason = failureOf(ReasonChildFailed, err)
		sa.log().Warn("ike: child SA refused", "err", err)
	}
	out = append(out, childOut...)
	return out, nil
}
