// The static keys come from a key file or stdin, never from the command
// line: argv is readable by every local user (/proc/PID/cmdline, ps) and
// lands in shell history. A key file others may read gets a warning.
//
// Key file format, one key per line, '#' starts a comment line:
//
//	key-out <hex>   outbound AES-GCM key+salt: 40 (AES-128) or 72 (AES-256) digits
//	key-in  <hex>   inbound AES-GCM key+salt

package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ovnsec/ovnsec/internal/esp"
)

// maxKeyFile bounds what is read from a key file or stdin.
const maxKeyFile = 4 << 10

// readKeyFile reads and parses the key file name ("-" means stdin),
// warning on w when its permissions are more open than 0600.
func readKeyFile(name string, stdin io.Reader, w io.Writer) (out, in esp.Key, err error) {
	var r io.Reader = stdin
	what := "key file from stdin"
	if name != "-" {
		what = "key file " + name
		f, err := os.Open(name)
		if err != nil {
			return out, in, fmt.Errorf("--key-file: %w", err)
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&^0o600 != 0 {
			fmt.Fprintf(w, "ovnsec-esp: warning: key file %s has mode %04o, more open than 0600: other local users may read the keys; run chmod 600 %s\n", name, fi.Mode().Perm(), name)
		}
		r = f
	} else if stdin == nil {
		return out, in, errors.New("--key-file -: no standard input to read the keys from")
	}
	data, err := io.ReadAll(io.LimitReader(r, maxKeyFile+1))
	defer clear(data)
	if err != nil {
		return out, in, fmt.Errorf("read %s: %w", what, err)
	}
	if len(data) > maxKeyFile {
		return out, in, fmt.Errorf("%s is larger than %d bytes; it should hold only the key-out and key-in lines", what, maxKeyFile)
	}
	out, in, err = parseKeyFile(data)
	if err != nil {
		return out, in, fmt.Errorf("%s: %w", what, err)
	}
	return out, in, nil
}

// parseKeyFile parses the key-out and key-in lines. Errors never show the
// file's contents (they may be keys), and on error no key is kept.
func parseKeyFile(data []byte) (out, in esp.Key, err error) {
	defer func() {
		if err != nil {
			out.Zero()
			in.Zero()
		}
	}()
	var haveOut, haveIn bool
	for n, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		f := bytes.Fields(line)
		if len(f) != 2 {
			return out, in, fmt.Errorf("line %d: want \"key-out HEX\" or \"key-in HEX\"", n+1)
		}
		var dst *esp.Key
		var have *bool
		switch string(f[0]) {
		case "key-out":
			dst, have = &out, &haveOut
		case "key-in":
			dst, have = &in, &haveIn
		default:
			return out, in, fmt.Errorf("line %d: unknown name; want key-out or key-in", n+1)
		}
		if *have {
			return out, in, fmt.Errorf("line %d: %s given twice", n+1, f[0])
		}
		if *dst, err = parseKey(string(f[0]), f[1]); err != nil {
			return out, in, fmt.Errorf("line %d: %w", n+1, err)
		}
		*have = true
	}
	switch {
	case !haveOut && !haveIn:
		return out, in, errors.New("no keys: write a key-out and a key-in line")
	case !haveOut:
		return out, in, errors.New("no key-out line")
	case !haveIn:
		return out, in, errors.New("no key-in line")
	}
	return out, in, nil
}

// parseKey decodes one hex key+salt.
func parseKey(name string, s []byte) (esp.Key, error) {
	raw := make([]byte, hex.DecodedLen(len(s)))
	defer clear(raw)
	if _, err := hex.Decode(raw, s); err != nil {
		return esp.Key{}, fmt.Errorf("%s is not hex (40 or 72 hex digits)", name)
	}
	k, err := esp.NewKey(raw)
	if err != nil {
		return esp.Key{}, fmt.Errorf("%s: %w", name, err)
	}
	return k, nil
}
