// Stage: CA. The ovs-pki directory: creating it (init), signing requests
// with one of its CAs (sign) and verifying certificates against it
// (verify). Layout and bookkeeping (index.txt, serial, newcerts/, ca.cnf)
// match ovs-pki and openssl ca, so either tool can keep using the other's
// directory.

package pki

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DefaultDir is ovs-pki's default PKI directory.
const DefaultDir = "/var/lib/openvswitch/pki"

// Validity defaults, in days, as in ovs-pki.
const (
	CADays      = 3650
	DefaultDays = 3650
	MaxDays     = 36500
)

// backdate is how far before "now" issued certificates start to be valid,
// so that a peer whose clock is a little behind accepts them at once.
const backdate = 5 * time.Minute

// CAType selects one of the two CAs of an ovs-pki directory.
type CAType string

// The two CA types. IPsec uses the switch CA.
const (
	SwitchCA     CAType = "switch"
	ControllerCA CAType = "controller"
)

// ParseCAType parses the optional TYPE argument ("" means switch).
func ParseCAType(s string) (CAType, error) {
	switch s {
	case "", "switch":
		return SwitchCA, nil
	case "controller":
		return ControllerCA, nil
	}
	return "", fmt.Errorf("type argument must be 'switch' or 'controller', not %q", s)
}

// Env is what every operation needs from the outside world. The zero value
// uses the system clock and crypto/rand.
type Env struct {
	Now  func() time.Time
	Rand io.Reader
}

func (e Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e Env) rand() io.Reader {
	if e.Rand != nil {
		return e.Rand
	}
	return rand.Reader
}

// Dir is an ovs-pki directory such as /var/lib/openvswitch/pki.
type Dir struct {
	Path string
	Env
}

// CADir is the directory of one CA, e.g. <dir>/switchca.
func (d Dir) CADir(t CAType) string { return filepath.Join(d.Path, string(t)+"ca") }

// CACertPath is the CA certificate, e.g. <dir>/switchca/cacert.pem.
func (d Dir) CACertPath(t CAType) string { return filepath.Join(d.CADir(t), "cacert.pem") }

// CAKeyPath is the CA private key, e.g. <dir>/switchca/private/cakey.pem.
func (d Dir) CAKeyPath(t CAType) string {
	return filepath.Join(d.CADir(t), "private", "cakey.pem")
}

// mustExist checks the PKI directory like ovs-pki's pkidir_must_exist.
func (d Dir) mustExist() error {
	fi, err := os.Stat(d.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s does not exist (need to run 'ovnsec pki init' or use '--dir'?)", d.Path)
	}
	if err != nil {
		return fmt.Errorf("PKI directory %s: %w", d.Path, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory (use '--dir' to name the PKI directory)", d.Path)
	}
	return nil
}

// InitOptions configure Init.
type InitOptions struct {
	Key   KeySpec
	Force bool
}

// Init creates the PKI directory with its controllerca and switchca, like
// ovs-pki init. It fails if the directory exists unless Force is set; with
// Force the CA keys and certificates are made anew while ca.cnf, index.txt,
// serial and crlnumber are kept, as ovs-pki does. A fresh directory is
// built next to its final place and renamed into it, so a failure leaves
// nothing behind.
func (d Dir) Init(opts InitOptions) error {
	spec, err := opts.Key.normalize()
	if err != nil {
		return err
	}
	_, statErr := os.Lstat(d.Path)
	exists := statErr == nil
	if exists && !opts.Force {
		return fmt.Errorf("%s already exists and --force not given", d.Path)
	}
	if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
		return fmt.Errorf("PKI directory %s: %w", d.Path, statErr)
	}
	if exists {
		if err := d.mustExist(); err != nil {
			return err
		}
		for _, ca := range []CAType{ControllerCA, SwitchCA} {
			if err := d.initCA(ca, spec); err != nil {
				return err
			}
		}
		return nil
	}
	final := filepath.Clean(d.Path)
	parent := filepath.Dir(final)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create parent of PKI directory %s: %w", d.Path, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(final)+".init*")
	if err != nil {
		return fmt.Errorf("create PKI directory %s: %w", d.Path, err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, modeDir); err != nil {
		return fmt.Errorf("create PKI directory %s: %w", d.Path, err)
	}
	td := Dir{Path: tmp, Env: d.Env}
	for _, ca := range []CAType{ControllerCA, SwitchCA} {
		if err := td.initCA(ca, spec); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("create PKI directory %s: %w", d.Path, err)
	}
	return nil
}

// initCA creates or re-creates one CA.
func (d Dir) initCA(ca CAType, spec KeySpec) error {
	dir := d.CADir(ca)
	name := string(ca) + "ca"
	for _, sub := range []string{"", "certs", "crl", "newcerts", "private"} {
		p := filepath.Join(dir, sub)
		if err := os.MkdirAll(p, modeDir); err != nil {
			return fmt.Errorf("create %s: %w", p, err)
		}
		if err := os.Chmod(p, modeDir); err != nil {
			return fmt.Errorf("create %s: %w", p, err)
		}
	}
	now := d.now()
	date := now.Format("2006 Jan 02 15:04:05")
	key, err := GenerateKey(spec, d.rand())
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	keyPEM, err := EncodePrivateKey(key)
	if err != nil {
		return err
	}
	reqSubject, err := encodeName(caReqSubjectAttrs(name, date))
	if err != nil {
		return err
	}
	careq, err := x509.CreateCertificateRequest(d.rand(), &x509.CertificateRequest{
		RawSubject:         reqSubject,
		SignatureAlgorithm: signatureAlgorithm(key),
	}, key)
	if err != nil {
		return fmt.Errorf("%s: create CA request: %w", name, err)
	}
	subject, err := applyPolicy(reqSubject, reqSubject)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	bk, err := loadBookkeeping(dir)
	if err != nil {
		return err
	}
	skid, err := subjectKeyID(key.Public())
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          bk.serial,
		RawSubject:            subject,
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.AddDate(0, 0, CADays),
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId:          skid,
		SignatureAlgorithm:    signatureAlgorithm(key),
	}
	der, err := x509.CreateCertificate(d.rand(), tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("%s: create CA certificate: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("%s: parse new CA certificate: %w", name, err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	outs := []output{
		{path: d.CAKeyPath(ca), data: keyPEM, mode: modeKey},
		{path: filepath.Join(dir, "careq.pem"), data: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: careq}), mode: modeFile},
		{path: d.CACertPath(ca), data: certPEM, mode: modeFile},
	}
	outs = append(outs, bk.record(dir, cert, certPEM)...)
	for _, f := range []struct{ name, data string }{
		{"ca.cnf", caConfig(name, date)},
		{"crlnumber", "01\n"},
		{"index.txt.attr", "unique_subject = no\n"},
	} {
		p := filepath.Join(dir, f.name)
		if _, err := os.Lstat(p); err == nil {
			continue // kept, as ovs-pki keeps them
		}
		outs = append(outs, output{path: p, data: []byte(f.data), mode: modeFile})
	}
	return writeAll(outs, true)
}

// bookkeeping is a CA's index.txt and serial as read before an issue.
type bookkeeping struct {
	index  []byte
	serial *big.Int
}

// loadBookkeeping reads index.txt (may be missing: empty) and serial (may
// be missing: 01).
func loadBookkeeping(caDir string) (bookkeeping, error) {
	var bk bookkeeping
	idx, err := os.ReadFile(filepath.Join(caDir, "index.txt"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return bk, fmt.Errorf("read %s: %w", filepath.Join(caDir, "index.txt"), err)
	}
	bk.index = idx
	sp := filepath.Join(caDir, "serial")
	s, err := os.ReadFile(sp)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		bk.serial = big.NewInt(1)
	case err != nil:
		return bk, fmt.Errorf("read %s: %w", sp, err)
	default:
		bk.serial, err = ParseSerial(string(s))
		if err != nil {
			return bk, fmt.Errorf("%s: %w", sp, err)
		}
	}
	return bk, nil
}

// ParseSerial parses an openssl serial file: one hexadecimal number.
func ParseSerial(s string) (*big.Int, error) {
	t := strings.TrimSpace(s)
	if i := strings.IndexByte(t, '\n'); i >= 0 {
		t = strings.TrimSpace(t[:i])
	}
	n, ok := new(big.Int).SetString(t, 16)
	if !ok || t == "" || strings.ContainsAny(t, "+-xX_") || n.Sign() < 0 || n.BitLen() > 159 {
		return nil, fmt.Errorf("serial %q is not a positive hexadecimal number of at most 20 bytes; write the next serial number in hex into the file (e.g. 05)", t)
	}
	return n, nil
}

// FormatSerial formats a serial like openssl: upper-case hex with an even
// number of digits ("02", "0A", "0100").
func FormatSerial(n *big.Int) string {
	s := strings.ToUpper(n.Text(16))
	if len(s)%2 == 1 {
		s = "0" + s
	}
	return s
}

// indexTime formats an expiry for index.txt: UTCTime before 2050,
// GeneralizedTime from then on, as openssl does.
func indexTime(t time.Time) string {
	t = t.UTC()
	if t.Year() < 2050 {
		return t.Format("060102150405Z")
	}
	return t.Format("20060102150405Z")
}

// record returns the bookkeeping files updated for a newly issued cert:
// newcerts/<SERIAL>.pem, index.txt with one more line, and serial + 1.
func (bk bookkeeping) record(caDir string, cert *x509.Certificate, certPEM []byte) []output {
	serial := FormatSerial(cert.SerialNumber)
	dn, err := onelineName(cert.RawSubject)
	if err != nil {
		dn = cert.Subject.String()
	}
	line := "V\t" + indexTime(cert.NotAfter) + "\t\t" + serial + "\tunknown\t" + dn + "\n"
	index := append(bytes.Clone(bk.index), line...)
	if len(bk.index) > 0 && bk.index[len(bk.index)-1] != '\n' {
		index = append(append(bytes.Clone(bk.index), '\n'), line...)
	}
	next := new(big.Int).Add(cert.SerialNumber, big.NewInt(1))
	return []output{
		{path: filepath.Join(caDir, "newcerts", serial+".pem"), data: certPEM, mode: modeFile, replace: true},
		{path: filepath.Join(caDir, "index.txt"), data: index, mode: modeFile, replace: true},
		{path: filepath.Join(caDir, "serial"), data: []byte(FormatSerial(next) + "\n"), mode: modeFile, replace: true},
	}
}

// subjectKeyID is the RFC 5280 method 1 key identifier: SHA-1 of the
// subjectPublicKey bit string.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:], nil
}

// randomSerial is a positive 159-bit serial for self-signed certificates.
func randomSerial(r io.Reader) (*big.Int, error) {
	n, err := rand.Int(r, new(big.Int).Lsh(big.NewInt(1), 159))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// CA is one loaded CA: its certificate and key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// LoadCA reads a CA certificate and its key and checks they belong together.
func (d Dir) LoadCA(t CAType) (*CA, error) {
	if err := d.mustExist(); err != nil {
		return nil, err
	}
	certs, err := LoadCertificates(d.CACertPath(t))
	if err != nil {
		return nil, fmt.Errorf("%s CA: %w", t, err)
	}
	key, err := LoadPrivateKey(d.CAKeyPath(t))
	if err != nil {
		return nil, fmt.Errorf("%s CA: %w", t, err)
	}
	if !publicKeyEqual(certs[0].PublicKey, key.Public()) {
		return nil, fmt.Errorf("%s CA: %s does not belong to %s; restore the matching key or re-create the CA with ovnsec pki init --force", t, d.CAKeyPath(t), d.CACertPath(t))
	}
	if signatureAlgorithm(key) == x509.UnknownSignatureAlgorithm {
		return nil, fmt.Errorf("%s CA: key %s is %s, which ovnsec cannot sign with; use an RSA or ECDSA CA", t, d.CAKeyPath(t), describeKey(key.Public()))
	}
	return &CA{Cert: certs[0], Key: key}, nil
}

// SignOptions configure Sign.
type SignOptions struct {
	Type  CAType
	Days  int // 0 means DefaultDays
	Force bool
	// SANs says what to do with subjectAltName entries of the request
	// other than DNS:<CN>; the zero value refuses the request.
	SANs SANPolicy
}

// SignResult describes an issued certificate.
type SignResult struct {
	Cert     *x509.Certificate
	Warnings []string
}

// Sign signs the request in reqPath with the CA of the given type and
// writes the certificate to certPath, like ovs-pki sign. The issued subject
// follows ovs-pki's policy (O must match the CA's, exactly one CN), the
// subjectAltName is DNS:<CN> (a request asking for other names is refused,
// or they are dropped or copied, as opts.SANs says), extendedKeyUsage is
// copied from the request, and the certificate is X.509 v3 with
// basicConstraints CA:false and keyUsage digitalSignature. Its validity
// never extends beyond the CA's.
func (d Dir) Sign(reqPath, certPath string, opts SignOptions) (*SignResult, error) {
	if opts.Type == "" {
		opts.Type = SwitchCA
	}
	days, err := checkDays(opts.Days)
	if err != nil {
		return nil, err
	}
	if err := mustExist(reqPath); err != nil {
		return nil, err
	}
	if err := mustNotExist(certPath, opts.Force); err != nil {
		return nil, err
	}
	if err := d.mustExist(); err != nil {
		return nil, err
	}
	csr, err := LoadRequest(reqPath)
	if err != nil {
		return nil, err
	}
	ca, err := d.LoadCA(opts.Type)
	if err != nil {
		return nil, err
	}
	subject, err := applyPolicy(csr.RawSubject, ca.Cert.RawSubject)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", reqPath, err)
	}
	names, warnings, err := issuedSANs(csr, opts.SANs)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", reqPath, err)
	}
	res := &SignResult{Warnings: warnings}
	var extra []pkix.Extension
	for _, e := range csr.Extensions {
		if e.Id.Equal(oidExtKeyUsage) {
			extra = append(extra, e)
		}
	}
	caDir := d.CADir(opts.Type)
	unlock, err := lockDir(caDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	bk, err := loadBookkeeping(caDir)
	if err != nil {
		return nil, err
	}
	now := d.now()
	skid, err := subjectKeyID(csr.PublicKey)
	if err != nil {
		return nil, err
	}
	notAfter := now.AddDate(0, 0, days)
	if notAfter.After(ca.Cert.NotAfter) {
		// A certificate is useless once its CA expires: end with the CA.
		if notAfter.Sub(ca.Cert.NotAfter) > 24*time.Hour {
			res.Warnings = append(res.Warnings, fmt.Sprintf("validity shortened to the CA's: the %s CA expires on %s, before the %d days asked for; renew the CA (ovnsec pki init --force) before then", opts.Type, ca.Cert.NotAfter.UTC().Format(time.DateOnly), days))
		}
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          bk.serial,
		RawSubject:            subject,
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		IsCA:                  false,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		DNSNames:              names.DNSNames,
		IPAddresses:           names.IPAddresses,
		EmailAddresses:        names.EmailAddresses,
		URIs:                  names.URIs,
		ExtraExtensions:       extra,
		SubjectKeyId:          skid,
		SignatureAlgorithm:    signatureAlgorithm(ca.Key),
	}
	der, err := x509.CreateCertificate(d.rand(), tmpl, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", reqPath, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("sign %s: parse new certificate: %w", reqPath, err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	outs := append([]output{{path: certPath, data: certPEM, mode: modeFile}}, bk.record(caDir, cert, certPEM)...)
	if err := writeAll(outs, opts.Force); err != nil {
		return nil, err
	}
	res.Cert = cert
	res.Warnings = append(res.Warnings, ipsecWarnings(cert)...)
	return res, nil
}

// ipsecWarnings lists what makes an issued certificate unfit for IPsec.
func ipsecWarnings(cert *x509.Certificate) []string {
	var w []string
	cn := cert.Subject.CommonName
	if strings.ContainsAny(cn, " \t") {
		w = append(w, fmt.Sprintf("CN %q contains a space (a request made by ovs-pki req without -u?); it cannot be used as an IPsec identity: make the request with ovnsec pki req NAME or ovs-pki req -u NAME", cn))
	}
	found := false
	for _, n := range cert.DNSNames {
		found = found || n == cn
	}
	if !found {
		w = append(w, fmt.Sprintf("subjectAltName DNS names %q do not include the CN %q; ovs-monitor-ipsec needs SAN DNS = CN", cert.DNSNames, cn))
	}
	return w
}

var oidExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}

// checkDays validates a --days value.
func checkDays(days int) (int, error) {
	if days == 0 {
		return DefaultDays, nil
	}
	if days < 1 || days > MaxDays {
		return 0, fmt.Errorf("--days %d is out of range: use 1 to %d", days, MaxDays)
	}
	return days, nil
}

// lockDir takes an exclusive flock on a CA directory for the duration of
// an issue, so two concurrent signs never reuse a serial number.
func lockDir(dir string) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("lock CA directory %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock CA directory %s: %w", dir, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// VerifyOptions configure Verify.
type VerifyOptions struct {
	Type CAType
}

// Verify checks that the certificate in certPath chains to the CA of the
// given type at the current time, like ovs-pki verify (openssl verify).
func (d Dir) Verify(certPath string, opts VerifyOptions) error {
	if opts.Type == "" {
		opts.Type = SwitchCA
	}
	if err := mustExist(certPath); err != nil {
		return err
	}
	if err := d.mustExist(); err != nil {
		return err
	}
	cas, err := LoadCertificates(d.CACertPath(opts.Type))
	if err != nil {
		return fmt.Errorf("%s CA: %w", opts.Type, err)
	}
	certs, err := LoadCertificates(certPath)
	if err != nil {
		return err
	}
	return verifyChain(certs[0], cas, d.now())
}

// verifyChain verifies cert against the given roots at time now.
func verifyChain(cert *x509.Certificate, roots []*x509.Certificate, now time.Time) error {
	pool := x509.NewCertPool()
	for _, c := range roots {
		pool.AddCert(c)
	}
	_, err := cert.Verify(x509.VerifyOptions{
		Roots:       pool,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	return err
}

// LoadCertificates reads every certificate of a PEM file (text before and
// between the blocks, as openssl ca writes, is ignored). It fails if there
// is none.
func LoadCertificates(path string) ([]*x509.Certificate, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("load certificate: %w", err)
	}
	certs, err := ParseCertificatesPEM(b)
	if err != nil {
		return nil, fmt.Errorf("load certificate %s: %w", path, err)
	}
	return certs, nil
}

// ParseCertificatesPEM parses every CERTIFICATE block of PEM data.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" && b.Type != "X509 CERTIFICATE" && b.Type != "TRUSTED CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found (expected a \"-----BEGIN CERTIFICATE-----\" block)")
	}
	return certs, nil
}

// LoadRequest reads a PEM certificate request and checks its signature.
func LoadRequest(path string) (*x509.CertificateRequest, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("load request: %w", err)
	}
	csr, err := ParseRequestPEM(b)
	if err != nil {
		return nil, fmt.Errorf("load request %s: %w", path, err)
	}
	return csr, nil
}

// ParseRequestPEM parses the first certificate request of PEM data and
// checks its self-signature.
func ParseRequestPEM(data []byte) (*x509.CertificateRequest, error) {
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no PEM certificate request found (expected a \"-----BEGIN CERTIFICATE REQUEST-----\" block)")
		}
		if b.Type != "CERTIFICATE REQUEST" && b.Type != "NEW CERTIFICATE REQUEST" {
			continue
		}
		csr, err := x509.ParseCertificateRequest(b.Bytes)
		if err != nil {
			return nil, err
		}
		if err := csr.CheckSignature(); err != nil {
			return nil, fmt.Errorf("request signature does not verify (damaged file or unsupported key type): %w", err)
		}
		return csr, nil
	}
}
