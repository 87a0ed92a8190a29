package creds

import (
	"strings"
	"testing"
)

func TestParseEmptyAndWrongFiles(t *testing.T) {
	if _, err := ParsePrivateKey("/k.pem", nil); err == nil || !strings.HasPrefix(err.Error(), "private key /k.pem: no PEM block found") {
		t.Errorf("empty key file: %v", err)
	}
	if _, err := ParseCertificates("/c.pem", nil); err == nil || !strings.HasPrefix(err.Error(), "certificate /c.pem: no PEM block found") {
		t.Errorf("empty certificate file: %v", err)
	}
	enc := []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n")
	if _, err := ParsePrivateKey("/k.pem", enc); err == nil || !strings.Contains(err.Error(), "encrypted PKCS#8 keys are not supported") {
		t.Errorf("encrypted key: %v", err)
	}
	req := []byte("-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n")
	if _, err := ParseCertificates("/c.pem", req); err == nil || !strings.Contains(err.Error(), "found 'CERTIFICATE REQUEST'") {
		t.Errorf("request instead of certificate: %v", err)
	}
}
