// Regression tests for the audit of 354e2ea: Sign copied every
// subjectAltName of a request into the certificate, so a request for
// chassis-1 that also named chassis-2 gave a certificate that
// authenticates as chassis-2. These tests use only the API of that commit
// (SignOptions{} is the default policy) so that they run against it too.

package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// sanReq describes the subjectAltName of a test request for CN=chassis-1.
type sanReq struct {
	dns    []string
	ips    []net.IP
	uris   []string
	emails []string
	raw    []byte // a whole subjectAltName extension value instead
}

// writeSANRequest writes a request for CN=chassis-1 (ovs-pki's subject)
// with the given subjectAltName into dir as file and returns its path.
func writeSANRequest(t testing.TB, dir, file string, s sanReq) string {
	t.Helper()
	subj, err := encodeName(reqSubjectAttrs("chassis-1"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{RawSubject: subj, DNSNames: s.dns, IPAddresses: s.ips, EmailAddresses: s.emails}
	for _, u := range s.uris {
		p, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, p)
	}
	if s.raw != nil {
		tmpl.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: s.raw}}
	}
	der, err := x509.CreateCertificateRequest(nil, tmpl, ecKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return writeTestFile(t, dir, file, pemBlock("CERTIFICATE REQUEST", der))
}

// rawSAN encodes a subjectAltName value from GeneralNames given as
// (tag, constructed, content).
func rawSAN(t testing.TB, names ...asn1.RawValue) []byte {
	t.Helper()
	b, err := asn1.Marshal(names)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gnDNS(s string) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte(s)}
}

// gnOtherName is a Microsoft UPN otherName (1.3.6.1.4.1.311.20.2.3).
func gnOtherName(t testing.TB, upn string) asn1.RawValue {
	t.Helper()
	oid, err := asn1.Marshal(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	val, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true,
		Bytes: append([]byte{asn1.TagUTF8String, byte(len(upn))}, upn...)})
	if err != nil {
		t.Fatal(err)
	}
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(oid, val...)}
}

// extraSANCases are requests for CN=chassis-1 whose subjectAltName is more
// than DNS:chassis-1, with the entry the refusal must name.
func extraSANCases(t testing.TB) []struct {
	name string
	req  sanReq
	want string
} {
	return []struct {
		name string
		req  sanReq
		want string
	}{
		{"another chassis", sanReq{dns: []string{"chassis-1", "chassis-2"}}, "DNS:chassis-2"},
		{"only another chassis", sanReq{dns: []string{"chassis-2"}}, "DNS:chassis-2"},
		{"IP", sanReq{dns: []string{"chassis-1"}, ips: []net.IP{net.ParseIP("192.0.2.7")}}, "IP:192.0.2.7"},
		{"IP only", sanReq{ips: []net.IP{net.ParseIP("2001:db8::7")}}, "IP:2001:db8::7"},
		{"URI", sanReq{dns: []string{"chassis-1"}, uris: []string{"spiffe://example.org/chassis-2"}}, "URI:spiffe://example.org/chassis-2"},
		{"email", sanReq{dns: []string{"chassis-1"}, emails: []string{"chassis-2@example.org"}}, "email:chassis-2@example.org"},
		{"otherName", sanReq{raw: rawSAN(t, gnDNS("chassis-1"), gnOtherName(t, "chassis-2@example.org"))}, "otherName:1.3.6.1.4.1.311.20.2.3"},
	}
}

// Sign with the default options refuses every request whose
// subjectAltName is anything but DNS:<CN>, names the offending entry and
// the option that overrides, and changes nothing on disk.
func TestSignRefusesExtraSANs(t *testing.T) {
	d := newPKI(t, KeySpec{Type: KeyECDSA})
	root := filepath.Dir(d.Path)
	work := filepath.Join(root, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, tc := range extraSANCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(work, strconv.Itoa(i)) // no case sees another's files
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			req := writeSANRequest(t, dir, "chassis-1-req.pem", tc.req)
			cert := filepath.Join(dir, "chassis-1-cert.pem")
			before := snapshot(t, root)
			res, err := d.Sign(req, cert, SignOptions{})
			if err == nil {
				t.Fatalf("signed a request for CN=chassis-1 with %s: certificate SAN DNS %v IP %v URI %v email %v",
					tc.want, res.Cert.DNSNames, res.Cert.IPAddresses, res.Cert.URIs, res.Cert.EmailAddresses)
			}
			for _, want := range []string{tc.want, "--allow-extra-sans", "--batch"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			sameSnapshot(t, before, snapshot(t, root))
		})
	}
	// DNS:<CN> alone, even twice, is what OVN expects and is signed.
	req := writeSANRequest(t, work, "ok-req.pem", sanReq{dns: []string{"chassis-1", "chassis-1"}})
	res, err := d.Sign(req, filepath.Join(work, "ok-cert.pem"), SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(res.Cert.DNSNames, ","); got != "chassis-1" {
		t.Errorf("SAN DNS %q, want chassis-1", got)
	}
}
