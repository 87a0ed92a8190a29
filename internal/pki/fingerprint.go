// Stage: fingerprints. ovs-pki fingerprint: a certificate's SHA-1 over its
// DER encoding (upper-case hex, no colons) or, for any other file, the
// sha1sum of the file (lower-case hex), below the file name and its
// modification time.

package pki

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"
)

// dateLayout is the output of date(1) in the C locale ("Mon Nov 23
// 00:03:32 UTC 2026"), which ovs-pki prints as the file's time.
const dateLayout = "Mon Jan _2 15:04:05 MST 2006"

// FingerprintOf returns the fingerprint ovs-pki prints for the file
// contents: SHA-1 of the first certificate's DER in upper case if the data
// contains "-BEGIN CERTIFICATE-", else SHA-1 of the data in lower case.
func FingerprintOf(data []byte) (string, error) {
	if bytes.Contains(data, []byte("-BEGIN CERTIFICATE-")) {
		certs, err := ParseCertificatesPEM(data)
		if err != nil {
			return "", err
		}
		sum := sha1.Sum(certs[0].Raw)
		return strings.ToUpper(hex.EncodeToString(sum[:])), nil
	}
	sum := sha1.Sum(data)
	return hex.EncodeToString(sum[:]), nil
}

// Fingerprint formats ovs-pki's fingerprint output for path:
//
//	<path>\t<mtime as date(1)>\n\tfingerprint <hex>\n
//
// or "\t(correct fingerprint in filename)" when path starts with it.
func Fingerprint(path string) (string, error) {
	data, err := readFile(path)
	if err != nil {
		return "", fmt.Errorf("fingerprint: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("fingerprint %s: %w", path, err)
	}
	fp, err := FingerprintOf(data)
	if err != nil {
		return "", fmt.Errorf("fingerprint %s: %w", path, err)
	}
	return FormatFingerprint(path, fi.ModTime(), fp), nil
}

// FormatFingerprint lays out ovs-pki's two fingerprint lines for a file
// shown as path, modified at mtime, with fingerprint fp.
func FormatFingerprint(path string, mtime time.Time, fp string) string {
	out := path + "\t" + mtime.Format(dateLayout) + "\n"
	if strings.HasPrefix(path, fp) {
		return out + "\t(correct fingerprint in filename)\n"
	}
	return out + "\tfingerprint " + fp + "\n"
}
