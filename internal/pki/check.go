// Stage: checks. Whether a certificate (and optionally its key, CA and
// expected name) is usable for OVS/OVN IPsec, as a list of results with
// what to do about each failure. Used by `ovnsec pki check` and by the
// daemon before it hands a certificate to the IKE engine.

package pki

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"math"
	"strings"
	"time"
)

// Status is the outcome of one check.
type Status int

// Check outcomes. Only StatusFail makes a report fail.
const (
	StatusOK Status = iota
	StatusWarn
	StatusFail
	StatusSkip
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusWarn:
		return "WARN"
	case StatusFail:
		return "FAIL"
	case StatusSkip:
		return "skip"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// CheckID names one check.
type CheckID string

// The checks, in the order Check runs them.
const (
	CheckParse    CheckID = "parse"    // file readable, PEM X.509 certificate
	CheckVersion  CheckID = "version"  // X.509 v3
	CheckCN       CheckID = "cn"       // CN present, usable as identity, readable by ovs-monitor-ipsec
	CheckSAN      CheckID = "san"      // subjectAltName DNS includes the CN
	CheckValidity CheckID = "validity" // not yet valid / expired / expires soon
	CheckUsage    CheckID = "usage"    // key usage allows signing, not a CA
	CheckPubKey   CheckID = "pubkey"   // RSA >= 2048 or ECDSA
	CheckCA       CheckID = "ca"       // signed by the given CA
	CheckKey      CheckID = "key"      // private key matches
	CheckName     CheckID = "name"     // CN equals the expected name
)

// AllChecks lists every check in order.
var AllChecks = []CheckID{CheckParse, CheckVersion, CheckCN, CheckSAN, CheckValidity, CheckUsage, CheckPubKey, CheckCA, CheckKey, CheckName}

// Result is one check's outcome. Fix says what to do when Status is
// StatusFail or StatusWarn.
type Result struct {
	Check   CheckID
	Status  Status
	Message string
	Fix     string
}

// String is the one-line form `ovnsec pki check` prints.
func (r Result) String() string {
	s := fmt.Sprintf("%-4s %-8s %s", r.Status, r.Check, r.Message)
	if r.Fix != "" && (r.Status == StatusFail || r.Status == StatusWarn) {
		s += "; fix: " + r.Fix
	}
	return s
}

// Report is the outcome of Check.
type Report struct {
	Path    string
	Cert    *x509.Certificate // nil if the file could not be parsed
	Results []Result
}

// OK reports whether no check failed (warnings and skips are fine).
func (r Report) OK() bool { return len(r.Failures()) == 0 }

// Failures returns the failed checks.
func (r Report) Failures() []Result {
	var f []Result
	for _, res := range r.Results {
		if res.Status == StatusFail {
			f = append(f, res)
		}
	}
	return f
}

// Result returns the result of one check.
func (r Report) Result(id CheckID) (Result, bool) {
	for _, res := range r.Results {
		if res.Check == id {
			return res, true
		}
	}
	return Result{}, false
}

// Err is nil when the report is OK, else an error naming the certificate
// and every failure with its fix, for logs.
func (r Report) Err() error {
	f := r.Failures()
	if len(f) == 0 {
		return nil
	}
	parts := make([]string, len(f))
	for i, res := range f {
		parts[i] = fmt.Sprintf("%s: %s; fix: %s", res.Check, res.Message, res.Fix)
	}
	return fmt.Errorf("certificate %s is not usable for IPsec: %s", r.Path, strings.Join(parts, "; "))
}

// DefaultWarnDays is how close to expiry a certificate is reported.
const DefaultWarnDays = 30

// CheckOptions say what else to check the certificate against.
type CheckOptions struct {
	KeyPath string // private key that must match (optional)
	CAPath  string // CA certificate(s) that must have signed it (optional)
	Name    string // expected CN, e.g. the chassis name (optional)
	// WarnDays: expiry within this many days is a warning; 0 means
	// DefaultWarnDays, negative disables the warning.
	WarnDays int
	Now      func() time.Time
}

// Check runs every check on the PEM certificate at certPEMPath and returns
// one result per check. It never panics on bad input; a file that cannot
// be parsed fails "parse" and skips the rest.
func Check(certPEMPath string, opts CheckOptions) Report {
	data, err := readFile(certPEMPath)
	return checkData(certPEMPath, data, err, opts)
}

// checkData is Check on the contents (or read error) of certPEMPath.
func checkData(certPEMPath string, data []byte, readErr error, opts CheckOptions) Report {
	rep := Report{Path: certPEMPath}
	now := time.Now()
	if opts.Now != nil {
		now = opts.Now()
	}
	add := func(id CheckID, st Status, fix, format string, args ...any) {
		rep.Results = append(rep.Results, Result{Check: id, Status: st, Message: fmt.Sprintf(format, args...), Fix: fix})
	}
	certs, err := ParseCertificatesPEM(data)
	if readErr != nil {
		err = fmt.Errorf("load certificate: %w", readErr)
	} else if err != nil {
		err = fmt.Errorf("load certificate %s: %w", certPEMPath, err)
	}
	if err != nil {
		add(CheckParse, StatusFail, "point to the PEM certificate file (NAME-cert.pem), or make one with ovnsec pki req NAME and ovnsec pki sign NAME", "%v", err)
		for _, id := range AllChecks[1:] {
			add(id, StatusSkip, "", "not checked: no certificate")
		}
		return rep
	}
	cert := certs[0]
	rep.Cert = cert
	add(CheckParse, StatusOK, "", "%s: certificate serial %s, subject %q, issuer %q", certPEMPath, FormatSerial(cert.SerialNumber), cert.Subject.String(), cert.Issuer.String())

	if cert.Version == 3 {
		add(CheckVersion, StatusOK, "", "X.509 version 3")
	} else {
		add(CheckVersion, StatusFail, "re-issue it as X.509 v3 with ovnsec pki sign (ovs-pki before 2.11 made v1 certificates)", "X.509 version %d; IPsec needs version 3 (subjectAltName is an extension)", cert.Version)
	}

	cn := cert.Subject.CommonName
	ovsCN, ovsOK := OVSCommonName(cert)
	switch {
	case cn == "":
		add(CheckCN, StatusFail, "re-issue it with CN=<chassis name>: ovnsec pki req NAME; ovnsec pki sign NAME", "subject %q has no CN; the CN is the IPsec identity", cert.Subject.String())
	case strings.ContainsAny(cn, " \t"):
		add(CheckCN, StatusFail, "make the request with ovnsec pki req NAME (or ovs-pki req -u NAME) so that CN is exactly the chassis name, then sign it again", "CN %q contains a space (ovs-pki req without -u appends \" id:...\"); it cannot be used as an IPsec identity", cn)
	case !ovsOK || ovsCN != cn:
		add(CheckCN, StatusFail, "re-issue it with a subject that has other fields before the CN (C, O, ...) and a plain CN, as ovnsec pki req makes", "ovs-monitor-ipsec would read the CN as %q instead of %q (it parses 'openssl x509 -subject -nameopt RFC2253' up to the next comma)", ovsCN, cn)
	default:
		add(CheckCN, StatusOK, "", "CN %q", cn)
	}

	switch {
	case cn == "":
		add(CheckSAN, StatusSkip, "", "not checked: no CN")
	case containsString(cert.DNSNames, cn):
		if extra := certExtraSANs(cert); len(extra) > 0 {
			add(CheckSAN, StatusWarn, fmt.Sprintf("unless these names are meant, re-issue it with subjectAltName=DNS:%s only (ovnsec pki sign copies other names only with --allow-extra-sans)", cn), "subjectAltName DNS:%s matches the CN, but the certificate also names %s and authenticates as those too", cn, joinSANs(extra))
			break
		}
		add(CheckSAN, StatusOK, "", "subjectAltName DNS:%s matches the CN", cn)
	default:
		add(CheckSAN, StatusFail, fmt.Sprintf("re-issue it with subjectAltName=DNS:%s (ovnsec pki req/sign add it; ovs-pki needs version 2.11 or later)", cn), "subjectAltName DNS names %q do not include the CN %q; the IKE peer identity is the CN as an FQDN and must appear in the SAN", cert.DNSNames, cn)
	}

	warnDays := opts.WarnDays
	if warnDays == 0 {
		warnDays = DefaultWarnDays
	}
	left := cert.NotAfter.Sub(now)
	days := int(math.Floor(left.Hours() / 24))
	until := cert.NotAfter.UTC().Format(time.RFC3339)
	switch {
	case now.Before(cert.NotBefore):
		add(CheckValidity, StatusFail, "check the clock of this host and of the host that signed it (timedatectl), or wait", "not valid before %s (%s from now)", cert.NotBefore.UTC().Format(time.RFC3339), cert.NotBefore.Sub(now).Round(time.Second))
	case !now.Before(cert.NotAfter):
		add(CheckValidity, StatusFail, "issue a new certificate (ovnsec pki sign --force NAME, or your CA's renewal) and point other_config:certificate at it", "expired on %s (%d days ago)", until, -days)
	case warnDays > 0 && left < time.Duration(warnDays)*24*time.Hour:
		add(CheckValidity, StatusWarn, "renew it before it expires: issue a new certificate and point other_config:certificate at it", "expires in %d days (%s)", days, until)
	default:
		add(CheckValidity, StatusOK, "", "valid until %s (expires in %d days)", until, days)
	}

	checkUsage(cert, add)
	checkPubKey(cert, add)

	if opts.CAPath == "" {
		if isSelfSigned(cert) {
			add(CheckCA, StatusSkip, "", "no CA given; the certificate is self-signed (peers must pin it with options:remote_cert)")
		} else {
			add(CheckCA, StatusSkip, "", "no CA given (use --ca with the other_config:ca_cert file)")
		}
	} else {
		checkCA(cert, opts.CAPath, now, add)
	}

	if opts.KeyPath == "" {
		add(CheckKey, StatusSkip, "", "no private key given")
	} else if key, err := LoadPrivateKey(opts.KeyPath); err != nil {
		add(CheckKey, StatusFail, "point other_config:private_key (--key) at the NAME-privkey.pem made together with the request", "%v", err)
	} else if !publicKeyEqual(key.Public(), cert.PublicKey) {
		add(CheckKey, StatusFail, "use the key the request was made with, or make a new request and certificate for this key", "private key %s (%s) does not belong to the certificate (%s)", opts.KeyPath, describeKey(key.Public()), describeKey(cert.PublicKey))
	} else {
		add(CheckKey, StatusOK, "", "private key %s matches (%s)", opts.KeyPath, describeKey(key.Public()))
	}

	switch {
	case opts.Name == "":
		add(CheckName, StatusSkip, "", "no expected name given")
	case cn == opts.Name:
		add(CheckName, StatusOK, "", "CN is %q as expected", cn)
	default:
		add(CheckName, StatusFail, fmt.Sprintf("issue a certificate for %q (ovnsec pki req %s; ovnsec pki sign %s), or correct the expected name (chassis name / remote_name)", opts.Name, opts.Name, opts.Name), "CN %q is not the expected name %q; peers configured with remote_name=%s will reject it", cn, opts.Name, opts.Name)
	}
	return rep
}

// checkUsage checks key usage, extended key usage and basic constraints.
func checkUsage(cert *x509.Certificate, add func(CheckID, Status, string, string, ...any)) {
	const fix = "re-issue it with ovnsec pki sign (keyUsage digitalSignature, no CA flag)"
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		add(CheckUsage, StatusFail, fix, "keyUsage does not allow digitalSignature, which IKEv2 authentication needs")
		return
	}
	if len(cert.ExtKeyUsage) > 0 || len(cert.UnknownExtKeyUsage) > 0 {
		ok := false
		for _, u := range cert.ExtKeyUsage {
			// What the native IKE engine accepts (internal/ike), as strongSwan.
			ok = ok || u == x509.ExtKeyUsageAny || u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageClientAuth
		}
		for _, u := range cert.UnknownExtKeyUsage {
			ok = ok || u.Equal(oidKPIPsecIKE)
		}
		if !ok {
			add(CheckUsage, StatusFail, fix, "extendedKeyUsage allows neither ipsecIKE nor serverAuth/clientAuth; ovnsec's IKE engine and Libreswan refuse such certificates")
			return
		}
	}
	if cert.IsCA {
		add(CheckUsage, StatusWarn, fix, "this is a CA certificate; use a chassis certificate signed by the CA")
		return
	}
	add(CheckUsage, StatusOK, "", "usable for signatures")
}

var oidKPIPsecIKE = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 17}

// checkPubKey checks the key algorithm and size.
func checkPubKey(cert *x509.Certificate, add func(CheckID, Status, string, string, ...any)) {
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			add(CheckPubKey, StatusFail, "make a new key and certificate: ovnsec pki req --force NAME (RSA 3072 by default)", "RSA key of %d bits is too weak (at least %d)", k.N.BitLen(), MinRSABits)
			return
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		add(CheckPubKey, StatusFail, "make a new key and certificate with ovnsec pki req --key rsa|ecdsa NAME", "public key type %s is not supported; use RSA or ECDSA", describeKey(cert.PublicKey))
		return
	}
	add(CheckPubKey, StatusOK, "", "%s", describeKey(cert.PublicKey))
}

// checkCA checks that one of the certificates in caPath signed cert.
func checkCA(cert *x509.Certificate, caPath string, now time.Time, add func(CheckID, Status, string, string, ...any)) {
	cas, err := LoadCertificates(caPath)
	if err != nil {
		add(CheckCA, StatusFail, "point --ca (other_config:ca_cert) at the PEM CA certificate, e.g. <pkidir>/switchca/cacert.pem", "%v", err)
		return
	}
	var lastErr error
	for _, ca := range cas {
		sigErr := cert.CheckSignatureFrom(ca)
		if string(ca.RawSubject) != string(cert.RawIssuer) {
			if sigErr == nil {
				add(CheckCA, StatusFail, "use the CA certificate file that issued it unchanged (IKE daemons find the CA by the issuer name)", "the signature verifies with %s but the certificate's issuer name %q is not encoded like the CA's subject %q", caPath, cert.Issuer.String(), ca.Subject.String())
				return
			}
			continue
		}
		if sigErr != nil {
			lastErr = sigErr
			continue
		}
		if now.After(ca.NotAfter) {
			add(CheckCA, StatusFail, "renew the CA and re-issue every chassis certificate", "signed by %q, but that CA certificate expired on %s", ca.Subject.String(), ca.NotAfter.UTC().Format(time.RFC3339))
			return
		}
		add(CheckCA, StatusOK, "", "signed by %q", ca.Subject.String())
		return
	}
	fix := "use the CA that issued it as other_config:ca_cert, or have this CA sign a new certificate (ovnsec pki sign NAME)"
	if lastErr != nil {
		add(CheckCA, StatusFail, fix, "issuer name matches %s but the signature does not verify: %v", caPath, lastErr)
		return
	}
	add(CheckCA, StatusFail, fix, "not signed by %s: certificate issuer %q, CA subject %q", caPath, cert.Issuer.String(), cas[0].Subject.String())
}

// isSelfSigned reports whether cert is signed by its own key.
func isSelfSigned(cert *x509.Certificate) bool {
	return string(cert.RawIssuer) == string(cert.RawSubject) &&
		cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) == nil
}

// certExtraSANs lists the certificate's subjectAltName entries other than
// DNS:<CN> (nil if the extension cannot be read: crypto/x509 parsed it).
func certExtraSANs(cert *x509.Certificate) []SAN {
	var extra []SAN
	for _, e := range cert.Extensions {
		if !e.Id.Equal(oidExtSubjectAltName) {
			continue
		}
		sans, err := parseSANs(e.Value)
		if err != nil {
			return nil
		}
		for _, s := range sans {
			if s.Tag != sanDNS || s.Value != cert.Subject.CommonName {
				extra = append(extra, s)
			}
		}
	}
	return extra
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
