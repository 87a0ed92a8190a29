package pki

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// verifies reports whether leaf chains to roots with the intermediates.
func verifies(leaf *x509.Certificate, roots, inter []*x509.Certificate, now time.Time) error {
	rp, ip := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range roots {
		rp.AddCert(c)
	}
	for _, c := range inter {
		ip.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: rp, Intermediates: ip, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}

func TestRollover(t *testing.T) {
	now := testNow
	d := Dir{Path: filepath.Join(t.TempDir(), "pki"), Env: Env{Now: func() time.Time { return now }}}
	if err := d.Init(InitOptions{Key: KeySpec{Type: KeyECDSA}}); err != nil {
		t.Fatal(err)
	}
	old, _ := d.LoadCA(SwitchCA)
	issue := func(ca *CA) *x509.Certificate {
		subj, _ := EnrolmentSubject(ca.Cert, "ch1")
		c, err := d.Issue(ca, IssueOptions{Subject: subj, PublicKey: ecKey(t).Public(), DNSNames: []string{"ch1"}, Lifetime: 90 * 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	fromOld := issue(old)
	if _, err := d.Rollover(RolloverOptions{}); err == nil {
		t.Error("rollover without an overlap")
	}

	now = testNow.Add(time.Hour)
	res, err := d.Rollover(RolloverOptions{Overlap: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cur, err := d.LoadCA(SwitchCA)
	if err != nil || !cur.Cert.Equal(res.New) {
		t.Fatalf("LoadCA after rollover: %v", err)
	}
	all, _ := d.CACertificates(SwitchCA)
	if len(all) != 2 || !all[0].Equal(res.New) || !all[1].Equal(old.Cert) {
		t.Fatalf("cacert.pem holds %d certificates, want new then old", len(all))
	}
	links, _ := d.Links(SwitchCA)
	if len(links) != 2 || !links[0].Equal(res.OldWithNew) || !links[1].Equal(res.NewWithOld) {
		t.Fatalf("links.pem: %d certificates", len(links))
	}
	if res.OldWithNew.CheckSignatureFrom(res.New) != nil || !publicKeyEqual(res.OldWithNew.PublicKey, old.Cert.PublicKey) || string(res.OldWithNew.RawSubject) != string(old.Cert.RawSubject) {
		t.Error("OldWithNew is not the old key and name certified by the new CA")
	}
	if res.NewWithOld.CheckSignatureFrom(old.Cert) != nil || !publicKeyEqual(res.NewWithOld.PublicKey, res.New.PublicKey) || string(res.NewWithOld.RawSubject) != string(res.New.RawSubject) {
		t.Error("NewWithOld is not the new key and name certified by the old CA")
	}
	fromNew := issue(cur)
	// A peer that trusts only the old CA verifies the new CA's
	// certificates through NewWithOld, and the other way round.
	if err := verifies(fromNew, []*x509.Certificate{old.Cert}, []*x509.Certificate{res.NewWithOld}, now); err != nil {
		t.Errorf("new through NewWithOld: %v", err)
	}
	if err := verifies(fromOld, []*x509.Certificate{res.New}, []*x509.Certificate{res.OldWithNew}, now); err != nil {
		t.Errorf("old through OldWithNew: %v", err)
	}
	ret, _ := d.Retirements(SwitchCA)
	if got := ret[FormatSerial(old.Cert.SerialNumber)]; !got.Equal(now.Add(30 * 24 * time.Hour)) {
		t.Errorf("retirement %v", got)
	}
	arch := filepath.Join(d.CADir(SwitchCA), "private", "cakey-"+FormatSerial(old.Cert.SerialNumber)+".pem")
	if k, err := LoadPrivateKey(arch); err != nil || !publicKeyEqual(k.Public(), old.Cert.PublicKey) {
		t.Errorf("archived old key: %v", err)
	}
	if st, _ := os.Stat(arch); st == nil || st.Mode().Perm() != modeKey {
		t.Errorf("archived key mode %v", st)
	}
	idx, _ := os.ReadFile(filepath.Join(d.CADir(SwitchCA), "index.txt"))
	for _, c := range []*x509.Certificate{res.New, res.OldWithNew, res.NewWithOld} {
		if !strings.Contains(string(idx), "\t"+FormatSerial(c.SerialNumber)+"\t") {
			t.Errorf("index.txt lacks %s", FormatSerial(c.SerialNumber))
		}
	}
	// ovs-pki style sign uses the new CA too.
	w := t.TempDir()
	if _, err := Req(w, "ch2", ReqOptions{Key: KeySpec{Type: KeyECDSA}}, d.Env); err != nil {
		t.Fatal(err)
	}
	f := FilesFor(w, "ch2")
	sr, err := d.Sign(f.Req, f.Cert, SignOptions{})
	if err != nil || sr.Cert.CheckSignatureFrom(res.New) != nil {
		t.Errorf("sign after rollover: %v", err)
	}

	// The next rollover, after the overlap, drops the old CA and its links.
	now = testNow.Add(31 * 24 * time.Hour)
	res2, err := d.Rollover(RolloverOptions{Overlap: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(res2.Dropped) != 1 || !res2.Dropped[0].Equal(old.Cert) {
		t.Errorf("dropped %d", len(res2.Dropped))
	}
	all, _ = d.CACertificates(SwitchCA)
	links, _ = d.Links(SwitchCA)
	ret, _ = d.Retirements(SwitchCA)
	if len(all) != 2 || !all[1].Equal(res.New) || len(links) != 2 || len(ret) != 1 {
		t.Errorf("after the second rollover: %d CAs, %d links, %d retirements", len(all), len(links), len(ret))
	}
	if _, err := d.Rollover(RolloverOptions{Overlap: time.Hour}); err == nil || !strings.Contains(err.Error(), "again in a second") {
		t.Errorf("two rollovers in one second: %v", err)
	}
}

// FuzzParseRolloverFile reads arbitrary rollover files without panicking;
// what parses formats and parses back the same.
func FuzzParseRolloverFile(f *testing.F) {
	f.Add([]byte("# x\nretire 0A 2026-01-02T03:04:05Z\n"))
	f.Add([]byte("retire -1 x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseRolloverFile(data)
		if err != nil {
			return
		}
		back, err := ParseRolloverFile(formatRolloverFile(m))
		if err != nil || len(back) != len(m) {
			t.Fatalf("round trip: %v", err)
		}
		for k, v := range m {
			if !back[k].Equal(v.Truncate(time.Second)) {
				t.Fatalf("%s: %v became %v", k, v, back[k])
			}
		}
	})
}
