// Stage: wire format of requests. simpleenroll and simplereenroll carry a
// PKCS#10 certificate request, DER encoded and then base64 encoded
// (RFC 7030 section 4.2.1; RFC 8951 says to decode base64 whatever
// Content-Transfer-Encoding says). Everything here reads bytes from the
// network and never panics on them.

package enroll

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"strings"
)

// MaxRequestBody bounds a request body. A PKCS#10 request with an RSA
// 16384-bit key is about 4.5 KiB of base64.
const MaxRequestBody = 64 << 10

// decodeBase64Body decodes base64 in which spaces and line breaks may
// appear anywhere; missing padding is accepted.
func decodeBase64Body(body []byte) ([]byte, error) {
	clean := bytes.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, body)
	if len(clean) == 0 {
		return nil, errors.New("the body is empty; send the request as base64 of its DER encoding")
	}
	if bytes.HasPrefix(clean, []byte("-----BEGIN")) {
		return nil, errors.New("the body is PEM; send base64 of the DER encoding without the -----BEGIN/END----- lines (openssl req -outform DER | base64)")
	}
	enc := base64.StdEncoding
	if len(clean)%4 != 0 {
		enc = base64.RawStdEncoding
		clean = bytes.TrimRight(clean, "=")
	}
	out, err := enc.DecodeString(string(clean))
	if err != nil {
		return nil, fmt.Errorf("the body is not base64: %w", err)
	}
	return out, nil
}

// ParseRequestBody reads a simpleenroll or simplereenroll body: base64 of
// a DER PKCS#10 request, whose self-signature must verify.
func ParseRequestBody(body []byte) (*x509.CertificateRequest, error) {
	d, err := decodeBase64Body(body)
	if err != nil {
		return nil, err
	}
	csr, err := x509.ParseCertificateRequest(d)
	if err != nil {
		return nil, fmt.Errorf("the body is not a PKCS#10 certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("the request's signature does not verify (damaged, or an unsupported key type): %w", err)
	}
	return csr, nil
}

// checkRequestType accepts the media type application/pkcs10 (any
// parameters); clients that send none are told what to send.
func checkRequestType(contentType string) error {
	if strings.TrimSpace(contentType) == "" {
		return fmt.Errorf("no Content-Type; send the request with Content-Type: %s", MediaPKCS10)
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("Content-Type %q cannot be parsed; send %s", contentType, MediaPKCS10)
	}
	if mt != MediaPKCS10 {
		return fmt.Errorf("Content-Type %s is not %s", mt, MediaPKCS10)
	}
	return nil
}
