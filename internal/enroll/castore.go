// Stage: the CA certificates. A CAStore says which CA signs now, which CA
// certificates a client certificate may chain to, and what cacerts
// publishes. DirStore reads them from the ovs-pki directory and reads
// again whenever a file changes, so a CA rollover done beside a running
// server (a new CA first in cacert.pem, the old one after it, link
// certificates in links.pem, the old one's retirement in rollover: see
// pki.Dir.Rollover) is followed without a restart; a previous CA stops
// being trusted and published the moment its retirement comes.

package enroll

import (
	"crypto/x509"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/pki"
)

// CASet is the CA state at one moment.
type CASet struct {
	// Issuer signs new certificates: the first certificate of cacert.pem
	// with private/cakey.pem.
	Issuer *pki.CA
	// Trusted are the CA certificates a client certificate may chain to:
	// the issuer's first, then previous CAs until they retire.
	Trusted []*x509.Certificate
	// Links are the link certificates between Trusted CAs.
	Links []*x509.Certificate
}

// Published is what cacerts returns: the trusted CA certificates, the
// current one first, then the link certificates.
func (s *CASet) Published() []*x509.Certificate {
	out := append([]*x509.Certificate(nil), s.Trusted...)
	return append(out, s.Links...)
}

// CAStore gives the CA state for each request.
type CAStore interface {
	CAs() (*CASet, error)
}

// DirStore is the switch CA of an ovs-pki directory.
type DirStore struct {
	dir   pki.Dir
	clock clock.Clock

	mu     sync.Mutex
	stamp  string
	loaded *loadedCAs
}

// loadedCAs is what the files hold, before retirements are applied.
type loadedCAs struct {
	issuer  *pki.CA
	all     []*x509.Certificate
	links   []*x509.Certificate
	retires map[string]time.Time // by serial (FormatSerial)
}

// NewDirStore returns the store of the PKI directory dir. A nil clock is
// the real one.
func NewDirStore(dir string, c clock.Clock) *DirStore {
	c = clock.Or(c)
	return &DirStore{dir: pki.Dir{Path: dir, Env: pki.Env{Now: c.Now}}, clock: c}
}

// Dir is the PKI directory, with the store's clock.
func (s *DirStore) Dir() pki.Dir { return s.dir }

func (s *DirStore) paths() []string {
	ca := s.dir.CADir(pki.SwitchCA)
	return []string{s.dir.CACertPath(pki.SwitchCA), s.dir.CAKeyPath(pki.SwitchCA), filepath.Join(ca, pki.LinksFileName), filepath.Join(ca, pki.RolloverFileName)}
}

// stampOf identifies the files' current versions.
func stampOf(paths []string) string {
	var sb strings.Builder
	for _, p := range paths {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			sb.WriteString("-;")
			continue
		}
		fmt.Fprintf(&sb, "%d.%d.%d.%d;", st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
	}
	return sb.String()
}

// CAs reads the directory again if a file changed and returns the CA
// state now: previous CAs whose retirement time has passed, and link
// certificates that involve them, are left out.
func (s *DirStore) CAs() (*CASet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stamp := stampOf(s.paths())
	if s.loaded == nil || stamp != s.stamp {
		l, err := s.load()
		if err != nil {
			return nil, err
		}
		s.loaded, s.stamp = l, stamp
	}
	now := s.clock.Now()
	l := s.loaded
	set := &CASet{Issuer: l.issuer, Trusted: []*x509.Certificate{l.all[0]}}
	retired := map[string]bool{}
	for _, c := range l.all[1:] {
		if t, ok := l.retires[pki.FormatSerial(c.SerialNumber)]; ok && !now.Before(t) {
			retired[string(c.RawSubject)] = true
			continue
		}
		set.Trusted = append(set.Trusted, c)
	}
	for _, c := range l.links {
		if retired[string(c.RawSubject)] || retired[string(c.RawIssuer)] {
			continue
		}
		set.Links = append(set.Links, c)
	}
	return set, nil
}

func (s *DirStore) load() (*loadedCAs, error) {
	issuer, err := s.dir.LoadCA(pki.SwitchCA)
	if err != nil {
		return nil, err
	}
	all, err := s.dir.CACertificates(pki.SwitchCA)
	if err != nil {
		return nil, err
	}
	for _, c := range all {
		if !c.IsCA {
			return nil, fmt.Errorf("switch CA: %s holds a certificate that is not a CA (%q); it must hold CA certificates only", s.dir.CACertPath(pki.SwitchCA), c.Subject.String())
		}
	}
	l := &loadedCAs{issuer: issuer, all: all}
	if l.links, err = s.dir.Links(pki.SwitchCA); err != nil {
		return nil, fmt.Errorf("switch CA links: %w", err)
	}
	if l.retires, err = s.dir.Retirements(pki.SwitchCA); err != nil {
		return nil, fmt.Errorf("switch CA rollover: %w", err)
	}
	return l, nil
}
