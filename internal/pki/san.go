// Stage: subjectAltName policy. A chassis certificate names one chassis:
// its CN, repeated as its only subjectAltName (DNS:<CN>), which is what OVN
// expects (CN = SAN DNS = chassis name). A request may ask for more names,
// and a CA that copied them would let one chassis authenticate as another.
// This file reads every subjectAltName entry of a request, including the
// kinds crypto/x509 does not parse, so that Sign can refuse them, drop
// them, or copy them when the operator asks for it.

package pki

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// SANPolicy says what Sign does with the subjectAltName entries of a
// request other than DNS:<CN>. The zero value refuses them.
type SANPolicy int

// The policies. The certificate always carries DNS:<CN>.
const (
	// RefuseExtraSANs fails with an error naming the extra entries
	// (`ovnsec pki sign`).
	RefuseExtraSANs SANPolicy = iota
	// DropExtraSANs issues the certificate with DNS:<CN> only and returns a
	// warning naming what was dropped (`ovnsec pki --batch sign`).
	DropExtraSANs
	// AllowExtraSANs copies the extra DNS, IP, URI and email entries
	// (`--allow-extra-sans`). Kinds crypto/x509 cannot write (otherName,
	// directoryName, ...) are dropped with a warning.
	AllowExtraSANs
)

// ErrExtraSANs is wrapped by the error Sign returns under RefuseExtraSANs.
var ErrExtraSANs = errors.New("extra subjectAltName entries")

// GeneralName CHOICE tags (RFC 5280, 4.2.1.6).
const (
	sanOtherName    = 0
	sanEmail        = 1
	sanDNS          = 2
	sanX400         = 3
	sanDirName      = 4
	sanEDIParty     = 5
	sanURI          = 6
	sanIP           = 7
	sanRegisteredID = 8
)

var oidExtSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// SAN is one subjectAltName entry (a GeneralName) of a request.
type SAN struct {
	Tag   int    // GeneralName CHOICE tag: 1 email, 2 DNS, 6 URI, 7 IP, ...
	Value string // the value as text (printable ASCII; other bytes as \xHH)
}

// String is the entry as openssl's configuration writes it: "DNS:name",
// "IP:192.0.2.7", "URI:...", "email:...", "otherName:<oid>", ...
func (s SAN) String() string {
	kind := map[int]string{
		sanOtherName: "otherName", sanEmail: "email", sanDNS: "DNS", sanX400: "x400Address",
		sanDirName: "dirName", sanEDIParty: "ediPartyName", sanURI: "URI", sanIP: "IP", sanRegisteredID: "RID",
	}[s.Tag]
	if kind == "" {
		kind = fmt.Sprintf("[%d]", s.Tag)
	}
	if s.Value == "" {
		return kind
	}
	return kind + ":" + s.Value
}

// copyable reports whether Sign can write the entry (crypto/x509 writes
// DNS, email, IP and URI entries only).
func (s SAN) copyable() bool {
	return s.Tag == sanDNS || s.Tag == sanEmail || s.Tag == sanIP || s.Tag == sanURI
}

// RequestSANs returns every subjectAltName entry the request asks for, in
// order, from every subjectAltName extension it carries.
func RequestSANs(csr *x509.CertificateRequest) ([]SAN, error) {
	var out []SAN
	for _, e := range csr.Extensions {
		if !e.Id.Equal(oidExtSubjectAltName) {
			continue
		}
		sans, err := parseSANs(e.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, sans...)
	}
	return out, nil
}

// parseSANs decodes a subjectAltName extension value: SEQUENCE OF
// GeneralName.
func parseSANs(der []byte) ([]SAN, error) {
	var seq asn1.RawValue
	rest, err := asn1.Unmarshal(der, &seq)
	if err != nil {
		return nil, fmt.Errorf("subjectAltName: %w", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("subjectAltName: trailing data")
	}
	if seq.Class != asn1.ClassUniversal || seq.Tag != asn1.TagSequence || !seq.IsCompound {
		return nil, errors.New("subjectAltName: not a SEQUENCE")
	}
	var out []SAN
	for b := seq.Bytes; len(b) > 0; {
		var gn asn1.RawValue
		b, err = asn1.Unmarshal(b, &gn)
		if err != nil {
			return nil, fmt.Errorf("subjectAltName entry %d: %w", len(out)+1, err)
		}
		if gn.Class != asn1.ClassContextSpecific || gn.Tag > sanRegisteredID {
			return nil, fmt.Errorf("subjectAltName entry %d: not a GeneralName (class %d, tag %d)", len(out)+1, gn.Class, gn.Tag)
		}
		out = append(out, SAN{Tag: gn.Tag, Value: sanValue(gn)})
	}
	return out, nil
}

// sanValue renders a GeneralName's value for messages.
func sanValue(gn asn1.RawValue) string {
	switch gn.Tag {
	case sanEmail, sanDNS, sanURI:
		return printable(gn.Bytes)
	case sanIP:
		if a, ok := netip.AddrFromSlice(gn.Bytes); ok {
			return a.String()
		}
		return fmt.Sprintf("%X", gn.Bytes)
	case sanOtherName:
		var oid asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(gn.Bytes, &oid); err == nil {
			return oid.String()
		}
	case sanDirName:
		if s, err := onelineName(gn.Bytes); err == nil {
			return s
		}
	case sanRegisteredID:
		full := append([]byte{asn1.TagOID, byte(len(gn.Bytes))}, gn.Bytes...)
		var oid asn1.ObjectIdentifier
		if len(gn.Bytes) < 128 {
			if _, err := asn1.Unmarshal(full, &oid); err == nil {
				return oid.String()
			}
		}
	}
	return ""
}

// printable shows b with bytes outside printable ASCII as \xHH.
func printable(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if c < ' ' || c > '~' || c == '\\' {
			fmt.Fprintf(&sb, "\\x%02X", c)
		} else {
			sb.WriteByte(c)
		}
	}
	return sb.String()
}

// ExtraSANs returns the subjectAltName entries of the request other than
// DNS:<CN>, where CN is the request's commonName: what OVN's contract (CN =
// SAN DNS = chassis name) does not allow.
func ExtraSANs(csr *x509.CertificateRequest) ([]SAN, error) {
	sans, err := RequestSANs(csr)
	if err != nil {
		return nil, err
	}
	cn := csr.Subject.CommonName
	var extra []SAN
	for _, s := range sans {
		if s.Tag == sanDNS && s.Value == cn && cn != "" {
			continue
		}
		extra = append(extra, s)
	}
	return extra, nil
}

// CheckRequestSANs returns the error Sign gives under RefuseExtraSANs for
// this request, or nil when its subjectAltName is empty or only DNS:<CN>.
func CheckRequestSANs(csr *x509.CertificateRequest) error {
	extra, err := ExtraSANs(csr)
	if err != nil {
		return err
	}
	if len(extra) == 0 {
		return nil
	}
	cn := csr.Subject.CommonName
	c := printable([]byte(cn))
	return fmt.Errorf("%w: the request asks for %s besides DNS:%s, and a certificate with them would also authenticate as those names (OVN needs CN = SAN DNS = chassis name); make the request again with ovnsec pki req %s, or pass --batch to issue it with DNS:%s only, or --allow-extra-sans to copy them",
		ErrExtraSANs, joinSANs(extra), c, c, c)
}

func joinSANs(sans []SAN) string {
	s := make([]string, len(sans))
	for i, v := range sans {
		s[i] = v.String()
	}
	return strings.Join(s, ", ")
}

// issuedSANs applies policy to the request's subjectAltName and returns
// what the certificate carries: always DNS:<CN> first, plus, under
// AllowExtraSANs, the request's other copyable entries. Warnings say what
// was added or dropped.
func issuedSANs(csr *x509.CertificateRequest, policy SANPolicy) (tmpl x509.Certificate, warnings []string, err error) {
	cn := csr.Subject.CommonName
	sans, err := RequestSANs(csr)
	if err != nil {
		return tmpl, nil, err
	}
	extra, err := ExtraSANs(csr)
	if err != nil {
		return tmpl, nil, err
	}
	tmpl.DNSNames = []string{cn}
	if len(sans) == 0 {
		warnings = append(warnings, fmt.Sprintf("request has no subjectAltName; added DNS:%s", printable([]byte(cn))))
	}
	if len(extra) == 0 {
		return tmpl, warnings, nil
	}
	switch policy {
	case RefuseExtraSANs:
		return tmpl, nil, CheckRequestSANs(csr)
	case DropExtraSANs:
		warnings = append(warnings, fmt.Sprintf("dropped subjectAltName %s from the request: the certificate names only DNS:%s (pass --allow-extra-sans to copy them)", joinSANs(extra), printable([]byte(cn))))
		return tmpl, warnings, nil
	case AllowExtraSANs:
	default:
		return tmpl, nil, fmt.Errorf("unknown subjectAltName policy %d", policy)
	}
	var dropped []SAN
	for _, s := range extra {
		if !s.copyable() {
			dropped = append(dropped, s)
		}
	}
	for _, n := range csr.DNSNames {
		if n != cn && !containsString(tmpl.DNSNames, n) {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	tmpl.EmailAddresses = csr.EmailAddresses
	tmpl.IPAddresses = csr.IPAddresses
	tmpl.URIs = csr.URIs
	if copied := copyableOnly(extra); len(copied) > 0 {
		warnings = append(warnings, fmt.Sprintf("copied subjectAltName %s from the request (--allow-extra-sans): the certificate also authenticates as these names", joinSANs(copied)))
	}
	if len(dropped) > 0 {
		warnings = append(warnings, fmt.Sprintf("dropped subjectAltName %s from the request: ovnsec cannot write these kinds of name", joinSANs(dropped)))
	}
	return tmpl, warnings, nil
}

func copyableOnly(sans []SAN) []SAN {
	var out []SAN
	for _, s := range sans {
		if s.copyable() {
			out = append(out, s)
		}
	}
	return out
}
