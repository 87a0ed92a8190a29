// Stage: the chassis' files. The enrolled certificate, its private key
// (mode 0600, made on this host and never sent anywhere) and the CA bundle
// live under fixed paths in one directory; each is replaced atomically (a
// temporary file in the same directory, synced, renamed over the old one),
// so the credentials component and the backends never read half a file.
// The bootstrap token is read from its file on every use and never kept.

package enroll

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

// File names in the enrolment directory.
const (
	CertFileName = "chassis-cert.pem"
	KeyFileName  = "chassis-privkey.pem"
	CAFileName   = "cacert.pem"
)

// MaxTokenFileSize bounds the bootstrap token file read.
const MaxTokenFileSize = 4 << 10

// Paths are the certificate, private key and CA bundle files, as
// Open_vSwitch other_config:certificate, private_key and ca_cert name them.
type Paths struct {
	Cert, Key, CA string
}

// PathsIn are the fixed paths in the enrolment directory dir.
func PathsIn(dir string) Paths {
	return Paths{Cert: filepath.Join(dir, CertFileName), Key: filepath.Join(dir, KeyFileName), CA: filepath.Join(dir, CAFileName)}
}

// IsZero reports whether no path is set.
func (p Paths) IsZero() bool { return p == Paths{} }

// privateKey is the chassis key in memory. It is never printed or logged.
type privateKey struct{ crypto.Signer }

func (privateKey) String() string             { return "<private key>" }
func (privateKey) GoString() string           { return "<private key>" }
func (privateKey) LogValue() slog.Value       { return slog.StringValue("<private key>") }
func (privateKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, "<private key>") }

// PrepareDir creates the enrolment directory (mode 0700) if needed and
// refuses one that others may write to or read.
func PrepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("enrolment directory %s: %w; create it (mode 0700) or give another with --enroll-dir", dir, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("enrolment directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("enrolment directory %s is not a directory", dir)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("enrolment directory %s has mode %04o; it holds the chassis' private key, so others must not read or write it: chmod 700 %s", dir, st.Mode().Perm(), dir)
	}
	return nil
}

// writeFileAtomic replaces path with data, mode mode, atomically.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	return writeFilesAtomic([]fileOut{{path: path, data: data, mode: mode}})
}

// writeTemp writes o's content to a synced temporary file beside o.path
// and returns its name.
func writeTemp(o fileOut) (name string, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(o.path), "."+filepath.Base(o.path)+".tmp*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", o.path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(o.mode); err != nil {
		return "", fmt.Errorf("write %s: %w", o.path, err)
	}
	if _, err = tmp.Write(o.data); err != nil {
		return "", fmt.Errorf("write %s: %w", o.path, err)
	}
	if err = tmp.Sync(); err != nil {
		return "", fmt.Errorf("write %s: %w", o.path, err)
	}
	if err = tmp.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", o.path, err)
	}
	return tmp.Name(), nil
}

// syncDir makes renames in dir durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// ParseTokenText reads a bootstrap token file's content: the token on
// one line, surrounding white space ignored. Only printable ASCII without
// spaces is a token; errors never quote the content.
func ParseTokenText(data []byte) (Token, error) {
	t := bytes.TrimSpace(data)
	switch {
	case len(t) == 0:
		return "", errors.New("the token file is empty; write the token `ovnsec ca token create` printed into it")
	case len(t) > 512:
		return "", fmt.Errorf("the token file holds %d bytes, more than a token", len(t))
	}
	for _, b := range t {
		if b <= ' ' || b > '~' {
			return "", errors.New("the token file holds more than one token (or a non-ASCII character); write only the token `ovnsec ca token create` printed")
		}
	}
	return Token(t), nil
}

// ReadTokenFile reads the bootstrap token at path. A file that others
// may read is refused: whoever reads the token can enrol as this chassis.
func ReadTokenFile(path string) (Token, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("bootstrap token: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("bootstrap token %s: %w", path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("bootstrap token %s has mode %04o; whoever reads it can enrol as this chassis: chmod 600 %s", path, st.Mode().Perm(), path)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxTokenFileSize+1))
	if err != nil {
		return "", fmt.Errorf("bootstrap token %s: %w", path, err)
	}
	defer clear(data)
	if len(data) > MaxTokenFileSize {
		return "", fmt.Errorf("bootstrap token %s is larger than %d bytes; it should hold one token", path, MaxTokenFileSize)
	}
	tok, err := ParseTokenText(data)
	if err != nil {
		return "", fmt.Errorf("bootstrap token %s: %w", path, err)
	}
	return tok, nil
}
