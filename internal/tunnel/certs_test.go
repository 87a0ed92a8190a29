// Tests for the certificate and key reading path.

package tunnel

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
	"github.com/ovnsec/ovnsec/internal/creds"
	"github.com/ovnsec/ovnsec/internal/testenv"
)

func TestReadCert(t *testing.T) {
	dir := t.TempDir()
	key := newKey(t)
	der := certDER(t, certSpec{cn: "hv1", extraRDN: true, dns: []string{"hv1"}}, key)
	good := writeFile(t, dir, "good.pem", pemBytes("CERTIFICATE", der))
	onlyCN := writeFile(t, dir, "onlycn.pem", pemBytes("CERTIFICATE", certDER(t, certSpec{cn: "hv2"}, key)))
	comma := writeFile(t, dir, "comma.pem", pemBytes("CERTIFICATE", certDER(t, certSpec{cn: "hv1,rack2", extraRDN: true}, key)))
	twoCN := writeFile(t, dir, "twocn.pem", pemBytes("CERTIFICATE", certDER(t, certSpec{cn: "first", extraRDN: true, moreCN: "second"}, key)))
	noCN := writeFile(t, dir, "nocn.pem", pemBytes("CERTIFICATE", certDER(t, certSpec{extraRDN: true}, key)))
	sec1, _ := x509.MarshalECPrivateKey(key)
	keyFirst := writeFile(t, dir, "combined.pem", append(pemBytes("EC PRIVATE KEY", sec1), pemBytes("CERTIFICATE", der)...))
	garbage := writeFile(t, dir, "garbage.pem", []byte("this is not a certificate\n"))
	onlyKey := writeFile(t, dir, "onlykey.pem", pemBytes("EC PRIVATE KEY", sec1))
	badDER := writeFile(t, dir, "badder.pem", pemBytes("CERTIFICATE", []byte{0x30, 0x03, 0x02, 0x01, 0x01}))
	huge := writeFile(t, dir, "huge.pem", make([]byte, creds.MaxFileSize+1))

	tests := []struct {
		name    string
		path    string
		wantCN  string
		wantErr string // substring; "" for success
	}{
		{name: "ovs-pki like subject", path: good, wantCN: "hv1"},
		{name: "subject with only CN (upstream finds no CN)", path: onlyCN, wantCN: "hv2"},
		{name: "escaped comma in CN (upstream truncates)", path: comma, wantCN: "hv1,rack2"},
		{name: "no CN", path: noCN, wantCN: ""},
		// openssl -nameopt RFC2253 prints "CN=second,CN=first,OU=...": upstream takes "second".
		{name: "two CNs: the one openssl prints first", path: twoCN, wantCN: "second"},
		{name: "key block before certificate", path: keyFirst, wantCN: "hv1"},
		{name: "missing file", path: filepath.Join(dir, "missing.pem"), wantErr: "read certificate " + filepath.Join(dir, "missing.pem") + ": open"},
		{name: "garbage", path: garbage, wantErr: "certificate " + garbage + ": no PEM block found; expected a PEM 'CERTIFICATE' block"},
		{name: "key instead of certificate", path: onlyKey, wantErr: "certificate " + onlyKey + ": no PEM 'CERTIFICATE' block (found 'EC PRIVATE KEY')"},
		{name: "corrupt DER", path: badDER, wantErr: "certificate " + badDER + ": x509:"},
		{name: "oversized file", path: huge, wantErr: "certificate " + huge + ": file larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, err := FileCertReader{}.ReadCert(tc.path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ReadCert(%s) error = %v, want it to contain %q", tc.path, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadCert(%s): %v", tc.path, err)
			}
			if info.CN != tc.wantCN {
				t.Errorf("CN = %q, want %q", info.CN, tc.wantCN)
			}
			if info.Version != 3 {
				t.Errorf("Version = %d, want 3", info.Version)
			}
		})
	}

	// The fields of the good certificate, in detail.
	info, err := FileCertReader{}.ReadCert(good)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.DNSNames, []string{"hv1"}) {
		t.Errorf("DNSNames = %q, want [hv1]", info.DNSNames)
	}
	if !info.NotBefore.Equal(testNow.Add(-24*time.Hour)) || !info.NotAfter.Equal(testNow.Add(365*24*time.Hour)) {
		t.Errorf("validity = %v..%v", info.NotBefore, info.NotAfter)
	}
	if info.Fingerprint != sha256.Sum256(der) {
		t.Errorf("Fingerprint is not the SHA-256 of the DER")
	}
	if !key.PublicKey.Equal(info.PublicKey) {
		t.Errorf("PublicKey does not match the key the certificate was made for")
	}
}

func TestKeyMatches(t *testing.T) {
	dir := t.TempDir()
	ecKey := newKey(t)
	ecCert := writeFile(t, dir, "ec-cert.pem", pemBytes("CERTIFICATE", certDER(t, certSpec{cn: "ec"}, ecKey)))
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	ecParams := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}})
	ecSEC1 := writeFile(t, dir, "ec-sec1.pem", append(ecParams, pemBytes("EC PRIVATE KEY", sec1)...))
	p8, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	ecPKCS8 := writeFile(t, dir, "ec-pkcs8.pem", pemBytes("PRIVATE KEY", p8))

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaCert := writeFile(t, dir, "rsa-cert.pem", pemBytes("CERTIFICATE", certDER(t, certSpec{cn: "rsa"}, rsaKey)))
	rsaPKCS1 := writeFile(t, dir, "rsa-pkcs1.pem", pemBytes("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)))

	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edCert := writeFile(t, dir, "ed-cert.pem", pemBytes("CERTIFICATE", certDER(t, certSpec{cn: "ed"}, edKey)))
	edP8, _ := x509.MarshalPKCS8PrivateKey(edKey)
	edPKCS8 := writeFile(t, dir, "ed-pkcs8.pem", pemBytes("PRIVATE KEY", edP8))

	otherSEC1, _ := x509.MarshalECPrivateKey(newKey(t))
	other := writeFile(t, dir, "other.pem", pemBytes("EC PRIVATE KEY", otherSEC1))
	garbage := writeFile(t, dir, "garbage.pem", pemBytes("NOTHING", []byte{1, 2, 3}))
	certOnly := ecCert
	encrypted := writeFile(t, dir, "enc.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}}))
	encP8 := writeFile(t, dir, "encp8.pem", pemBytes("ENCRYPTED PRIVATE KEY", []byte{1}))
	corrupt := writeFile(t, dir, "corrupt.pem", pemBytes("EC PRIVATE KEY", []byte{0x30, 0x00}))
	missing := filepath.Join(dir, "missing.pem")

	tests := []struct {
		name      string
		cert, key string
		wantErr   string
	}{
		{"EC SEC1 after EC PARAMETERS", ecCert, ecSEC1, ""},
		{"EC PKCS#8", ecCert, ecPKCS8, ""},
		{"RSA PKCS#1", rsaCert, rsaPKCS1, ""},
		{"Ed25519 PKCS#8", edCert, edPKCS8, ""},
		{"EC key for RSA certificate", rsaCert, ecSEC1, "private key " + ecSEC1 + " does not match certificate " + rsaCert},
		{"other EC key", ecCert, other, "private key " + other + " does not match certificate " + ecCert},
		{"missing key", ecCert, missing, "read private key " + missing},
		{"garbage key", ecCert, garbage, "private key " + garbage + ": no PEM private key block (found 'NOTHING')"},
		{"certificate as key", ecCert, certOnly, "no PEM private key block (found 'CERTIFICATE')"},
		{"encrypted PEM", ecCert, encrypted, "encrypted PEM keys are not supported"},
		{"encrypted PKCS#8", ecCert, encP8, "encrypted PKCS#8 keys are not supported"},
		{"corrupt key", ecCert, corrupt, "private key " + corrupt + ": EC PRIVATE KEY block:"},
		{"missing certificate", missing, ecSEC1, "read certificate " + missing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := FileCertReader{}.KeyMatches(tc.cert, tc.key)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("KeyMatches: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("KeyMatches error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// TestTableWithFileCerts drives Table with the real FileCertReader over
// certificates generated on disk.
func TestTableWithFileCerts(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCertAndKey(t, dir, "hv1", certSpec{cn: "hv1", extraRDN: true, dns: []string{"hv1"}})
	_, otherKey := writeCertAndKey(t, dir, "other", certSpec{cn: "other", dns: []string{"other"}})
	ca, _ := writeCertAndKey(t, dir, "ca", certSpec{cn: "ca", extraRDN: true})
	onlyCN, _ := writeCertAndKey(t, dir, "peer1", certSpec{cn: "hv2", dns: []string{"hv2"}})
	comma, _ := writeCertAndKey(t, dir, "peer2", certSpec{cn: "hv3,rack1", extraRDN: true, dns: []string{"hv3,rack1"}})
	noSAN, _ := writeCertAndKey(t, dir, "peer3", certSpec{cn: "hv4", extraRDN: true})
	expired, _ := writeCertAndKey(t, dir, "peer4", certSpec{cn: "hv5", dns: []string{"hv5"}, notBefore: testNow.Add(-48 * time.Hour), notAfter: testNow.Add(-time.Hour)})
	garbage := writeFile(t, dir, "garbage.pem", []byte("garbage"))

	global := []string{"certificate=" + cert, "private_key=" + key, "ca_cert=" + ca}
	tb := NewTable(FileCertReader{}, clocktest.New(testNow))
	ts, _ := tb.Update(snap(1, global,
		iface("a", "geneve", "remote_ip=10.0.0.2", "remote_cert="+onlyCN),
		iface("b", "geneve", "remote_ip=10.0.0.3", "remote_cert="+comma),
		iface("c", "geneve", "remote_ip=10.0.0.4", "remote_cert="+noSAN),
		iface("d", "geneve", "remote_ip=10.0.0.5", "remote_cert="+expired),
		iface("e", "geneve", "remote_ip=10.0.0.6", "remote_cert="+garbage),
		iface("f", "geneve", "remote_ip=10.0.0.7", "remote_name=hv9"),
	))
	tests := []struct {
		name       string
		remoteName string
		state      State
		problem    string // substring of the only problem; "" for none
	}{
		{"a", "hv2", StateConfigured, ""},
		{"b", "hv3,rack1", StateConfigured, ""},
		{"c", "hv4", StateConfigured, `CN "hv4" is not among its SAN DNS names []`},
		{"d", "hv5", StateConfigured, "certificate " + expired + " expired at 2026-11-23T11:00:00Z"},
		{"e", "", StateInvalid, "certificate " + garbage + ": no PEM block found"},
		{"f", "hv9", StateConfigured, ""},
	}
	for _, tc := range tests {
		tun, ok := find(ts, tc.name)
		if !ok {
			t.Fatalf("tunnel %s missing", tc.name)
		}
		if tun.RemoteName != tc.remoteName || tun.State != tc.state || tun.LocalName != "hv1" {
			t.Errorf("%s: remote name %q state %s%s local name %q, want %q %s hv1", tc.name, tun.RemoteName, tun.State, tun.Reason, tun.LocalName, tc.remoteName, tc.state)
		}
		switch {
		case tc.problem == "" && len(tun.Problems) != 0:
			t.Errorf("%s: unexpected problems %q", tc.name, tun.Problems)
		case tc.problem != "" && (len(tun.Problems) != 1 || !strings.Contains(tun.Problems[0], tc.problem)):
			t.Errorf("%s: problems %q, want one containing %q", tc.name, tun.Problems, tc.problem)
		}
	}

	// The wrong private key is reported on every certificate tunnel.
	global[1] = "private_key=" + otherKey
	ts, _ = tb.Update(snap(2, global, iface("f", "geneve", "remote_ip=10.0.0.7", "remote_name=hv9")))
	want := "private key " + otherKey + " does not match certificate " + cert + "; configure the key the certificate was issued for"
	f, _ := find(ts, "f")
	if !slices.Equal(f.Problems, []string{want}) || f.Version != 2 || f.State != StateConfigured {
		t.Errorf("after key change: %+v, want CONFIGURED v2 with problem %q", f, want)
	}
}

// TestCNMatchesOpenSSL cross-checks the CN against upstream's extraction
// (openssl -nameopt RFC2253, regex CN=(.+?),) on generated certificates:
// equal wherever upstream finds a CN, and found where upstream's quirks lose it.
func TestCNMatchesOpenSSL(t *testing.T) {
	openssl := testenv.NeedCommands(t, "openssl")[0]
	dir := t.TempDir()
	upstreamRE := regexp.MustCompile(`CN=(.+?),`)
	tests := []struct {
		name         string
		spec         certSpec
		upstreamSeen bool // whether upstream's regex finds the same CN
	}{
		{"ovs-pki like", certSpec{cn: "hv1", extraRDN: true}, true},
		{"uuid system-id", certSpec{cn: "4f6ab3a2-1d8c-4e2b-9a43-3c3c1d1f2e10", extraRDN: true}, true},
		{"two CNs", certSpec{cn: "first", extraRDN: true, moreCN: "second"}, true},
		{"only CN", certSpec{cn: "hv2"}, false},
		{"escaped comma", certSpec{cn: "hv3,rack1", extraRDN: true}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path, _ := writeCertAndKey(t, dir, strings.ReplaceAll(tc.name, " ", "-"), tc.spec)
			out, err := exec.Command(openssl, "x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", path).Output()
			if err != nil {
				t.Fatalf("openssl: %v", err)
			}
			var upstream string
			if m := upstreamRE.FindStringSubmatch(strings.TrimSpace(string(out))); m != nil {
				upstream = m[1]
			}
			info, err := FileCertReader{}.ReadCert(path)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.spec.cn
			if tc.spec.moreCN != "" {
				want = tc.spec.moreCN
			}
			if info.CN != want {
				t.Errorf("CN = %q, want %q (openssl: %s)", info.CN, want, out)
			}
			if (upstream == info.CN) != tc.upstreamSeen {
				t.Errorf("upstream would read %q, ours %q; expected same=%v", upstream, info.CN, tc.upstreamSeen)
			}
		})
	}
}
