package enroll

import (
	"bytes"
	"crypto/x509"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/ovnsec/ovnsec/internal/pki"
)

// FuzzCABundle reads arbitrary cacerts answers as the chassis does: no
// panic, and the bundle holds only self-signed CA certificates, each once.
func FuzzCABundle(f *testing.F) {
	dir := newPKI(f)
	if _, err := (pki.Dir{Path: dir}).Rollover(pki.RolloverOptions{Overlap: time.Hour}); err != nil {
		f.Fatal(err)
	}
	set, err := NewDirStore(dir, nil).CAs()
	if err != nil {
		f.Fatal(err)
	}
	all, _ := EncodeCertsOnlyBase64(set.Published())
	f.Add(all)
	one, _ := EncodeCertsOnlyBase64(set.Published()[:1])
	f.Add(one)
	leaf, _ := issueDirect(f, dir, "ch1", time.Now(), time.Hour)
	withLeaf, _ := EncodeCertsOnlyBase64([]*x509.Certificate{leaf, set.Trusted[0]})
	f.Add(withLeaf)
	f.Add([]byte("MAA="))
	f.Fuzz(func(t *testing.T, body []byte) {
		certs, err := ParseCertsOnlyBase64(body)
		if err != nil {
			return
		}
		b := CABundle(certs)
		for i, c := range b {
			if !c.IsCA || !bytes.Equal(c.RawSubject, c.RawIssuer) || c.CheckSignatureFrom(c) != nil {
				t.Fatalf("bundle entry %d is not a self-signed CA", i)
			}
			for _, d := range b[:i] {
				if d.Equal(c) {
					t.Fatal("a CA is in the bundle twice")
				}
			}
		}
		if len(b) > 0 && !sameBundle(CABundle(b), b) {
			t.Fatal("CABundle is not stable")
		}
	})
}

// FuzzReasonText: a refusal body of any bytes becomes one short line of
// printable text.
func FuzzReasonText(f *testing.F) {
	f.Add([]byte("refused: bootstrap token refused: token 0123 is one-time and was already used\n"))
	f.Add([]byte("\x1b]0;owned\x07\r\nX"))
	f.Add([]byte{0xff, 0xfe, 0xfd})
	f.Fuzz(func(t *testing.T, body []byte) {
		s := ReasonText(body)
		if s == "" || len([]rune(s)) > maxReasonLen+3 {
			t.Fatalf("reason %q", s)
		}
		for _, r := range s {
			if !unicode.IsPrint(r) {
				t.Fatalf("reason %q holds %U", s, r)
			}
		}
		if strings.HasPrefix(s, " ") || strings.HasSuffix(s, " ") || strings.Contains(s, "  ") {
			t.Fatalf("reason %q is not trimmed", s)
		}
	})
}

// FuzzParseTokenText reads arbitrary token files: what is accepted is one
// word of printable ASCII that round-trips.
func FuzzParseTokenText(f *testing.F) {
	f.Add([]byte("0123456789abcdef.c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2Vj\n"))
	f.Add([]byte("  \n"))
	f.Add([]byte("a b\n"))
	f.Add([]byte("é"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := ParseTokenText(data)
		if err != nil {
			if strings.Contains(err.Error(), string(bytes.TrimSpace(data))) && len(bytes.TrimSpace(data)) > 3 {
				t.Fatalf("the error quotes the file: %v", err)
			}
			return
		}
		s := tok.Secret()
		if s == "" || len(s) > 512 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r > '~' }) {
			t.Fatalf("accepted %q", s)
		}
		if again, err := ParseTokenText([]byte(s)); err != nil || again != tok {
			t.Fatalf("round trip: %q, %v", again, err)
		}
		if strings.Contains(tok.String(), s) && strings.Contains(s, ".") && !strings.HasSuffix(s, ".") {
			t.Fatalf("String() shows the secret: %q", tok.String())
		}
	})
}

// FuzzParseFingerprint: what is accepted formats back to itself.
func FuzzParseFingerprint(f *testing.F) {
	f.Add("sha256 Fingerprint=AB:" + strings.Repeat("00:", 30) + "CD")
	f.Add(strings.Repeat("ab", 32))
	f.Add("sha256:")
	f.Fuzz(func(t *testing.T, s string) {
		fp, err := ParseFingerprint(s)
		if err != nil {
			return
		}
		if again, err := ParseFingerprint(fp.String()); err != nil || again != fp {
			t.Fatalf("round trip of %q: %v, %v", s, again, err)
		}
	})
}
