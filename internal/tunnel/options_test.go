package tunnel

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseOptions(t *testing.T) {
	o := ParseOptions([]Option{
		{"Dpd-Delay", "30s"}, {"encapsulation", "yes"}, {"ike", "aes256gcm16-prfsha256-x25519,aes128gcm16-prfsha256-modp2048!"},
		{"ikelifetime", "3h"}, {"key_life", "20m"}, {"margintime", "90"}, {"rekeyfuzz", "50%"}, {"dpdaction", "trap"},
		{"keyingtries", "%forever"}, {"whatever", "x"},
	})
	if !o.ForceEncap || o.DPDDelay != 30*time.Second || o.IKELifetime != 3*time.Hour || o.ChildLifetime != 20*time.Minute ||
		o.RekeyMargin != 90*time.Second || o.RekeyFuzz != 50 || o.DPDAction != "hold" || o.KeyingTries != 0 {
		t.Fatalf("parsed %+v", o)
	}
	if !slices.Equal(o.IKEProposals, []string{"aes256gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-modp2048"}) {
		t.Errorf("proposals %q", o.IKEProposals)
	}
	if len(o.Unknown) != 1 || o.Unknown[0].Key != "whatever" || len(o.Errors) != 0 {
		t.Errorf("unknown %v errors %v", o.Unknown, o.Errors)
	}
	if !o.Has(OptDPDDelay) || o.Spelling(OptDPDDelay) != "ipsec_Dpd-Delay" || o.Has(OptESP) {
		t.Errorf("Has/Spelling: %v", o.Set)
	}
	// Bad values are errors that name the option and what is wanted.
	bad := ParseOptions([]Option{{"ikelifetime", "soon"}, {"encapsulation", "maybe"}, {"salifetime", "5s"}, {"esp", "aes,"}, {"rekeyfuzz", "2000%"}})
	if len(bad.Errors) != 5 {
		t.Fatalf("errors %q", bad.Errors)
	}
	for i, want := range []string{`ipsec_ikelifetime="soon": not a time`, `ipsec_encapsulation="maybe": want yes or no`, `ipsec_esp="aes,": empty proposal`, `ipsec_rekeyfuzz="2000%": want a percentage`, `ipsec_salifetime=5s: shorter than the minimum 10s`} {
		if !strings.Contains(bad.Errors[i], want) {
			t.Errorf("error %d %q lacks %q", i, bad.Errors[i], want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "30s", want: 30 * time.Second},
		{in: "20m", want: 20 * time.Minute},
		{in: "8h", want: 8 * time.Hour},
		{in: "1d", want: 24 * time.Hour},
		{in: "3600", want: time.Hour},
		{in: " 8H ", want: 8 * time.Hour},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "", err: "empty"},
		{in: "0", err: "zero"},
		{in: "0s", err: "zero"},
		{in: "-5s", err: "not a time"},
		{in: "eight hours", err: "not a time"},
		{in: "8w", err: "not a time"},
		{in: "99999999999s", err: "not a time"},
		{in: "4294967295d", err: "too long"},
		{in: "366d", err: "too long"},
		{in: "9000h0m", err: "not a time"},
	}
	for _, tc := range tests {
		got, err := ParseDuration(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseDuration(%q) = %v, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParsePercent(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"100%", 100, true}, {"0%", 0, true}, {"50", 50, true}, {"1000%", 1000, true},
		{"1001%", 0, false}, {"-1%", 0, false}, {"half", 0, false}, {"", 0, false},
	}
	for _, tc := range tests {
		got, err := parsePercent(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parsePercent(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// CanonicalOption: every spelling of ipsec.conf, Libreswan and swanctl.
func TestCanonicalOption(t *testing.T) {
	for key, want := range map[string]OptionKey{
		"ikelifetime": OptIKELifetime, "salifetime": OptChildLifetime, "lifetime": OptChildLifetime, "keylife": OptChildLifetime,
		"rekeymargin": OptRekeyMargin, "margintime": OptRekeyMargin, "rekeyfuzz": OptRekeyFuzz, "SALifetime": OptChildLifetime,
		"encapsulation": OptForceEncap, "forceencaps": OptForceEncap, "dpd_delay": OptDPDDelay, "dpd-delay": OptDPDDelay,
		"replay-window": OptReplayWindow, "esp_proposals": OptESP,
	} {
		if got, ok := CanonicalOption(key); !ok || got != want {
			t.Errorf("CanonicalOption(%q) = %v %v, want %v", key, got, ok, want)
		}
	}
	for _, key := range []string{"ikelifetime2", "", "x"} {
		if got, ok := CanonicalOption(key); ok {
			t.Errorf("CanonicalOption(%q) = %v", key, got)
		}
	}
}

func FuzzParseOptions(f *testing.F) {
	f.Add("ikelifetime", "3h", "esp", "aes256gcm16-modp2048!")
	f.Add("encapsulation", "yes", "rekeyfuzz", "100%")
	f.Add("keyingtries", "%forever", "dpd_action", "restart")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		o := ParseOptions([]Option{{k1, v1}, {k2, v2}})
		if len(o.Set)+len(o.Unknown)+countOptionErrors(o) < 2 {
			t.Fatalf("an option vanished: %+v", o)
		}
		for _, d := range []time.Duration{o.IKELifetime, o.ChildLifetime, o.RekeyMargin, o.DPDDelay, o.DPDTimeout} {
			if d < 0 {
				t.Fatalf("negative time %v", d)
			}
		}
	})
}

// countOptionErrors counts errors per option (the lifetime minimum check
// adds one for an option already counted as set).
func countOptionErrors(o Options) int {
	n := 0
	for _, e := range o.Errors {
		if !strings.Contains(e, "shorter than the minimum") {
			n++
		}
	}
	return n
}
