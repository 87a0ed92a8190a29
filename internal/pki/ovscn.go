// Stage: names as ovs-monitor-ipsec reads them. It runs `openssl x509
// -noout -subject -nameopt RFC2253` and takes the text between "CN=" and
// the next comma; this file reproduces that so a certificate can be judged
// the way OVS will see it.

package pki

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"strings"
)

// rfc2253Names are openssl's short names used by -nameopt RFC2253.
var rfc2253Names = []struct {
	oid  asn1.ObjectIdentifier
	name string
}{
	{oidCountry, "C"}, {oidState, "ST"}, {oidLocality, "L"}, {oidOrg, "O"},
	{oidOrgUnit, "OU"}, {oidCN, "CN"}, {oidEmail, "emailAddress"},
	{asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, "DC"},
	{asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}, "UID"},
	{asn1.ObjectIdentifier{2, 5, 4, 5}, "serialNumber"},
	{asn1.ObjectIdentifier{2, 5, 4, 9}, "street"},
	{asn1.ObjectIdentifier{2, 5, 4, 17}, "postalCode"},
}

// RFC2253Subject formats cert's subject like openssl -nameopt RFC2253:
// RDNs in reverse order, separated by ",", special characters, control
// characters and bytes above 0x7f escaped.
func RFC2253Subject(cert *x509.Certificate) (string, error) {
	dn, err := parseName(cert.RawSubject)
	if err != nil {
		return "", err
	}
	var parts []string
	for i := len(dn) - 1; i >= 0; i-- {
		var avas []string
		for _, a := range dn[i] {
			name := a.Type.String()
			for _, n := range rfc2253Names {
				if n.oid.Equal(a.Type) {
					name = n.name
				}
			}
			avas = append(avas, name+"="+escape2253(a.Value))
		}
		parts = append(parts, strings.Join(avas, "+"))
	}
	return strings.Join(parts, ","), nil
}

// escape2253 escapes one value like openssl's ASN1_STRFLGS_RFC2253.
func escape2253(v asn1.RawValue) string {
	switch v.Tag {
	case asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagIA5String, asn1.TagT61String, 26 /* VisibleString */, asn1.TagBMPString, 28 /* UniversalString */ :
	default:
		return "#" + fmt.Sprintf("%X", v.FullBytes) // DUMP_UNKNOWN: hex of the DER
	}
	b := v.Bytes
	if v.Tag == asn1.TagBMPString || v.Tag == 28 {
		// Rare; show as is (openssl would convert to UTF-8 and escape).
		return fmt.Sprintf("%X", b)
	}
	var sb strings.Builder
	for i, c := range b {
		switch {
		case c > 0x7e || c < 0x20:
			fmt.Fprintf(&sb, "\\%02X", c)
		case strings.IndexByte(",+\"\\<>;", c) >= 0:
			sb.WriteByte('\\')
			sb.WriteByte(c)
		case (c == '#' || c == ' ') && i == 0, c == ' ' && i == len(b)-1:
			sb.WriteByte('\\')
			sb.WriteByte(c)
		default:
			sb.WriteByte(c)
		}
	}
	return sb.String()
}

// OVSCommonName returns the CN the way ovs-monitor-ipsec extracts it
// (the regular expression "CN=(.+?)," on the RFC 2253 subject line), and
// false where ovs-monitor-ipsec finds none ("No CN in the certificate
// subject"), e.g. when the CN is the only or the first field of the subject.
func OVSCommonName(cert *x509.Certificate) (string, bool) {
	s, err := RFC2253Subject(cert)
	if err != nil {
		return "", false
	}
	line := "subject=" + s
	i := strings.Index(line, "CN=")
	if i < 0 {
		return "", false
	}
	rest := line[i+3:]
	if len(rest) < 2 {
		return "", false
	}
	j := strings.IndexByte(rest[1:], ',')
	if j < 0 {
		return "", false
	}
	return rest[:j+1], true
}
