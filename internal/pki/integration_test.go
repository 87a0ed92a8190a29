// Interoperability with the real openssl and ovs-pki (Debian
// openvswitch-pki): certificates we make verify with both, ovs-pki's CA
// signs our requests and ours signs its requests, and ovs-pki keeps
// working on a directory we created.

package pki

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/testenv"
)

// tools runs openssl and ovs-pki in a working directory, logging ovs-pki
// into it instead of /var/log/openvswitch.
type tools struct {
	t    *testing.T
	work string
}

func needTools(t *testing.T) tools {
	t.Helper()
	testenv.Short(t)
	testenv.NeedCommands(t, "openssl", "ovs-pki")
	return tools{t: t, work: t.TempDir()}
}

func (x tools) run(name string, args ...string) (string, error) {
	x.t.Helper()
	if name == "ovs-pki" {
		args = append([]string{"--log=" + filepath.Join(x.work, "ovs-pki.log")}, args...)
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = x.work
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (x tools) must(name string, args ...string) string {
	x.t.Helper()
	out, err := x.run(name, args...)
	if err != nil {
		x.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func (x tools) checkOK(name, ca string) {
	x.t.Helper()
	f := FilesFor(x.work, name)
	rep := Check(f.Cert, CheckOptions{KeyPath: f.Key, CAPath: ca, Name: name})
	if !rep.OK() {
		x.t.Errorf("check %s: %v", name, rep.Err())
	}
}

// Acceptance 1: our certificates pass openssl verify and ovs-pki verify.
func TestOursVerifiesWithOpenSSLAndOVSPKI(t *testing.T) {
	x := needTools(t)
	for _, spec := range []KeySpec{fastRSA, {Type: KeyECDSA}} {
		pki := filepath.Join(x.work, "pki-"+string(spec.Type))
		d := Dir{Path: pki}
		if err := d.Init(InitOptions{Key: spec}); err != nil {
			t.Fatal(err)
		}
		name := "ch-" + string(spec.Type)
		if _, err := Req(x.work, name, ReqOptions{Key: spec}, Env{}); err != nil {
			t.Fatal(err)
		}
		f := FilesFor(x.work, name)
		if _, err := d.Sign(f.Req, f.Cert, SignOptions{}); err != nil {
			t.Fatal(err)
		}
		ca := d.CACertPath(SwitchCA)
		if out := x.must("openssl", "verify", "-CAfile", ca, name+"-cert.pem"); out != name+"-cert.pem: OK\n" {
			t.Errorf("openssl verify: %q", out)
		}
		if out := x.must("ovs-pki", "--dir="+pki, "verify", name); out != name+"-cert.pem: OK\n" {
			t.Errorf("ovs-pki verify: %q", out)
		}
		if _, err := x.run("ovs-pki", "--dir="+pki, "verify", name, "controller"); err == nil {
			t.Errorf("ovs-pki verify against the controller CA succeeded")
		}
		// openssl reads our key and request, and the CA's key.
		x.must("openssl", "pkey", "-in", name+"-privkey.pem", "-noout")
		x.must("openssl", "req", "-in", name+"-req.pem", "-verify", "-noout")
		x.must("openssl", "pkey", "-in", d.CAKeyPath(SwitchCA), "-noout")
		// openssl sees SAN and key usage as we intend.
		text := x.must("openssl", "x509", "-in", name+"-cert.pem", "-noout", "-text")
		for _, want := range []string{"Version: 3 (0x2)", "DNS:" + name, "Digital Signature", "CA:FALSE", "Subject: C = US, ST = CA, O = Open vSwitch, OU = Open vSwitch certifier, CN = " + name} {
			if !strings.Contains(text, want) {
				t.Errorf("openssl x509 -text lacks %q", want)
			}
		}
		if spec.Type == KeyRSA && !strings.Contains(text, "sha512WithRSAEncryption") {
			t.Error("RSA certificate not signed with sha512WithRSAEncryption")
		}
		x.checkOK(name, ca)
	}
	// Self-signed: openssl accepts it as its own trust anchor.
	if _, err := Req(x.work, "host_1", ReqOptions{Key: fastRSA}, Env{}); err != nil {
		t.Fatal(err)
	}
	if _, err := SelfSign(x.work, "host_1", SelfSignOptions{}, Env{}); err != nil {
		t.Fatal(err)
	}
	x.must("openssl", "verify", "-CAfile", "host_1-cert.pem", "host_1-cert.pem")
	x.checkOK("host_1", "")
}

// Acceptance 2a: ovs-pki's CA signs a request made by us.
func TestOVSPKISignsOurRequest(t *testing.T) {
	x := needTools(t)
	pki := filepath.Join(x.work, "ovs-pki-dir")
	x.must("ovs-pki", "--dir="+pki, "-B", "2048", "init")
	for _, spec := range []KeySpec{fastRSA, {Type: KeyECDSA}} {
		name := "ours-" + string(spec.Type)
		if _, err := Req(x.work, name, ReqOptions{Key: spec}, Env{}); err != nil {
			t.Fatal(err)
		}
		x.must("ovs-pki", "--dir="+pki, "-b", "sign", name, "switch")
		x.must("ovs-pki", "--dir="+pki, "verify", name)
		x.checkOK(name, filepath.Join(pki, "switchca/cacert.pem"))
	}
	// And our sign keeps using ovs-pki's directory after it.
	if _, err := Req(x.work, "ours-3", ReqOptions{Key: fastRSA}, Env{}); err != nil {
		t.Fatal(err)
	}
	f := FilesFor(x.work, "ours-3")
	d := Dir{Path: pki}
	res, err := d.Sign(f.Req, f.Cert, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := FormatSerial(res.Cert.SerialNumber); got != "04" {
		t.Errorf("serial %s after ovs-pki issued 01..03", got)
	}
	x.checkOK("ours-3", d.CACertPath(SwitchCA))
	x.must("openssl", "verify", "-CAfile", d.CACertPath(SwitchCA), "ours-3-cert.pem")
}

// Acceptance 2b: our CA signs a request made by ovs-pki req -u, and an
// ovs-pki req without -u is signed with a warning that check then fails.
func TestWeSignOVSPKIRequest(t *testing.T) {
	x := needTools(t)
	d := Dir{Path: filepath.Join(x.work, "pki")}
	if err := d.Init(InitOptions{Key: fastRSA}); err != nil {
		t.Fatal(err)
	}
	x.must("ovs-pki", "-u", "-B", "2048", "req", "theirs")
	f := FilesFor(x.work, "theirs")
	res, err := d.Sign(f.Req, f.Cert, SignOptions{Days: 30})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("warnings: %v", res.Warnings)
	}
	x.must("ovs-pki", "--dir="+d.Path, "verify", "theirs")
	x.must("openssl", "verify", "-CAfile", d.CACertPath(SwitchCA), "theirs-cert.pem")
	rep := Check(f.Cert, CheckOptions{KeyPath: f.Key, CAPath: d.CACertPath(SwitchCA), Name: "theirs", WarnDays: -1})
	if !rep.OK() {
		t.Errorf("check: %v", rep.Err())
	}

	x.must("ovs-pki", "-B", "2048", "req", "legacy")
	f = FilesFor(x.work, "legacy")
	res, err = d.Sign(f.Req, f.Cert, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(res.Warnings, "|"), "without -u") {
		t.Errorf("no warning for a CN with id suffix: %v", res.Warnings)
	}
	rep = Check(f.Cert, CheckOptions{KeyPath: f.Key, CAPath: d.CACertPath(SwitchCA), Name: "legacy"})
	if r, _ := rep.Result(CheckCN); r.Status != StatusFail {
		t.Errorf("cn check on %q: %s", res.Cert.Subject.CommonName, r)
	}
}

// ovs-pki sign (openssl ca) works on a directory we made: ca.cnf, index.txt,
// serial and the key are all understood, and the serials interleave.
func TestOVSPKISignsWithOurDir(t *testing.T) {
	x := needTools(t)
	d := Dir{Path: filepath.Join(x.work, "pki")}
	if err := d.Init(InitOptions{Key: fastRSA}); err != nil {
		t.Fatal(err)
	}
	if _, err := Req(x.work, "a", ReqOptions{Key: fastRSA}, Env{}); err != nil {
		t.Fatal(err)
	}
	x.must("ovs-pki", "--dir="+d.Path, "-b", "sign", "a")
	x.checkOK("a", d.CACertPath(SwitchCA))
	if _, err := Req(x.work, "b", ReqOptions{Key: fastRSA}, Env{}); err != nil {
		t.Fatal(err)
	}
	f := FilesFor(x.work, "b")
	res, err := d.Sign(f.Req, f.Cert, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := FormatSerial(res.Cert.SerialNumber); got != "03" {
		t.Errorf("serial %s, want 03 after ovs-pki issued 02", got)
	}
	idx, err := os.ReadFile(filepath.Join(d.CADir(SwitchCA), "index.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(idx), "\n"); n != 3 {
		t.Errorf("index.txt has %d lines:\n%s", n, idx)
	}
	// ovs-pki req+sign also works on our dir.
	x.must("ovs-pki", "--dir="+d.Path, "-u", "-B", "2048", "req+sign", "c")
	x.checkOK("c", d.CACertPath(SwitchCA))
	// An ECDSA CA works with openssl ca too.
	e := Dir{Path: filepath.Join(x.work, "pki-ec")}
	if err := e.Init(InitOptions{Key: KeySpec{Type: KeyECDSA}}); err != nil {
		t.Fatal(err)
	}
	if _, err := Req(x.work, "e", ReqOptions{Key: KeySpec{Type: KeyECDSA}}, Env{}); err != nil {
		t.Fatal(err)
	}
	x.must("ovs-pki", "--dir="+e.Path, "-b", "sign", "e", "controller")
	x.checkOK("e", e.CACertPath(ControllerCA))
	if _, err := x.run("ovs-pki", "--dir="+e.Path, "verify", "e", "controller"); err != nil {
		t.Error("ovs-pki verify with our ECDSA controller CA failed")
	}
}

// fingerprint output is byte for byte ovs-pki's.
func TestFingerprintMatchesOVSPKI(t *testing.T) {
	x := needTools(t)
	if _, err := Req(x.work, "fp", ReqOptions{Key: KeySpec{Type: KeyECDSA}}, Env{}); err != nil {
		t.Fatal(err)
	}
	if _, err := SelfSign(x.work, "fp", SelfSignOptions{}, Env{}); err != nil {
		t.Fatal(err)
	}
	x.must("ovs-pki", "-u", "-B", "2048", "req", "theirs")
	f, g := FilesFor(x.work, "fp"), FilesFor(x.work, "theirs")
	for _, p := range []string{f.Cert, f.Req, f.Key, g.Req} {
		want := x.must("ovs-pki", "fingerprint", p)
		got, err := Fingerprint(p)
		if err != nil || got != want {
			t.Errorf("fingerprint %s: we say %q (%v), ovs-pki says %q", filepath.Base(p), got, err, want)
		}
	}
}

// The RFC 2253 subject we compute for ovs-monitor-ipsec's CN extraction is
// what openssl prints.
func TestRFC2253MatchesOpenSSL(t *testing.T) {
	x := needTools(t)
	ca := newTestCA(t, "ca")
	key := ecKey(t)
	for i, cn := range []string{"ch1", "a,b", "a+b;c", "é", " x ", "#x", `q"\<>`} {
		p := writeTestFile(t, x.work, "c.pem", ca.issue(t, leafSpec{cn: cn, onlyCN: i%2 == 1, notBefore: time.Now().Add(-time.Hour), notAfter: time.Now().Add(time.Hour)}, key))
		out := x.must("openssl", "x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", p)
		certs, err := LoadCertificates(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := RFC2253Subject(certs[0])
		if err != nil {
			t.Fatal(err)
		}
		if "subject="+got+"\n" != out {
			t.Errorf("CN %q: we say %q, openssl says %q", cn, got, out)
		}
	}
}

// ovs-pki sign (openssl ca with copy_extensions = copy) copies every
// subjectAltName of a request; ovnsec pki sign refuses the same request
// (docs/PKI.md, "Differences from ovs-pki"). This pins the documented
// difference to the installed ovs-pki.
func TestOVSPKICopiesExtraSANs(t *testing.T) {
	x := needTools(t)
	pki := filepath.Join(x.work, "ovs-pki-dir")
	x.must("ovs-pki", "--dir="+pki, "-B", "2048", "init")
	req := writeSANRequest(t, x.work, "chassis-1-req.pem", sanReq{dns: []string{"chassis-1", "chassis-2"}})
	x.must("ovs-pki", "--dir="+pki, "-b", "sign", "chassis-1", "switch")
	certs, err := LoadCertificates(FilesFor(x.work, "chassis-1").Cert)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(certs[0].DNSNames, ","); got != "chassis-1,chassis-2" {
		t.Errorf("ovs-pki sign issued SAN DNS %q; docs/PKI.md says it copies chassis-1,chassis-2", got)
	}
	d := Dir{Path: pki}
	if _, err := d.Sign(req, filepath.Join(x.work, "ours-cert.pem"), SignOptions{}); err == nil || !strings.Contains(err.Error(), "DNS:chassis-2") {
		t.Errorf("ovnsec sign in ovs-pki's directory: %v, want a refusal naming DNS:chassis-2", err)
	}
}
