package pki

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var fastRSA = KeySpec{Type: KeyRSA, Bits: 2048}

// newPKI makes a fresh PKI directory with ECDSA CAs (fast) in a temp dir.
func newPKI(t testing.TB, spec KeySpec) Dir {
	t.Helper()
	d := Dir{Path: filepath.Join(t.TempDir(), "pki"), Env: Env{Now: fixedNow}}
	if err := d.Init(InitOptions{Key: spec}); err != nil {
		t.Fatalf("init: %v", err)
	}
	return d
}

func mode(t testing.TB, p string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func readString(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestInitLayout(t *testing.T) {
	d := newPKI(t, KeySpec{Type: KeyECDSA})
	if m := mode(t, d.Path); m != 0o700 {
		t.Errorf("pki dir mode %v, want 0700", m)
	}
	for _, ca := range []string{"controllerca", "switchca"} {
		dir := filepath.Join(d.Path, ca)
		for _, sub := range []string{"", "certs", "crl", "newcerts", "private"} {
			if m := mode(t, filepath.Join(dir, sub)); m != 0o700 {
				t.Errorf("%s/%s mode %v, want 0700", ca, sub, m)
			}
		}
		if m := mode(t, filepath.Join(dir, "private/cakey.pem")); m != 0o600 {
			t.Errorf("%s cakey mode %v, want 0600", ca, m)
		}
		for f, want := range map[string]string{
			"serial": "02\n", "crlnumber": "01\n", "index.txt.attr": "unique_subject = no\n",
		} {
			if got := readString(t, filepath.Join(dir, f)); got != want {
				t.Errorf("%s/%s = %q, want %q", ca, f, got, want)
			}
		}
		cnf := readString(t, filepath.Join(dir, "ca.cnf"))
		for _, want := range []string{"OU = " + ca + "\n", "CN = OVS " + ca + " CA Certificate (2026 Nov 23 12:00:00)\n", "default_md     = sha512", "organizationName        = match"} {
			if !strings.Contains(cnf, want) {
				t.Errorf("%s/ca.cnf lacks %q", ca, want)
			}
		}
		idx := readString(t, filepath.Join(dir, "index.txt"))
		wantIdx := "V\t361120120000Z\t\t01\tunknown\t/C=US/ST=CA/O=Open vSwitch/OU=" + ca + "/CN=OVS " + ca + " CA Certificate (2026 Nov 23 12:00:00)\n"
		if idx != wantIdx {
			t.Errorf("%s/index.txt = %q, want %q", ca, idx, wantIdx)
		}
		certs, err := LoadCertificates(filepath.Join(dir, "cacert.pem"))
		if err != nil {
			t.Fatal(err)
		}
		c := certs[0]
		if c.Version != 3 || !c.IsCA || c.SerialNumber.Int64() != 1 || c.Subject.Locality != nil {
			t.Errorf("%s cert: version %d CA %v serial %v L %v", ca, c.Version, c.IsCA, c.SerialNumber, c.Subject.Locality)
		}
		if got := c.NotAfter.Sub(testNow); got != CADays*24*time.Hour {
			t.Errorf("CA validity %v", got)
		}
		if string(c.RawIssuer) != string(c.RawSubject) || c.CheckSignatureFrom(c) != nil {
			t.Errorf("%s cert is not self-signed", ca)
		}
		nc := readString(t, filepath.Join(dir, "newcerts/01.pem"))
		if nc != readString(t, filepath.Join(dir, "cacert.pem")) {
			t.Errorf("newcerts/01.pem differs from cacert.pem")
		}
		if _, err := LoadRequest(filepath.Join(dir, "careq.pem")); err != nil {
			t.Errorf("careq: %v", err)
		}
	}
	// No temporary directory left next to it.
	ents, _ := os.ReadDir(filepath.Dir(d.Path))
	if len(ents) != 1 {
		t.Errorf("parent holds %d entries, want only pki", len(ents))
	}
}

func TestNameEncoding(t *testing.T) {
	d := newPKI(t, KeySpec{Type: KeyECDSA})
	certs, err := LoadCertificates(d.CACertPath(SwitchCA))
	if err != nil {
		t.Fatal(err)
	}
	dn, err := parseName(certs[0].RawSubject)
	if err != nil {
		t.Fatal(err)
	}
	for _, rdn := range dn {
		want := asn1.TagUTF8String
		if rdn[0].Type.Equal(oidCountry) {
			want = asn1.TagPrintableString
		}
		if rdn[0].Value.Tag != want {
			t.Errorf("%v encoded with tag %d, want %d", rdn[0].Type, rdn[0].Value.Tag, want)
		}
	}
}

func TestInitForceKeepsBookkeeping(t *testing.T) {
	d := newPKI(t, KeySpec{Type: KeyECDSA})
	before := readString(t, d.CACertPath(SwitchCA))
	if err := d.Init(InitOptions{Key: KeySpec{Type: KeyECDSA}, Force: true}); err != nil {
		t.Fatal(err)
	}
	if readString(t, d.CACertPath(SwitchCA)) == before {
		t.Error("--force did not make a new CA")
	}
	if got := readString(t, filepath.Join(d.CADir(SwitchCA), "serial")); got != "03\n" {
		t.Errorf("serial %q, want 03", got)
	}
	if n := strings.Count(readString(t, filepath.Join(d.CADir(SwitchCA), "index.txt")), "\n"); n != 2 {
		t.Errorf("index.txt has %d lines, want 2", n)
	}
}

func TestReqSign(t *testing.T) {
	d := newPKI(t, KeySpec{Type: KeyECDSA})
	work := t.TempDir()
	env := Env{Now: fixedNow}
	for i, spec := range []KeySpec{fastRSA, {Type: KeyECDSA}, {Type: KeyECDSA, Bits: 384}} {
		name := []string{"ch-rsa", "ch-ec", "ch-ec384"}[i]
		f, err := Req(work, name, ReqOptions{Key: spec}, env)
		if err != nil {
			t.Fatal(err)
		}
		if m := mode(t, f.Key); m != 0o600 {
			t.Errorf("key mode %v", m)
		}
		csr, err := LoadRequest(f.Req)
		if err != nil {
			t.Fatal(err)
		}
		if got := csr.Subject.String(); got != "CN="+name+",OU=Open vSwitch certifier,O=Open vSwitch,L=Palo Alto,ST=CA,C=US" {
			t.Errorf("request subject %s", got)
		}
		if len(csr.DNSNames) != 1 || csr.DNSNames[0] != name {
			t.Errorf("request SAN %v", csr.DNSNames)
		}
		res, err := d.Sign(f.Req, f.Cert, SignOptions{Days: 400})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Warnings) != 0 {
			t.Errorf("warnings: %v", res.Warnings)
		}
		c := res.Cert
		if c.Subject.String() != "CN="+name+",OU=Open vSwitch certifier,O=Open vSwitch,ST=CA,C=US" {
			t.Errorf("issued subject %s (L must be dropped like openssl ca)", c.Subject)
		}
		if c.SerialNumber.Int64() != int64(i+2) {
			t.Errorf("serial %v, want %d", c.SerialNumber, i+2)
		}
		if c.IsCA || !c.BasicConstraintsValid || c.KeyUsage != x509.KeyUsageDigitalSignature || len(c.AuthorityKeyId) == 0 || len(c.SubjectKeyId) == 0 {
			t.Errorf("extensions: CA %v usage %v akid %x skid %x", c.IsCA, c.KeyUsage, c.AuthorityKeyId, c.SubjectKeyId)
		}
		if got := c.NotAfter.Sub(testNow); got != 400*24*time.Hour {
			t.Errorf("validity %v, want 400 days", got)
		}
		if d.Verify(f.Cert, VerifyOptions{}) != nil {
			t.Errorf("verify failed")
		}
		if d.Verify(f.Cert, VerifyOptions{Type: ControllerCA}) == nil {
			t.Errorf("verify against the controller CA succeeded")
		}
		rep := Check(f.Cert, CheckOptions{KeyPath: f.Key, CAPath: d.CACertPath(SwitchCA), Name: name, Now: fixedNow})
		if !rep.OK() {
			t.Errorf("check: %v", rep.Err())
		}
		serial := FormatSerial(c.SerialNumber)
		if readString(t, filepath.Join(d.CADir(SwitchCA), "newcerts", serial+".pem")) != readString(t, f.Cert) {
			t.Errorf("newcerts/%s.pem differs", serial)
		}
		if got := readString(t, filepath.Join(d.CADir(SwitchCA), "serial")); got != FormatSerial(big.NewInt(int64(i+3)))+"\n" {
			t.Errorf("serial file %q", got)
		}
	}
	idx := readString(t, filepath.Join(d.CADir(SwitchCA), "index.txt"))
	re := regexp.MustCompile(`^V\t\d{12}Z\t\t[0-9A-F]{2}\tunknown\t/C=US/ST=CA/O=Open vSwitch/OU=[^/]+/CN=[^/]+$`)
	lines := strings.Split(strings.TrimSuffix(idx, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("index.txt has %d lines", len(lines))
	}
	for _, l := range lines {
		if !re.MatchString(l) {
			t.Errorf("index line %q", l)
		}
	}
	if !strings.HasSuffix(lines[3], "\t04\tunknown\t/C=US/ST=CA/O=Open vSwitch/OU=Open vSwitch certifier/CN=ch-ec384") {
		t.Errorf("last index line %q", lines[3])
	}
}

func TestKeyTypes(t *testing.T) {
	tests := []struct {
		spec    KeySpec
		wantErr string
		check   func(any) bool
	}{
		{KeySpec{Type: KeyECDSA}, "", func(k any) bool { p, ok := k.(*ecdsa.PrivateKey); return ok && p.Curve.Params().BitSize == 256 }},
		{KeySpec{Type: KeyECDSA, Bits: 521}, "", func(k any) bool { p, ok := k.(*ecdsa.PrivateKey); return ok && p.Curve.Params().BitSize == 521 }},
		{KeySpec{Type: KeyECDSA, Bits: 300}, "use --bits 256", nil},
		{KeySpec{Type: KeyRSA, Bits: 1024}, "between 2048", nil},
		{KeySpec{Type: "dsa"}, "not supported, use rsa or ecdsa", nil},
		{fastRSA, "", func(k any) bool { p, ok := k.(*rsa.PrivateKey); return ok && p.N.BitLen() == 2048 }},
	}
	for _, tc := range tests {
		k, err := GenerateKey(tc.spec, nil)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%+v: err %v, want %q", tc.spec, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !tc.check(k) {
			t.Errorf("%+v: key %T err %v", tc.spec, k, err)
			continue
		}
		b, err := EncodePrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := ParsePrivateKeyPEM(b)
		if err != nil || !publicKeyEqual(k2.Public(), k.Public()) {
			t.Errorf("%+v: round trip: %v", tc.spec, err)
		}
	}
	for _, s := range []string{"dsa", "ed448", "RSA"} {
		if _, err := ParseKeyType(s); err == nil || !strings.Contains(err.Error(), "use rsa or ecdsa") {
			t.Errorf("ParseKeyType(%q) err %v", s, err)
		}
	}
}

func TestDefaultRSA3072(t *testing.T) {
	if testing.Short() {
		t.Skip("3072-bit key generation is slow")
	}
	f, err := Req(t.TempDir(), "ch1", ReqOptions{}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	csr, err := LoadRequest(f.Req)
	if err != nil {
		t.Fatal(err)
	}
	if n := csr.PublicKey.(*rsa.PublicKey).N.BitLen(); n != 3072 {
		t.Errorf("default RSA key has %d bits, want 3072", n)
	}
}

func TestSelfSign(t *testing.T) {
	work := t.TempDir()
	env := Env{Now: fixedNow}
	f, err := Req(work, "host_1", ReqOptions{Key: KeySpec{Type: KeyECDSA}}, env)
	if err != nil {
		t.Fatal(err)
	}
	c, err := SelfSign(work, "host_1", SelfSignOptions{}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != 3 || c.Subject.CommonName != "host_1" || len(c.DNSNames) != 1 || c.DNSNames[0] != "host_1" || c.IsCA || c.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("self-signed cert: subject %v SAN %v CA %v usage %v", c.Subject, c.DNSNames, c.IsCA, c.KeyUsage)
	}
	if string(c.RawIssuer) != string(c.RawSubject) || c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) != nil {
		t.Error("certificate is not signed by its own key")
	}
	if got := c.NotAfter.Sub(testNow); got != DefaultDays*24*time.Hour {
		t.Errorf("validity %v", got)
	}
	rep := Check(f.Cert, CheckOptions{KeyPath: f.Key, Name: "host_1", Now: fixedNow})
	if !rep.OK() {
		t.Errorf("check: %v", rep.Err())
	}
	if _, err := SelfSign(work, "host_1", SelfSignOptions{}, env); !errors.Is(err, ErrExists) {
		t.Errorf("second self-sign: %v, want ErrExists", err)
	}
	// A request whose key is not NAME-privkey.pem.
	if _, err := Req(work, "host_2", ReqOptions{Key: KeySpec{Type: KeyECDSA}}, env); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "host_2-privkey.pem"), keyPEM(t, ecKey(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := SelfSign(work, "host_2", SelfSignOptions{}, env); err == nil || !strings.Contains(err.Error(), "public keys differ") {
		t.Errorf("mismatched key: %v", err)
	}
}

func TestSignPolicy(t *testing.T) {
	d := newPKI(t, KeySpec{Type: KeyECDSA})
	work := t.TempDir()
	key := ecKey(t)
	mkReq := func(name string, attrs []attr, dns []string) string {
		subj, err := encodeName(attrs)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.CreateCertificateRequest(nil, &x509.CertificateRequest{RawSubject: subj, DNSNames: dns}, key)
		if err != nil {
			t.Fatal(err)
		}
		return writeTestFile(t, work, name+"-req.pem", pemBlock("CERTIFICATE REQUEST", der))
	}
	printableO, _ := asn1.Marshal(rawDN{{{Type: oidOrg, Value: asn1.RawValue{Tag: asn1.TagPrintableString, Bytes: []byte(OVSOrganization)}}}, {{Type: oidCN, Value: asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte("p")}}}})
	derP, err := x509.CreateCertificateRequest(nil, &x509.CertificateRequest{RawSubject: printableO}, key)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, work, "p-req.pem", pemBlock("CERTIFICATE REQUEST", derP))

	tests := []struct {
		name, req, wantErr string
		wantSAN            []string
		wantWarn           string
	}{
		{name: "wrong O", req: mkReq("acme", []attr{{oidOrg, "ACME"}, {oidCN, "acme"}}, nil), wantErr: `only signs requests with O="Open vSwitch"`},
		{name: "no O", req: mkReq("noo", []attr{{oidCN, "noo"}}, nil), wantErr: "has no organizationName"},
		{name: "no CN", req: mkReq("nocn", []attr{{oidOrg, OVSOrganization}}, nil), wantErr: "has no commonName"},
		{name: "O as PrintableString", req: filepath.Join(work, "p-req.pem"), wantErr: "encoded as ASN.1 tag 19"},
		{name: "no SAN gets DNS:CN", req: mkReq("nosan", []attr{{oidOrg, OVSOrganization}, {oidCN, "nosan"}}, nil), wantSAN: []string{"nosan"}, wantWarn: "added DNS:nosan"},
		{name: "SAN DNS:CN kept", req: mkReq("keep", []attr{{oidOrg, OVSOrganization}, {oidCN, "keep"}}, []string{"keep"}), wantSAN: []string{"keep"}},
		{name: "extra SAN refused", req: mkReq("extra", []attr{{oidOrg, OVSOrganization}, {oidCN, "extra"}}, []string{"extra", "extra.example"}), wantErr: "asks for DNS:extra.example besides DNS:extra"},
		{name: "two CNs refused", req: mkReq("twocn", []attr{{oidOrg, OVSOrganization}, {oidCN, "twocn"}, {oidCN, "other"}}, []string{"twocn"}), wantErr: "2 commonName (CN) attributes"},
		{name: "id suffix warns", req: mkReq("sfx", []attr{{oidOrg, OVSOrganization}, {oidCN, "sfx id:42"}}, []string{"sfx id:42"}), wantSAN: []string{"sfx id:42"}, wantWarn: "contains a space"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, filepath.Dir(d.Path))
			out := strings.TrimSuffix(tc.req, "-req.pem") + "-cert.pem"
			res, err := d.Sign(tc.req, out, SignOptions{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				sameSnapshot(t, before, snapshot(t, filepath.Dir(d.Path)))
				if _, err := os.Stat(out); err == nil {
					t.Error("certificate written on error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(res.Cert.DNSNames, ",") != strings.Join(tc.wantSAN, ",") {
				t.Errorf("SAN %v, want %v", res.Cert.DNSNames, tc.wantSAN)
			}
			if w := strings.Join(res.Warnings, "|"); (tc.wantWarn == "") != (w == "") || !strings.Contains(w, tc.wantWarn) {
				t.Errorf("warnings %q, want %q", w, tc.wantWarn)
			}
		})
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	d := newPKI(t, KeySpec{Type: KeyECDSA})
	root := filepath.Dir(d.Path)
	work := filepath.Join(root, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	env := Env{Now: fixedNow}
	if _, err := Req(work, "ch1", ReqOptions{Key: KeySpec{Type: KeyECDSA}}, env); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Sign(filepath.Join(work, "ch1-req.pem"), filepath.Join(work, "ch1-cert.pem"), SignOptions{}); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, work, "junk-req.pem", []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"))
	writeTestFile(t, work, "text-req.pem", []byte("hello\n"))
	if err := os.Mkdir(filepath.Join(work, "dir-req.pem"), 0o755); err != nil {
		t.Fatal(err)
	}
	missing := Dir{Path: filepath.Join(root, "nope"), Env: env}
	notDir := Dir{Path: filepath.Join(work, "ch1-cert.pem"), Env: env}
	in := func(n string) string { return filepath.Join(work, n) }

	tests := []struct {
		name    string
		op      func() error
		wantErr string
	}{
		{"init existing", func() error { return d.Init(InitOptions{Key: KeySpec{Type: KeyECDSA}}) }, "already exists and --force not given"},
		{"init dsa", func() error {
			return Dir{Path: filepath.Join(root, "new"), Env: env}.Init(InitOptions{Key: KeySpec{Type: "dsa"}})
		}, "not supported, use rsa or ecdsa"},
		{"req existing", func() error { _, err := Req(work, "ch1", ReqOptions{Key: KeySpec{Type: KeyECDSA}}, env); return err }, "ch1-privkey.pem already exists"},
		{"req bad name", func() error { _, err := Req(work, "a b", ReqOptions{Key: KeySpec{Type: KeyECDSA}}, env); return err }, "contains a space"},
		{"req missing dir", func() error {
			_, err := Req(filepath.Join(root, "nodir"), "ch9", ReqOptions{Key: KeySpec{Type: KeyECDSA}}, env)
			return err
		}, "does not exist"},
		{"sign existing output", func() error { _, err := d.Sign(in("ch1-req.pem"), in("ch1-cert.pem"), SignOptions{}); return err }, "ch1-cert.pem already exists"},
		{"sign missing pki dir", func() error { _, err := missing.Sign(in("ch1-req.pem"), in("x-cert.pem"), SignOptions{}); return err }, "need to run 'ovnsec pki init'"},
		{"sign pki dir is a file", func() error { _, err := notDir.Sign(in("ch1-req.pem"), in("x-cert.pem"), SignOptions{}); return err }, "is not a directory"},
		{"sign missing request", func() error { _, err := d.Sign(in("zz-req.pem"), in("zz-cert.pem"), SignOptions{}); return err }, "zz-req.pem does not exist"},
		{"sign garbage PEM", func() error { _, err := d.Sign(in("junk-req.pem"), in("junk-cert.pem"), SignOptions{}); return err }, "junk-req.pem"},
		{"sign not PEM", func() error { _, err := d.Sign(in("text-req.pem"), in("text-cert.pem"), SignOptions{}); return err }, "no PEM certificate request"},
		{"sign unreadable (a directory)", func() error { _, err := d.Sign(in("dir-req.pem"), in("dir-cert.pem"), SignOptions{}); return err }, "dir-req.pem"},
		{"sign bad days", func() error { _, err := d.Sign(in("ch1-req.pem"), in("d-cert.pem"), SignOptions{Days: -1}); return err }, "--days"},
		{"self-sign missing key", func() error { _, err := SelfSign(work, "junk", SelfSignOptions{}, env); return err }, "junk-privkey.pem does not exist"},
		{"self-sign existing", func() error { _, err := SelfSign(work, "ch1", SelfSignOptions{}, env); return err }, "ch1-cert.pem already exists"},
		{"verify missing pki", func() error { return missing.Verify(in("ch1-cert.pem"), VerifyOptions{}) }, "does not exist"},
		{"verify missing cert", func() error { return d.Verify(in("none-cert.pem"), VerifyOptions{}) }, "none-cert.pem does not exist"},
		{"verify garbage", func() error { return d.Verify(in("junk-req.pem"), VerifyOptions{}) }, "no PEM certificate"},
		{"fingerprint missing", func() error { _, err := Fingerprint(in("none")); return err }, "does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, root)
			err := tc.op()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
			sameSnapshot(t, before, snapshot(t, root))
		})
	}
}

func TestForceOverwrites(t *testing.T) {
	d := newPKI(t, KeySpec{Type: KeyECDSA})
	work := t.TempDir()
	env := Env{Now: fixedNow}
	f, err := Req(work, "ch1", ReqOptions{Key: KeySpec{Type: KeyECDSA}}, env)
	if err != nil {
		t.Fatal(err)
	}
	oldKey := readString(t, f.Key)
	if _, err := Req(work, "ch1", ReqOptions{Key: KeySpec{Type: KeyECDSA}, Force: true}, env); err != nil {
		t.Fatal(err)
	}
	if readString(t, f.Key) == oldKey {
		t.Error("--force did not replace the key")
	}
	if m := mode(t, f.Key); m != 0o600 {
		t.Errorf("key mode %v after --force", m)
	}
	for i := 0; i < 2; i++ {
		if _, err := d.Sign(f.Req, f.Cert, SignOptions{Force: i == 1}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, err := d.Sign(f.Req, f.Cert, SignOptions{}); !errors.Is(err, ErrExists) {
				t.Fatalf("sign over existing: %v", err)
			}
		}
	}
	if got := readString(t, filepath.Join(d.CADir(SwitchCA), "serial")); got != "04\n" {
		t.Errorf("serial %q after two signs", got)
	}
}

func TestSerial(t *testing.T) {
	tests := []struct {
		in, out string
		ok      bool
	}{
		{"01\n", "01", true}, {"ff", "FF", true}, {"0A\n", "0A", true}, {"100", "0100", true},
		{"00", "00", true}, {"", "", false}, {"zz", "", false}, {"-1", "", false}, {"0x10", "", false},
		{strings.Repeat("F", 41), "", false},
	}
	for _, tc := range tests {
		n, err := ParseSerial(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseSerial(%q) err %v", tc.in, err)
			continue
		}
		if tc.ok && FormatSerial(n) != tc.out {
			t.Errorf("FormatSerial(ParseSerial(%q)) = %q, want %q", tc.in, FormatSerial(n), tc.out)
		}
	}
}

func TestIndexTime(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Date(2036, 11, 20, 0, 3, 27, 0, time.UTC), "361120000327Z"},
		{time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC), "491231235959Z"},
		{time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC), "20500101000000Z"},
		{time.Date(2036, 11, 20, 1, 0, 0, 0, time.FixedZone("x", 3600)), "361120000000Z"},
	}
	for _, tc := range tests {
		if got := indexTime(tc.t); got != tc.want {
			t.Errorf("indexTime(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
}

func TestOnelineName(t *testing.T) {
	der, err := encodeName([]attr{{oidCountry, "US"}, {oidOrg, "Open vSwitch"}, {oidCN, "a\x01é"}, {asn1.ObjectIdentifier{1, 2, 3}, "x"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := onelineName(der)
	if err != nil {
		t.Fatal(err)
	}
	if want := `/C=US/O=Open vSwitch/CN=a\x01\xC3\xA9/1.2.3=x`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestFingerprint(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "fp")
	certPath := writeTestFile(t, dir, "c.pem", append([]byte("Certificate:\n  text openssl ca puts first\n"), pemOf(ca.cert)...))
	other := writeTestFile(t, dir, "r.pem", []byte("abc"))
	mt := time.Date(2026, 11, 23, 0, 3, 32, 0, time.Local)
	for _, p := range []string{certPath, other} {
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	fp, err := FingerprintOf(pemOf(ca.cert))
	if err != nil {
		t.Fatal(err)
	}
	if len(fp) != 40 || strings.ToUpper(fp) != fp {
		t.Errorf("cert fingerprint %q not 40 upper-case hex digits", fp)
	}
	date := mt.Format(dateLayout)
	tests := []struct{ path, want string }{
		{certPath, certPath + "\t" + date + "\n\tfingerprint " + fp + "\n"},
		{other, other + "\t" + date + "\n\tfingerprint a9993e364706816aba3e25717850c26c9cd0d89d\n"},
	}
	for _, tc := range tests {
		got, err := Fingerprint(tc.path)
		if err != nil || got != tc.want {
			t.Errorf("Fingerprint(%s) = %q, %v; want %q", tc.path, got, err, tc.want)
		}
	}
	// ovs-pki notes a file named after its own fingerprint.
	if got := FormatFingerprint("a9993e-x.pem", mt, "a9993e"); got != "a9993e-x.pem\t"+date+"\n\t(correct fingerprint in filename)\n" {
		t.Errorf("self-named file: %q", got)
	}
	if _, err := FingerprintOf([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")); err == nil {
		t.Error("garbage certificate fingerprinted")
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"ch1", "host_1", "2f0a6a9e-8c1b-4b8e-9f4b-0e6b3c2f0d1a", "node.example.com"} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "a/b", "a,b", "a\tb", "a\x00b", strings.Repeat("x", 65), "\xff"} {
		if err := ValidateName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSignValidityEndsWithCA(t *testing.T) {
	d := newPKI(t, KeySpec{Type: KeyECDSA})
	work := t.TempDir()
	env := Env{Now: fixedNow}
	tests := []struct {
		name     string
		days     int
		at       time.Time
		wantWarn bool
	}{
		{"default, a second after the CA", 0, testNow.Add(time.Second), false},
		{"longer than the CA", 5000, testNow, true},
		{"short", 30, testNow.Add(time.Hour), false},
	}
	ca, err := d.LoadCA(SwitchCA)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range tests {
		name := fmt.Sprintf("v%d", i)
		f, err := Req(work, name, ReqOptions{Key: KeySpec{Type: KeyECDSA}}, env)
		if err != nil {
			t.Fatal(err)
		}
		at := tc.at
		d.Now = func() time.Time { return at }
		res, err := d.Sign(f.Req, f.Cert, SignOptions{Days: tc.days})
		if err != nil {
			t.Fatal(err)
		}
		want := at.AddDate(0, 0, tc.days)
		if tc.days == 0 || want.After(ca.Cert.NotAfter) {
			want = ca.Cert.NotAfter
		}
		if !res.Cert.NotAfter.Equal(want) {
			t.Errorf("%s: NotAfter %v, want %v", tc.name, res.Cert.NotAfter, want)
		}
		if (len(res.Warnings) > 0) != tc.wantWarn {
			t.Errorf("%s: warnings %v", tc.name, res.Warnings)
		}
	}
}
