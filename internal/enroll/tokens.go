// Stage: bootstrap tokens. A token lets one chassis enrol once (or again
// and again with --reusable) until it expires or is revoked. The token is
// shown once, when it is made; the file keeps its SHA-256 only (a token
// holds 256 random bits, so a fast hash is as good as a slow one), mode
// 0600 in the CA's private/ directory. Every change is a locked
// read-modify-write that replaces the file atomically, so the CLI and a
// running server can both change it, and two enrolments can never both
// consume a one-time token.

package enroll

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/pki"
)

// TokenFileName is the token file in the switch CA's private/ directory.
const TokenFileName = "enrol-tokens"

// DefaultTokenTTL is how long a token is valid unless told otherwise.
const DefaultTokenTTL = 24 * time.Hour

// MaxTokenFile bounds the token file read.
const MaxTokenFile = 8 << 20

// pruneAfter is how long a record is kept once it can no longer be used
// (expired, revoked or used up), so that `token list` shows what happened.
const pruneAfter = 7 * 24 * time.Hour

// tokenHeader is the first line of the file.
const tokenHeader = "# ovnsec enrolment tokens v1: id chassis sha256 created expires once|reusable uses last-used revoked"

// TokenID names a token in lists and logs; it is not secret.
type TokenID string

// Token is a bootstrap token: "<id>.<secret>". Its String redacts it.
type Token string

// String hides the secret.
func (t Token) String() string {
	id, _, _ := strings.Cut(string(t), ".")
	return id + ".<redacted>"
}

// Secret returns the token text itself, for printing it once.
func (t Token) Secret() string { return string(t) }

// ID is the token's public part.
func (t Token) ID() TokenID {
	id, _, _ := strings.Cut(string(t), ".")
	return TokenID(id)
}

// TokenRecord is what the file keeps of one token.
type TokenRecord struct {
	ID       TokenID
	Chassis  string
	Hash     [sha256.Size]byte
	Created  time.Time
	Expires  time.Time
	Reusable bool
	Uses     int
	LastUsed time.Time // zero: never used
	Revoked  time.Time // zero: not revoked
}

// State says whether the token can be used at now, and if not, why.
func (r TokenRecord) State(now time.Time) string {
	switch {
	case !r.Revoked.IsZero():
		return "revoked"
	case !r.Reusable && r.Uses > 0:
		return "used"
	case !now.Before(r.Expires):
		return "expired"
	}
	return "valid"
}

// ErrToken is wrapped by every refusal of a token.
var ErrToken = errors.New("bootstrap token refused")

// TokenStore is the token file of a PKI directory.
type TokenStore struct {
	path  string
	clock clock.Clock
	mu    sync.Mutex // in this process; the flock serialises processes
}

// NewTokenStore returns the token store of the PKI directory dir
// (<dir>/switchca/private/enrol-tokens). A nil clock is the real one.
func NewTokenStore(dir string, c clock.Clock) *TokenStore {
	d := pki.Dir{Path: dir}
	return &TokenStore{path: filepath.Join(filepath.Dir(d.CAKeyPath(pki.SwitchCA)), TokenFileName), clock: clock.Or(c)}
}

// Path is the token file.
func (s *TokenStore) Path() string { return s.path }

// Create makes a token for chassis, valid for ttl (DefaultTokenTTL when
// zero), and returns it; only its hash is stored.
func (s *TokenStore) Create(chassis string, ttl time.Duration, reusable bool) (Token, TokenRecord, error) {
	if err := pki.ValidateName(chassis); err != nil {
		return "", TokenRecord{}, fmt.Errorf("chassis: %w", err)
	}
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	if ttl < 0 {
		return "", TokenRecord{}, fmt.Errorf("token lifetime %v is negative", ttl)
	}
	var idb [8]byte
	var secret [32]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", TokenRecord{}, fmt.Errorf("make token: %w", err)
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return "", TokenRecord{}, fmt.Errorf("make token: %w", err)
	}
	tok := Token(hex.EncodeToString(idb[:]) + "." + base64.RawURLEncoding.EncodeToString(secret[:]))
	now := s.clock.Now().UTC().Truncate(time.Second)
	rec := TokenRecord{
		ID: tok.ID(), Chassis: chassis, Hash: sha256.Sum256([]byte(tok)),
		Created: now, Expires: now.Add(ttl), Reusable: reusable,
	}
	err := s.update(func(recs []TokenRecord) ([]TokenRecord, error) {
		return append(recs, rec), nil
	})
	if err != nil {
		return "", TokenRecord{}, err
	}
	return tok, rec, nil
}

// List returns every token record, oldest first.
func (s *TokenStore) List() ([]TokenRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.read()
}

// Revoke revokes the token with this id.
func (s *TokenStore) Revoke(id TokenID) error {
	return s.update(func(recs []TokenRecord) ([]TokenRecord, error) {
		for i := range recs {
			if recs[i].ID == id {
				if recs[i].Revoked.IsZero() {
					recs[i].Revoked = s.clock.Now().UTC().Truncate(time.Second)
				}
				return recs, nil
			}
		}
		return nil, fmt.Errorf("no token %s in %s (see ovnsec ca token list)", id, s.path)
	})
}

// find checks tok for chassis against recs at now and returns its index.
func find(recs []TokenRecord, chassis string, tok Token, now time.Time) (int, error) {
	id := tok.ID()
	h := sha256.Sum256([]byte(tok))
	for i, r := range recs {
		if r.ID != id {
			continue
		}
		if subtle.ConstantTimeCompare(r.Hash[:], h[:]) != 1 {
			return -1, fmt.Errorf("%w: wrong token for id %s", ErrToken, id)
		}
		if r.Chassis != chassis {
			return -1, fmt.Errorf("%w: token %s was made for another chassis, not %q", ErrToken, id, chassis)
		}
		switch r.State(now) {
		case "revoked":
			return -1, fmt.Errorf("%w: token %s was revoked at %s", ErrToken, id, r.Revoked.Format(time.RFC3339))
		case "used":
			return -1, fmt.Errorf("%w: token %s is one-time and was already used at %s", ErrToken, id, r.LastUsed.Format(time.RFC3339))
		case "expired":
			return -1, fmt.Errorf("%w: token %s expired at %s", ErrToken, id, r.Expires.Format(time.RFC3339))
		}
		return i, nil
	}
	return -1, fmt.Errorf("%w: wrong or unknown token (ovnsec ca token create makes one)", ErrToken)
}

// Check reports whether tok would let chassis enrol now, without using
// it up.
func (s *TokenStore) Check(chassis string, tok Token) error {
	recs, err := s.List()
	if err != nil {
		return err
	}
	_, err = find(recs, chassis, tok, s.clock.Now())
	return err
}

// Use checks tok for chassis and, holding the store's lock, runs issue;
// only when issue succeeds is the use recorded (a one-time token is then
// used up). Two concurrent Uses of a one-time token never both run issue.
// When the use cannot be recorded the issue is reported as failed.
func (s *TokenStore) Use(chassis string, tok Token, issue func() error) error {
	return s.update(func(recs []TokenRecord) ([]TokenRecord, error) {
		now := s.clock.Now()
		i, err := find(recs, chassis, tok, now)
		if err != nil {
			return nil, err
		}
		if err := issue(); err != nil {
			return nil, err
		}
		recs[i].Uses++
		recs[i].LastUsed = now.UTC().Truncate(time.Second)
		return recs, nil
	})
}

// update runs f on the records under both locks and writes its result.
func (s *TokenStore) update(f func([]TokenRecord) ([]TokenRecord, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	recs, err := s.read()
	if err != nil {
		return err
	}
	out, err := f(recs)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	out = slices.DeleteFunc(out, func(r TokenRecord) bool {
		end := r.Expires
		if !r.Revoked.IsZero() && r.Revoked.Before(end) {
			end = r.Revoked
		}
		if !r.Reusable && r.Uses > 0 && r.LastUsed.Before(end) {
			end = r.LastUsed
		}
		return now.Sub(end) > pruneAfter
	})
	return s.write(out)
}

// lock takes an exclusive flock on <file>.lock.
func (s *TokenStore) lock() (func(), error) {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return nil, fmt.Errorf("token store: %w", err)
	}
	f, err := os.OpenFile(s.path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("token store: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("token store: lock %s: %w", f.Name(), err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// read loads the file; a missing file holds no tokens.
func (s *TokenStore) read() ([]TokenRecord, error) {
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("token store: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("token store: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("token store: %s is mode %04o; it must be readable by its owner only (chmod 600 %s)", s.path, st.Mode().Perm(), s.path)
	}
	if st.Size() > MaxTokenFile {
		return nil, fmt.Errorf("token store: %s is larger than %d bytes", s.path, MaxTokenFile)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("token store: read %s: %w", s.path, err)
	}
	recs, err := ParseTokenFile(b)
	if err != nil {
		return nil, fmt.Errorf("token store %s: %w", s.path, err)
	}
	return recs, nil
}

// write replaces the file with recs: a 0600 temporary file in the same
// directory, synced and renamed into place.
func (s *TokenStore) write(recs []TokenRecord) error {
	tmp, err := os.CreateTemp(filepath.Dir(s.path), "."+TokenFileName+".tmp*")
	if err != nil {
		return fmt.Errorf("token store: %w", err)
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			os.Remove(name)
		}
	}()
	if err = tmp.Chmod(0o600); err == nil {
		if _, err = tmp.Write(FormatTokenFile(recs)); err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, s.path)
	}
	if err != nil {
		return fmt.Errorf("token store: write %s: %w", s.path, err)
	}
	ok = true
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// FormatTokenFile writes records in the file's format: a header line, then
// one tab-separated line per token.
func FormatTokenFile(recs []TokenRecord) []byte {
	var b bytes.Buffer
	b.WriteString(tokenHeader + "\n")
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, r := range recs {
		kind := "once"
		if r.Reusable {
			kind = "reusable"
		}
		fmt.Fprintf(&b, "%s\t%s\t%x\t%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.Chassis, r.Hash[:], r.Created.UTC().Format(time.RFC3339), r.Expires.UTC().Format(time.RFC3339), kind, r.Uses, ts(r.LastUsed), ts(r.Revoked))
	}
	return b.Bytes()
}

// ParseTokenFile reads the token file format. Lines starting with '#' and
// empty lines are skipped; any other malformed line is an error that
// names it (a damaged file is never taken as "no tokens").
func ParseTokenFile(data []byte) ([]TokenRecord, error) {
	var recs []TokenRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 64<<10)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		r, err := parseTokenLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if slices.ContainsFunc(recs, func(o TokenRecord) bool { return o.ID == r.ID }) {
			return nil, fmt.Errorf("line %d: token id %s appears twice", n, r.ID)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	return recs, nil
}

func parseTokenLine(line string) (TokenRecord, error) {
	var r TokenRecord
	f := strings.Split(line, "\t")
	if len(f) != 9 {
		return r, fmt.Errorf("%d fields, want 9", len(f))
	}
	if len(f[0]) != 16 || strings.Trim(f[0], "0123456789abcdef") != "" {
		return r, fmt.Errorf("token id %q is not 16 lower-case hex digits", f[0])
	}
	r.ID = TokenID(f[0])
	if err := pki.ValidateName(f[1]); err != nil {
		return r, err
	}
	r.Chassis = f[1]
	h, err := hex.DecodeString(f[2])
	if err != nil || len(h) != sha256.Size {
		return r, fmt.Errorf("hash %q is not a SHA-256 in hex", f[2])
	}
	copy(r.Hash[:], h)
	times := []*time.Time{&r.Created, &r.Expires, &r.LastUsed, &r.Revoked}
	for i, v := range []string{f[3], f[4], f[7], f[8]} {
		if v == "-" && i >= 2 {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return r, fmt.Errorf("time %q: %w", v, err)
		}
		if t.Nanosecond() != 0 || t.Year() < 1 || t.Year() > 9999 {
			return r, fmt.Errorf("time %q: want whole seconds between years 1 and 9999", v)
		}
		*times[i] = t.UTC()
	}
	switch f[5] {
	case "once":
	case "reusable":
		r.Reusable = true
	default:
		return r, fmt.Errorf("kind %q is neither once nor reusable", f[5])
	}
	u, err := strconv.Atoi(f[6])
	if err != nil || u < 0 || strconv.Itoa(u) != f[6] {
		return r, fmt.Errorf("uses %q is not a count", f[6])
	}
	r.Uses = u
	if u > 0 && r.LastUsed.IsZero() {
		return r, fmt.Errorf("used %d times but no last-used time", u)
	}
	return r, nil
}
