package enroll

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"reflect"
	"testing"
	"time"
)

// FuzzParseRequestBody feeds arbitrary bodies to the simpleenroll parser
// and, when a request parses, to the identity rules: no panic, and a
// request that passes them names exactly the chassis.
func FuzzParseRequestBody(f *testing.F) {
	k := ecKey(f)
	good := chassisCSR(f, k, "ch1")
	f.Add([]byte(base64.StdEncoding.EncodeToString(good)))
	f.Add(good)
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"))
	f.Add([]byte("MIIB\r\n  ==\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		csr, err := ParseRequestBody(body)
		if err != nil {
			return
		}
		if err := CheckRequest(csr, "ch1"); err == nil {
			if csr.Subject.CommonName != "ch1" || len(csr.DNSNames) != 1 || csr.DNSNames[0] != "ch1" ||
				len(csr.IPAddresses)+len(csr.URIs)+len(csr.EmailAddresses) != 0 {
				t.Fatalf("accepted a request for %q %v %v %v %v", csr.Subject.CommonName, csr.DNSNames, csr.IPAddresses, csr.URIs, csr.EmailAddresses)
			}
		}
	})
}

// FuzzParseCertsOnly reads arbitrary PKCS#7 and checks that what encodes
// decodes to the same certificates.
func FuzzParseCertsOnly(f *testing.F) {
	dir := newPKI(f)
	c, _ := issueDirect(f, dir, "ch1", time.Now(), time.Hour)
	one, _ := EncodeCertsOnly([]*x509.Certificate{c})
	f.Add(one)
	f.Add(one[:len(one)/2])
	f.Add([]byte{0x30, 0x03, 0x06, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := ParseCertsOnly(data)
		if err != nil {
			return
		}
		again, err := EncodeCertsOnly(certs)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseCertsOnly(again)
		if err != nil || len(back) != len(certs) {
			t.Fatalf("re-encoded answer: %v", err)
		}
		for i := range back {
			if !back[i].Equal(certs[i]) {
				t.Fatalf("certificate %d changed", i)
			}
		}
		b64, _ := EncodeCertsOnlyBase64(certs)
		if viaB64, err := ParseCertsOnlyBase64(b64); err != nil || len(viaB64) != len(certs) {
			t.Fatalf("base64 round trip: %v", err)
		}
	})
}

// FuzzParseTokenFile reads arbitrary token files; what parses formats and
// parses back to the same records.
func FuzzParseTokenFile(f *testing.F) {
	recs := []TokenRecord{
		{ID: "0123456789abcdef", Chassis: "ch1", Created: time.Unix(1e9, 0).UTC(), Expires: time.Unix(1e9+3600, 0).UTC()},
		{ID: "fedcba9876543210", Chassis: "ch-2.example", Reusable: true, Uses: 3, Created: time.Unix(1e9, 0).UTC(), Expires: time.Unix(2e9, 0).UTC(), LastUsed: time.Unix(1e9+5, 0).UTC(), Revoked: time.Unix(1e9+9, 0).UTC()},
	}
	f.Add(FormatTokenFile(recs))
	f.Add(FormatTokenFile(nil))
	f.Add([]byte("# comment\n\n0123456789abcdef\tch1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ParseTokenFile(data)
		if err != nil {
			return
		}
		out := FormatTokenFile(recs)
		back, err := ParseTokenFile(out)
		if err != nil {
			t.Fatalf("formatted file does not parse: %v\n%s", err, out)
		}
		if len(back) != len(recs) || (len(recs) > 0 && !reflect.DeepEqual(back, recs)) {
			t.Fatalf("round trip changed the records:\n%+v\n%+v", recs, back)
		}
		if !bytes.Equal(FormatTokenFile(back), out) {
			t.Fatal("formatting is not stable")
		}
	})
}
