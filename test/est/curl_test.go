package est

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/testenv"
)

// buildOvnsec builds cmd/ovnsec into a temporary directory.
func buildOvnsec(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	bin := filepath.Join(t.TempDir(), "ovnsec")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/ovnsec")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/ovnsec: %v\n%s", err, out)
	}
	return bin
}

// work runs programs in one directory.
type work struct {
	t   *testing.T
	dir string
}

// run runs a program and returns its stdout; a failure fails the test.
func (w work) run(name string, args ...string) string {
	w.t.Helper()
	out, errOut, err := w.try(name, args...)
	if err != nil {
		w.t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func (w work) try(name string, args ...string) (string, string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = w.dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// curl runs curl with args, writing the body to file; it returns the HTTP
// status and the body.
func (w work) curl(file string, args ...string) (string, string) {
	w.t.Helper()
	all := append([]string{"-sS", "-o", file, "-w", "%{http_code}", "--cacert", "pki/switchca/cacert.pem"}, args...)
	status := w.run("curl", all...)
	body, _ := os.ReadFile(filepath.Join(w.dir, file))
	return status, string(body)
}

// certsOf reads a base64 PKCS#7 answer with openssl into a PEM file.
func (w work) certsOf(b64, pemOut string) string {
	w.t.Helper()
	w.run("openssl", "base64", "-d", "-in", b64, "-out", b64+".der")
	w.run("openssl", "pkcs7", "-inform", "DER", "-in", b64+".der", "-print_certs", "-out", pemOut)
	b, _ := os.ReadFile(filepath.Join(w.dir, pemOut))
	return string(b)
}

// request makes a key and a base64 DER request with openssl req.
func (w work) request(name, subject string, ext ...string) string {
	w.t.Helper()
	args := []string{"req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", name + "-key.pem", "-subj", subject, "-outform", "DER", "-out", name + ".der"}
	for _, e := range ext {
		args = append(args, "-addext", e)
	}
	w.run("openssl", args...)
	w.run("openssl", "base64", "-in", name+".der", "-out", name+".b64")
	return name + ".b64"
}

// serve starts `ovnsec ca serve` on 127.0.0.1 with a free port and
// returns the base URL; the server is stopped with SIGTERM at the end and
// must exit cleanly.
func serve(t *testing.T, bin, dir string, args ...string) (url string, logs func() string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"ca", "serve", "--dir", "pki", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var log bytes.Buffer
	addr := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		re := regexp.MustCompile(`msg="EST CA service listening" addr=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	logs = func() string { mu.Lock(); defer mu.Unlock(); return log.String() }
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-done
		if err := cmd.Wait(); err != nil {
			t.Errorf("ovnsec ca serve after SIGTERM: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs())
		}
	})
	select {
	case a := <-addr:
		return "https://" + a + "/.well-known/est/", logs
	case <-done:
		t.Fatalf("ovnsec ca serve ended:\n%s", logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("ovnsec ca serve did not start within a minute:\n%s", logs())
	}
	return "", nil
}

// A chassis enrols and renews with curl and openssl only, against an
// ovs-pki directory made by ovnsec pki init and the built ovnsec binary;
// the refusals a stranger's client meets say why.
func TestCurlOpenSSLEnrolment(t *testing.T) {
	testenv.Short(t)
	testenv.NeedCommands(t, "curl", "openssl", "go")
	bin := buildOvnsec(t)
	w := work{t: t, dir: t.TempDir()}
	w.run(bin, "pki", "--dir", "pki", "init")
	tok := strings.TrimSpace(w.run(bin, "ca", "token", "create", "--dir", "pki", "--chassis", "ch1"))
	if len(tok) < 40 {
		t.Fatalf("token %q", tok)
	}
	url, logs := serve(t, bin, w.dir, "--lifetime", "30d")

	// cacerts: exactly the CA of the directory.
	if st, _ := w.curl("cacerts.b64", url+"cacerts"); st != "200" {
		t.Fatalf("cacerts: %s", st)
	}
	w.certsOf("cacerts.b64", "cacerts.pem")
	if a, b := w.run("openssl", "x509", "-in", "cacerts.pem", "-noout", "-fingerprint", "-sha256"), w.run("openssl", "x509", "-in", "pki/switchca/cacert.pem", "-noout", "-fingerprint", "-sha256"); a != b {
		t.Errorf("cacerts %s is not the CA %s", a, b)
	}

	// simpleenroll with a token (HTTP Basic).
	body := w.request("ch1", "/O=Open vSwitch/CN=ch1", "subjectAltName=DNS:ch1")
	enrol := []string{"-H", "Content-Type: application/pkcs10", "--data-binary", "@" + body}
	st, ans := w.curl("ch1.p7.b64", append([]string{"-u", "ch1:" + tok}, append(enrol, url+"simpleenroll")...)...)
	if st != "200" {
		t.Fatalf("simpleenroll: %s %s", st, ans)
	}
	if pemText := w.certsOf("ch1.p7.b64", "ch1-cert.pem"); strings.Count(pemText, "BEGIN CERTIFICATE") != 1 {
		t.Fatalf("answer holds %d certificates:\n%s", strings.Count(pemText, "BEGIN CERTIFICATE"), pemText)
	}
	if got := w.run("openssl", "verify", "-CAfile", "pki/switchca/cacert.pem", "ch1-cert.pem"); got != "ch1-cert.pem: OK\n" {
		t.Errorf("openssl verify: %q", got)
	}
	text := w.run("openssl", "x509", "-in", "ch1-cert.pem", "-noout", "-subject", "-nameopt", "RFC2253", "-ext", "subjectAltName,extendedKeyUsage,keyUsage", "-serial", "-startdate", "-enddate")
	for _, want := range []string{
		"subject=CN=ch1,O=Open vSwitch\n", "DNS:ch1\n", "TLS Web Server Authentication, TLS Web Client Authentication",
		"Digital Signature",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("certificate lacks %q:\n%s", want, text)
		}
	}
	if m := regexp.MustCompile(`serial=([0-9A-F]+)`).FindStringSubmatch(text); m == nil || len(m[1]) > 32 || len(m[1]) < 20 {
		t.Errorf("serial is not 128 random bits: %v", m)
	}
	start, end := dateOf(t, text, "notBefore"), dateOf(t, text, "notAfter")
	if d := end.Sub(start); d != 30*24*time.Hour+5*time.Minute {
		t.Errorf("validity %v, want 30 days (after a 5 minute backdate)", d)
	}
	w.run(bin, "pki", "check", "ch1-cert.pem", "--key", "ch1-key.pem", "--dir", "pki", "--name", "ch1")

	// The one-time token does not work twice; a wrong one never.
	if st, ans := w.curl("again.txt", append([]string{"-u", "ch1:" + tok}, append(enrol, url+"simpleenroll")...)...); st != "401" || !strings.Contains(ans, "already used") {
		t.Errorf("token used twice: %s %s", st, ans)
	}
	if st, ans := w.curl("wrong.txt", append([]string{"-u", "ch1:" + tok[:len(tok)-4] + "AAAA"}, append(enrol, url+"simpleenroll")...)...); st != "401" || !strings.Contains(ans, "wrong token") {
		t.Errorf("wrong token: %s %s", st, ans)
	}

	// simplereenroll over mutual TLS with the current certificate.
	renew := w.request("ch1-new", "/O=Open vSwitch/CN=ch1", "subjectAltName=DNS:ch1")
	st, ans = w.curl("ch1-new.p7.b64", "--cert", "ch1-cert.pem", "--key", "ch1-key.pem", "-H", "Content-Type: application/pkcs10", "--data-binary", "@"+renew, url+"simplereenroll")
	if st != "200" {
		t.Fatalf("simplereenroll: %s %s", st, ans)
	}
	w.certsOf("ch1-new.p7.b64", "ch1-new-cert.pem")
	w.run(bin, "pki", "check", "ch1-new-cert.pem", "--key", "ch1-new-key.pem", "--dir", "pki", "--name", "ch1")
	if a, b := w.run("openssl", "x509", "-in", "ch1-cert.pem", "-noout", "-serial"), w.run("openssl", "x509", "-in", "ch1-new-cert.pem", "-noout", "-serial"); a == b {
		t.Error("the renewed certificate has the old serial")
	}
	if st, ans := w.curl("noclient.txt", "-H", "Content-Type: application/pkcs10", "--data-binary", "@"+renew, url+"simplereenroll"); st != "401" || !strings.Contains(ans, "needs mutual TLS") {
		t.Errorf("renewal without a client certificate: %s %s", st, ans)
	}
	other := w.request("ch1-other", "/C=US/O=Open vSwitch/CN=ch1", "subjectAltName=DNS:ch1")
	if st, ans := w.curl("other.txt", "--cert", "ch1-cert.pem", "--key", "ch1-key.pem", "-H", "Content-Type: application/pkcs10", "--data-binary", "@"+other, url+"simplereenroll"); st != "403" || !strings.Contains(ans, "not the current certificate's subject") {
		t.Errorf("renewal with another subject: %s %s", st, ans)
	}

	if l := w.run(bin, "ca", "token", "list", "--dir", "pki"); !regexp.MustCompile(`\bch1\s+used\s+one-time\b`).MatchString(l) {
		t.Errorf("token list:\n%s", l)
	}
	if l := logs(); strings.Count(l, `msg="certificate issued"`) != 2 || strings.Count(l, `msg="enrolment refused"`) != 4 {
		t.Errorf("server log does not show 2 issues and 4 refusals:\n%s", l)
	}
}

// dateOf reads "name=Mon _2 15:04:05 2006 GMT" from openssl x509 output.
func dateOf(t *testing.T, text, name string) time.Time {
	t.Helper()
	m := regexp.MustCompile(name + `=(.*)\n`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no %s in %q", name, text)
	}
	d, err := time.Parse("Jan _2 15:04:05 2006 MST", m[1])
	if err != nil {
		t.Fatal(err)
	}
	return d
}
