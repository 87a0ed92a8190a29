package native

import (
	"strings"
	"testing"

	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
)

func TestParsePortKind(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    ovsbridge.PortKind
		wantErr string
	}{
		{in: "", want: ovsbridge.PortVeth},
		{in: "veth", want: ovsbridge.PortVeth},
		{in: "VETH", want: ovsbridge.PortVeth},
		{in: "tap", want: ovsbridge.PortTAP},
		{in: "Tap", want: ovsbridge.PortTAP},
		{in: "af_xdp", wantErr: `unknown engine port type "af_xdp": want veth or tap`},
		{in: " veth", wantErr: "want veth or tap"},
		{in: "veth0", wantErr: "want veth or tap"},
	} {
		got, err := ParsePortKind(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParsePortKind(%q) = %v, %v; want error %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParsePortKind(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// Every kind's own name parses back to it, so the parser and ovsbridge's
// names cannot drift apart.
func TestParsePortKindRoundTrip(t *testing.T) {
	for _, k := range portKinds() {
		got, err := ParsePortKind(k.String())
		if err != nil || got != k {
			t.Errorf("ParsePortKind(%q) = %v, %v; want %v", k.String(), got, err, k)
		}
	}
}
