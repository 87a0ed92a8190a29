// Stage: issuing under an enrolment policy. What the EST CA service
// (internal/enroll) signs: the subject and names are decided by the caller,
// never copied from a request; the serial is 128 random bits (not the
// serial file, which ovs-pki and openssl ca keep using); keyUsage is
// digitalSignature and extendedKeyUsage serverAuth + clientAuth, which
// strongSwan, libreswan and the native IKE engine all accept; the
// lifetime is a duration, cut to the CA's end. Every certificate is
// recorded in index.txt and newcerts/ like one from sign.

package pki

import (
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"path/filepath"
	"time"
)

// SerialBits is the size of the random serial numbers Issue gives.
const SerialBits = 128

// IssueOptions say what Issue puts in a certificate.
type IssueOptions struct {
	// Type selects the CA directory the certificate is recorded in
	// (SwitchCA when empty).
	Type CAType
	// Subject is the DER subject name (see EnrolmentSubject).
	Subject []byte
	// PublicKey is the certified key.
	PublicKey crypto.PublicKey
	// DNSNames and IPAddresses are the subjectAltName entries.
	DNSNames    []string
	IPAddresses []net.IP
	// Lifetime is how long the certificate is valid from now; it is cut
	// to the CA's end. It must be positive.
	Lifetime time.Duration
	// ExtKeyUsage defaults to serverAuth and clientAuth.
	ExtKeyUsage []x509.ExtKeyUsage
}

// Issue signs a certificate with ca as opts say, records it in the CA
// directory's index.txt and newcerts/<SERIAL>.pem (under the same lock as
// Sign) and returns it. The certificate is X.509 v3, CA:false, with a
// random 128-bit serial, keyUsage digitalSignature (critical) and the
// extended key usages asked for; it starts five minutes in the past, like
// every certificate this package issues.
func (d Dir) Issue(ca *CA, opts IssueOptions) (*x509.Certificate, error) {
	if opts.Type == "" {
		opts.Type = SwitchCA
	}
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("issue: no CA certificate and key loaded")
	}
	if opts.Lifetime <= 0 {
		return nil, fmt.Errorf("issue: lifetime %v is not positive", opts.Lifetime)
	}
	if len(opts.Subject) == 0 || opts.PublicKey == nil {
		return nil, errors.New("issue: subject and public key are required")
	}
	eku := opts.ExtKeyUsage
	if len(eku) == 0 {
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	serial, err := RandomSerial(d.rand())
	if err != nil {
		return nil, err
	}
	skid, err := subjectKeyID(opts.PublicKey)
	if err != nil {
		return nil, err
	}
	now := d.now()
	notAfter := now.Add(opts.Lifetime)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	if !notAfter.After(now) {
		return nil, fmt.Errorf("issue: the %s CA expired on %s; renew the CA", opts.Type, ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		RawSubject:            opts.Subject,
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		IsCA:                  false,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           eku,
		DNSNames:              opts.DNSNames,
		IPAddresses:           opts.IPAddresses,
		SubjectKeyId:          skid,
		SignatureAlgorithm:    signatureAlgorithm(ca.Key),
	}
	der, err := x509.CreateCertificate(d.rand(), tmpl, ca.Cert, opts.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("issue: parse new certificate: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	caDir := d.CADir(opts.Type)
	unlock, err := lockDir(caDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	bk, err := loadBookkeeping(caDir)
	if err != nil {
		return nil, err
	}
	// The serial file is not advanced: it belongs to sign (and openssl
	// ca). A newcerts file that exists already (a repeated random serial)
	// is refused, never replaced.
	outs := bk.record(caDir, cert, certPEM)[:2]
	outs[0].replace = false
	if err := writeAll(outs, false); err != nil {
		return nil, err
	}
	return cert, nil
}

// RandomSerial returns a positive serial number of SerialBits random
// bits (never zero).
func RandomSerial(r io.Reader) (*big.Int, error) {
	b := make([]byte, SerialBits/8)
	for range 8 {
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("generate serial number: %w", err)
		}
		if n := new(big.Int).SetBytes(b); n.Sign() > 0 {
			return n, nil
		}
	}
	return nil, errors.New("generate serial number: the random source keeps returning zero")
}

// EnrolmentSubject is the subject the CA service gives the certificate of
// chassis name: O=<the CA's organization> (Open vSwitch when the CA has
// none), CN=<name>. The CN comes last, so `openssl x509 -subject -nameopt
// RFC2253` starts with "CN=<name>," and ovs-monitor-ipsec reads the name
// (a subject of a CN alone would give it none). The organization keeps the
// CA's string type, so ovs-pki's policy (organizationName = match) holds.
func EnrolmentSubject(ca *x509.Certificate, name string) ([]byte, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	org := asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagUTF8String, Bytes: []byte(OVSOrganization)}
	if ca != nil {
		if dn, err := parseName(ca.RawSubject); err == nil {
			if v := dn.values(oidOrg); len(v) > 0 && len(v[0].Bytes) > 0 {
				org = asn1.RawValue{Class: v[0].Class, Tag: v[0].Tag, Bytes: v[0].Bytes}
			}
		}
	}
	cn := asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagUTF8String, Bytes: []byte(name)}
	b, err := asn1.Marshal(rawDN{{{Type: oidOrg, Value: org}}, {{Type: oidCN, Value: cn}}})
	if err != nil {
		return nil, fmt.Errorf("encode subject name: %w", err)
	}
	return b, nil
}

// SameName reports whether two DER names hold the same attributes with the
// same values in the same order, whatever string type each value is
// encoded with (openssl and Go may pick PrintableString or UTF8String for
// the same text). Unparsable names are never the same.
func SameName(a, b []byte) bool {
	da, err := parseName(a)
	if err != nil {
		return false
	}
	db, err := parseName(b)
	if err != nil || len(da) != len(db) {
		return false
	}
	for i := range da {
		if len(da[i]) != len(db[i]) {
			return false
		}
		for j := range da[i] {
			x, y := da[i][j], db[i][j]
			if !x.Type.Equal(y.Type) || x.Value.Class != y.Value.Class || string(x.Value.Bytes) != string(y.Value.Bytes) {
				return false
			}
			if x.Value.Tag != y.Value.Tag && !(isText(x.Value.Tag) && isText(y.Value.Tag)) {
				return false
			}
		}
	}
	return true
}

func isText(tag int) bool {
	return tag == asn1.TagUTF8String || tag == asn1.TagPrintableString || tag == asn1.TagIA5String
}

// CACertificates reads every certificate of the CA file of type t
// (cacert.pem): the current CA first, then any older CA kept beside it
// while a CA rollover overlaps.
func (d Dir) CACertificates(t CAType) ([]*x509.Certificate, error) {
	if err := d.mustExist(); err != nil {
		return nil, err
	}
	certs, err := LoadCertificates(d.CACertPath(t))
	if err != nil {
		return nil, fmt.Errorf("%s CA: %w", t, err)
	}
	return certs, nil
}

// NewcertPath is where a certificate with this serial is recorded.
func (d Dir) NewcertPath(t CAType, serial *big.Int) string {
	return filepath.Join(d.CADir(t), "newcerts", FormatSerial(serial)+".pem")
}
