// Test harness: two network namespaces (sswt-a, sswt-b) joined by a veth
// pair on 192.0.2.0/24 with a private charon in each (test/netns), and test
// certificates made with crypto/x509.

package strongswan

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strongswan/govici/vici"

	"github.com/ovnsec/ovnsec/internal/testenv"
	"github.com/ovnsec/ovnsec/test/netns"
)

// host is one namespace with its charon (from the shared test/netns
// harness).
type host struct {
	t      *testing.T
	ns     string
	ip     string
	socket string // VICI URI
	charon *netns.Charon
}

// newPair creates sswt-a (192.0.2.1) and sswt-b (192.0.2.2) with a charon
// each. Everything is removed in t.Cleanup.
func newPair(t *testing.T) (a, b *host) {
	t.Helper()
	testenv.Short(t)
	na, nb := netns.Pair(t, "sswt", "192.0.2.1/24", "192.0.2.2/24")
	mk := func(n *netns.Host) *host {
		c := netns.NewCharon(t, n, netns.CharonOptions{})
		return &host{t: t, ns: n.Name, ip: n.IP, socket: c.Socket, charon: c}
	}
	return mk(na), mk(nb)
}

func (h *host) start()                  { h.charon.Start() }
func (h *host) stop(sig syscall.Signal) { h.charon.Stop(sig) }

// swanctl runs swanctl against this host's charon.
func (h *host) swanctl(args ...string) string {
	h.t.Helper()
	out, err := h.charon.Swanctl(args...)
	if err != nil {
		h.t.Fatalf("swanctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// loadForeignConn loads a connection shaped unlike ovnsec's (its child is
// not named after it), as an operator's swanctl.conf would.
func (h *host) loadForeignConn(name string) {
	h.t.Helper()
	s, err := vici.NewSession(vici.WithSocketPath(strings.TrimPrefix(h.socket, "unix://")))
	if err != nil {
		h.t.Fatalf("connect to charon in %s: %v", h.ns, err)
	}
	defer s.Close()
	child := vici.NewMessage()
	_ = child.Set("local_ts", []string{"10.9.0.0/16"})
	children := vici.NewMessage()
	_ = children.Set("net", child)
	conn := vici.NewMessage()
	_ = conn.Set("remote_addrs", []string{"192.0.2.9"})
	_ = conn.Set("children", children)
	m := vici.NewMessage()
	_ = m.Set(name, conn)
	if _, err := s.Call(context.Background(), "load-conn", m); err != nil {
		h.t.Fatalf("load foreign connection %s: %v", name, err)
	}
}

// sharedKeys lists the shared key ids loaded over VICI (swanctl has no
// command for it).
func (h *host) sharedKeys() []string {
	h.t.Helper()
	s, err := vici.NewSession(vici.WithSocketPath(strings.TrimPrefix(h.socket, "unix://")))
	if err != nil {
		h.t.Fatalf("connect to charon in %s: %v", h.ns, err)
	}
	defer s.Close()
	m, err := s.Call(context.Background(), "get-shared", nil)
	if err != nil {
		h.t.Fatalf("get-shared in %s: %v", h.ns, err)
	}
	var r struct {
		Keys []string `vici:"keys"`
	}
	if err := vici.UnmarshalMessage(m, &r); err != nil {
		h.t.Fatalf("decode get-shared reply in %s: %v", h.ns, err)
	}
	return r.Keys
}

// testPKI is a CA and two host certificates (CN = SAN DNS = host name).
type testPKI struct {
	dir    string
	caPath string
}

type hostCreds struct {
	cert, key string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	p := &testPKI{dir: dir, caPath: filepath.Join(dir, "cacert.pem")}
	return p
}

// issue makes a certificate for name signed by ca (self-signed when ca is
// nil); keyKind is "rsa"
// (PKCS#1 PEM), "ec" (SEC 1 PEM) or "pkcs8" (ECDSA in PKCS#8).
func (p *testPKI) issue(t *testing.T, caKey crypto.Signer, ca *x509.Certificate, name, keyKind string) hostCreds {
	t.Helper()
	var signer crypto.Signer
	var keyPEM []byte
	switch keyKind {
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		signer = k
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	case "ec", "pkcs8":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		signer = k
		if keyKind == "ec" {
			der, _ := x509.MarshalECPrivateKey(k)
			keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
		} else {
			der, _ := x509.MarshalPKCS8PrivateKey(k)
			keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		}
	default:
		t.Fatalf("unknown key kind %s", keyKind)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"ovnsec test"}},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	parent, parentKey := ca, caKey
	if ca == nil { // self-signed, as ovs-pki self-sign
		parent, parentKey = tmpl, signer
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, signer.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	hc := hostCreds{cert: filepath.Join(p.dir, name+"-cert.pem"), key: filepath.Join(p.dir, name+"-privkey.pem")}
	if err := os.WriteFile(hc.cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hc.key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return hc
}

// newCA makes a self-signed ECDSA CA and writes it to p.caPath.
func (p *testPKI) newCA(t *testing.T) (crypto.Signer, *x509.Certificate) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ovnsec test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return k, ca
}
