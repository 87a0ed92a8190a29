package libreswan

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
)

// fakePluto plays the ipsec command, pluto behind it, certutil, pk12util
// and openssl, recording every command line.
type fakePluto struct {
	mu      sync.Mutex
	version string
	loaded  map[string]bool
	active  map[string]bool
	ike     []string // conns holding an established IKE SA
	nss     map[string][][]byte
	down    bool
	calls   [][]string
}

func newFakePluto() *fakePluto {
	return &fakePluto{version: "Libreswan 4.10\n", loaded: map[string]bool{}, active: map[string]bool{}, nss: map[string][][]byte{}}
}

func (f *fakePluto) Run(ctx context.Context, argv []string) (Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, slices.Clone(argv))
	switch filepath.Base(argv[0]) {
	case "certutil":
		return f.certutil(argv[1:])
	case "openssl":
		return Result{}, nil
	case "pk12util":
		p12 := argv[2]
		data, err := os.ReadFile(filepath.Join(filepath.Dir(p12), "cert.pem"))
		if err != nil {
			return Result{Code: 1, Stderr: err.Error()}, nil
		}
		name := strings.TrimSuffix(filepath.Base(p12), ".p12")
		f.nss[name] = append(f.nss[name], pemCerts(data)...)
		return Result{}, nil
	case "ip":
		return Result{Stdout: "src 192.0.2.1/32 dst 192.0.2.2/32 proto udp dport 6081\n\tdir out priority 1\n"}, nil
	}
	args := argv[1:]
	if len(args) > 0 && args[0] == "--version" {
		return Result{Stdout: f.version}, nil
	}
	if len(args) > 0 && args[0] == "status" {
		if f.down {
			return Result{Code: 1, Stderr: "whack: Pluto is not running (no \"/run/pluto/pluto.ctl\")"}, nil
		}
		return Result{Stdout: f.statusText()}, nil
	}
	if f.down {
		return Result{Code: 1, Stderr: "connect(pluto_ctl) failed"}, nil
	}
	conn := args[len(args)-1]
	switch {
	case slices.Contains(args, "--add"), slices.Contains(args, "--start"):
		f.loaded[conn] = true
	case slices.Contains(args, "--up"):
		if !f.loaded[conn] {
			return Result{Code: 1, Stdout: "no connection named " + conn}, nil
		}
	case slices.Contains(args, "--delete"):
		delete(f.loaded, conn)
		delete(f.active, conn)
	}
	return Result{}, nil
}

func (f *fakePluto) statusText() string {
	var b strings.Builder
	for _, c := range sortedKeys(f.loaded) {
		fmt.Fprintf(&b, "000 \"%s\": 192.0.2.1/32===192.0.2.1...192.0.2.2===192.0.2.2/32; unrouted\n", c)
	}
	n := 1
	for _, c := range f.ike {
		fmt.Fprintf(&b, "000 #%d: \"%s\":500 STATE_V2_ESTABLISHED_IKE_SA (established IKE SA); idle;\n", n, c)
		n++
	}
	for _, c := range sortedKeys(f.active) {
		fmt.Fprintf(&b, "000 #%d: \"%s\" esp.%x@192.0.2.2 esp.%x@192.0.2.1 Traffic: ESPin=0B\n", n, c, 1000+n, 2000+n)
		n++
	}
	return b.String()
}

func (f *fakePluto) certutil(args []string) (Result, error) {
	name := ""
	if i := slices.Index(args, "-n"); i >= 0 {
		name = args[i+1]
	}
	switch args[0] {
	case "-N":
		return Result{}, nil
	case "-L":
		if name == "" {
			var b strings.Builder
			b.WriteString("\nCertificate Nickname  Trust Attributes\n\n")
			for _, n := range sortedKeys(f.nss) {
				fmt.Fprintf(&b, "%s  CT,,\n", n)
			}
			return Result{Stdout: b.String()}, nil
		}
		if len(f.nss[name]) == 0 {
			return Result{Code: 255, Stderr: "could not find certificate named " + name}, nil
		}
		var out []byte
		for _, der := range f.nss[name] {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
		}
		return Result{Stdout: string(out)}, nil
	case "-A":
		data, err := os.ReadFile(args[slices.Index(args, "-i")+1])
		if err != nil {
			return Result{Code: 1}, nil
		}
		f.nss[name] = append(f.nss[name], pemCerts(data)...)
		return Result{}, nil
	case "-D", "-F":
		if len(f.nss[name]) == 0 {
			return Result{Code: 255}, nil
		}
		f.nss[name] = f.nss[name][1:]
		if len(f.nss[name]) == 0 {
			delete(f.nss, name)
		}
		return Result{}, nil
	}
	return Result{Code: 1, Stderr: "unexpected certutil call"}, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// actions returns the pluto actions recorded since from, as "op conn".
func (f *fakePluto) actions(from int) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls[from:] {
		if filepath.Base(c[0]) != "ipsec" {
			continue
		}
		for _, op := range []string{"--add", "--start", "--up", "--delete"} {
			if slices.Contains(c, op) {
				a := op[2:] + " " + c[len(c)-1]
				if slices.Contains(c, "--asynchronous") {
					a += " async"
				}
				out = append(out, a)
			}
		}
	}
	return out
}

func (f *fakePluto) ncalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// fakeCreds serves certificates and keys from memory.
type fakeCreds struct {
	certs map[string][]*x509.Certificate
	keys  map[string]crypto.Signer
}

func (c fakeCreds) Certificates(path string) ([]*x509.Certificate, error) {
	if cs, ok := c.certs[path]; ok {
		return cs, nil
	}
	return nil, fmt.Errorf("read certificate %s: no such file", path)
}

func (c fakeCreds) PrivateKey(path string) (crypto.Signer, error) {
	if k, ok := c.keys[path]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("read private key %s: no such file", path)
}

// newCert makes a certificate for cn signed by parent (self-signed when
// parent is nil).
func newCert(t *testing.T, cn string, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		DNSNames: []string{cn}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: parent == nil, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

// newTestBackend builds a Backend on f with a fake clock.
func newTestBackend(t *testing.T, f *fakePluto, cr fakeCreds, mod func(*Config)) (*Backend, *clocktest.Fake) {
	t.Helper()
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	dir := t.TempDir()
	cfg := Config{Conf: filepath.Join(dir, "ipsec.conf"), Secrets: filepath.Join(dir, "ipsec.secrets"),
		NSSDir: filepath.Join(dir, "nss"), Ctl: filepath.Join(dir, "pluto.ctl"), Runner: f, Clock: clk, Creds: cr}
	if err := os.MkdirAll(cfg.NSSDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.NSSDir, "cert9.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(&cfg)
	}
	b, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background(), false) })
	return b, clk
}
