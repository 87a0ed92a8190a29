// Regression test for the audit of 354e2ea: `ovnsec pki sign` copied every
// subjectAltName of a request, so a request for chassis-1 that also named
// chassis-2 gave a certificate that authenticates as chassis-2. Only the
// command line and the pki API of that commit are used, so that the test
// runs against it too.

package main

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ovnsec/ovnsec/internal/pki"
)

// extraSANRequest replaces NAME-req.pem, made by `ovnsec pki req NAME`,
// with a request for the same subject and key that asks for more names.
func extraSANRequest(t *testing.T, c cli, name string, tmpl x509.CertificateRequest) {
	t.Helper()
	f := pki.FilesFor(c.dir, name)
	csr, err := pki.LoadRequest(f.Req)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.LoadPrivateKey(f.Key)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.RawSubject = csr.RawSubject
	der, err := x509.CreateCertificateRequest(nil, &tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.Req, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// certSANs reads NAME-cert.pem's subjectAltName as "DNS:a,IP:b,...".
func certSANs(t *testing.T, c cli, name string) string {
	t.Helper()
	b, err := os.ReadFile(pki.FilesFor(c.dir, name).Cert)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pki.ParseCertificatesPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, n := range certs[0].DNSNames {
		s = append(s, "DNS:"+n)
	}
	for _, n := range certs[0].EmailAddresses {
		s = append(s, "email:"+n)
	}
	for _, n := range certs[0].IPAddresses {
		s = append(s, "IP:"+n.String())
	}
	for _, n := range certs[0].URIs {
		s = append(s, "URI:"+n.String())
	}
	return strings.Join(s, ",")
}

func TestPKISignExtraSANs(t *testing.T) {
	uri, err := url.Parse("spiffe://example.org/chassis-2")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		req     x509.CertificateRequest
		extra   string // the entry the refusal and the warning name
		allowed string // the certificate's SAN with --allow-extra-sans
	}{
		{"another chassis", x509.CertificateRequest{DNSNames: []string{"chassis-1", "chassis-2"}}, "DNS:chassis-2", "DNS:chassis-1,DNS:chassis-2"},
		{"IP", x509.CertificateRequest{DNSNames: []string{"chassis-1"}, IPAddresses: []net.IP{net.ParseIP("192.0.2.7")}}, "IP:192.0.2.7", "DNS:chassis-1,IP:192.0.2.7"},
		{"URI", x509.CertificateRequest{DNSNames: []string{"chassis-1"}, URIs: []*url.URL{uri}}, "URI:spiffe://example.org/chassis-2", "DNS:chassis-1,URI:spiffe://example.org/chassis-2"},
		{"email", x509.CertificateRequest{DNSNames: []string{"chassis-1"}, EmailAddresses: []string{"chassis-2@example.org"}}, "email:chassis-2@example.org", "DNS:chassis-1,email:chassis-2@example.org"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI(t)
			pkiDir := "--dir=" + filepath.Join(c.dir, "pki")
			c.must("pki", pkiDir, "--key=ecdsa", "init")
			c.must("pki", "--key=ecdsa", "req", "chassis-1")
			extraSANRequest(t, c, "chassis-1", tc.req)

			// Interactive sign refuses, even when the operator says yes,
			// naming the entry and the override, and writes nothing.
			before := c.tree()
			code, out, er := c.run("yes\n", "pki", pkiDir, "sign", "chassis-1")
			if code != exitFailure {
				t.Errorf("sign: exit %d, want %d; certificate SAN %s\n%s%s", code, exitFailure, certSANs(t, c, "chassis-1"), out, er)
				os.Remove(pki.FilesFor(c.dir, "chassis-1").Cert) // go on with the other modes
			} else {
				for _, want := range []string{tc.extra, "--allow-extra-sans"} {
					if !strings.Contains(er, want) {
						t.Errorf("sign error %q does not mention %q", er, want)
					}
				}
				if after := c.tree(); !reflect.DeepEqual(before, after) {
					t.Errorf("refused sign changed files: %d entries before, %d after", len(before), len(after))
				}
			}

			// --batch issues DNS:chassis-1 only, with a warning on stderr.
			code, out, er = c.run("", "pki", pkiDir, "--batch", "sign", "chassis-1")
			if code != exitOK {
				t.Fatalf("--batch sign: exit %d\n%s%s", code, out, er)
			}
			if got := certSANs(t, c, "chassis-1"); got != "DNS:chassis-1" {
				t.Errorf("--batch sign: certificate SAN %s, want DNS:chassis-1", got)
			}
			if !strings.Contains(er, "warning: ") || !strings.Contains(er, tc.extra) {
				t.Errorf("--batch sign: stderr %q lacks a warning naming %s", er, tc.extra)
			}

			// --allow-extra-sans copies them.
			code, out, er = c.run("yes\n", "pki", pkiDir, "--force", "--allow-extra-sans", "sign", "chassis-1")
			if code != exitOK {
				t.Fatalf("--allow-extra-sans sign: exit %d\n%s%s", code, out, er)
			}
			if got := certSANs(t, c, "chassis-1"); got != tc.allowed {
				t.Errorf("--allow-extra-sans sign: certificate SAN %s, want %s", got, tc.allowed)
			}
		})
	}
}

func TestPKIAllowExtraSANsOnlyForSign(t *testing.T) {
	c := newCLI(t)
	for _, cmd := range [][]string{{"init"}, {"req", "a"}, {"self-sign", "a"}, {"verify", "a"}, {"check", "a-cert.pem"}} {
		code, _, er := c.run("", append([]string{"pki", "--allow-extra-sans"}, cmd...)...)
		if code != exitUsage || !strings.Contains(er, "--allow-extra-sans applies only to sign and req+sign") {
			t.Errorf("%v: exit %d, %q", cmd, code, er)
		}
	}
	pkiDir := "--dir=" + filepath.Join(c.dir, "pki")
	c.must("pki", pkiDir, "--key=ecdsa", "init")
	c.must("pki", pkiDir, "--key=ecdsa", "--allow-extra-sans", "req+sign", "a")
	if got := certSANs(t, c, "a"); got != "DNS:a" {
		t.Errorf("req+sign: SAN %s", got)
	}
}
