package native

import (
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/tunnel"
)

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
