package pki

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sanList is the certificate's subjectAltName as "DNS:a,IP:b,..." in
// crypto/x509's order (DNS, email, IP, URI).
func sanList(c *x509.Certificate) string {
	var s []string
	for _, n := range c.DNSNames {
		s = append(s, "DNS:"+n)
	}
	for _, n := range c.EmailAddresses {
		s = append(s, "email:"+n)
	}
	for _, n := range c.IPAddresses {
		s = append(s, "IP:"+n.String())
	}
	for _, n := range c.URIs {
		s = append(s, "URI:"+n.String())
	}
	return strings.Join(s, ",")
}

// The three policies on every kind of extra name: refuse (the default,
// with ErrExtraSANs), drop with a warning naming what was dropped, copy
// (only the kinds crypto/x509 can write). The certificate always carries
// DNS:<CN>, first.
func TestSignSANPolicies(t *testing.T) {
	d := newPKI(t, KeySpec{Type: KeyECDSA})
	work := t.TempDir()
	allowed := map[string]string{
		"another chassis":      "DNS:chassis-1,DNS:chassis-2",
		"only another chassis": "DNS:chassis-1,DNS:chassis-2",
		"IP":                   "DNS:chassis-1,IP:192.0.2.7",
		"IP only":              "DNS:chassis-1,IP:2001:db8::7",
		"URI":                  "DNS:chassis-1,URI:spiffe://example.org/chassis-2",
		"email":                "DNS:chassis-1,email:chassis-2@example.org",
		"otherName":            "DNS:chassis-1",
	}
	for _, tc := range extraSANCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			req := writeSANRequest(t, work, "chassis-1-req.pem", tc.req)
			cert := filepath.Join(work, "chassis-1-cert.pem")
			if _, err := d.Sign(req, cert, SignOptions{SANs: RefuseExtraSANs}); !errors.Is(err, ErrExtraSANs) {
				t.Fatalf("refuse: err %v, want ErrExtraSANs", err)
			}
			res, err := d.Sign(req, cert, SignOptions{SANs: DropExtraSANs})
			if err != nil {
				t.Fatal(err)
			}
			if got := sanList(res.Cert); got != "DNS:chassis-1" {
				t.Errorf("drop: SAN %s, want DNS:chassis-1 only", got)
			}
			if w := strings.Join(res.Warnings, "|"); !strings.Contains(w, "dropped subjectAltName "+tc.want) {
				t.Errorf("drop: warnings %q do not name %s", w, tc.want)
			}
			res, err = d.Sign(req, cert, SignOptions{SANs: AllowExtraSANs, Force: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := sanList(res.Cert); got != allowed[tc.name] {
				t.Errorf("allow: SAN %s, want %s", got, allowed[tc.name])
			}
			w := strings.Join(res.Warnings, "|")
			if tc.name == "otherName" && !strings.Contains(w, "cannot write") || tc.name != "otherName" && !strings.Contains(w, "copied subjectAltName "+tc.want) {
				t.Errorf("allow: warnings %q", w)
			}
			if err := os.Remove(cert); err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := d.Sign(writeSANRequest(t, work, "x-req.pem", sanReq{dns: []string{"chassis-1"}}), filepath.Join(work, "x-cert.pem"), SignOptions{SANs: SANPolicy(9)}); err != nil {
		t.Errorf("unknown policy with no extra names: %v", err)
	}
	if _, err := d.Sign(writeSANRequest(t, work, "y-req.pem", sanReq{dns: []string{"chassis-2"}}), filepath.Join(work, "y-cert.pem"), SignOptions{SANs: SANPolicy(9)}); err == nil {
		t.Error("unknown policy signed a request with extra names")
	}
}

func TestRequestSANs(t *testing.T) {
	dirName, err := encodeName([]attr{{oidCN, "chassis-2"}})
	if err != nil {
		t.Fatal(err)
	}
	rid := []byte{0x2a, 0x03, 0x04} // 1.2.3.4
	raw := rawSAN(t, gnDNS("chassis-1"), gnDNS("a\x01\\b"),
		asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 7, Bytes: []byte{192, 0, 2, 1}},
		asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 7, Bytes: []byte{1, 2, 3}},
		asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: dirName},
		asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 8, Bytes: rid},
		asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 5, IsCompound: true, Bytes: []byte{}},
		gnOtherName(t, "u@example.org"))
	sans, err := parseSANs(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := `DNS:chassis-1, DNS:a\x01\x5Cb, IP:192.0.2.1, IP:010203, dirName:/CN=chassis-2, RID:1.2.3.4, ediPartyName, otherName:1.3.6.1.4.1.311.20.2.3`
	if got := joinSANs(sans); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	for _, bad := range [][]byte{
		nil, {0x30}, {0x31, 0x00}, append(rawSAN(t, gnDNS("x")), 0),
		rawSAN(t, asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagUTF8String, Bytes: []byte("x")}),
		rawSAN(t, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 9, Bytes: []byte("x")}),
		{0x30, 0x03, 0x82, 0x05, 0x61},
	} {
		if s, err := parseSANs(bad); err == nil {
			t.Errorf("parseSANs(%x) = %v, want an error", bad, s)
		}
	}
}

// check warns about a certificate that names more than its CN (made
// before this policy, by ovs-pki, or with --allow-extra-sans).
func TestCheckWarnsExtraSANs(t *testing.T) {
	ca := newTestCA(t, "ca")
	dir := t.TempDir()
	for _, tc := range []struct {
		san  []string
		want Status
	}{
		{[]string{"chassis-1"}, StatusOK},
		{[]string{"chassis-1", "chassis-2"}, StatusWarn},
		{[]string{"chassis-2"}, StatusFail},
	} {
		p := writeTestFile(t, dir, "c.pem", ca.issue(t, leafSpec{cn: "chassis-1", san: tc.san}, ecKey(t)))
		r, _ := Check(p, CheckOptions{Now: fixedNow}).Result(CheckSAN)
		if r.Status != tc.want || tc.want == StatusWarn && !strings.Contains(r.String(), "also names DNS:chassis-2") {
			t.Errorf("SAN %v: %s, want %s", tc.san, r, tc.want)
		}
	}
}

// FuzzParseSANs feeds arbitrary subjectAltName extension values (from a
// request file) to the parser behind the signing policy.
func FuzzParseSANs(f *testing.F) {
	f.Add(rawSAN(f, gnDNS("chassis-1"), gnDNS("chassis-2")))
	f.Add(rawSAN(f, gnDNS("chassis-1"), gnOtherName(f, "u@example.org")))
	f.Add(rawSAN(f, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 7, Bytes: net.ParseIP("2001:db8::1")}))
	f.Add(rawSAN(f, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 8, Bytes: []byte{0x2a, 0x03}}))
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		sans, err := parseSANs(data)
		if err != nil {
			return
		}
		for _, s := range sans {
			str := s.String()
			if strings.ContainsAny(str, "\x00\n\r") {
				t.Errorf("entry shown with raw control characters: %q", str)
			}
			if s.Tag < 0 || s.Tag > sanRegisteredID {
				t.Errorf("tag %d accepted", s.Tag)
			}
		}
	})
}
