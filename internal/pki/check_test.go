package pki

import (
	"crypto/x509"
	"encoding/asn1"
	"strings"
	"testing"
	"time"
)

func TestCheckDefects(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "test CA")
	other := newTestCA(t, "other CA")
	key, otherKey := ecKey(t), ecKey(t)
	caPath := writeTestFile(t, dir, "ca.pem", pemOf(ca.cert))
	keyPath := writeTestFile(t, dir, "key.pem", keyPEM(t, key))
	otherKeyPath := writeTestFile(t, dir, "other-key.pem", keyPEM(t, otherKey))

	good := leafSpec{cn: "ch1", san: []string{"ch1"}}
	// The same CA key, but the issuer name encoded with PrintableStrings.
	recoded := *ca.cert
	recoded.RawSubject, _ = asn1.Marshal(rawDN{
		{{Type: oidCountry, Value: asn1.RawValue{Tag: asn1.TagPrintableString, Bytes: []byte("US")}}},
		{{Type: oidOrg, Value: asn1.RawValue{Tag: asn1.TagPrintableString, Bytes: []byte(OVSOrganization)}}},
		{{Type: oidCN, Value: asn1.RawValue{Tag: asn1.TagPrintableString, Bytes: []byte("test CA")}}},
	})
	recodedCA := testCA{cert: &recoded, key: ca.key}
	tests := []struct {
		name     string
		cert     []byte
		opts     CheckOptions
		failing  CheckID // the check that must fail ("" = none)
		alsoFail CheckID // a second check that must fail, if any
		warn     CheckID
		fixHints []string // words the failure's fix must contain
	}{
		{name: "good", cert: ca.issue(t, good, key), opts: CheckOptions{KeyPath: keyPath, CAPath: caPath, Name: "ch1"}},
		{name: "CN != SAN", cert: ca.issue(t, leafSpec{cn: "ch1", san: []string{"other"}}, key), failing: CheckSAN, fixHints: []string{"subjectAltName=DNS:ch1"}},
		{name: "no SAN", cert: ca.issue(t, leafSpec{cn: "ch1"}, key), failing: CheckSAN, fixHints: []string{"subjectAltName=DNS:ch1"}},
		{name: "v1 certificate", cert: ca.v1Cert(t, "ch1", key), opts: CheckOptions{CAPath: caPath}, failing: CheckVersion, alsoFail: CheckSAN, fixHints: []string{"v3", "ovnsec pki sign"}},
		{name: "expired", cert: ca.issue(t, leafSpec{cn: "ch1", san: []string{"ch1"}, notAfter: testNow.Add(-48 * time.Hour)}, key), failing: CheckValidity, fixHints: []string{"new certificate"}},
		{name: "not yet valid", cert: ca.issue(t, leafSpec{cn: "ch1", san: []string{"ch1"}, notBefore: testNow.Add(time.Hour)}, key), failing: CheckValidity, fixHints: []string{"clock"}},
		{name: "expires soon", cert: ca.issue(t, leafSpec{cn: "ch1", san: []string{"ch1"}, notAfter: testNow.Add(10 * 24 * time.Hour)}, key), warn: CheckValidity},
		{name: "wrong CA", cert: other.issue(t, good, key), opts: CheckOptions{CAPath: caPath}, failing: CheckCA, fixHints: []string{"ca_cert"}},
		{name: "issuer encoded differently", cert: recodedCA.issue(t, good, key), opts: CheckOptions{CAPath: caPath}, failing: CheckCA, fixHints: []string{"issuer name"}},
		{name: "mismatched key", cert: ca.issue(t, good, key), opts: CheckOptions{KeyPath: otherKeyPath}, failing: CheckKey, fixHints: []string{"key"}},
		{name: "wrong name", cert: ca.issue(t, good, key), opts: CheckOptions{Name: "ch2"}, failing: CheckName, fixHints: []string{"ovnsec pki req ch2"}},
		{name: "CN with ovs-pki id suffix", cert: ca.issue(t, leafSpec{cn: "ch1 id:1234", san: []string{"ch1 id:1234"}}, key), failing: CheckCN, fixHints: []string{"-u"}},
		{name: "subject with only CN", cert: ca.issue(t, leafSpec{cn: "ch1", san: []string{"ch1"}, onlyCN: true}, key), failing: CheckCN, fixHints: []string{"subject"}},
		{name: "no digitalSignature", cert: ca.issue(t, leafSpec{cn: "ch1", san: []string{"ch1"}, usage: x509.KeyUsageKeyEncipherment}, key), failing: CheckUsage, fixHints: []string{"digitalSignature"}},
		{name: "EKU serverAuth+clientAuth", cert: ca.issue(t, leafSpec{cn: "ch1", san: []string{"ch1"}, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}, key)},
		{name: "EKU only ipsecEndSystem", cert: ca.issue(t, leafSpec{cn: "ch1", san: []string{"ch1"}, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageIPSECEndSystem}}, key), failing: CheckUsage, fixHints: []string{"ipsecIKE"}},
		{name: "EKU only codeSigning", cert: ca.issue(t, leafSpec{cn: "ch1", san: []string{"ch1"}, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}, key), failing: CheckUsage, fixHints: []string{"refuse"}},
		{name: "garbage PEM", cert: []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), failing: CheckParse, fixHints: []string{"PEM"}},
		{name: "empty file", cert: nil, failing: CheckParse, fixHints: []string{"PEM"}},
		{name: "bad CA file", cert: ca.issue(t, good, key), opts: CheckOptions{CAPath: keyPath}, failing: CheckCA, fixHints: []string{"CA certificate"}},
		{name: "key file is garbage", cert: ca.issue(t, good, key), opts: CheckOptions{KeyPath: caPath}, failing: CheckKey, fixHints: []string{"private_key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeTestFile(t, t.TempDir(), "cert.pem", tc.cert)
			tc.opts.Now = fixedNow
			rep := Check(p, tc.opts)
			if len(rep.Results) != len(AllChecks) {
				t.Fatalf("got %d results, want one per check (%d)", len(rep.Results), len(AllChecks))
			}
			for i, r := range rep.Results {
				if r.Check != AllChecks[i] {
					t.Errorf("result %d is %s, want %s", i, r.Check, AllChecks[i])
				}
				if strings.Contains(r.String(), "\n") {
					t.Errorf("result %s is not one line: %q", r.Check, r.String())
				}
				wantFail := r.Check == tc.failing || (tc.alsoFail != "" && r.Check == tc.alsoFail)
				if (r.Status == StatusFail) != wantFail {
					t.Errorf("%s: status %s, want fail=%v: %s", r.Check, r.Status, wantFail, r)
				}
				if r.Check == tc.warn && r.Status != StatusWarn {
					t.Errorf("%s: status %s, want WARN: %s", r.Check, r.Status, r)
				}
				if r.Status == StatusFail && r.Check == tc.failing {
					for _, h := range tc.fixHints {
						if !strings.Contains(r.Fix+" "+r.Message, h) {
							t.Errorf("%s failure %q does not mention %q", r.Check, r, h)
						}
					}
				}
				if r.Status == StatusFail && r.Fix == "" {
					t.Errorf("%s failure has no fix", r.Check)
				}
			}
			if rep.OK() != (tc.failing == "") {
				t.Errorf("OK() = %v", rep.OK())
			}
			if (rep.Err() == nil) != (tc.failing == "") {
				t.Errorf("Err() = %v", rep.Err())
			}
		})
	}
}

func TestCheckMissingFile(t *testing.T) {
	rep := Check(t.TempDir()+"/nope.pem", CheckOptions{})
	r, _ := rep.Result(CheckParse)
	if r.Status != StatusFail || !strings.Contains(r.Message, "does not exist") {
		t.Errorf("parse result %s", r)
	}
	if rep.OK() {
		t.Error("report OK for a missing file")
	}
}

func TestCheckSelfSignedNote(t *testing.T) {
	ca := newTestCA(t, "self")
	p := writeTestFile(t, t.TempDir(), "c.pem", pemOf(ca.cert))
	rep := Check(p, CheckOptions{Now: fixedNow})
	r, _ := rep.Result(CheckCA)
	if r.Status != StatusSkip || !strings.Contains(r.Message, "self-signed") {
		t.Errorf("ca result %s", r)
	}
}

func TestOVSCommonName(t *testing.T) {
	ca := newTestCA(t, "ca")
	key := ecKey(t)
	tests := []struct {
		spec   leafSpec
		want   string
		wantOK bool
	}{
		{leafSpec{cn: "ch1"}, "ch1", true},
		{leafSpec{cn: "ch1", onlyCN: true}, "", false},
		{leafSpec{cn: "a,b"}, `a\`, true},
		{leafSpec{cn: "a+b"}, `a\+b`, true},
		{leafSpec{cn: "é"}, `\C3\A9`, true},
		{leafSpec{cn: " x"}, `\ x`, true},
	}
	for _, tc := range tests {
		certs, err := ParseCertificatesPEM(ca.issue(t, tc.spec, key))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := OVSCommonName(certs[0])
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("CN %q: got %q,%v want %q,%v", tc.spec.cn, got, ok, tc.want, tc.wantOK)
		}
	}
}
