// Options stage: the ipsec_* custom options parsed once, with one key
// spelling rule and one value syntax for every backend. ovs-monitor-ipsec
// passes them verbatim into ipsec.conf; ovnsec understands the keywords of
// strongSwan's ipsec.conf, Libreswan and swanctl.conf for what they mean,
// and leaves each backend to say which of them it cannot honour.

package tunnel

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MinLifetime is the shortest IKE or Child SA lifetime accepted: shorter
// ones would rekey faster than an exchange completes on a slow path.
const MinLifetime = 10 * time.Second

// OptionKey is a custom option's meaning, whatever its spelling.
type OptionKey string

const (
	OptForceEncap    OptionKey = "forceencaps"   // also encapsulation, encap
	OptIKELifetime   OptionKey = "ikelifetime"   // also ikerekeytime
	OptChildLifetime OptionKey = "salifetime"    // also lifetime, keylife, rekeytime
	OptRekeyMargin   OptionKey = "rekeymargin"   // also margintime
	OptRekeyFuzz     OptionKey = "rekeyfuzz"     // percent
	OptIKE           OptionKey = "ike"           // also proposals
	OptESP           OptionKey = "esp"           // also espproposals
	OptDPDDelay      OptionKey = "dpddelay"      //
	OptDPDTimeout    OptionKey = "dpdtimeout"    //
	OptDPDAction     OptionKey = "dpdaction"     // none, clear, hold, restart
	OptReplayWindow  OptionKey = "replaywindow"  // packets
	OptMOBIKE        OptionKey = "mobike"        // yes, no
	OptFragmentation OptionKey = "fragmentation" // yes, no, accept, force
	OptKeyingTries   OptionKey = "keyingtries"   // a number or %forever
)

// optionAliases maps a canonical spelling (lower case, '-' and '_'
// removed) to its meaning.
var optionAliases = map[string]OptionKey{
	"forceencaps": OptForceEncap, "encapsulation": OptForceEncap, "encap": OptForceEncap,
	"ikelifetime": OptIKELifetime, "ikerekeytime": OptIKELifetime,
	"salifetime": OptChildLifetime, "lifetime": OptChildLifetime, "keylife": OptChildLifetime, "rekeytime": OptChildLifetime,
	"rekeymargin": OptRekeyMargin, "margintime": OptRekeyMargin,
	"rekeyfuzz": OptRekeyFuzz,
	"ike":       OptIKE, "proposals": OptIKE,
	"esp": OptESP, "espproposals": OptESP,
	"dpddelay": OptDPDDelay, "dpdtimeout": OptDPDTimeout, "dpdaction": OptDPDAction,
	"replaywindow": OptReplayWindow, "mobike": OptMOBIKE, "fragmentation": OptFragmentation,
	"keyingtries": OptKeyingTries,
}

// Options are a tunnel's custom options, parsed. Zero values mean "not
// set": the backend's default applies.
type Options struct {
	ForceEncap                 bool
	IKELifetime, ChildLifetime time.Duration
	RekeyMargin                time.Duration
	RekeyFuzz                  int // percent; meaningful when Set has OptRekeyFuzz
	IKEProposals, ESPProposals []string
	DPDDelay, DPDTimeout       time.Duration
	DPDAction                  string // none, clear, hold, restart
	ReplayWindow               uint32
	MOBIKE                     string // yes, no
	Fragmentation              string // yes, no, accept, force
	KeyingTries                int    // 0 = %forever
	// Set lists the options given, in key order, each with the key as
	// the operator spelled it (for messages).
	Set []SetOption
	// Unknown are options with a key no backend understands.
	Unknown []Option
	// Errors are options whose value could not be parsed, each naming the
	// option and what is wanted.
	Errors []string
}

// SetOption is one recognised option and how it was spelled.
type SetOption struct {
	Key      OptionKey
	Spelling string
}

// Has reports whether the option k was given.
func (o Options) Has(k OptionKey) bool {
	for _, s := range o.Set {
		if s.Key == k {
			return true
		}
	}
	return false
}

// Spelling returns how the operator wrote option k ("" if not given).
func (o Options) Spelling(k OptionKey) string {
	for _, s := range o.Set {
		if s.Key == k {
			return s.Spelling
		}
	}
	return ""
}

// CanonicalOption returns the meaning of an option key (prefix ipsec_
// stripped), matched case-insensitively ignoring '-' and '_'.
func CanonicalOption(key string) (OptionKey, bool) {
	k, ok := optionAliases[strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(strings.TrimSpace(key)))]
	return k, ok
}

// ParseOptions parses the custom options of one tunnel.
func ParseOptions(opts []Option) Options {
	var o Options
	for _, opt := range opts {
		k, ok := CanonicalOption(opt.Key)
		if !ok {
			o.Unknown = append(o.Unknown, opt)
			continue
		}
		if err := o.set(k, strings.TrimSpace(opt.Value)); err != nil {
			o.Errors = append(o.Errors, fmt.Sprintf("option ipsec_%s=%q: %v", opt.Key, opt.Value, err))
			continue
		}
		o.Set = append(o.Set, SetOption{Key: k, Spelling: "ipsec_" + opt.Key})
	}
	for _, l := range []struct {
		k OptionKey
		d time.Duration
	}{{OptIKELifetime, o.IKELifetime}, {OptChildLifetime, o.ChildLifetime}} {
		if l.d != 0 && l.d < MinLifetime {
			o.Errors = append(o.Errors, fmt.Sprintf("option %s=%v: shorter than the minimum %v", o.Spelling(l.k), l.d, MinLifetime))
		}
	}
	return o
}

func (o *Options) set(k OptionKey, v string) error {
	var err error
	switch k {
	case OptForceEncap:
		switch strings.ToLower(v) {
		case "yes", "true":
			o.ForceEncap = true
		case "no", "false", "auto":
			o.ForceEncap = false
		default:
			return fmt.Errorf("want yes or no")
		}
	case OptIKELifetime:
		o.IKELifetime, err = ParseDuration(v)
	case OptChildLifetime:
		o.ChildLifetime, err = ParseDuration(v)
	case OptRekeyMargin:
		o.RekeyMargin, err = ParseDuration(v)
	case OptRekeyFuzz:
		o.RekeyFuzz, err = parsePercent(v)
	case OptIKE:
		o.IKEProposals, err = parseProposals(v)
	case OptESP:
		o.ESPProposals, err = parseProposals(v)
	case OptDPDDelay:
		o.DPDDelay, err = ParseDuration(v)
	case OptDPDTimeout:
		o.DPDTimeout, err = ParseDuration(v)
	case OptDPDAction:
		switch a := strings.ToLower(v); a {
		case "none", "clear", "hold", "restart":
			o.DPDAction = a
		case "trap":
			o.DPDAction = "hold"
		default:
			return fmt.Errorf("want none, clear, hold or restart")
		}
	case OptReplayWindow:
		n, perr := strconv.ParseUint(v, 10, 32)
		if perr != nil {
			return fmt.Errorf("want a packet count")
		}
		o.ReplayWindow = uint32(n)
	case OptMOBIKE:
		switch m := strings.ToLower(v); m {
		case "yes", "no":
			o.MOBIKE = m
		default:
			return fmt.Errorf("want yes or no")
		}
	case OptFragmentation:
		switch f := strings.ToLower(v); f {
		case "yes", "no", "accept", "force":
			o.Fragmentation = f
		default:
			return fmt.Errorf("want yes, no, accept or force")
		}
	case OptKeyingTries:
		if v == "%forever" {
			o.KeyingTries = 0
			break
		}
		n, perr := strconv.ParseUint(v, 10, 31)
		if perr != nil || n == 0 {
			return fmt.Errorf("want a positive number or %%forever")
		}
		o.KeyingTries = int(n)
	}
	return err
}

// maxDuration bounds option times: a year is far beyond any lifetime or
// DPD interval, and keeps every product in range.
const maxDuration = 365 * 24 * time.Hour

// ParseDuration parses an ipsec.conf time: a positive whole number with an
// optional unit s, m, h or d (seconds without one), e.g. "30s", "8h",
// "1d", "3600". Go duration syntax ("1h30m", "90s") is accepted too.
func ParseDuration(s string) (time.Duration, error) {
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
		if gerr != nil || d <= 0 || d > maxDuration {
			return 0, fmt.Errorf("not a time; want a whole number with unit s, m, h or d, e.g. 30s, 20m, 8h")
		}
		return d, nil
	}
	if n == 0 {
		return 0, fmt.Errorf("zero time; want a positive time")
	}
	if n > uint64(maxDuration/unit) {
		return 0, fmt.Errorf("time too long; want at most %v", maxDuration)
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

// parseProposals splits an ipsec.conf proposal list ("a-b-c,d-e!") into
// strongSwan-notation proposals; the strict-mode "!" is implied.
func parseProposals(s string) ([]string, error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), "!")
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSuffix(strings.TrimSpace(p), "!")
		if p == "" {
			return nil, fmt.Errorf("empty proposal; want a comma-separated list like aes256gcm16-prfsha256-x25519")
		}
		for _, r := range p {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return nil, fmt.Errorf("proposal %q: unexpected %q; want a comma-separated list like aes256gcm16-prfsha256-x25519", p, r)
			}
		}
		out = append(out, p)
	}
	return out, nil
}
