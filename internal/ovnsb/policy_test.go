// Tests for Policy: SB_Global ipsec transitions, unknown values, the
// start-up inference from OVN's tunnel ports, and the flag combinations.

package ovnsb

import (
	"testing"

	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// snapshot builds a Snapshot with ovn-remote (if not "") and interfaces.
func snapshot(remote string, ifs ...tunnel.Interface) tunnel.Snapshot {
	s := tunnel.Snapshot{ExternalIDs: map[string]string{}, Interfaces: ifs}
	if remote != "" {
		s.ExternalIDs["ovn-remote"] = remote
	}
	return s
}

func port(name, typ string, opts ...string) tunnel.Interface {
	o := map[string]string{}
	for i := 0; i+1 < len(opts); i += 2 {
		o[opts[i]] = opts[i+1]
	}
	return tunnel.Interface{UUID: "u-" + name, Name: name, Type: typ, Options: o}
}

var (
	// ovn-controller's tunnel ports, as the demo shows them, with
	// ipsec=false and with ipsec=true.
	ovnPlain = port("ovn-ch2-0", "geneve", "csum", "true", "key", "flow", "remote_ip", "192.0.2.2")
	ovnIPsec = port("ovn-ch3-0", "geneve", "csum", "true", "key", "flow", "remote_ip", "192.0.2.3", "local_ip", "192.0.2.1", "remote_name", "ch3")
	// A tunnel with IPsec options that ovn-controller did not make.
	manualPSK = port("gnv0", "geneve", "remote_ip", "192.0.2.9", "psk", "x")

	sbOn      = State{Value: On, Remote: "tcp:192.0.2.10:6642"}
	sbOff     = State{Value: Off, Remote: "tcp:192.0.2.10:6642"}
	sbUnknown = State{Remote: "tcp:192.0.2.10:6642", Why: "not connected"}
	noRemote  = State{Why: "no OVN Southbound remote"}
)

const sbRemote = "tcp:192.0.2.10:6642"

func TestPolicyTransitions(t *testing.T) {
	p := NewPolicy(Config{})
	s := snapshot(sbRemote, ovnPlain)
	steps := []struct {
		what  string
		sb    State
		want  bool
		basis Basis
		cause string
	}{
		{"start, SB not connected yet, no IPsec options", sbUnknown, false, BasisInferred, ""},
		{"SB says false", sbOff, false, BasisSB, ""},
		{"SB says true", sbOn, true, BasisSB, CauseSB},
		{"connection lost: last value kept", sbUnknown, true, BasisLastKnown, CauseLastKnown},
		{"back, still true", sbOn, true, BasisSB, CauseSB},
		{"SB says false again", sbOff, false, BasisSB, ""},
		{"lost while false: stays false", sbUnknown, false, BasisLastKnown, ""},
		{"ovn-remote removed: still the last value", noRemote, false, BasisLastKnown, ""},
		{"true again", sbOn, true, BasisSB, CauseSB},
		{"ovn-remote removed while true: stays true", noRemote, true, BasisLastKnown, CauseLastKnown},
	}
	for _, st := range steps {
		d := p.Decide(st.sb, s)
		if d.Require != st.want || d.Basis != st.basis || d.Cause != st.cause || !d.Following {
			t.Errorf("%s: %+v, want require=%v basis=%d cause=%q following", st.what, d, st.want, st.basis, st.cause)
		}
	}
}

// Before any value is read, the OVN tunnel ports decide: OVN writes IPsec
// options into them only while SB_Global ipsec is true.
func TestPolicyStartupInference(t *testing.T) {
	tests := []struct {
		what string
		ifs  []tunnel.Interface
		want bool
	}{
		{"no tunnel", nil, false},
		{"OVN ports without IPsec options", []tunnel.Interface{ovnPlain}, false},
		{"one OVN port with remote_name", []tunnel.Interface{ovnPlain, ovnIPsec}, true},
		{"only a non-OVN port with psk", []tunnel.Interface{ovnPlain, manualPSK}, false},
		{"an ovn-named port without key=flow", []tunnel.Interface{port("ovn-x-0", "geneve", "remote_ip", "192.0.2.4", "remote_name", "x")}, false},
		{"vxlan made by ovn-controller", []tunnel.Interface{port("ovn-ch4-0", "vxlan", "key", "flow", "remote_ip", "192.0.2.4", "remote_name", "ch4")}, true},
		{"an OVN-like internal port", []tunnel.Interface{port("ovn-k8s-mp0", "internal", "key", "flow", "remote_name", "x")}, false},
	}
	for _, tc := range tests {
		for _, sb := range []State{sbUnknown, noRemote} {
			d := NewPolicy(Config{}).Decide(sb, snapshot(sbRemote, tc.ifs...))
			if d.Require != tc.want || d.Basis != BasisInferred {
				t.Errorf("%s (%q): %+v, want require=%v inferred", tc.what, sb.Why, d, tc.want)
			}
			if tc.want && d.Cause != CauseInferred {
				t.Errorf("%s: cause %q", tc.what, d.Cause)
			}
		}
	}
	// The inference follows the ports until a value is read...
	p := NewPolicy(Config{})
	if d := p.Decide(sbUnknown, snapshot(sbRemote, ovnIPsec)); !d.Require {
		t.Fatalf("OVN port with options: %+v", d)
	}
	if d := p.Decide(sbUnknown, snapshot(sbRemote, ovnPlain)); d.Require {
		t.Fatalf("options gone before any SB value: %+v", d)
	}
	// ...and no longer once one was.
	p.Decide(sbOff, snapshot(sbRemote, ovnPlain))
	if d := p.Decide(sbUnknown, snapshot(sbRemote, ovnIPsec)); d.Require || d.Basis != BasisLastKnown {
		t.Errorf("after SB said false, OVN options do not override it: %+v", d)
	}
}

func TestPolicyFlags(t *testing.T) {
	withOptions := snapshot(sbRemote, ovnIPsec)
	noOVN := snapshot("", ovnIPsec)
	tests := []struct {
		what      string
		cfg       Config
		sb        State
		s         tunnel.Snapshot
		want      bool
		following bool
		cause     string
	}{
		{"--require-ipsec, SB false", Config{Force: true}, sbOff, withOptions, true, false, CauseForced},
		{"--require-ipsec, follow off", Config{Force: true, Mode: FollowOff}, sbOff, noOVN, true, false, CauseForced},
		{"follow off, SB true", Config{Mode: FollowOff}, sbOn, withOptions, false, false, ""},
		{"follow off, OVN options", Config{Mode: FollowOff}, sbUnknown, withOptions, false, false, ""},
		{"auto, no ovn-remote, no --ovn-sb", Config{}, noRemote, noOVN, false, false, ""},
		{"auto, --ovn-sb, no ovn-remote", Config{Remote: sbRemote}, sbUnknown, noOVN, true, true, CauseInferred},
		{"auto, ovn-remote, SB true", Config{}, sbOn, withOptions, true, true, CauseSB},
		{"true, no remote at all: inference", Config{Mode: FollowOn}, noRemote, noOVN, true, true, CauseInferred},
		{"true, no remote, no options", Config{Mode: FollowOn}, noRemote, snapshot("", ovnPlain), false, true, ""},
	}
	for _, tc := range tests {
		d := NewPolicy(tc.cfg).Decide(tc.sb, tc.s)
		if d.Require != tc.want || d.Following != tc.following || d.Cause != tc.cause {
			t.Errorf("%s: %+v, want require=%v following=%v cause=%q", tc.what, d, tc.want, tc.following, tc.cause)
		}
	}
}

func TestPolicyRemote(t *testing.T) {
	ids := map[string]string{"ovn-remote": " tcp:192.0.2.10:6642 "}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "tcp:192.0.2.10:6642"},
		{Config{Remote: "unix:/run/ovn/sb.sock"}, "unix:/run/ovn/sb.sock"},
		{Config{Mode: FollowOn}, "tcp:192.0.2.10:6642"},
		{Config{Mode: FollowOff}, ""},
		{Config{Force: true}, ""},
	} {
		if got := NewPolicy(tc.cfg).Remote(ids); got != tc.want {
			t.Errorf("%+v: Remote = %q, want %q", tc.cfg, got, tc.want)
		}
	}
	if got := NewPolicy(Config{}).Remote(nil); got != "" {
		t.Errorf("no external_ids: %q", got)
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"auto": FollowAuto, "": FollowAuto, "true": FollowOn, "TRUE": FollowOn, "false": FollowOff, "off": FollowOff} {
		if m, err := ParseMode(in); err != nil || m != want {
			t.Errorf("ParseMode(%q) = %v, %v", in, m, err)
		}
	}
	if _, err := ParseMode("sometimes"); err == nil {
		t.Error("ParseMode(sometimes) accepted")
	}
}
