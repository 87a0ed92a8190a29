// Lifetime options: maps the ipsec_* custom options that set IKE and Child
// SA lifetimes and rekey margins (ipsec.conf keywords, strongSwan and
// Libreswan spellings) onto the IKE peer. Pure.

package native

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ovnsec/ovnsec/internal/ike"
)

// MinLifetime is the shortest IKE or Child SA lifetime accepted: shorter
// ones would rekey faster than an exchange can complete on a slow path.
const MinLifetime = 10 * time.Second

// lifetimeKind says which ike.Peer field a lifetime option sets.
type lifetimeKind uint8

const (
	lifeNone   lifetimeKind = iota
	lifeIKE                 // IKE SA lifetime
	lifeChild               // Child SA lifetime
	lifeMargin              // rekey margin (IKE and Child)
	lifeFuzz                // rekey fuzz, percent of the margin
)

// lifetimeOption returns what option key (prefix ipsec_ stripped, any
// case) sets: strongSwan's ikelifetime, lifetime/keylife, rekeymargin/
// margintime, rekeyfuzz and Libreswan's salifetime.
func lifetimeOption(key string) lifetimeKind {
	switch strings.ToLower(key) {
	case "ikelifetime":
		return lifeIKE
	case "salifetime", "lifetime", "keylife":
		return lifeChild
	case "rekeymargin", "margintime":
		return lifeMargin
	case "rekeyfuzz":
		return lifeFuzz
	}
	return lifeNone
}

// lifetimes collects the lifetime options of one tunnel before they are
// checked against each other and applied.
type lifetimes struct {
	ike, child, margin time.Duration
	fuzz               int  // percent
	fuzzSet            bool // rekeyfuzz given (0% is meaningful)
}

// set records one option; kind must not be lifeNone.
func (l *lifetimes) set(kind lifetimeKind, key, value string) error {
	if kind == lifeFuzz {
		pct, err := parsePercent(value)
		if err != nil {
			return fmt.Errorf("option ipsec_%s=%q: %w", key, value, err)
		}
		l.fuzz, l.fuzzSet = pct, true
		return nil
	}
	d, err := parseIPsecDuration(value)
	if err != nil {
		return fmt.Errorf("option ipsec_%s=%q: %w", key, value, err)
	}
	switch kind {
	case lifeIKE:
		l.ike = d
	case lifeChild:
		l.child = d
	case lifeMargin:
		l.margin = d
	}
	return nil
}

// apply checks the collected values and writes them to peer. Unset values
// keep the engine's defaults (ike.DefaultIKELifetime, DefaultChildLifetime,
// a margin of a tenth of the lifetime).
func (l *lifetimes) apply(peer *ike.Peer) error {
	for _, v := range []struct {
		what string
		d    time.Duration
	}{{"ikelifetime", l.ike}, {"salifetime", l.child}} {
		if v.d != 0 && v.d < MinLifetime {
			return fmt.Errorf("option ipsec_%s=%v: shorter than the minimum %v", v.what, v.d, MinLifetime)
		}
	}
	if l.margin != 0 {
		// The engine uses one margin for both SAs; it must leave time
		// before either expires, or nothing would ever be used before
		// its rekey starts.
		for _, v := range []struct {
			what string
			d    time.Duration
		}{{"ikelifetime", l.effective(l.ike, ike.DefaultIKELifetime)}, {"salifetime", l.effective(l.child, ike.DefaultChildLifetime)}} {
			if l.margin >= v.d {
				return fmt.Errorf("option ipsec_rekeymargin=%v: not shorter than %s %v; lower the margin or raise the lifetime", l.margin, v.what, v.d)
			}
		}
	}
	peer.IKELifetime, peer.ChildLifetime, peer.RekeyMargin = l.ike, l.child, l.margin
	if l.fuzzSet {
		margin := l.margin
		if margin == 0 {
			// the engine's default margin for the shorter lifetime
			margin = min(l.effective(l.ike, ike.DefaultIKELifetime), l.effective(l.child, ike.DefaultChildLifetime)) / 10
		}
		peer.RekeyJitter = margin * time.Duration(l.fuzz) / 100
		if peer.RekeyJitter == 0 {
			peer.RekeyJitter = time.Nanosecond // 0% fuzz: the engine treats 0 as "default"
		}
	}
	return nil
}

func (l *lifetimes) effective(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// parseIPsecDuration parses an ipsec.conf time: a non-negative integer
// with an optional unit s, m, h or d (seconds without one), e.g. "30s",
// "8h", "1d", "3600". Go duration syntax ("1h30m", "90s") is accepted too.
func parseIPsecDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "" {
		return 0, fmt.Errorf("empty time; want e.g. 30s, 20m, 8h or 1d")
	}
	unit := time.Second
	num := s
	switch s[len(s)-1] {
	case 's':
		num = s[:len(s)-1]
	case 'm':
		unit, num = time.Minute, s[:len(s)-1]
	case 'h':
		unit, num = time.Hour, s[:len(s)-1]
	case 'd':
		unit, num = 24*time.Hour, s[:len(s)-1]
	}
	n, err := strconv.ParseUint(num, 10, 32)
	if err != nil {
		d, gerr := time.ParseDuration(s)
		if gerr != nil || d <= 0 {
			return 0, fmt.Errorf("not a time; want a whole number with unit s, m, h or d, e.g. 30s, 20m, 8h")
		}
		return d, nil
	}
	if n == 0 {
		return 0, fmt.Errorf("zero time; want a positive lifetime")
	}
	return time.Duration(n) * unit, nil
}

// parsePercent parses strongSwan's rekeyfuzz: "100%" or "100".
func parsePercent(s string) (int, error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), "%")
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n > 1000 {
		return 0, fmt.Errorf("want a percentage 0%%..1000%%, e.g. 100%%")
	}
	return int(n), nil
}
