// Parse stage: PEM bytes to certificates and keys. Pure, fuzzed, never
// panics on any input; the path only names the file in errors.

package creds

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
)

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

func isCertBlock(t string) bool { return t == "CERTIFICATE" || t == "X509 CERTIFICATE" }

// ParseCertificates parses every PEM CERTIFICATE block of data, in file
// order: a chain (end-entity first) or a CA bundle. Blocks of other types
// are skipped, as openssl does; a file without any certificate is an
// error.
func ParseCertificates(path string, data []byte) ([]*x509.Certificate, error) {
	blocks, types := pemBlocks(data)
	if len(blocks) == 0 {
		return nil, fmt.Errorf("certificate %s: no PEM block found; expected a PEM 'CERTIFICATE' block (-----BEGIN CERTIFICATE-----)", path)
	}
	var certs []*x509.Certificate
	for _, b := range blocks {
		if !isCertBlock(b.Type) {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w; regenerate it (for example with ovnsec pki or ovs-pki)", path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("certificate %s: no PEM 'CERTIFICATE' block (found %s); point the setting at the certificate file, not the key or request", path, quoteList(types))
	}
	return certs, nil
}

// ParsePrivateKey parses the first PEM private key block of data: PKCS#1
// ("RSA PRIVATE KEY"), PKCS#8 ("PRIVATE KEY") or SEC1 ("EC PRIVATE KEY").
// Other blocks, such as "EC PARAMETERS" written by openssl ecparam, are
// skipped. Encrypted keys are refused.
func ParsePrivateKey(path string, data []byte) (crypto.Signer, error) {
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

// KeyMatches reports an error unless key's public half is cert's public
// key; the paths name the files in the error.
func KeyMatches(cert *x509.Certificate, certPath string, key crypto.Signer, keyPath string) error {
	kp, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !kp.Equal(cert.PublicKey) {
		return fmt.Errorf("private key %s does not match certificate %s; configure the key the certificate was issued for", keyPath, certPath)
	}
	return nil
}
