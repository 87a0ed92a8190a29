package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cli runs ovnsec in a temporary working directory.
type cli struct {
	t   *testing.T
	dir string
}

func newCLI(t *testing.T) cli { return cli{t: t, dir: t.TempDir()} }

func (c cli) run(stdin string, args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), stdio{in: strings.NewReader(stdin), out: &out, err: &errb, dir: c.dir}, args)
	return code, out.String(), errb.String()
}

func (c cli) must(args ...string) string {
	c.t.Helper()
	code, out, errs := c.run("", args...)
	if code != 0 {
		c.t.Fatalf("ovnsec %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func (c cli) tree() map[string]string {
	c.t.Helper()
	m := map[string]string{}
	filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		v := d.Type().String()
		if !d.IsDir() {
			b, _ := os.ReadFile(p)
			v += string(b)
		}
		m[p] = v
		return nil
	})
	return m
}

func TestDispatch(t *testing.T) {
	c := newCLI(t)
	tests := []struct {
		args    []string
		code    int
		out, er string
	}{
		{nil, exitUsage, "", "usage: ovnsec COMMAND"},
		{[]string{"help"}, exitOK, "pki", ""},
		{[]string{"bogus"}, exitUsage, "", `unknown command "bogus"`},
		{[]string{"pki"}, exitUsage, "", "missing command name"},
		{[]string{"pki", "--help"}, exitOK, "req+sign NAME [TYPE]", ""},
		{[]string{"pki", "-V"}, exitOK, "ovnsec pki", ""},
		{[]string{"pki", "frob"}, exitUsage, "", "frob command unknown"},
		{[]string{"pki", "req"}, exitUsage, "", "req must have exactly one argument"},
		{[]string{"pki", "req", "a", "b"}, exitUsage, "", "req must have exactly one argument"},
		{[]string{"pki", "sign"}, exitUsage, "", "sign must have one or two arguments"},
		{[]string{"pki", "sign", "a", "router"}, exitUsage, "", "'switch' or 'controller'"},
		{[]string{"pki", "init", "x"}, exitUsage, "", "init takes no arguments"},
		{[]string{"pki", "--key", "dsa", "req", "a"}, exitUsage, "", "dsa is not supported, use rsa or ecdsa"},
		{[]string{"pki", "-D", "p.pem", "req", "a"}, exitUsage, "", "DSA keys are not supported"},
		{[]string{"pki", "--bits", "x", "req", "a"}, exitUsage, "", "--bits"},
		{[]string{"pki", "--bits", "1024", "req", "a"}, exitFailure, "", "between 2048"},
		{[]string{"pki", "--days", "0", "self-sign", "a"}, exitUsage, "", "--days"},
		{[]string{"pki", "--days", "10", "init"}, exitUsage, "", "CA is always valid for 3650 days"},
		{[]string{"pki", "--ca", "x", "req", "a"}, exitUsage, "", "--ca applies only to check"},
		{[]string{"pki", "--bits", "2048", "check", "a"}, exitUsage, "", "--bits does not apply to check"},
	}
	for _, tc := range tests {
		code, out, er := c.run("", tc.args...)
		if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(er, tc.er) {
			t.Errorf("%q: exit %d out %q err %q; want %d, %q, %q", tc.args, code, out, er, tc.code, tc.out, tc.er)
		}
	}
	if len(c.tree()) != 1 {
		t.Errorf("usage errors wrote files: %v", c.tree())
	}
}

func TestPKIWorkflow(t *testing.T) {
	c := newCLI(t)
	pkiDir := "--dir=" + filepath.Join(c.dir, "pki")
	c.must("pki", pkiDir, "--key=ecdsa", "init")
	out := c.must("pki", "req", "-u", "--key", "ecdsa", "host_1")
	if !strings.HasPrefix(out, "host_1-req.pem\t") || !strings.Contains(out, "\n\tfingerprint ") {
		t.Errorf("req output %q", out)
	}
	// sign asks for confirmation unless --batch.
	code, out, er := c.run("no\n", "pki", pkiDir, "sign", "host_1")
	if code != exitFailure || !strings.Contains(out, "Does fingerprint match? (yes/no)") || !strings.Contains(er, "Match failure, aborting") {
		t.Errorf("sign answered no: %d %q %q", code, out, er)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "host_1-cert.pem")); err == nil {
		t.Fatal("certificate written after 'no'")
	}
	if code, out, er := c.run("yes\n", "pki", pkiDir, "sign", "host_1", "switch"); code != 0 {
		t.Fatalf("sign yes: %d %q %q", code, out, er)
	}
	if out := c.must("pki", pkiDir, "verify", "host_1"); out != "host_1-cert.pem: OK\n" {
		t.Errorf("verify: %q", out)
	}
	code, out, _ = c.run("", "pki", pkiDir, "verify", "host_1", "controller")
	if code != exitFailure || !strings.Contains(out, "host_1-cert.pem: verification failed") {
		t.Errorf("verify controller: %d %q", code, out)
	}
	c.must("pki", pkiDir, "-k", "ecdsa", "--days", "90", "req+sign", "host_2")
	for _, f := range []string{"host_2-privkey.pem", "host_2-req.pem", "host_2-cert.pem"} {
		if _, err := os.Stat(filepath.Join(c.dir, f)); err != nil {
			t.Errorf("req+sign: %v", err)
		}
	}
	out = c.must("pki", "check", "host_1-cert.pem", "--key", "host_1-privkey.pem", "--ca", "pki/switchca/cacert.pem", "--name", "host_1")
	if n := strings.Count(out, "\n"); n != 11 || !strings.HasSuffix(out, "host_1-cert.pem: usable for IPsec\n") {
		t.Errorf("check output (%d lines):\n%s", n, out)
	}
	// --dir without --ca checks against the switch CA.
	out = c.must("pki", pkiDir, "check", "host_2-cert.pem")
	if !strings.Contains(out, "ok   ca ") {
		t.Errorf("check with --dir:\n%s", out)
	}
	// Defects give exit 1 with the fix on the failing line.
	code, out, _ = c.run("", "pki", "check", "host_1-cert.pem", "--key", "host_2-privkey.pem", "--name", "host_2", "--ca", "host_2-cert.pem")
	if code != exitFailure {
		t.Errorf("check defects: exit %d", code)
	}
	for _, want := range []string{"FAIL key ", "FAIL name ", "FAIL ca ", "fix: ", "3 of 10 checks failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	c.must("pki", "--key", "ecdsa", "req", "self")
	c.must("pki", "self-sign", "self", "--days", "10")
	out = c.must("pki", "check", "self-cert.pem", "--key", "self-privkey.pem", "--name", "self", "--warn-days", "20")
	if !strings.Contains(out, "WARN validity") || !strings.Contains(out, "self-signed") {
		t.Errorf("self-signed check:\n%s", out)
	}
	out = c.must("pki", "fingerprint", "self-cert.pem")
	if !strings.HasPrefix(out, "self-cert.pem\t") || !strings.Contains(out, "\tfingerprint ") {
		t.Errorf("fingerprint: %q", out)
	}
}

func TestPKIBadInputChangesNothing(t *testing.T) {
	c := newCLI(t)
	pkiDir := "--dir=" + filepath.Join(c.dir, "pki")
	c.must("pki", pkiDir, "-k", "ecdsa", "init")
	c.must("pki", pkiDir, "-k", "ecdsa", "req+sign", "a")
	os.WriteFile(filepath.Join(c.dir, "junk-req.pem"), []byte("garbage\n"), 0o644)
	c.must("pki", "-k", "ecdsa", "req", "b")
	os.WriteFile(filepath.Join(c.dir, "bad-cert.pem"), []byte("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"), 0o644)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"pki", pkiDir, "init"}, "already exists and --force not given"},
		{[]string{"pki", "--dir=nope", "-b", "sign", "b"}, "need to run 'ovnsec pki init'"},
		{[]string{"pki", "--dir=nope", "-k", "ecdsa", "req+sign", "c"}, "does not exist"},
		{[]string{"pki", pkiDir, "-k", "ecdsa", "req+sign", "a"}, "a-cert.pem already exists"},
		{[]string{"pki", "-k", "ecdsa", "req", "a"}, "a-privkey.pem already exists"},
		{[]string{"pki", pkiDir, "-b", "sign", "a"}, "a-cert.pem already exists"},
		{[]string{"pki", pkiDir, "-b", "sign", "junk"}, "no PEM certificate request"},
		{[]string{"pki", pkiDir, "-b", "sign", "missing"}, "missing-req.pem does not exist"},
		{[]string{"pki", pkiDir, "verify", "missing"}, "missing-cert.pem does not exist"},
		{[]string{"pki", "self-sign", "missing"}, "does not exist"},
		{[]string{"pki", "fingerprint", "missing"}, "missing does not exist"},
		{[]string{"pki", "fingerprint", "bad-cert.pem"}, "bad-cert.pem"},
		{[]string{"pki", "check", "bad-cert.pem"}, "FAIL parse"},
		{[]string{"pki", "check", "nope.pem"}, "nope.pem does not exist"},
	}
	for _, tc := range tests {
		before := c.tree()
		code, out, er := c.run("", tc.args...)
		if code == 0 || !strings.Contains(out+er, tc.want) {
			t.Errorf("%q: exit %d, output %q %q; want failure with %q", tc.args, code, out, er, tc.want)
		}
		after := c.tree()
		for p, v := range after {
			if before[p] != v {
				t.Errorf("%q changed %s", tc.args, p)
			}
		}
		for p := range before {
			if _, ok := after[p]; !ok {
				t.Errorf("%q removed %s", tc.args, p)
			}
		}
	}
}
