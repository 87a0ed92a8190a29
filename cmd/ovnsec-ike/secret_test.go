package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Where the PSK may come from, what wins, and when a warning is printed.
func TestPSKSources(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask
			t.Fatal(err)
		}
		return p
	}
	base := []string{"-local", "127.0.0.1", "-remote", "127.0.0.2"}
	private := write("private", "s3cret\r\n\n", 0o600)
	open := write("open", "s3cret", 0o644)
	ownerExec := write("exec", "s3cret\n", 0o700)
	empty := write("empty", "\n", 0o600)
	huge := write("huge", strings.Repeat("x", maxSecretFile+1), 0o600)
	jsonPSK := write("psk.json", `{"psk":"s3cret"}`, 0o600)
	jsonOpen := write("open.json", `{"psk":"s3cret"}`, 0o640)
	jsonFile := write("file.json", `{"psk_file":"`+private+`"}`, 0o644)
	for _, tc := range []struct {
		name    string
		args    []string
		stdin   string
		wantErr string
		warn    string
	}{
		{name: "file", args: []string{"-psk-file", private}},
		{name: "stdin", args: []string{"-psk-file", "-"}, stdin: "s3cret\n"},
		{name: "stdin without newline", args: []string{"-psk-file", "-"}, stdin: "s3cret"},
		{name: "file readable by others", args: []string{"-psk-file", open}, warn: "mode 0644, more open than 0600"},
		{name: "file executable", args: []string{"-psk-file", ownerExec}, warn: "mode 0700"},
		{name: "config psk", args: []string{"-config", jsonPSK}},
		{name: "config psk readable by group", args: []string{"-config", jsonOpen}, warn: "config file (it holds the psk) " + jsonOpen + " has mode 0640"},
		{name: "config psk_file", args: []string{"-config", jsonFile}},
		{name: "argv", args: []string{"-psk", "s3cret"}, wantErr: "-psk-file"},
		{name: "argv empty", args: []string{"-psk="}, wantErr: "visible to every local user"},
		{name: "argv with a file too", args: []string{"-psk", "s3cret", "-psk-file", private}, wantErr: "-psk: a pre-shared key on the command line"},
		{name: "both", args: []string{"-config", jsonPSK, "-psk-file", private}, wantErr: "give the pre-shared key one way"},
		{name: "empty file", args: []string{"-psk-file", empty}, wantErr: "is empty"},
		{name: "empty stdin", args: []string{"-psk-file", "-"}, wantErr: "is empty"},
		{name: "missing file", args: []string{"-psk-file", filepath.Join(dir, "nope")}, wantErr: "PSK file: open"},
		{name: "huge file", args: []string{"-psk-file", huge}, wantErr: "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errOut bytes.Buffer
			c, err := parseArgs(append(append([]string(nil), base...), tc.args...), strings.NewReader(tc.stdin), &errOut)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error shows the key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.PSK != "s3cret" {
				t.Errorf("PSK %q, want s3cret", c.PSK)
			}
			if _, p, err := c.peer(&errOut); err != nil || string(p.Auth.PSK) != "s3cret" {
				t.Errorf("peer: PSK %q, %v", p.Auth.PSK, err)
			}
			if w := errOut.String(); tc.warn == "" && w != "" || tc.warn != "" && !strings.Contains(w, tc.warn) {
				t.Errorf("stderr %q, want warning %q", w, tc.warn)
			}
		})
	}
}

// A private key file others can read gets a warning too.
func TestPrivateKeyModeWarning(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(key, []byte("not a key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	cert := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(cert, []byte("-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := Config{Local: "127.0.0.1", Remote: "127.0.0.2", Cert: cert, Key: key}
	var w bytes.Buffer
	_, _, _ = c.peer(&w)
	if !strings.Contains(w.String(), "private key "+key+" has mode 0644") {
		t.Errorf("stderr %q", w.String())
	}
}

func FuzzParsePSK(f *testing.F) {
	for _, s := range []string{"s3cret\n", "s3cret\r\n", "\n", "", "a b\tc\n\n", "\x00\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		psk, err := parsePSK(data)
		if err != nil {
			if len(bytes.TrimRight(data, "\r\n")) != 0 {
				t.Errorf("refused %q: %v", data, err)
			}
			return
		}
		if len(psk) == 0 || !bytes.HasPrefix(data, psk) || bytes.ContainsAny(psk[len(psk)-1:], "\r\n") {
			t.Errorf("parsePSK(%q) = %q", data, psk)
		}
	})
}
