package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestCATokenCommands(t *testing.T) {
	c := newCLI(t)
	if code, _, errs := c.run("", "ca", "token", "create", "--dir", "pki", "--chassis", "ch1"); code != exitFailure || !strings.Contains(errs, "ovnsec pki --dir") {
		t.Errorf("token create without a CA: %d %q", code, errs)
	}
	c.must("pki", "--dir", "pki", "-k", "ecdsa", "init")
	out := c.must("ca", "token", "create", "--dir", "pki", "--chassis", "ch1", "--ttl", "2h", "--reusable")
	tok := strings.TrimSpace(out)
	if !regexp.MustCompile(`^[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$`).MatchString(tok) {
		t.Fatalf("token %q", tok)
	}
	id := tok[:16]
	b, err := os.ReadFile(filepath.Join(c.dir, "pki", "switchca", "private", "enrol-tokens"))
	if err != nil || strings.Contains(string(b), tok[17:]) {
		t.Fatalf("token file: %v\n%s", err, b)
	}
	list := c.must("ca", "token", "list", "--dir", "pki")
	if !regexp.MustCompile(id + `\s+ch1\s+valid\s+reusable\s+\S+\s+0\s+-`).MatchString(list) {
		t.Errorf("list:\n%s", list)
	}
	c.must("ca", "--dir", "pki", "token", "revoke", id)
	if list := c.must("ca", "token", "list", "--dir", "pki"); !strings.Contains(list, "revoked") {
		t.Errorf("after revoke:\n%s", list)
	}
	if code, _, errs := c.run("", "ca", "token", "revoke", "--dir", "pki", "0000000000000000"); code != exitFailure || !strings.Contains(errs, "no token") {
		t.Errorf("revoke unknown: %d %q", code, errs)
	}
}

func TestCAUsage(t *testing.T) {
	c := newCLI(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ca"}, "missing command"},
		{[]string{"ca", "bogus"}, "unknown command"},
		{[]string{"ca", "token"}, "create, list or revoke"},
		{[]string{"ca", "token", "list", "--listen", ":1"}, "--listen is not an option of token list"},
		{[]string{"ca", "token", "revoke"}, "takes 1 argument"},
		{[]string{"ca", "serve", "--chassis", "x"}, "--chassis is not an option of serve"},
	} {
		if code, _, errs := c.run("", tc.args...); code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: %d %q, want usage error with %q", tc.args, code, errs, tc.want)
		}
	}
	if code, out, _ := c.run("", "ca", "--help"); code != exitOK || !strings.Contains(out, "simplereenroll") {
		t.Errorf("help: %d %q", code, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ca", "serve", "--dir", "pki"}, "needs --listen"},
		{[]string{"ca", "serve", "--dir", "pki", "--listen", ":0", "--lifetime", "soon"}, "want a positive duration"},
		{[]string{"ca", "serve", "--dir", "pki", "--listen", ":0", "--no-check-source"}, "needs --sb-db"},
		{[]string{"ca", "serve", "--dir", "pki", "--listen", ":0", "--sb-db", "ssl:192.0.2.1:6642"}, "ssl: is not supported"},
		{[]string{"ca", "serve", "--dir", "pki", "--listen", ":0", "--cert", "x.pem"}, "go together"},
		{[]string{"ca", "serve", "--dir", "pki", "--listen", "127.0.0.1:0"}, "ovnsec pki --dir"},
		{[]string{"ca", "token", "create", "--dir", "pki"}, "needs --chassis"},
		{[]string{"ca", "token", "create", "--dir", "pki", "--chassis", "a b"}, "space"},
	} {
		if tc.want == "space" {
			c.must("pki", "--dir", "pki", "-k", "ecdsa", "init")
		}
		if code, _, errs := c.run("", tc.args...); code != exitFailure || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: %d %q, want failure with %q", tc.args, code, errs, tc.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "36h": 36 * time.Hour, "1h30m": 90 * time.Minute} {
		if got, err := parseDuration("x", in); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0d", "-1h", "d", "1.5d", "0", "99999d"} {
		if _, err := parseDuration("x", in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestCARollover(t *testing.T) {
	c := newCLI(t)
	c.must("pki", "--dir", "pki", "-k", "ecdsa", "init")
	before, _ := os.ReadFile(filepath.Join(c.dir, "pki", "switchca", "cacert.pem"))
	if code, _, errs := c.run("", "ca", "rollover", "--dir", "pki", "--overlap", "never"); code != exitFailure || !strings.Contains(errs, "positive duration") {
		t.Errorf("bad overlap: %d %q", code, errs)
	}
	time.Sleep(1100 * time.Millisecond) // the new CA's name carries the second
	out := c.must("ca", "rollover", "--dir", "pki", "--overlap", "10d")
	if !regexp.MustCompile(`(?s)new CA OVS switchca CA Certificate .* signs from now on\nold CA .* is trusted and published until \S+\n`).MatchString(out) {
		t.Errorf("rollover said %q", out)
	}
	after, _ := os.ReadFile(filepath.Join(c.dir, "pki", "switchca", "cacert.pem"))
	if strings.Count(string(after), "BEGIN CERTIFICATE") != 2 || !strings.HasSuffix(string(after), string(before)) {
		t.Errorf("cacert.pem is not the new CA followed by the old one")
	}
}
