// Stage: the chassis side's status as data. What `ovs-appctl ca/status`
// shows (as text or JSON) and what the demo and tests read: the
// certificate in use (subject, issuer, validity), the CA bundle, the last
// and next attempt, the next renewal and the last error.

package enroll

import (
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/ovnsec/ovnsec/internal/pki"
)

// CertStatus describes one certificate.
type CertStatus struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// SHA256 is the fingerprint of the DER encoding.
	SHA256 string `json:"sha256"`
}

func certStatus(c *x509.Certificate) *CertStatus {
	if c == nil {
		return nil
	}
	return &CertStatus{
		Subject: c.Subject.String(), Issuer: c.Issuer.String(), Serial: pki.FormatSerial(c.SerialNumber),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), SHA256: FingerprintOf(c).String(),
	}
}

// Status is the enrolment state at one moment.
type Status struct {
	// Server is the CA service's address.
	Server  string `json:"server"`
	Chassis string `json:"chassis"`
	// State is one word: starting, enrolled, renewing (a renewal is due
	// or failing while the certificate is still valid), failing (no
	// usable certificate).
	State string `json:"state"`
	// Detail says why, in a sentence, when State is not enrolled.
	Detail string `json:"detail,omitempty"`
	// Paths are the files written; InUse the files the database names.
	Paths Paths `json:"paths"`
	InUse Paths `json:"in_use"`
	// Certificate is the certificate in use (nil: none).
	Certificate *CertStatus `json:"certificate,omitempty"`
	// CAs is the CA bundle.
	CAs []CertStatus `json:"cas,omitempty"`
	// NextRenewal is when the certificate is renewed unless something
	// earlier asks for it.
	NextRenewal time.Time `json:"next_renewal,omitzero"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	// LastOp is the last EST operation: cacerts, simpleenroll,
	// simplereenroll.
	LastOp      string    `json:"last_op,omitempty"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	// Failures counts attempts that failed in a row.
	Failures int `json:"failures"`
	// Issued counts certificates obtained by this process, Attempts the
	// attempts made.
	Issued   int `json:"issued"`
	Attempts int `json:"attempts"`
}

// Text renders s for ovs-appctl, relative times taken at now.
func (s Status) Text(now time.Time) string {
	var b strings.Builder
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "%-15s%s\n", label+":", fmt.Sprintf(format, args...))
	}
	at := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		d := t.Sub(now).Round(time.Second)
		switch {
		case d > 0:
			return fmt.Sprintf("%s (in %s)", t.UTC().Format(time.RFC3339), human(d))
		case d < 0:
			return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), human(-d))
		}
		return t.UTC().Format(time.RFC3339) + " (now)"
	}
	line("CA service", "%s", s.Server)
	line("Chassis", "%s", orNone(s.Chassis))
	if s.Detail != "" {
		line("State", "%s: %s", s.State, s.Detail)
	} else {
		line("State", "%s", s.State)
	}
	if c := s.Certificate; c != nil {
		line("Certificate", "%s", s.InUse.Cert)
		line("  Subject", "%s", c.Subject)
		line("  Issuer", "%s", c.Issuer)
		line("  Serial", "%s", c.Serial)
		line("  Not before", "%s", c.NotBefore.Format(time.RFC3339))
		if now.After(c.NotAfter) {
			line("  Not after", "%s (EXPIRED %s ago)", c.NotAfter.Format(time.RFC3339), human(now.Sub(c.NotAfter)))
		} else {
			line("  Not after", "%s", at(c.NotAfter))
		}
		line("Private key", "%s", s.InUse.Key)
	} else {
		line("Certificate", "none")
	}
	line("CA bundle", "%s (%d CA certificates)", orNone(s.Paths.CA), len(s.CAs))
	for _, c := range s.CAs {
		line("  CA", "%s, sha256 %s, not after %s", c.Subject, c.SHA256, c.NotAfter.Format(time.RFC3339))
	}
	line("Next renewal", "%s", at(s.NextRenewal))
	op := ""
	if s.LastOp != "" {
		op = " " + s.LastOp
	}
	line("Last attempt", "%s%s", at(s.LastAttempt), op)
	line("Last success", "%s", at(s.LastSuccess))
	line("Next attempt", "%s", at(s.NextAttempt))
	if s.LastError != "" {
		line("Last error", "%s (%d failed attempts in a row)", s.LastError, s.Failures)
	} else {
		line("Last error", "none")
	}
	line("Issued", "%d certificates since start", s.Issued)
	return b.String()
}

// human is d in seconds, or in days and hours from two days on.
func human(d time.Duration) string {
	if d < 48*time.Hour {
		return d.Round(time.Second).String()
	}
	days := d / (24 * time.Hour)
	return fmt.Sprintf("%dd%dh", days, (d-days*24*time.Hour)/time.Hour)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
