// Store stage: files by path, cached by content, re-read when their stat
// changes, with change events for subscribers.

package creds

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock"
)

// MaxFileSize bounds how much of a credential file is read. Real PEM files
// are a few KiB; a CA bundle may be a few hundred KiB.
const MaxFileSize = 1 << 20

// DefaultPoll is how often Run looks for changed files.
const DefaultPoll = 2 * time.Second

// Fingerprint is the SHA-256 digest of a file's content or a certificate's
// DER encoding.
type Fingerprint [sha256.Size]byte

// Options configure a Store. Zero values take the defaults.
type Options struct {
	Clock clock.Clock
	Log   *slog.Logger
	// Poll is Run's interval (DefaultPoll).
	Poll time.Duration
}

// Change names the files whose content changed (or that appeared or
// disappeared) since the subscriber last heard of them.
type Change struct {
	Paths []string
}

// Source reads certificates and keys by path: a *Store, or a fake in
// tests. Every backend reads its credentials through one.
type Source interface {
	Certificates(path string) ([]*x509.Certificate, error)
	PrivateKey(path string) (crypto.Signer, error)
}

// Watcher is implemented by a Source that reports changed files (*Store).
type Watcher interface {
	Subscribe() (<-chan Change, func())
}

var (
	_ Source  = (*Store)(nil)
	_ Watcher = (*Store)(nil)
)

// Store reads and caches credential files. It is safe for concurrent use.
type Store struct {
	clk  clock.Clock
	log  *slog.Logger
	poll time.Duration

	mu    sync.Mutex
	files map[string]*file
	subs  map[chan Change]struct{}
}

// file is one path as last read.
type file struct {
	stat    statKey
	sum     Fingerprint // of the content; zero when unreadable
	readErr error       // why the file could not be read

	// Parsed once per content, as certificates and as a key.
	certs   []*x509.Certificate
	certErr error
	key     crypto.Signer
	keyErr  error
}

// statKey identifies a file version cheaply: a change of any field means
// the content must be read again.
type statKey struct {
	exists bool
	size   int64
	mtime  time.Time
	ino    uint64
	dev    uint64
}

// NewStore returns an empty store.
func NewStore(o Options) *Store {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	return &Store{clk: clock.Or(o.Clock), log: o.Log, poll: o.Poll, files: map[string]*file{}, subs: map[chan Change]struct{}{}}
}

func statOf(path string) (statKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return statKey{}, err
	}
	k := statKey{exists: true, size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		k.ino, k.dev = st.Ino, uint64(st.Dev)
	}
	return k, nil
}

// errTooBig marks a file larger than MaxFileSize.
var errTooBig = fmt.Errorf("file larger than %d bytes; expected a PEM file", MaxFileSize)

// readFile reads at most MaxFileSize bytes of path.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, errTooBig
	}
	return data, nil
}

// readError describes why the file at path could not be read as what
// ("certificate", "private key").
func readError(what, path string, err error) error {
	if errors.Is(err, errTooBig) {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	return fmt.Errorf("read %s %s: %w; check the path and that ovnsecd may read it", what, path, err)
}

// load returns the current version of path, reading it again when its
// stat changed; changed reports a new content (or existence). Called with
// s.mu held.
func (s *Store) loadLocked(path string) (f *file, changed bool) {
	st, serr := statOf(path)
	old := s.files[path]
	if old != nil && serr == nil && old.stat == st && old.readErr == nil {
		return old, false
	}
	f = &file{stat: st}
	data, err := readFile(path)
	if err != nil {
		f.readErr = err
	} else {
		f.sum = sha256.Sum256(data)
		f.certs, f.certErr = ParseCertificates(path, data)
		f.key, f.keyErr = ParsePrivateKey(path, data)
		clear(data)
	}
	s.files[path] = f
	if old == nil {
		return f, false
	}
	changed = old.sum != f.sum || (old.readErr == nil) != (f.readErr == nil)
	if !changed && old.readErr != nil && f.readErr != nil {
		changed = old.readErr.Error() != f.readErr.Error()
	}
	return f, changed
}

// load returns the current version of path and tells the subscribers if
// it changed since the store last read it.
func (s *Store) load(path string) *file {
	s.mu.Lock()
	f, changed := s.loadLocked(path)
	s.mu.Unlock()
	if changed {
		s.notify([]string{path})
	}
	return f
}

// Certificates returns every certificate of the PEM file at path, in file
// order (a chain, end-entity first, or a CA bundle).
func (s *Store) Certificates(path string) ([]*x509.Certificate, error) {
	f := s.load(path)
	if f.readErr != nil {
		return nil, readError("certificate", path, f.readErr)
	}
	if f.certErr != nil {
		return nil, f.certErr
	}
	return slices.Clone(f.certs), nil
}

// PrivateKey returns the private key of the PEM file at path.
func (s *Store) PrivateKey(path string) (crypto.Signer, error) {
	f := s.load(path)
	if f.readErr != nil {
		return nil, readError("private key", path, f.readErr)
	}
	return f.key, f.keyErr
}

// Fingerprint returns the digest of the file's current content.
func (s *Store) Fingerprint(path string) (Fingerprint, error) {
	f := s.load(path)
	if f.readErr != nil {
		return Fingerprint{}, readError("file", path, f.readErr)
	}
	return f.sum, nil
}

// KeyMatches reports an error unless the key at keyPath belongs to the
// first certificate at certPath.
func (s *Store) KeyMatches(certPath, keyPath string) error {
	certs, err := s.Certificates(certPath)
	if err != nil {
		return err
	}
	key, err := s.PrivateKey(keyPath)
	if err != nil {
		return err
	}
	return KeyMatches(certs[0], certPath, key, keyPath)
}

// Verify checks that the first certificate at certPath chains, through the
// other certificates of its file, to one of the CA certificates at caPath
// at time now.
func (s *Store) Verify(certPath, caPath string, now time.Time) error {
	chain, err := s.Certificates(certPath)
	if err != nil {
		return err
	}
	cas, err := s.Certificates(caPath)
	if err != nil {
		return err
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("certificate %s is not signed by a CA of %s: %w", certPath, caPath, err)
	}
	return nil
}

// Subscribe returns a channel that receives a Change whenever files the
// store has read change, and a function that ends the subscription. A
// subscriber that falls behind gets the paths merged into one pending
// Change; nothing is lost.
func (s *Store) Subscribe() (<-chan Change, func()) {
	ch := make(chan Change, 1)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}
}

func (s *Store) notify(paths []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		c := Change{Paths: slices.Clone(paths)}
		for {
			select {
			case ch <- c:
			case old := <-ch:
				// Merge with the pending change and try again.
				for _, p := range old.Paths {
					if !slices.Contains(c.Paths, p) {
						c.Paths = append(c.Paths, p)
					}
				}
				slices.Sort(c.Paths)
				continue
			}
			break
		}
	}
	s.log.Info("credential files changed", "paths", paths)
}

// Refresh looks at every file the store has read and reports (and tells
// the subscribers) which changed.
func (s *Store) Refresh() []string {
	s.mu.Lock()
	paths := make([]string, 0, len(s.files))
	for p := range s.files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	var changed []string
	for _, p := range paths {
		if _, ch := s.loadLocked(p); ch {
			changed = append(changed, p)
		}
	}
	s.mu.Unlock()
	if len(changed) > 0 {
		s.notify(changed)
	}
	return changed
}

// Run refreshes every Poll until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	t := s.clk.NewTicker(s.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
			s.Refresh()
		}
	}
}
