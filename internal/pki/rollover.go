// Stage: CA rollover. A new switch CA key and certificate take over
// signing while the old CA stays trusted for an overlap: cacert.pem holds
// the new CA first and the old one after it (ovs-pki, openssl ca and
// LoadCA read the first), links.pem the link certificates RFC 7030
// section 4.1.3 publishes (OldWithNew: the old key certified by the new
// CA; NewWithOld: the new key certified by the old CA, with which a peer
// that trusts only the old CA can still verify certificates of the new
// one), and the rollover file the time the old CA retires. The old key is
// kept in private/cakey-<SERIAL>.pem.

package pki

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// File names beside cacert.pem.
const (
	// LinksFileName holds the link certificates of CA rollovers.
	LinksFileName = "links.pem"
	// RolloverFileName says when each previous CA stops being trusted:
	// lines "retire <SERIAL> <RFC 3339 time>".
	RolloverFileName = "rollover"
)

// RolloverOptions configure Rollover.
type RolloverOptions struct {
	Type CAType // SwitchCA when empty
	// Overlap is how long the current CA stays trusted (and published)
	// beside the new one. It must be positive; it is cut to the old CA's
	// end.
	Overlap time.Duration
}

// RolloverResult describes a rollover.
type RolloverResult struct {
	Old, New               *x509.Certificate
	OldWithNew, NewWithOld *x509.Certificate
	Retire                 time.Time
	// Dropped are previous CAs whose retirement had come, removed from
	// the files by this rollover.
	Dropped []*x509.Certificate
}

// Retirements reads the rollover file of CA type t (none when missing).
func (d Dir) Retirements(t CAType) (map[string]time.Time, error) {
	p := filepath.Join(d.CADir(t), RolloverFileName)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]time.Time{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	m, err := ParseRolloverFile(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return m, nil
}

// Links reads the link certificates of CA type t (none when missing).
func (d Dir) Links(t CAType) ([]*x509.Certificate, error) {
	p := filepath.Join(d.CADir(t), LinksFileName)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(bytes.TrimSpace(b)) == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	certs, err := ParseCertificatesPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return certs, nil
}

// ParseRolloverFile reads the rollover file: '#' comments, empty lines,
// and lines "retire <SERIAL in hex> <RFC 3339 time>", keyed by
// FormatSerial.
func ParseRolloverFile(data []byte) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 3 || f[0] != "retire" {
			return nil, fmt.Errorf("line %d: want \"retire SERIAL TIME\"", n)
		}
		serial, err := ParseSerial(f[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		t, err := time.Parse(time.RFC3339, f[2])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out[FormatSerial(serial)] = t
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	return out, nil
}

// formatRolloverFile writes retirements in serial order.
func formatRolloverFile(m map[string]time.Time) []byte {
	var b bytes.Buffer
	b.WriteString("# ovnsec CA rollover: each previous CA stops being trusted and published at its time\n")
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "retire %s %s\n", k, m[k].UTC().Format(time.RFC3339))
	}
	return b.Bytes()
}

// keySpecOf is the spec of an existing key, so the new CA key is of the
// same kind.
func keySpecOf(pub crypto.PublicKey) KeySpec {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return KeySpec{Type: KeyRSA, Bits: k.N.BitLen()}
	case *ecdsa.PublicKey:
		return KeySpec{Type: KeyECDSA, Bits: k.Curve.Params().BitSize}
	}
	return KeySpec{}
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// Rollover makes a new CA key and certificate of the same kind as the
// current one, which signs from then on, and keeps the current CA trusted
// until now + Overlap. Previous CAs whose retirement has come are dropped
// from cacert.pem, links.pem and the rollover file at the same time. All
// files are written or none; the new CA and link certificates are
// recorded in index.txt and newcerts/.
func (d Dir) Rollover(opts RolloverOptions) (*RolloverResult, error) {
	if opts.Type == "" {
		opts.Type = SwitchCA
	}
	if opts.Overlap <= 0 {
		return nil, fmt.Errorf("rollover: overlap %v is not positive", opts.Overlap)
	}
	if err := d.mustExist(); err != nil {
		return nil, err
	}
	caDir := d.CADir(opts.Type)
	unlock, err := lockDir(caDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	old, err := d.LoadCA(opts.Type)
	if err != nil {
		return nil, err
	}
	all, err := d.CACertificates(opts.Type)
	if err != nil {
		return nil, err
	}
	links, err := d.Links(opts.Type)
	if err != nil {
		return nil, err
	}
	retires, err := d.Retirements(opts.Type)
	if err != nil {
		return nil, err
	}
	now := d.now()
	res := &RolloverResult{Old: old.Cert}

	// Keep previous CAs that are still in their overlap, drop the rest.
	keep := []*x509.Certificate{old.Cert}
	gone := map[string]bool{}
	for _, c := range all[1:] {
		s := FormatSerial(c.SerialNumber)
		if t, ok := retires[s]; ok && !now.Before(t) {
			res.Dropped = append(res.Dropped, c)
			gone[string(c.RawSubject)] = true
			delete(retires, s)
			continue
		}
		keep = append(keep, c)
	}
	var keepLinks []*x509.Certificate
	for _, l := range links {
		if !gone[string(l.RawSubject)] && !gone[string(l.RawIssuer)] {
			keepLinks = append(keepLinks, l)
		}
	}

	key, err := GenerateKey(keySpecOf(old.Key.Public()), d.rand())
	if err != nil {
		return nil, fmt.Errorf("rollover: %w", err)
	}
	name := string(opts.Type) + "ca"
	subject, err := encodeName(caReqSubjectAttrs(name, now.Format("2006 Jan 02 15:04:05")))
	if err != nil {
		return nil, err
	}
	for _, c := range keep {
		if bytes.Equal(c.RawSubject, subject) {
			return nil, fmt.Errorf("rollover: the %s CA of this second has the new CA's subject already; run the rollover again in a second", opts.Type)
		}
	}
	skid, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, err
	}
	caTmpl := func(subject []byte, skid []byte, notAfter time.Time) (*x509.Certificate, error) {
		serial, err := RandomSerial(d.rand())
		if err != nil {
			return nil, err
		}
		return &x509.Certificate{
			SerialNumber: serial, RawSubject: subject,
			NotBefore: now.Add(-backdate), NotAfter: notAfter,
			BasicConstraintsValid: true, IsCA: true,
			KeyUsage:     x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			SubjectKeyId: skid,
		}, nil
	}
	sign := func(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
		tmpl.SignatureAlgorithm = signatureAlgorithm(signer)
		der, err := x509.CreateCertificate(d.rand(), tmpl, parent, pub, signer)
		if err != nil {
			return nil, fmt.Errorf("rollover: %w", err)
		}
		return x509.ParseCertificate(der)
	}
	tmpl, err := caTmpl(subject, skid, now.AddDate(0, 0, CADays))
	if err != nil {
		return nil, err
	}
	if res.New, err = sign(tmpl, tmpl, key.Public(), key); err != nil {
		return nil, err
	}
	oldSKID := old.Cert.SubjectKeyId
	if len(oldSKID) == 0 {
		if oldSKID, err = subjectKeyID(old.Cert.PublicKey); err != nil {
			return nil, err
		}
	}
	if tmpl, err = caTmpl(old.Cert.RawSubject, oldSKID, old.Cert.NotAfter); err != nil {
		return nil, err
	}
	if res.OldWithNew, err = sign(tmpl, res.New, old.Cert.PublicKey, key); err != nil {
		return nil, err
	}
	if tmpl, err = caTmpl(subject, skid, minTime(res.New.NotAfter, old.Cert.NotAfter)); err != nil {
		return nil, err
	}
	if res.NewWithOld, err = sign(tmpl, old.Cert, key.Public(), old.Key); err != nil {
		return nil, err
	}
	res.Retire = minTime(now.Add(opts.Overlap), old.Cert.NotAfter).UTC().Truncate(time.Second)
	retires[FormatSerial(old.Cert.SerialNumber)] = res.Retire

	keyPEM, err := EncodePrivateKey(key)
	if err != nil {
		return nil, err
	}
	oldKeyPEM, err := EncodePrivateKey(old.Key)
	if err != nil {
		return nil, err
	}
	var bundle, linkPEM []byte
	for _, c := range append([]*x509.Certificate{res.New}, keep...) {
		bundle = append(bundle, certPEM(c)...)
	}
	for _, c := range append(keepLinks, res.OldWithNew, res.NewWithOld) {
		linkPEM = append(linkPEM, certPEM(c)...)
	}
	bk, err := loadBookkeeping(caDir)
	if err != nil {
		return nil, err
	}
	archive := filepath.Join(caDir, "private", "cakey-"+FormatSerial(old.Cert.SerialNumber)+".pem")
	outs := []output{{path: archive, data: oldKeyPEM, mode: modeKey}}
	for _, c := range []*x509.Certificate{res.New, res.OldWithNew, res.NewWithOld} {
		recs := bk.record(caDir, c, certPEM(c))
		recs[0].replace = false
		outs = append(outs, recs[0])
		bk.index = recs[1].data
	}
	outs = append(outs,
		output{path: filepath.Join(caDir, "index.txt"), data: bk.index, mode: modeFile, replace: true},
		output{path: filepath.Join(caDir, LinksFileName), data: linkPEM, mode: modeFile, replace: true},
		output{path: filepath.Join(caDir, RolloverFileName), data: formatRolloverFile(retires), mode: modeFile, replace: true},
		// The key and the certificate last, one after the other.
		output{path: d.CAKeyPath(opts.Type), data: keyPEM, mode: modeKey, replace: true},
		output{path: d.CACertPath(opts.Type), data: bundle, mode: modeFile, replace: true},
	)
	if err := writeAll(outs, false); err != nil {
		return nil, err
	}
	return res, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
