package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovnsec/ovnsec/internal/testenv"
)

// The CLI end to end against the real ovs-pki and openssl, in one working
// directory: our certificates pass ovs-pki verify and openssl verify,
// ovs-pki signs our request in our directory, and fingerprint output is
// identical for relative names.
func TestCLIWithOVSPKI(t *testing.T) {
	testenv.Short(t)
	testenv.NeedCommands(t, "openssl", "ovs-pki")
	c := newCLI(t)
	sh := func(name string, args ...string) string {
		t.Helper()
		if name == "ovs-pki" {
			args = append([]string{"--log=" + filepath.Join(c.dir, "ovs-pki.log")}, args...)
		}
		cmd := exec.Command(name, args...)
		cmd.Dir = c.dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	pkiDir := filepath.Join(c.dir, "pki")
	c.must("pki", "--dir", pkiDir, "-B", "2048", "init")
	c.must("pki", "--dir", pkiDir, "-B", "2048", "req+sign", "ch1")
	if out := sh("ovs-pki", "--dir="+pkiDir, "verify", "ch1"); out != "ch1-cert.pem: OK\n" {
		t.Errorf("ovs-pki verify: %q", out)
	}
	if out := sh("openssl", "verify", "-CAfile", "pki/switchca/cacert.pem", "ch1-cert.pem"); out != "ch1-cert.pem: OK\n" {
		t.Errorf("openssl verify: %q", out)
	}
	c.must("pki", "-k", "ecdsa", "req", "ch2")
	sh("ovs-pki", "--dir="+pkiDir, "-b", "sign", "ch2")
	c.must("pki", "check", "ch2-cert.pem", "--key", "ch2-privkey.pem", "--name", "ch2", "--dir", pkiDir)
	for _, f := range []string{"ch1-cert.pem", "ch2-req.pem", "ch2-cert.pem"} {
		if ours, theirs := c.must("pki", "fingerprint", f), sh("ovs-pki", "fingerprint", f); ours != theirs {
			t.Errorf("fingerprint %s: ours %q, ovs-pki %q", f, ours, theirs)
		}
	}
}
