// Stage: the EST client. What a chassis says to the CA service: GET
// cacerts, POST simpleenroll (HTTP Basic: chassis name and bootstrap
// token) and POST simplereenroll (mutual TLS with the current
// certificate), over HTTPS that trusts only the CA certificates it is
// handed, never the system's roots. Answers are read with the wire format
// the server writes (pkcs7.go); a refusal comes back as a *RefusedError
// that carries the server's one-line reason.

package enroll

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/pki"
)

// DefaultClientTimeout bounds one EST request, connection included.
const DefaultClientTimeout = 30 * time.Second

// MaxAnswerBody bounds what is read of an answer: a cacerts answer during
// a rollover holds four certificates, a few KiB of base64.
const MaxAnswerBody = 1 << 20

// maxReasonLen bounds the refusal text kept from a server.
const maxReasonLen = 400

// Client speaks EST to one CA service.
type Client struct {
	base    *url.URL
	clock   clock.Clock
	timeout time.Duration
}

// ParseServerURL reads the CA service's address as --enroll takes it:
// https://HOST[:PORT] (443 when no port is given), without user
// information, query or fragment; a path other than "/" or the EST prefix
// is refused, since EST's operations live under /.well-known/est/.
func ParseServerURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("CA service address %q: %w; want https://HOST:PORT", s, err)
	}
	switch {
	case u.Scheme != "https":
		return nil, fmt.Errorf("CA service address %q: want https://HOST:PORT (EST runs over HTTPS only)", s)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("CA service address %q has no host; want https://HOST:PORT", s)
	case u.User != nil:
		return nil, fmt.Errorf("CA service address %q carries user information; give the bootstrap token with --enroll-token-file instead", redactURL(u))
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, fmt.Errorf("CA service address %q: no query or fragment; want https://HOST:PORT", s)
	}
	if p := strings.TrimSuffix(u.Path, "/"); p != "" && p+"/" != PathPrefix {
		return nil, fmt.Errorf("CA service address %q: path %q is not EST's %s; give https://HOST:PORT", s, u.Path, PathPrefix)
	}
	if port := u.Port(); port != "" {
		if _, err := net.LookupPort("tcp", port); err != nil {
			return nil, fmt.Errorf("CA service address %q: port %q: %w", s, port, err)
		}
	}
	return &url.URL{Scheme: "https", Host: u.Host}, nil
}

func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// NewClient returns a client of the CA service at server
// (ParseServerURL). A nil clock is the real one; it also decides which
// certificates are valid in TLS.
func NewClient(server string, c clock.Clock) (*Client, error) {
	u, err := ParseServerURL(server)
	if err != nil {
		return nil, err
	}
	return &Client{base: u, clock: clock.Or(c), timeout: DefaultClientTimeout}, nil
}

// URL is the CA service's address.
func (c *Client) URL() string { return c.base.String() }

// RefusedError is an EST request the server answered with an error.
type RefusedError struct {
	Op     string
	Status int
	// Reason is the server's text, cut to one line of printable
	// characters.
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s refused by the CA service (HTTP %d): %s", e.Op, e.Status, e.Reason)
}

// AuthRefused reports whether the server refused who the client is (401,
// 403), as opposed to being unavailable.
func (e *RefusedError) AuthRefused() bool {
	return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
}

// ReasonText turns an error body into one line of at most maxReasonLen
// printable characters: control characters (an attacker's terminal
// escapes, line breaks) become spaces, runs of spaces one.
func ReasonText(body []byte) string {
	var sb strings.Builder
	space := false
	n := 0
	for _, r := range strings.ToValidUTF8(string(body), "?") {
		if !unicode.IsPrint(r) {
			r = ' '
		}
		if r == ' ' {
			if space || sb.Len() == 0 {
				continue
			}
			space = true
		} else {
			space = false
		}
		if n == maxReasonLen {
			sb.WriteString("...")
			break
		}
		sb.WriteRune(r)
		n++
	}
	out := strings.TrimRight(sb.String(), " ")
	if out == "" {
		return "(no reason given)"
	}
	return out
}

// tlsConfig trusts exactly roots (nil: nothing is verified, see
// fetchUnverified) and presents cert when asked.
func (c *Client) tlsConfig(roots []*x509.Certificate, cert *tls.Certificate) *tls.Config {
	tc := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: c.base.Hostname(),
		Time:       c.clock.Now,
	}
	if roots == nil {
		// Only fetchUnverified gets here: the answer is a list of
		// candidates that the CA fingerprint then authenticates.
		tc.InsecureSkipVerify = true
	} else {
		pool := x509.NewCertPool()
		for _, r := range roots {
			pool.AddCert(r)
		}
		tc.RootCAs = pool
	}
	if cert != nil {
		cc := *cert
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cc, nil }
	}
	return tc
}

// request is one EST exchange.
type request struct {
	op    string // cacerts, simpleenroll, simplereenroll
	roots []*x509.Certificate
	csr   []byte // DER; POST when set
	user  string // HTTP Basic user (simpleenroll with a token)
	token Token
	cert  *tls.Certificate // mutual TLS
}

// do runs one exchange and returns the certificates of the answer.
func (c *Client) do(ctx context.Context, r request) ([]*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	tr := &http.Transport{
		TLSClientConfig:     c.tlsConfig(r.roots, r.cert),
		DisableKeepAlives:   true,
		TLSHandshakeTimeout: c.timeout,
		// The CA service is reached directly, whatever HTTPS_PROXY a
		// daemon's environment happens to carry.
		Proxy:                  nil,
		MaxResponseHeaderBytes: 64 << 10,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return errors.New("the CA service answered with a redirect; EST clients do not follow redirects (RFC 7030 section 3.2.1 asks for a new trust decision)")
	}}
	method, body := http.MethodGet, []byte(nil)
	if r.csr != nil {
		method, body = http.MethodPost, wrapBase64(r.csr)
	}
	u := c.base.JoinPath(PathPrefix + r.op)
	hr, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("EST %s: %w", r.op, err)
	}
	if r.csr != nil {
		hr.Header.Set("Content-Type", MediaPKCS10)
		hr.Header.Set("Content-Transfer-Encoding", "base64")
	}
	hr.Header.Set("Accept", MediaCertsOnly)
	if r.user != "" {
		hr.SetBasicAuth(r.user, r.token.Secret())
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, c.transportError(r.op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerBody+1))
	if err != nil {
		return nil, fmt.Errorf("EST %s at %s: reading the answer: %w", r.op, c.base, err)
	}
	if len(data) > MaxAnswerBody {
		return nil, fmt.Errorf("EST %s at %s: the answer is larger than %d bytes; is %s an EST CA service?", r.op, c.base, MaxAnswerBody, c.base)
	}
	switch {
	case resp.StatusCode == http.StatusAccepted:
		return nil, &RefusedError{Op: r.op, Status: resp.StatusCode, Reason: "the request waits for manual approval, which this client does not support; approve it on the CA and let the client try again"}
	case resp.StatusCode != http.StatusOK:
		return nil, &RefusedError{Op: r.op, Status: resp.StatusCode, Reason: ReasonText(data)}
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/pkcs7-mime" {
		return nil, fmt.Errorf("EST %s at %s: the answer's Content-Type %q is not application/pkcs7-mime; is %s an EST CA service?", r.op, c.base, resp.Header.Get("Content-Type"), c.base)
	}
	certs, err := ParseCertsOnlyBase64(data)
	if err != nil {
		return nil, fmt.Errorf("EST %s at %s: the answer cannot be read: %w", r.op, c.base, err)
	}
	return certs, nil
}

// transportError says what to do about a failed connection.
func (c *Client) transportError(op string, err error) error {
	var unknown x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("EST %s at %s: the CA service's TLS certificate is not signed by a CA this chassis trusts (its CA bundle, --enroll-ca-cert or --enroll-ca-fingerprint); if the CA was replaced while this chassis was away, give the new CA with --enroll-ca-cert: %w", op, c.base, err)
	case errors.As(err, &hostErr):
		return fmt.Errorf("EST %s at %s: the CA service's TLS certificate does not name %s; use the address it was issued for: %w", op, c.base, c.base.Hostname(), err)
	case errors.As(err, &invalid):
		return fmt.Errorf("EST %s at %s: the CA service's TLS certificate is not valid (check both clocks): %w", op, c.base, err)
	}
	return fmt.Errorf("EST %s at %s: %w (is the CA service running and reachable?)", op, c.base, err)
}

// wrapBase64 is base64 in lines of 64 characters, as openssl writes it.
func wrapBase64(der []byte) []byte {
	s := base64.StdEncoding.EncodeToString(der)
	var b bytes.Buffer
	for len(s) > 64 {
		b.WriteString(s[:64])
		b.WriteString("\r\n")
		s = s[64:]
	}
	b.WriteString(s)
	b.WriteString("\r\n")
	return b.Bytes()
}

// CACerts fetches the CA certificates the service publishes, over TLS
// verified with roots.
func (c *Client) CACerts(ctx context.Context, roots []*x509.Certificate) ([]*x509.Certificate, error) {
	if len(roots) == 0 {
		return nil, errors.New("EST cacerts: no CA certificate to verify the CA service with")
	}
	return c.do(ctx, request{op: "cacerts", roots: roots})
}

// fetchUnverified fetches cacerts without verifying the server. The
// answer is only a list of candidates: the caller keeps the one whose
// fingerprint the operator gave and verifies the server with it before
// anything else is said.
func (c *Client) fetchUnverified(ctx context.Context) ([]*x509.Certificate, error) {
	return c.do(ctx, request{op: "cacerts"})
}

// Enroll sends a first request for chassis name (simpleenroll,
// authenticated with the bootstrap token) and returns what the server
// answered; the caller checks it (CheckIssued).
func (c *Client) Enroll(ctx context.Context, roots []*x509.Certificate, csr []byte, name string, tok Token) (*x509.Certificate, error) {
	if len(roots) == 0 {
		return nil, errors.New("EST simpleenroll: no CA certificate to verify the CA service with")
	}
	certs, err := c.do(ctx, request{op: "simpleenroll", roots: roots, csr: csr, user: name, token: tok})
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// Reenroll renews (simplereenroll) over mutual TLS with cur, the current
// certificate and its key.
func (c *Client) Reenroll(ctx context.Context, roots []*x509.Certificate, csr []byte, cur tls.Certificate) (*x509.Certificate, error) {
	if len(roots) == 0 {
		return nil, errors.New("EST simplereenroll: no CA certificate to verify the CA service with")
	}
	certs, err := c.do(ctx, request{op: "simplereenroll", roots: roots, csr: csr, cert: &cur})
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// NewRequest makes the PKCS#10 request (DER) for chassis name with key:
// subject O=Open vSwitch, CN=name (or rawSubject, the current
// certificate's subject, which a renewal must repeat), subjectAltName
// DNS:name and nothing else, as the identity rules want.
func NewRequest(key crypto.Signer, name string, rawSubject []byte) ([]byte, error) {
	if err := pki.ValidateName(name); err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	tmpl := &x509.CertificateRequest{
		Subject:  pkix.Name{Organization: []string{pki.OVSOrganization}, CommonName: name},
		DNSNames: []string{name},
	}
	if len(rawSubject) > 0 {
		tmpl.RawSubject = rawSubject
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("certificate request for %s: %w", name, err)
	}
	return der, nil
}
