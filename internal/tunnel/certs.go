// Certificate reading: the only file input of the tunnel stage. It extracts
// what ovs-monitor-ipsec needs (the subject CN) plus what ovnsec checks on
// top (SAN DNS names, validity window, version, public key, key match),
// with crypto/x509 instead of shelling out to openssl.

package tunnel

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// maxPEMSize bounds how much of a certificate or key file is read. Real
// PEM files are a few KiB; a CA bundle may be a few hundred KiB.
const maxPEMSize = 1 << 20

// Fingerprint is the SHA-256 digest of a certificate's DER encoding.
type Fingerprint [sha256.Size]byte

// CertInfo is what the tunnel stage needs to know about one certificate.
type CertInfo struct {
	// CN is the subject common name ("" when the subject has none). When
	// the subject holds several CNs it is the most specific one, the one
	// openssl prints first with -nameopt RFC2253.
	CN        string
	DNSNames  []string // subjectAltName DNS entries
	NotBefore time.Time
	NotAfter  time.Time
	Version   int // X.509 version: 1, 2 or 3
	PublicKey crypto.PublicKey
	// Fingerprint identifies the exact certificate, so that a certificate
	// replaced at the same path is noticed.
	Fingerprint Fingerprint
}

// CertReader reads certificates for the tunnel stage. FileCertReader is the
// real implementation; tests inject fakes.
type CertReader interface {
	ReadCert(path string) (CertInfo, error)
}

// KeyMatcher is implemented by CertReaders that can also check that a
// private key belongs to a certificate. Table uses it when available to
// report a mismatch that ovs-monitor-ipsec would not notice.
type KeyMatcher interface {
	KeyMatches(certPath, keyPath string) error
}

// FileCertReader reads PEM files from the local file system.
type FileCertReader struct{}

var (
	_ CertReader = FileCertReader{}
	_ KeyMatcher = FileCertReader{}
)

// ReadCert reads the first PEM CERTIFICATE block of the file at path, as
// `openssl x509 -in path` does (other blocks before it are skipped).
func (FileCertReader) ReadCert(path string) (CertInfo, error) {
	data, err := readPEMFile("certificate", path)
	if err != nil {
		return CertInfo{}, err
	}
	return ParseCertificatePEM(path, data)
}

// KeyMatches loads the private key at keyPath (PEM PKCS#1, PKCS#8 or SEC1)
// and reports an error unless its public half is the public key of the
// certificate at certPath.
func (r FileCertReader) KeyMatches(certPath, keyPath string) error {
	info, err := r.ReadCert(certPath)
	if err != nil {
		return err
	}
	data, err := readPEMFile("private key", keyPath)
	if err != nil {
		return err
	}
	key, err := ParsePrivateKeyPEM(keyPath, data)
	if err != nil {
		return err
	}
	return keyMatchesCert(key, keyPath, info.PublicKey, certPath)
}

// keyMatchesCert compares the public half of key with pub.
func keyMatchesCert(key crypto.Signer, keyPath string, pub crypto.PublicKey, certPath string) error {
	kp, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !kp.Equal(pub) {
		return fmt.Errorf("private key %s does not match certificate %s; configure the key the certificate was issued for", keyPath, certPath)
	}
	return nil
}

// readPEMFile reads at most maxPEMSize bytes of path.
func readPEMFile(what, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w; check the path and that ovnsecd may read it", what, path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPEMSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", what, path, err)
	}
	if len(data) > maxPEMSize {
		return nil, fmt.Errorf("%s %s: file larger than %d bytes; expected a PEM file", what, path, maxPEMSize)
	}
	return data, nil
}

// pemBlocks decodes every PEM block of data and returns them with the list
// of their types.
func pemBlocks(data []byte) (blocks []*pem.Block, types []string) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return blocks, types
		}
		blocks = append(blocks, b)
		types = append(types, b.Type)
	}
}

// ParseCertificatePEM parses the first PEM CERTIFICATE block of data; path
// only names the file in errors. It never panics on any input.
func ParseCertificatePEM(path string, data []byte) (CertInfo, error) {
	blocks, types := pemBlocks(data)
	if len(blocks) == 0 {
		return CertInfo{}, fmt.Errorf("certificate %s: no PEM block found; expected a PEM 'CERTIFICATE' block (-----BEGIN CERTIFICATE-----)", path)
	}
	i := slices.IndexFunc(blocks, func(b *pem.Block) bool {
		return b.Type == "CERTIFICATE" || b.Type == "X509 CERTIFICATE"
	})
	if i < 0 {
		return CertInfo{}, fmt.Errorf("certificate %s: no PEM 'CERTIFICATE' block (found %s); point the setting at the certificate file, not the key or request", path, quoteList(types))
	}
	c, err := x509.ParseCertificate(blocks[i].Bytes)
	if err != nil {
		return CertInfo{}, fmt.Errorf("certificate %s: %w; regenerate it (for example with ovs-pki)", path, err)
	}
	return CertInfo{
		CN:          c.Subject.CommonName,
		DNSNames:    c.DNSNames,
		NotBefore:   c.NotBefore,
		NotAfter:    c.NotAfter,
		Version:     c.Version,
		PublicKey:   c.PublicKey,
		Fingerprint: sha256.Sum256(c.Raw),
	}, nil
}

// ParsePrivateKeyPEM parses the first PEM private key block of data: PKCS#1
// ("RSA PRIVATE KEY"), PKCS#8 ("PRIVATE KEY") or SEC1 ("EC PRIVATE KEY").
// Other blocks, such as "EC PARAMETERS" written by openssl ecparam, are
// skipped. path only names the file in errors.
func ParsePrivateKeyPEM(path string, data []byte) (crypto.Signer, error) {
	blocks, types := pemBlocks(data)
	if len(blocks) == 0 {
		return nil, fmt.Errorf("private key %s: no PEM block found; expected a PEM 'PRIVATE KEY', 'RSA PRIVATE KEY' or 'EC PRIVATE KEY' block", path)
	}
	for _, b := range blocks {
		var (
			key any
			err error
		)
		switch b.Type {
		case "RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY":
			if _, enc := b.Headers["Proc-Type"]; enc {
				return nil, fmt.Errorf("private key %s: encrypted PEM keys are not supported; store the key unencrypted and readable only by root", path)
			}
		case "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("private key %s: encrypted PKCS#8 keys are not supported; store the key unencrypted and readable only by root", path)
		default:
			continue
		}
		switch b.Type {
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		}
		if err != nil {
			return nil, fmt.Errorf("private key %s: %s block: %w", path, b.Type, err)
		}
		switch k := key.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		default:
			return nil, fmt.Errorf("private key %s: unsupported key type %T; use an RSA, ECDSA or Ed25519 key", path, key)
		}
	}
	return nil, fmt.Errorf("private key %s: no PEM private key block (found %s); point private_key at the key file", path, quoteList(types))
}

func quoteList(types []string) string {
	q := make([]string, len(types))
	for i, t := range types {
		q[i] = "'" + t + "'"
	}
	return strings.Join(q, ", ")
}
