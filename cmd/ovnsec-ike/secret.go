// Secrets come from files or stdin, never from the command line: argv is
// readable by every local user (/proc/PID/cmdline, ps) and lands in shell
// history. A file others may read gets a warning.

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxSecretFile bounds what is read from a secret file or stdin.
const maxSecretFile = 64 << 10

// readSecretFile reads the file name ("-" means stdin) holding the secret
// described by what. It warns on w when the file's permissions are more
// open than 0600.
func readSecretFile(name, what string, stdin io.Reader, w io.Writer) ([]byte, error) {
	if name == "-" {
		if stdin == nil {
			return nil, fmt.Errorf("%s: no standard input to read it from", what)
		}
		return readLimited(stdin, what+" from stdin")
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil {
		warnMode(w, what, name, fi.Mode())
	}
	return readLimited(f, what+" "+name)
}

// warnMode warns when a regular file holding a secret is more open than
// 0600 (pipes such as <(...) or /dev/stdin are not checked).
func warnMode(w io.Writer, what, name string, mode os.FileMode) {
	if mode.IsRegular() && mode.Perm()&^0o600 != 0 {
		fmt.Fprintf(w, "ovnsec-ike: warning: %s %s has mode %04o, more open than 0600: other local users may read it; run chmod 600 %s\n", what, name, mode.Perm(), name)
	}
}

func readLimited(r io.Reader, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if len(b) > maxSecretFile {
		clear(b)
		return nil, fmt.Errorf("%s is larger than %d bytes; it should hold only the secret", what, maxSecretFile)
	}
	return b, nil
}

// parsePSK turns the contents of a PSK file into the key: everything up to
// the trailing line ending(s), which editors and echo add.
func parsePSK(data []byte) ([]byte, error) {
	psk := bytes.TrimRight(data, "\r\n")
	if len(psk) == 0 {
		return nil, errors.New("the file is empty; write the pre-shared key into it")
	}
	return psk, nil
}
