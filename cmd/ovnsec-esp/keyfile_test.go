package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var (
	testKey20 = strings.Repeat("ab", 20)
	testKey36 = strings.Repeat("cd", 36)
)

func TestParseKeyFile(t *testing.T) {
	for _, tc := range []struct {
		name, data    string
		outLen, inLen int
		wantErr       string
	}{
		{name: "plain", data: "key-out " + testKey20 + "\nkey-in " + testKey36 + "\n", outLen: 20, inLen: 36},
		{name: "comments, blanks, CRLF, tabs, any order", data: "# keys\r\n\r\n\tkey-in\t" + testKey20 + "\r\nkey-out   " + testKey36, outLen: 36, inLen: 20},
		{name: "empty", data: "", wantErr: "no keys"},
		{name: "only comments", data: "# nothing\n", wantErr: "no keys"},
		{name: "no key-in", data: "key-out " + testKey20, wantErr: "no key-in line"},
		{name: "no key-out", data: "key-in " + testKey20, wantErr: "no key-out line"},
		{name: "twice", data: "key-out " + testKey20 + "\nkey-out " + testKey20, wantErr: "line 2: key-out given twice"},
		{name: "bare hex", data: testKey20 + "\n", wantErr: "line 1: want"},
		{name: "flag syntax", data: "--key-out=" + testKey20, wantErr: "line 1: want"},
		{name: "three fields", data: "key-out " + testKey20 + " x", wantErr: "line 1: want"},
		{name: "unknown name", data: testKey36 + " " + testKey20, wantErr: "line 1: unknown name"},
		{name: "not hex", data: "key-out " + strings.Repeat("zz", 20) + "\nkey-in " + testKey20, wantErr: "key-out is not hex"},
		{name: "odd digits", data: "key-in " + testKey20 + "a\nkey-out " + testKey20, wantErr: "key-in is not hex"},
		{name: "short key", data: "key-out abcd\nkey-in " + testKey20, wantErr: "key-out: esp key: 2 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, in, err := parseKeyFile([]byte(tc.data))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "abab") || strings.Contains(err.Error(), "cdcd") || strings.Contains(err.Error(), "zzzz") {
					t.Errorf("error shows key material: %v", err)
				}
				if out.Len() != 0 || in.Len() != 0 {
					t.Errorf("keys kept after an error: %d, %d bytes", out.Len(), in.Len())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.Len() != tc.outLen || in.Len() != tc.inLen {
				t.Errorf("key lengths out %d in %d, want %d %d", out.Len(), in.Len(), tc.outLen, tc.inLen)
			}
		})
	}
}

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	data := "key-out " + testKey20 + "\nkey-in " + testKey36 + "\n"
	write := func(name string, mode os.FileMode, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, file, stdin string
		warn, wantErr     string
	}{
		{name: "0600 file", file: write("private", 0o600, data)},
		{name: "0400 file", file: write("readonly", 0o400, data)},
		{name: "group-readable file", file: write("group", 0o640, data), warn: "has mode 0640, more open than 0600"},
		{name: "world-readable file", file: write("world", 0o644, data), warn: "run chmod 600"},
		{name: "stdin", file: "-", stdin: data},
		{name: "empty stdin", file: "-", wantErr: "key file from stdin: no keys"},
		{name: "missing", file: filepath.Join(dir, "nope"), wantErr: "--key-file: open"},
		{name: "bad contents", file: write("bad", 0o600, "key-out 00\n"), wantErr: "key file " + filepath.Join(dir, "bad") + ": line 1"},
		{name: "huge", file: write("huge", 0o600, strings.Repeat("#", maxKeyFile+1)), wantErr: "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w bytes.Buffer
			out, in, err := readKeyFile(tc.file, strings.NewReader(tc.stdin), &w)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.Len() != 20 || in.Len() != 36 {
				t.Errorf("key lengths %d %d", out.Len(), in.Len())
			}
			if got := w.String(); tc.warn == "" && got != "" || tc.warn != "" && !strings.Contains(got, tc.warn) {
				t.Errorf("warnings %q, want %q", got, tc.warn)
			}
		})
	}
	if _, _, err := readKeyFile("-", nil, &bytes.Buffer{}); err == nil {
		t.Error("read keys from a nil stdin")
	}
}

// FuzzParseKeyFile feeds arbitrary key file contents to the parser: it
// must not panic, must return both keys or an error with none kept, and
// its errors must not repeat the input.
func FuzzParseKeyFile(f *testing.F) {
	f.Add([]byte("key-out " + testKey20 + "\nkey-in " + testKey36 + "\n"))
	f.Add([]byte("# c\r\nkey-in " + testKey20 + "\r\nkey-out " + testKey20))
	f.Add([]byte("key-out zz\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, in, err := parseKeyFile(data)
		if err != nil {
			if out.Len() != 0 || in.Len() != 0 {
				t.Errorf("keys kept after error %v", err)
			}
			return
		}
		for _, k := range []int{out.Len(), in.Len()} {
			if k != 20 && k != 36 {
				t.Errorf("key of %d bytes accepted", k)
			}
		}
	})
}
