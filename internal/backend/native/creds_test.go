package native

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/creds"
	"github.com/ovnsec/ovnsec/internal/ike"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// credFiles writes a CA and a certificate/key for cn under dir.
type credFiles struct {
	dir               string
	ca                *x509.Certificate
	caKey             crypto.Signer
	cert, key, bundle string
}

func newCredFiles(t *testing.T) *credFiles {
	t.Helper()
	f := &credFiles{dir: t.TempDir()}
	f.caKey = genKey(t)
	f.ca = signCert(t, "CA", true, f.caKey, nil, nil)
	f.cert, f.key, f.bundle = filepath.Join(f.dir, "cert.pem"), filepath.Join(f.dir, "key.pem"), filepath.Join(f.dir, "ca.pem")
	writePEMFile(t, f.bundle, "CERTIFICATE", f.ca.Raw)
	f.renew(t, "hv1", true, true)
	return f
}

// renew issues a new certificate for cn with a new key and writes the
// certificate and/or the key (atomically, as a renewal does).
func (f *credFiles) renew(t *testing.T, cn string, cert, key bool) *x509.Certificate {
	t.Helper()
	k := genKey(t)
	c := signCert(t, cn, false, k, f.ca, f.caKey)
	if key {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		writePEMFile(t, f.key, "PRIVATE KEY", der)
	}
	if cert {
		writePEMFile(t, f.cert, "CERTIFICATE", c.Raw)
	}
	return c
}

func genKey(t *testing.T) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signCert(t *testing.T, cn string, isCA bool, key crypto.Signer, parent *x509.Certificate, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: isCA, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func writePEMFile(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// A certificate renewed under the same paths reaches the engine's peer
// (UpdateCredentials) without the tunnel being configured again; a half
// done renewal (certificate without its key) waits for the key.
func TestRenewedCredentialsReachTheEngine(t *testing.T) {
	files := newCredFiles(t)
	store := creds.NewStore(creds.Options{Log: slog.New(slog.DiscardHandler)})
	eng := newFakeIKE()
	b, err := newBackend(Config{
		Local: local, Bridge: "br-phy", Creds: store, Log: slog.New(slog.DiscardHandler),
		NewIKE: func(ike.Config) (IKE, error) { return eng, nil },
	}, &fakeAtt{}, newChanDev(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(ctx, false) })
	tt := geneveTunnel(1)
	tt.Auth, tt.PSK = tunnel.AuthCASigned, tunnel.Secret{}
	tt.Certificate, tt.PrivateKey, tt.CACert, tt.LocalName, tt.RemoteName = files.cert, files.key, files.bundle, "hv1", "hv2"
	if err := b.Ensure(ctx, tt); err != nil {
		t.Fatal(err)
	}
	peerName := eng.added[0]
	updated := func() (ike.Auth, bool) {
		eng.mu.Lock()
		defer eng.mu.Unlock()
		a, ok := eng.updated[peerName]
		return a, ok
	}

	// Half a renewal: the certificate of a new key, the old key still.
	files.renew(t, "hv1", true, false)
	store.Refresh()
	waitUntil(t, "status says why the renewal waits", func() bool {
		st, _ := b.Status(ctx)
		return strings.Contains(strings.Join(st[tt.Name].Details, "\n"), "does not match")
	})
	if _, ok := updated(); ok {
		t.Fatal("a certificate was applied without its key")
	}

	// The whole renewal: applied, and nothing else happened to the peer.
	renewed := files.renew(t, "hv1", true, true)
	store.Refresh()
	waitUntil(t, "renewed credentials reach the engine", func() bool {
		a, ok := updated()
		return ok && len(a.Cert) > 0 && a.Cert[0].Equal(renewed)
	})
	if len(eng.added) != 1 || len(eng.removed) != 0 {
		t.Errorf("the tunnel was configured again: added %v removed %v", eng.added, eng.removed)
	}
	st, _ := b.Status(ctx)
	if strings.Contains(strings.Join(st[tt.Name].Details, "\n"), "Credentials:") {
		t.Errorf("status still reports a pending renewal: %v", st[tt.Name].Details)
	}
}
