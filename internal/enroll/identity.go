// Stage: identity. Who a request is from (a bootstrap token for a chassis,
// or a client certificate this CA issued) and the rules every request must
// meet before anything is signed: the request names exactly the
// authenticated chassis (CN = the name = its only subjectAltName, DNS),
// asks for no other name, and carries a key of an accepted type and size.

package enroll

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ovnsec/ovnsec/internal/pki"
)

// AuthMethod says how a request authenticated.
type AuthMethod string

// The methods.
const (
	AuthToken       AuthMethod = "token"
	AuthCertificate AuthMethod = "certificate"
)

// Identity is who a request authenticated as.
type Identity struct {
	Chassis string
	Method  AuthMethod
	// Token is the bootstrap token (AuthToken).
	Token Token
	// Cert is the client certificate (AuthCertificate).
	Cert *x509.Certificate
}

// refusal is a request refused with an HTTP status and a reason for the
// client and the log.
type refusal struct {
	status int
	reason string
}

func (r *refusal) Error() string { return r.reason }

func refuse(status int, format string, args ...any) error {
	return &refusal{status: status, reason: fmt.Sprintf(format, args...)}
}

// statusOf is the HTTP status for err (500 for an unexpected error).
func statusOf(err error) int {
	var r *refusal
	if errors.As(err, &r) {
		return r.status
	}
	if errors.Is(err, ErrToken) {
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}

var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// commonNames returns every CN attribute value of a parsed name.
func commonNames(names []pkix.AttributeTypeAndValue) []string {
	var cns []string
	for _, a := range names {
		if a.Type.Equal(oidCommonName) {
			s, _ := a.Value.(string)
			cns = append(cns, s)
		}
	}
	return cns
}

// checkKey accepts RSA keys of 2048 to 16384 bits with a usual public
// exponent and ECDSA keys on P-256, P-384 or P-521: what `ovnsec pki check`
// passes and strongSwan, libreswan and the native engine use.
func checkKey(pub any) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		if bits < pki.MinRSABits {
			return fmt.Errorf("the RSA key has %d bits; the minimum is %d (make a 3072-bit key, or ECDSA P-256)", bits, pki.MinRSABits)
		}
		if bits > pki.MaxRSABits {
			return fmt.Errorf("the RSA key has %d bits; the maximum is %d", bits, pki.MaxRSABits)
		}
		if k.E < 3 || k.E%2 == 0 {
			return fmt.Errorf("the RSA key's public exponent %d is not usable (use 65537)", k.E)
		}
		return nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("the ECDSA key is on curve %s; use P-256, P-384 or P-521", k.Curve.Params().Name)
	}
	return fmt.Errorf("the key is %T; use RSA (2048 bits or more) or ECDSA (P-256, P-384, P-521)", pub)
}

// CheckRequest applies the identity rules to a certificate request from
// the chassis name: exactly one CN, equal to name; a subjectAltName with
// exactly one entry, DNS:<name> (no other DNS name, no IP, URI, email or
// other kind); a key within policy. The error says which rule failed.
func CheckRequest(csr *x509.CertificateRequest, name string) error {
	if err := pki.ValidateName(name); err != nil {
		return refuse(http.StatusForbidden, "the authenticated name cannot be a chassis certificate's name: %v", err)
	}
	cns := commonNames(csr.Subject.Names)
	switch {
	case len(cns) == 0:
		return refuse(http.StatusForbidden, "the request has no CN; its CN must be the chassis name %q", name)
	case len(cns) > 1:
		return refuse(http.StatusForbidden, "the request has %d CNs; it must have one, the chassis name %q", len(cns), name)
	case cns[0] != name:
		return refuse(http.StatusForbidden, "the request's CN %q is not the authenticated chassis name %q", cns[0], name)
	}
	sans, err := pki.RequestSANs(csr)
	if err != nil {
		return refuse(http.StatusBadRequest, "the request's subjectAltName cannot be read: %v", err)
	}
	if len(sans) == 0 {
		return refuse(http.StatusForbidden, "the request has no subjectAltName; it must have exactly DNS:%s (openssl req -addext subjectAltName=DNS:%s)", name, name)
	}
	var extra []string
	found := false
	for _, s := range sans {
		if s.Tag == 2 && s.Value == name && !found {
			found = true
			continue
		}
		extra = append(extra, s.String())
	}
	if len(extra) > 0 {
		return refuse(http.StatusForbidden, "the request asks for subjectAltName %v besides DNS:%s; a chassis certificate names the chassis only (CN = SAN DNS = chassis name)", extra, name)
	}
	if !found {
		return refuse(http.StatusForbidden, "the request's subjectAltName lacks DNS:%s", name)
	}
	if err := checkKey(csr.PublicKey); err != nil {
		return refuse(http.StatusForbidden, "key refused: %v", err)
	}
	return nil
}

// verifyClientCert checks a client certificate against the trusted CA
// certificates at now and returns the chassis name it proves: its CN.
// It must be unexpired, not a CA, allow client authentication (or carry
// no extendedKeyUsage, as ovs-pki's and OVN's SB RBAC certificates) and
// name one chassis in its CN.
func verifyClientCert(chain []*x509.Certificate, trusted []*x509.Certificate, now time.Time) (string, error) {
	if len(chain) == 0 {
		return "", refuse(http.StatusUnauthorized, "no client certificate; present the chassis certificate this CA issued (curl --cert CERT --key KEY)")
	}
	leaf := chain[0]
	if now.After(leaf.NotAfter) {
		return "", refuse(http.StatusUnauthorized, "the client certificate (serial %s, CN %q) expired at %s; enrol again with a bootstrap token", pki.FormatSerial(leaf.SerialNumber), leaf.Subject.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return "", refuse(http.StatusUnauthorized, "the client certificate (CN %q) is not valid before %s; check the clocks", leaf.Subject.CommonName, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if leaf.IsCA {
		return "", refuse(http.StatusForbidden, "the client certificate is a CA certificate, not a chassis certificate")
	}
	roots := x509.NewCertPool()
	for _, c := range trusted {
		roots.AddCert(c)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return "", refuse(http.StatusUnauthorized, "the client certificate (CN %q, issuer %q) is not one this CA issued for client use: %v", leaf.Subject.CommonName, leaf.Issuer.CommonName, err)
	}
	cns := commonNames(leaf.Subject.Names)
	if len(cns) != 1 {
		return "", refuse(http.StatusForbidden, "the client certificate has %d CNs; a chassis certificate has one, the chassis name", len(cns))
	}
	if err := pki.ValidateName(cns[0]); err != nil {
		return "", refuse(http.StatusForbidden, "the client certificate's CN is not a chassis name: %v", err)
	}
	return cns[0], nil
}
