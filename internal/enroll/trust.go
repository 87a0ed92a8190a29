// Stage: what a chassis trusts. The first contact with the CA service is
// authenticated by the operator: a CA certificate file (--enroll-ca-cert)
// or the SHA-256 fingerprint of the CA certificate's DER
// (--enroll-ca-fingerprint). From then on the CA bundle the service
// publishes (cacerts, fetched over TLS verified with what is already
// trusted) is the chassis' trust: its self-signed CA certificates, which
// during a CA rollover are the old and the new CA. Every certificate the
// service issues is checked here before it is written: our key, our name
// and nothing else, signed by a CA of the bundle, valid now.

package enroll

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ovnsec/ovnsec/internal/pki"
)

// Fingerprint is the SHA-256 digest of a certificate's DER encoding.
type Fingerprint [sha256.Size]byte

// FingerprintOf is c's fingerprint.
func FingerprintOf(c *x509.Certificate) Fingerprint { return sha256.Sum256(c.Raw) }

// String is the fingerprint as lower-case hex pairs joined by colons.
func (f Fingerprint) String() string {
	h := hex.EncodeToString(f[:])
	var sb strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(h[i : i+2])
	}
	return sb.String()
}

// ParseFingerprint reads a SHA-256 fingerprint as --enroll-ca-fingerprint
// takes it: 64 hex digits, in either case, optionally in pairs separated
// by colons (openssl x509 -fingerprint -sha256 prints
// "sha256 Fingerprint=AB:CD:..."; the part after '=' is accepted, and a
// "sha256:" prefix too).
func ParseFingerprint(s string) (Fingerprint, error) {
	var f Fingerprint
	v := strings.TrimSpace(s)
	if i := strings.LastIndexByte(v, '='); i >= 0 {
		v = v[i+1:]
	}
	if rest, ok := strings.CutPrefix(strings.ToLower(v), "sha256:"); ok {
		v = rest
	}
	v = strings.ReplaceAll(v, ":", "")
	if len(v) != 2*sha256.Size {
		return f, fmt.Errorf("CA fingerprint %q: want the SHA-256 of the CA certificate (64 hex digits, e.g. from openssl x509 -in cacert.pem -noout -fingerprint -sha256)", s)
	}
	if _, err := hex.Decode(f[:], []byte(v)); err != nil {
		return f, fmt.Errorf("CA fingerprint %q: not hex: %w", s, err)
	}
	return f, nil
}

// Trust is what authenticates the first contact with the CA service.
// One of the two is set.
type Trust struct {
	// Anchors are CA certificates the operator gave (--enroll-ca-cert).
	Anchors []*x509.Certificate
	// Fingerprint, when set, is the fingerprint of the CA certificate
	// to trust (--enroll-ca-fingerprint).
	Fingerprint *Fingerprint
}

// Check says what is wrong with t, if anything.
func (t Trust) Check() error {
	switch {
	case len(t.Anchors) == 0 && t.Fingerprint == nil:
		return errors.New("no trust for the first contact with the CA service: give --enroll-ca-cert=FILE or --enroll-ca-fingerprint=SHA256")
	case len(t.Anchors) > 0 && t.Fingerprint != nil:
		return errors.New("give --enroll-ca-cert or --enroll-ca-fingerprint, not both")
	}
	for _, a := range t.Anchors {
		if !a.IsCA {
			return fmt.Errorf("the first-contact certificate %q is not a CA certificate; give the CA's certificate (DIR/switchca/cacert.pem)", a.Subject.String())
		}
	}
	return nil
}

// isRoot reports whether c is a self-signed CA certificate.
func isRoot(c *x509.Certificate) bool {
	return c.IsCA && c.BasicConstraintsValid && bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(c) == nil
}

// CABundle is what a chassis trusts of a cacerts answer: its self-signed
// CA certificates, in the answer's order (the service puts the CA that
// issues now first), each once. Link certificates (one CA's key certified
// by another, RFC 7030 section 4.1.3) are left out: IKE peers send their
// own certificate only and are verified against roots.
func CABundle(published []*x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	for _, c := range published {
		if c == nil || !isRoot(c) || slices.ContainsFunc(out, c.Equal) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// EncodeBundle is certs as PEM, one block each.
func EncodeBundle(certs []*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}) // a bytes.Buffer never fails
	}
	return b.Bytes()
}

// sameBundle reports whether a and b hold the same certificates in the
// same order.
func sameBundle(a, b []*x509.Certificate) bool {
	return slices.EqualFunc(a, b, func(x, y *x509.Certificate) bool { return x.Equal(y) })
}

// gained lists the certificates of b that a lacks.
func gained(a, b []*x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	for _, c := range b {
		if !slices.ContainsFunc(a, c.Equal) {
			out = append(out, c)
		}
	}
	return out
}

// matchFingerprint finds the CA certificate with fingerprint fp.
func matchFingerprint(certs []*x509.Certificate, fp Fingerprint) (*x509.Certificate, error) {
	for _, c := range certs {
		if FingerprintOf(c) != fp {
			continue
		}
		if !c.IsCA {
			return nil, fmt.Errorf("the certificate with fingerprint %s (%q) is not a CA certificate; give the fingerprint of the CA certificate", fp, c.Subject.String())
		}
		return c, nil
	}
	var have []string
	for _, c := range certs {
		have = append(have, fmt.Sprintf("%q %s", c.Subject.String(), FingerprintOf(c)))
	}
	return nil, fmt.Errorf("no CA certificate the CA service publishes has the fingerprint %s (it publishes %s); check --enroll-ca-fingerprint against openssl x509 -in DIR/switchca/cacert.pem -noout -fingerprint -sha256, and that --enroll names the right service", fp, strings.Join(have, ", "))
}

// Bootstrap finds, for a fingerprint, the CA certificate to trust: it
// fetches cacerts without verifying the server, keeps the CA certificate
// with that fingerprint, and then fetches cacerts again over TLS verified
// with it, so that nothing is trusted that the fingerprint did not
// authenticate.
func (c *Client) Bootstrap(ctx context.Context, fp Fingerprint) (*x509.Certificate, error) {
	cands, err := c.fetchUnverified(ctx)
	if err != nil {
		return nil, fmt.Errorf("first contact (CA fingerprint): %w", err)
	}
	ca, err := matchFingerprint(cands, fp)
	if err != nil {
		return nil, fmt.Errorf("first contact: %w", err)
	}
	if _, err := c.CACerts(ctx, []*x509.Certificate{ca}); err != nil {
		return nil, fmt.Errorf("first contact: the CA service does not prove it holds a certificate of the CA with fingerprint %s: %w", fp, err)
	}
	return ca, nil
}

// CheckIssued checks a certificate the CA service answered with before it
// is used: it certifies pub; its CN (as ovs-monitor-ipsec reads it) and
// its only subjectAltName are name; it is not a CA; it is valid at now;
// it chains to a CA of bundle and allows client use (renewals
// authenticate with it). A service that answers with anything else is
// refused, however it authenticated.
func CheckIssued(cert *x509.Certificate, name string, pub crypto.PublicKey, bundle []*x509.Certificate, now time.Time) error {
	if cert == nil {
		return errors.New("the answer holds no certificate")
	}
	desc := fmt.Sprintf("the issued certificate (serial %s, subject %q)", pki.FormatSerial(cert.SerialNumber), cert.Subject.String())
	if p, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !p.Equal(cert.PublicKey) {
		return fmt.Errorf("%s is not for this chassis' key", desc)
	}
	if cn, ok := pki.OVSCommonName(cert); !ok || cn != name || len(commonNames(cert.Subject.Names)) != 1 {
		return fmt.Errorf("%s does not name chassis %q as its one CN", desc, name)
	}
	if !slices.Equal(cert.DNSNames, []string{name}) || len(cert.IPAddresses)+len(cert.EmailAddresses)+len(cert.URIs) > 0 {
		return fmt.Errorf("%s names %v %v %v %v, not exactly DNS:%s", desc, cert.DNSNames, cert.IPAddresses, cert.EmailAddresses, cert.URIs, name)
	}
	if cert.IsCA {
		return fmt.Errorf("%s is a CA certificate", desc)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return fmt.Errorf("%s does not allow digitalSignature, which IKE needs", desc)
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return fmt.Errorf("%s is not valid now (valid %s to %s); check the clocks", desc, cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if err := verifyChain(cert, bundle, now); err != nil {
		return fmt.Errorf("%s: %w", desc, err)
	}
	return nil
}

// verifyChain checks that cert chains to a CA of bundle at now and allows
// client use.
func verifyChain(cert *x509.Certificate, bundle []*x509.Certificate, now time.Time) error {
	roots := x509.NewCertPool()
	for _, c := range bundle {
		roots.AddCert(c)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("not signed by a CA the service publishes, or not for client use: %w", err)
	}
	return nil
}
