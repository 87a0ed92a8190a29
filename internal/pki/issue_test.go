package pki

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIssue(t *testing.T) {
	d := Dir{Path: filepath.Join(t.TempDir(), "pki"), Env: Env{Now: fixedNow}}
	if err := d.Init(InitOptions{Key: KeySpec{Type: KeyECDSA}}); err != nil {
		t.Fatal(err)
	}
	ca, err := d.LoadCA(SwitchCA)
	if err != nil {
		t.Fatal(err)
	}
	serialBefore, _ := os.ReadFile(filepath.Join(d.CADir(SwitchCA), "serial"))
	subj, err := EnrolmentSubject(ca.Cert, "ch1")
	if err != nil {
		t.Fatal(err)
	}
	key := ecKey(t)
	c1, err := d.Issue(ca, IssueOptions{Subject: subj, PublicKey: key.Public(), DNSNames: []string{"ch1"}, Lifetime: 90 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := d.Issue(ca, IssueOptions{Subject: subj, PublicKey: key.Public(), DNSNames: []string{"ch1"}, Lifetime: 90 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if c1.SerialNumber.Cmp(c2.SerialNumber) == 0 || c1.SerialNumber.BitLen() > SerialBits {
		t.Errorf("serials %x %x", c1.SerialNumber, c2.SerialNumber)
	}
	if got := c1.NotAfter.Sub(testNow); got != 90*24*time.Hour {
		t.Errorf("lifetime %v", got)
	}
	if len(c1.ExtKeyUsage) != 2 || c1.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth || c1.ExtKeyUsage[1] != x509.ExtKeyUsageClientAuth || c1.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("usages %v %v", c1.KeyUsage, c1.ExtKeyUsage)
	}
	if cn, ok := OVSCommonName(c1); !ok || cn != "ch1" {
		t.Errorf("ovs-monitor-ipsec CN %q %v", cn, ok)
	}
	if s, _ := onelineName(c1.RawSubject); s != "/O=Open vSwitch/CN=ch1" {
		t.Errorf("subject %s", s)
	}
	// The organization matches the CA's as openssl ca compares it.
	if _, err := applyPolicy(c1.RawSubject, ca.Cert.RawSubject); err != nil {
		t.Errorf("ovs-pki policy: %v", err)
	}
	idx, _ := os.ReadFile(filepath.Join(d.CADir(SwitchCA), "index.txt"))
	for _, c := range []*x509.Certificate{c1, c2} {
		if !strings.Contains(string(idx), "\t"+FormatSerial(c.SerialNumber)+"\t") {
			t.Errorf("index.txt lacks %s", FormatSerial(c.SerialNumber))
		}
		if _, err := os.Stat(d.NewcertPath(SwitchCA, c.SerialNumber)); err != nil {
			t.Error(err)
		}
	}
	serialAfter, _ := os.ReadFile(filepath.Join(d.CADir(SwitchCA), "serial"))
	if !bytes.Equal(serialBefore, serialAfter) {
		t.Errorf("serial file changed from %q to %q; it belongs to sign", serialBefore, serialAfter)
	}
	// Never beyond the CA.
	long, err := d.Issue(ca, IssueOptions{Subject: subj, PublicKey: key.Public(), Lifetime: 100 * 365 * 24 * time.Hour})
	if err != nil || !long.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("long lifetime: %v %v, CA ends %v", err, long, ca.Cert.NotAfter)
	}
	if _, err := d.Issue(ca, IssueOptions{Subject: subj, PublicKey: key.Public()}); err == nil {
		t.Error("zero lifetime accepted")
	}
	if _, err := EnrolmentSubject(ca.Cert, "two words"); err == nil {
		t.Error("a name with a space became a subject")
	}
}

func TestSameName(t *testing.T) {
	utf, _ := encodeName([]attr{{oidOrg, "Open vSwitch"}, {oidCN, "ch1"}})
	other, _ := encodeName([]attr{{oidOrg, "Open vSwitch"}, {oidCN, "ch2"}})
	longer, _ := encodeName([]attr{{oidCountry, "US"}, {oidOrg, "Open vSwitch"}, {oidCN, "ch1"}})
	printable := bytes.Replace(utf, []byte{0x0c, 0x0c}, []byte{0x13, 0x0c}, 1) // O as PrintableString
	if bytes.Equal(printable, utf) {
		t.Fatal("test subject not re-encoded")
	}
	switch {
	case !SameName(utf, utf), !SameName(utf, printable):
		t.Error("equal names differ")
	case SameName(utf, other), SameName(utf, longer), SameName(utf, []byte("junk")):
		t.Error("different names are the same")
	}
}
