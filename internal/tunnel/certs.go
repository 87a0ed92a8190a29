// Certificate reading: the only file input of the tunnel stage, through
// internal/creds. It extracts what ovs-monitor-ipsec needs (the subject
// CN) plus what ovnsec checks on top (SAN DNS names, validity window,
// version, public key, key match), with crypto/x509 instead of shelling
// out to openssl.

package tunnel

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"log/slog"
	"time"

	"github.com/ovnsec/ovnsec/internal/creds"
)

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

// FileCertReader reads certificates and keys through a credentials store
// (internal/creds, the one reader of PEM files); the zero value uses a
// private store of its own.
type FileCertReader struct{ Store *creds.Store }

var (
	_ CertReader = FileCertReader{}
	_ KeyMatcher = FileCertReader{}
)

func (r FileCertReader) store() *creds.Store {
	if r.Store != nil {
		return r.Store
	}
	return creds.NewStore(creds.Options{Log: slog.New(slog.DiscardHandler)})
}

// ReadCert reads the first certificate of the PEM file at path, as
// `openssl x509 -in path` does (other blocks before it are skipped).
func (r FileCertReader) ReadCert(path string) (CertInfo, error) {
	certs, err := r.store().Certificates(path)
	if err != nil {
		return CertInfo{}, err
	}
	return certInfo(certs[0]), nil
}

// KeyMatches reports an error unless the private key at keyPath belongs
// to the certificate at certPath.
func (r FileCertReader) KeyMatches(certPath, keyPath string) error {
	return r.store().KeyMatches(certPath, keyPath)
}

// certInfo is what the tunnel stage keeps of a certificate.
func certInfo(c *x509.Certificate) CertInfo {
	return CertInfo{
		CN:          c.Subject.CommonName,
		DNSNames:    c.DNSNames,
		NotBefore:   c.NotBefore,
		NotAfter:    c.NotAfter,
		Version:     c.Version,
		PublicKey:   c.PublicKey,
		Fingerprint: sha256.Sum256(c.Raw),
	}
}
