// Stage: requests. Making a key and certificate request (req), a
// self-signed certificate from them (self-sign), and the openssl ca
// configuration ovs-pki keeps in each CA directory.

package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Files names the three files ovs-pki keeps per NAME: NAME-privkey.pem,
// NAME-req.pem and NAME-cert.pem, relative to a working directory (ovs-pki
// uses the current directory).
type Files struct {
	Key, Req, Cert string
}

// FilesFor returns the file names for name in workDir. An absolute name,
// or an empty workDir, leaves the path as given.
func FilesFor(workDir, name string) Files {
	p := func(suffix string) string {
		f := name + suffix
		if workDir == "" || filepath.IsAbs(f) {
			return f
		}
		return filepath.Join(workDir, f)
	}
	return Files{Key: p("-privkey.pem"), Req: p("-req.pem"), Cert: p("-cert.pem")}
}

// maxCNLen is the upper bound for commonName in RFC 5280.
const maxCNLen = 64

// ValidateName checks a NAME that becomes the certificate's CN and SAN
// DNS name, i.e. the IPsec identity (the chassis name / remote_name).
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("NAME is empty; give the chassis name (it becomes the certificate CN)")
	case utf8.RuneCountInString(name) > maxCNLen:
		return fmt.Errorf("NAME %q is longer than %d characters, the limit for a certificate CN", name, maxCNLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("NAME %q is not valid UTF-8", name)
	case strings.Contains(name, "/"):
		return fmt.Errorf("NAME %q contains '/'; it becomes the CN and IPsec identity, so give a plain chassis name and run the command in the directory where the files should go", name)
	case strings.Contains(name, ","):
		return fmt.Errorf("NAME %q contains ','; ovs-monitor-ipsec cuts the CN at the first comma, so use a name without one", name)
	}
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("NAME %q contains a space or control character; it becomes the CN and IPsec identity, so use a plain chassis name", name)
		}
	}
	return nil
}

// ReqOptions configure Req.
type ReqOptions struct {
	Key   KeySpec
	Force bool
}

// Req makes a new private key (mode 0600) and a certificate request for
// name in workDir, like ovs-pki req -u: subject C=US, ST=CA, L=Palo Alto,
// O=Open vSwitch, OU=Open vSwitch certifier, CN=<name> with the requested
// extensions subjectAltName=DNS:<name> and keyUsage=digitalSignature.
func Req(workDir, name string, opts ReqOptions, env Env) (Files, error) {
	f := FilesFor(workDir, name)
	if err := ValidateName(name); err != nil {
		return f, err
	}
	for _, p := range []string{f.Key, f.Req} {
		if err := mustNotExist(p, opts.Force); err != nil {
			return f, err
		}
	}
	key, err := GenerateKey(opts.Key, env.rand())
	if err != nil {
		return f, err
	}
	keyPEM, err := EncodePrivateKey(key)
	if err != nil {
		return f, err
	}
	subject, err := encodeName(reqSubjectAttrs(name))
	if err != nil {
		return f, err
	}
	ku, err := keyUsageExtension()
	if err != nil {
		return f, err
	}
	der, err := x509.CreateCertificateRequest(env.rand(), &x509.CertificateRequest{
		RawSubject:         subject,
		DNSNames:           []string{name},
		ExtraExtensions:    []pkix.Extension{ku},
		SignatureAlgorithm: signatureAlgorithm(key),
	}, key)
	if err != nil {
		return f, fmt.Errorf("create request for %s: %w", name, err)
	}
	reqPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	return f, writeAll([]output{
		{path: f.Key, data: keyPEM, mode: modeKey},
		{path: f.Req, data: reqPEM, mode: modeFile},
	}, opts.Force)
}

// keyUsageExtension is a critical keyUsage extension with digitalSignature.
func keyUsageExtension() (pkix.Extension, error) {
	v, err := asn1.Marshal(asn1.BitString{Bytes: []byte{0x80}, BitLength: 1})
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("encode keyUsage: %w", err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 15}, Critical: true, Value: v}, nil
}

// SelfSignOptions configure SelfSign.
type SelfSignOptions struct {
	Days  int // 0 means DefaultDays
	Force bool
}

// SelfSign signs NAME-req.pem with NAME-privkey.pem into a self-signed
// NAME-cert.pem, like ovs-pki self-sign: subject from the request,
// subjectAltName=DNS:<name>, plus keyUsage digitalSignature.
func SelfSign(workDir, name string, opts SelfSignOptions, env Env) (*x509.Certificate, error) {
	f := FilesFor(workDir, name)
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	days, err := checkDays(opts.Days)
	if err != nil {
		return nil, err
	}
	for _, p := range []string{f.Req, f.Key} {
		if err := mustExist(p); err != nil {
			return nil, err
		}
	}
	if err := mustNotExist(f.Cert, opts.Force); err != nil {
		return nil, err
	}
	csr, err := LoadRequest(f.Req)
	if err != nil {
		return nil, err
	}
	key, err := LoadPrivateKey(f.Key)
	if err != nil {
		return nil, err
	}
	if !publicKeyEqual(csr.PublicKey, key.Public()) {
		return nil, fmt.Errorf("%s was not made with %s (the public keys differ); make both again with ovnsec pki req --force %s", f.Req, f.Key, name)
	}
	serial, err := randomSerial(env.rand())
	if err != nil {
		return nil, err
	}
	skid, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, err
	}
	now := env.now()
	tmpl := &x509.Certificate{
		SerialNumber:       serial,
		RawSubject:         csr.RawSubject,
		NotBefore:          now.Add(-backdate),
		NotAfter:           now.AddDate(0, 0, days),
		KeyUsage:           x509.KeyUsageDigitalSignature,
		DNSNames:           []string{name},
		SubjectKeyId:       skid,
		SignatureAlgorithm: signatureAlgorithm(key),
	}
	der, err := x509.CreateCertificate(env.rand(), tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("self-sign %s: %w", f.Req, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("self-sign %s: parse new certificate: %w", f.Req, err)
	}
	err = writeAll([]output{{path: f.Cert, data: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), mode: modeFile}}, opts.Force)
	if err != nil {
		return nil, err
	}
	return cert, nil
}

// caConfig is ovs-pki's ca.cnf for CA ca made at date, byte for byte, so
// that ovs-pki sign and openssl ca keep working on a directory we made.
func caConfig(ca, date string) string {
	return strings.NewReplacer("@ca@", ca, "@curr_date@", date).Replace(caConfigTemplate)
}

const caConfigTemplate = `[ req ]
prompt = no
distinguished_name = req_distinguished_name

[ req_distinguished_name ]
C = US
ST = CA
L = Palo Alto
O = Open vSwitch
OU = @ca@
CN = OVS @ca@ CA Certificate (@curr_date@)

[ ca ]
default_ca = the_ca

[ the_ca ]
dir            = .                     # top dir
database       = $dir/index.txt        # index file.
new_certs_dir  = $dir/newcerts         # new certs dir
certificate    = $dir/cacert.pem       # The CA cert
serial         = $dir/serial           # serial no file
private_key    = $dir/private/cakey.pem# CA private key
RANDFILE       = $dir/private/.rand    # random number file
default_days   = 3650                  # how long to certify for
default_crl_days= 30                   # how long before next CRL
default_md     = sha512                # message digest to use
policy         = policy                # default policy
email_in_dn    = no                    # Don't add the email into cert DN
name_opt       = ca_default            # Subject name display option
cert_opt       = ca_default            # Certificate display option
copy_extensions = copy                 # Copy extensions from request
unique_subject = no                    # Allow certs with duplicate subjects

# For the CA policy
[ policy ]
countryName             = optional
stateOrProvinceName     = optional
organizationName        = match
organizationalUnitName  = optional
commonName              = supplied
emailAddress            = optional

# For the x509v3 extension
[ ca_cert ]
basicConstraints=CA:true

[ usr_cert ]
basicConstraints=CA:false
`
