// Stage: wire format of answers. EST answers with a CMS SignedData that
// carries certificates and no signer ("certs-only", RFC 7030 section 4.1.3
// and 4.2.3, RFC 5652 section 5), base64 encoded. The structure is a
// handful of DER headers around the certificates, so it is written here
// with a few lines rather than with a PKCS#7 module: encoding/asn1 for
// reading and a small DER writer keep the dependency list as it is.

package enroll

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Media types of RFC 7030.
const (
	// MediaPKCS10 is the type of a request body (simpleenroll,
	// simplereenroll).
	MediaPKCS10 = "application/pkcs10"
	// MediaCertsOnly is the type of an answer carrying certificates.
	MediaCertsOnly = "application/pkcs7-mime; smime-type=certs-only"
)

var (
	oidData       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
)

// der writes one DER element: tag, definite length, content.
func der(tag byte, content ...[]byte) []byte {
	n := 0
	for _, c := range content {
		n += len(c)
	}
	out := []byte{tag}
	switch {
	case n < 0x80:
		out = append(out, byte(n))
	default:
		var l []byte
		for v := n; v > 0; v >>= 8 {
			l = append([]byte{byte(v)}, l...)
		}
		out = append(out, 0x80|byte(len(l)))
		out = append(out, l...)
	}
	for _, c := range content {
		out = append(out, c...)
	}
	return out
}

// EncodeCertsOnly returns the DER of a certs-only CMS SignedData holding
// certs in the order given (RFC 5652 allows any order in the SET; clients
// such as openssl print them in this order).
func EncodeCertsOnly(certs []*x509.Certificate) ([]byte, error) {
	if len(certs) == 0 {
		return nil, errors.New("certs-only answer: no certificate")
	}
	oid := func(o asn1.ObjectIdentifier) []byte {
		b, _ := asn1.Marshal(o) // a constant OID always encodes
		return b
	}
	var raw [][]byte
	for _, c := range certs {
		if c == nil || len(c.Raw) == 0 {
			return nil, errors.New("certs-only answer: empty certificate")
		}
		raw = append(raw, c.Raw)
	}
	signed := der(0x30,
		der(0x02, []byte{1}),    // version CMSVersion = 1
		der(0x31),               // digestAlgorithms: none
		der(0x30, oid(oidData)), // encapContentInfo: id-data, no content
		der(0xA0, raw...),       // certificates [0] IMPLICIT SET OF
		der(0x31),               // signerInfos: none
	)
	return der(0x30, oid(oidSignedData), der(0xA0, signed)), nil
}

// EncodeCertsOnlyBase64 is EncodeCertsOnly as an EST body: base64 in lines
// of 64 characters, each ending with CRLF.
func EncodeCertsOnlyBase64(certs []*x509.Certificate) ([]byte, error) {
	d, err := EncodeCertsOnly(certs)
	if err != nil {
		return nil, err
	}
	s := base64.StdEncoding.EncodeToString(d)
	var sb strings.Builder
	for len(s) > 64 {
		sb.WriteString(s[:64])
		sb.WriteString("\r\n")
		s = s[64:]
	}
	sb.WriteString(s)
	sb.WriteString("\r\n")
	return []byte(sb.String()), nil
}

// contentInfo and signedData are the parts of CMS ParseCertsOnly reads.
type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,tag:0"`
}

type signedData struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	EncapContentInfo asn1.RawValue
	Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      asn1.RawValue
}

// ParseCertsOnly reads the certificates of a DER CMS SignedData (the
// signature, if any, is not checked: EST answers are authenticated by
// TLS). BER with indefinite lengths is refused.
func ParseCertsOnly(data []byte) ([]*x509.Certificate, error) {
	var ci contentInfo
	rest, err := asn1.Unmarshal(data, &ci)
	if err != nil {
		return nil, fmt.Errorf("PKCS#7: %w", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("PKCS#7: trailing data after ContentInfo")
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return nil, fmt.Errorf("PKCS#7: content type %v is not signedData", ci.ContentType)
	}
	var sd signedData
	rest, err = asn1.Unmarshal(ci.Content.Bytes, &sd)
	if err != nil {
		return nil, fmt.Errorf("PKCS#7 SignedData: %w", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("PKCS#7 SignedData: trailing data")
	}
	if !sd.Certificates.IsCompound || sd.Certificates.Class != asn1.ClassContextSpecific {
		return nil, errors.New("PKCS#7 SignedData: no certificates")
	}
	var certs []*x509.Certificate
	for b := sd.Certificates.Bytes; len(b) > 0; {
		var one asn1.RawValue
		b, err = asn1.Unmarshal(b, &one)
		if err != nil {
			return nil, fmt.Errorf("PKCS#7 certificate %d: %w", len(certs)+1, err)
		}
		if one.Class != asn1.ClassUniversal || one.Tag != asn1.TagSequence {
			continue // another CertificateChoices alternative: not for us
		}
		c, err := x509.ParseCertificate(one.FullBytes)
		if err != nil {
			return nil, fmt.Errorf("PKCS#7 certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("PKCS#7 SignedData: no certificates")
	}
	return certs, nil
}

// ParseCertsOnlyBase64 decodes an EST answer body (base64, line breaks and
// spaces allowed) and reads its certificates.
func ParseCertsOnlyBase64(body []byte) ([]*x509.Certificate, error) {
	d, err := decodeBase64Body(body)
	if err != nil {
		return nil, err
	}
	return ParseCertsOnly(d)
}
