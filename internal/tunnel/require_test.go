// Tests for Requirement: flipping it between updates of the same snapshot,
// the reasons it gives, and what becomes of the tunnels it added.

package tunnel

import (
	"strings"
	"testing"

	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
)

// The flag's wording is unchanged: Requirement builds exactly the reason
// ovnsecd --require-ipsec always gave.
func TestRequirementFlagReason(t *testing.T) {
	r := Requirement{On: true, Cause: "ovnsecd --require-ipsec"}
	if got := r.reason(); got != reasonRequired {
		t.Errorf("reason = %q\nwant     %q", got, reasonRequired)
	}
	if !strings.HasPrefix(reasonRequired, requiredPrefix) {
		t.Errorf("reasonRequired does not start with %q", requiredPrefix)
	}
	nd := Requirement{On: true, Cause: "OVN SB_Global ipsec=true", NoDrop: true}.reason()
	if strings.Contains(nd, "dropped") || !strings.Contains(nd, "plaintext") {
		t.Errorf("NoDrop reason %q must not claim the packets are dropped", nd)
	}
}

// Flipping the requirement between Updates of one snapshot (same Seq, as
// ovnsecd does when OVN's SB_Global ipsec changes) adds the interfaces
// without IPsec options as INVALID tunnels, then reports them REMOVED;
// tunnels with IPsec options are untouched by either flip.
func TestRequireFlipSameSnapshot(t *testing.T) {
	tb := NewTable(newFake(), clocktest.New(testNow))
	s := snap(7, nil,
		iface("ovn-b-0", "geneve", "remote_ip=10.0.0.2", "key=flow"),
		iface("ovn-c-0", "geneve", "remote_ip=10.0.0.3", "key=flow", "psk=x"),
		iface("br", "internal"),
	)
	ts, _ := tb.Update(s)
	if len(ts) != 1 || ts[0].Name != "ovn-c-0" {
		t.Fatalf("not required: %+v, want only ovn-c-0", ts)
	}
	psk := ts[0]

	sb := Requirement{On: true, Cause: "OVN SB_Global ipsec=true"}
	tb.Require(sb)
	if !tb.Required() {
		t.Fatal("Required() = false after Require(On)")
	}
	ts, events := tb.Update(s)
	b, ok := find(ts, "ovn-b-0")
	if !ok || b.State != StateInvalid || b.Reason != sb.reason() {
		t.Fatalf("required: ovn-b-0 = %+v (found %v), want INVALID with %q", b, ok, sb.reason())
	}
	if !strings.Contains(b.Reason, "(OVN SB_Global ipsec=true)") || !strings.Contains(b.Reason, "dropped") {
		t.Errorf("reason %q does not name SB_Global ipsec=true", b.Reason)
	}
	if c, _ := find(ts, "ovn-c-0"); c.State != StateConfigured || c.Version != psk.Version {
		t.Errorf("psk tunnel changed by the flip: %+v", c)
	}
	if !strings.Contains(strings.Join(msgs(events), "\n"), "ovn-b-0 contains invalid configuration"+sb.reason()) {
		t.Errorf("no invalid-configuration event naming the cause: %q", msgs(events))
	}

	// Another cause while on: the reason follows at once, the version
	// does not change.
	lost := Requirement{On: true, Cause: "OVN SB_Global ipsec=true when last read"}
	tb.Require(lost)
	ts, _ = tb.Update(s)
	if b2, _ := find(ts, "ovn-b-0"); b2.Reason != lost.reason() || b2.Version != b.Version {
		t.Errorf("after a new cause: reason %q version %d, want %q version %d", b2.Reason, b2.Version, lost.reason(), b.Version)
	}

	tb.Require(Requirement{})
	if tb.Required() {
		t.Fatal("Required() = true after Require(off)")
	}
	ts, events = tb.Update(s)
	if r, ok := find(ts, "ovn-b-0"); !ok || r.State != StateRemoved {
		t.Fatalf("not required again: ovn-b-0 = %+v (found %v), want REMOVED once", r, ok)
	}
	if c, _ := find(ts, "ovn-c-0"); c.State != StateConfigured || c.Version != psk.Version {
		t.Errorf("psk tunnel changed by the flip back: %+v", c)
	}
	if !strings.Contains(strings.Join(msgs(events), "\n"), "Tunnel ovn-b-0 disappeared") {
		t.Errorf("no removal event: %q", msgs(events))
	}
	if ts, _ = tb.Update(s); len(ts) != 1 {
		t.Errorf("after the removal: %+v, want only ovn-c-0", ts)
	}

	// On again, then options arrive: CONFIGURED.
	tb.Require(sb)
	tb.Update(s)
	ts, _ = tb.Update(snap(8, nil,
		iface("ovn-b-0", "geneve", "remote_ip=10.0.0.2", "key=flow", "psk=y"),
		iface("ovn-c-0", "geneve", "remote_ip=10.0.0.3", "key=flow", "psk=x")))
	if b3, _ := find(ts, "ovn-b-0"); b3.State != StateConfigured {
		t.Errorf("options arrived: %+v", b3)
	}
	// Options removed while required: INVALID with the requirement's
	// reason, not upstream's "must choose a authentication method".
	ts, _ = tb.Update(snap(9, nil, iface("ovn-b-0", "geneve", "remote_ip=10.0.0.2", "key=flow")))
	if b4, _ := find(ts, "ovn-b-0"); b4.State != StateInvalid || b4.Reason != sb.reason() {
		t.Errorf("options removed while required: %+v", b4)
	}
}

// A requirement that changes cause while off and is turned on again
// before any Update still gives its own reason.
func TestRequireCauseChangedWhileOff(t *testing.T) {
	tb := NewTable(newFake(), clocktest.New(testNow))
	s := snap(1, nil, iface("g", "geneve", "remote_ip=10.0.0.2"))
	tb.RequireIPsec(true)
	tb.Update(s)
	tb.Require(Requirement{})
	sb := Requirement{On: true, Cause: "OVN SB_Global ipsec=true"}
	tb.Require(sb)
	ts, _ := tb.Update(s)
	if g, _ := find(ts, "g"); g.State != StateInvalid || g.Reason != sb.reason() {
		t.Errorf("g = %+v, want INVALID with %q", g, sb.reason())
	}
}
