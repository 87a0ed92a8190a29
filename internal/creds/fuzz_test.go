// Fuzz targets: every credential file is operator input that may be
// anything.

package creds

import (
	"strings"
	"testing"
)

func FuzzParseCertificates(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := ParseCertificates("/f.pem", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "certificate /f.pem: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if len(certs) == 0 {
			t.Fatal("no certificates and no error")
		}
		for _, c := range certs {
			if c.Version < 1 || c.Version > 3 {
				t.Fatalf("Version = %d", c.Version)
			}
		}
	})
}

func FuzzParsePrivateKey(f *testing.F) {
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := ParsePrivateKey("/k.pem", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "private key /k.pem: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if kp, ok := key.Public().(interface{ Equal(any) bool }); ok && !kp.Equal(key.Public()) {
			t.Fatal("key's public half differs from itself")
		}
	})
}
