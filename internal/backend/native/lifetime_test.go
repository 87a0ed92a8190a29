package native

import (
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/tunnel"
)

func TestParseIPsecDuration(t *testing.T) {
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
	}
	for _, tc := range tests {
		got, err := parseIPsecDuration(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseIPsecDuration(%q) = %v, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseIPsecDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
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

// TestPlanLifetimes: the ipsec_* lifetime options reach the IKE peer and
// bad values refuse the tunnel with the option named.
func TestPlanLifetimes(t *testing.T) {
	opts := func(kv ...string) []tunnel.Option {
		var o []tunnel.Option
		for i := 0; i+1 < len(kv); i += 2 {
			o = append(o, tunnel.Option{Key: kv[i], Value: kv[i+1]})
		}
		return o
	}
	tests := []struct {
		name               string
		opts               []tunnel.Option
		ikeLife, childLife time.Duration
		margin, jitter     time.Duration
		err                string
		unsupported        []string
	}{
		{name: "none: engine defaults", opts: nil},
		{name: "OVN test salifetime", opts: opts("salifetime", "8h"), childLife: 8 * time.Hour},
		{name: "strongSwan lifetime + ikelifetime", opts: opts("ikelifetime", "60s", "lifetime", "20s"), ikeLife: time.Minute, childLife: 20 * time.Second},
		{name: "keylife alias", opts: opts("keylife", "1h"), childLife: time.Hour},
		{name: "rekeymargin", opts: opts("salifetime", "30s", "ikelifetime", "90s", "rekeymargin", "10s"),
			ikeLife: 90 * time.Second, childLife: 30 * time.Second, margin: 10 * time.Second},
		{name: "margintime alias", opts: opts("salifetime", "30s", "margintime", "5s"), childLife: 30 * time.Second, margin: 5 * time.Second},
		{name: "rekeyfuzz of margin", opts: opts("salifetime", "30s", "rekeymargin", "10s", "rekeyfuzz", "50%"),
			childLife: 30 * time.Second, margin: 10 * time.Second, jitter: 5 * time.Second},
		{name: "rekeyfuzz of default margin", opts: opts("salifetime", "100s", "rekeyfuzz", "100%"),
			childLife: 100 * time.Second, jitter: 10 * time.Second},
		{name: "rekeyfuzz 0%", opts: opts("salifetime", "30s", "rekeymargin", "10s", "rekeyfuzz", "0%"),
			childLife: 30 * time.Second, margin: 10 * time.Second, jitter: time.Nanosecond},
		{name: "upper case key", opts: opts("SALifetime", "2h"), childLife: 2 * time.Hour},
		{name: "with other options", opts: opts("dpddelay", "30s", "salifetime", "8h", "replay-window", "100"),
			childLife: 8 * time.Hour, unsupported: []string{"dpddelay", "replay-window"}},
		{name: "bad time", opts: opts("salifetime", "soon"), err: "ipsec_salifetime=\"soon\""},
		{name: "too short", opts: opts("ikelifetime", "5s"), err: "shorter than the minimum"},
		{name: "margin not shorter than lifetime", opts: opts("salifetime", "20s", "rekeymargin", "20s"), err: "lower the margin"},
		{name: "margin vs default ike lifetime ok", opts: opts("rekeymargin", "5m"), margin: 5 * time.Minute},
		{name: "margin vs default child lifetime", opts: opts("rekeymargin", "2h"), err: "salifetime 1h0m0s"},
		{name: "bad fuzz", opts: opts("rekeyfuzz", "lots"), err: "ipsec_rekeyfuzz"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tt := geneveTunnel(1)
			tt.CustomOptions = tc.opts
			p, err := planTunnel(tt, local, fakeCreds{})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), tt.Name) {
					t.Fatalf("err = %v, want one naming the tunnel and %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := p.peer
			if got.IKELifetime != tc.ikeLife || got.ChildLifetime != tc.childLife || got.RekeyMargin != tc.margin || got.RekeyJitter != tc.jitter {
				t.Errorf("ike %v child %v margin %v jitter %v; want %v %v %v %v", got.IKELifetime, got.ChildLifetime,
					got.RekeyMargin, got.RekeyJitter, tc.ikeLife, tc.childLife, tc.margin, tc.jitter)
			}
			if strings.Join(p.unsupported, ",") != strings.Join(tc.unsupported, ",") {
				t.Errorf("unsupported %q, want %q (lifetime options are supported)", p.unsupported, tc.unsupported)
			}
		})
	}
}

// TestLifetimeOptionKinds keeps the keyword table honest both ways.
func TestLifetimeOptionKinds(t *testing.T) {
	for key, want := range map[string]lifetimeKind{
		"ikelifetime": lifeIKE, "salifetime": lifeChild, "lifetime": lifeChild, "keylife": lifeChild,
		"rekeymargin": lifeMargin, "margintime": lifeMargin, "rekeyfuzz": lifeFuzz,
		"encapsulation": lifeNone, "dpddelay": lifeNone, "ikelifetime2": lifeNone, "": lifeNone,
	} {
		if got := lifetimeOption(key); got != want {
			t.Errorf("lifetimeOption(%q) = %v, want %v", key, got, want)
		}
	}
}
