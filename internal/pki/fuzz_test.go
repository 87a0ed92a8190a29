package pki

import (
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

// FuzzParsePEM feeds arbitrary file contents to every parser of files a
// user or the database points us at: certificates, requests, private keys,
// fingerprints, the checks and the subject formatting used for the CN. The
// input is also tried as the DER body of a certificate and of a request,
// and as a DER subject name, so that mutations reach past base64.
func FuzzParsePEM(f *testing.F) {
	ca := newTestCA(f, "fuzz CA")
	key := ecKey(f)
	leaf := ca.issue(f, leafSpec{cn: "ch1", san: []string{"ch1"}}, key)
	f.Add(leaf)
	f.Add(ca.v1Cert(f, "v1", key))
	f.Add(keyPEM(f, key))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"))
	f.Add(ca.cert.Raw)
	f.Add(ca.cert.RawSubject)
	now := func() time.Time { return testNow }
	exercise := func(t *testing.T, data []byte) {
		if certs, err := ParseCertificatesPEM(data); err == nil {
			for _, c := range certs {
				_, _ = RFC2253Subject(c)
				cn, ok := OVSCommonName(c)
				if ok && (strings.Contains(cn, ",") || cn == "") {
					t.Errorf("OVSCommonName returned %q", cn)
				}
				_ = ipsecWarnings(c)
			}
			if _, err := FingerprintOf(data); err != nil {
				t.Errorf("FingerprintOf failed on parsable certificates: %v", err)
			}
		}
		if csr, err := ParseRequestPEM(data); err == nil {
			_, _ = onelineName(csr.RawSubject)
			_, _ = applyPolicy(csr.RawSubject, ca.cert.RawSubject)
			for _, pol := range []SANPolicy{RefuseExtraSANs, DropExtraSANs, AllowExtraSANs} {
				if tmpl, _, err := issuedSANs(csr, pol); err == nil && (len(tmpl.DNSNames) == 0 || tmpl.DNSNames[0] != csr.Subject.CommonName) {
					t.Errorf("policy %d: SAN DNS %q does not start with the CN %q", pol, tmpl.DNSNames, csr.Subject.CommonName)
				}
			}
		}
		if k, err := ParsePrivateKeyPEM(data); err == nil && k.Public() == nil {
			t.Error("key without public part")
		}
		rep := checkData("c.pem", data, nil, CheckOptions{Name: "ch1", Now: now})
		if len(rep.Results) != len(AllChecks) {
			t.Errorf("%d results", len(rep.Results))
		}
		for _, r := range rep.Results {
			if r.Status == StatusFail && r.Fix == "" {
				t.Errorf("failure without a fix: %s", r)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		exercise(t, data)
		exercise(t, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: data}))
		exercise(t, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: data}))
		if s, err := onelineName(data); err == nil && strings.ContainsAny(s, "\n\x00") {
			t.Errorf("oneline name %q has raw control characters", s)
		}
		_, _ = applyPolicy(data, ca.cert.RawSubject)
		_, _ = applyPolicy(ca.cert.RawSubject, data)
	})
}

// FuzzParseSerial checks the serial file parser and its round trip.
func FuzzParseSerial(f *testing.F) {
	for _, s := range []string{"01\n", "FF", "0100\n", "", "-1", "0x10", "zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSerial(s)
		if err != nil {
			return
		}
		back, err := ParseSerial(FormatSerial(n))
		if err != nil || back.Cmp(n) != 0 {
			t.Errorf("round trip of %q: %v %v", s, back, err)
		}
		if len(FormatSerial(n))%2 != 0 {
			t.Errorf("odd-length serial %q", FormatSerial(n))
		}
	})
}
