// Integration tests for following OVN's SB_Global ipsec: a real ovsdb-server
// with the vswitchd schema holds tunnel ports as ovn-controller makes them,
// another one with the OVN_Southbound schema holds SB_Global, and the
// ovnsecd binary reads ovn-remote from the first and follows the second.
// The strongSwan backend (without charon) is enough here: the requirement
// shows in tunnels/show whatever the backend; that the native backend drops
// the packets is test/e2e's TestLeak.
package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/ovnsb/sbtest"
	"github.com/ovnsec/ovnsec/internal/testenv"
)

// addOVNPort adds a geneve port the way ovn-controller does (name
// ovn-<chassis>-0, key=flow), with extra options.
func addOVNPort(db *testenv.OVSDB, name, remoteIP string, opts ...string) {
	args := []string{"--no-wait", "add-port", "br-int", name, "--", "set", "interface", name,
		"type=geneve", "options:remote_ip=" + remoteIP, "options:key=flow", "options:csum=true"}
	for _, o := range opts {
		args = append(args, "options:"+o)
	}
	db.Vsctl(args...)
}

const showWait = 10 * time.Second

// required matches a tunnel listed INVALID because IPsec is required, with
// the cause in the reason.
func required(name, cause string) string {
	return `Interface name: ` + regexp.QuoteMeta(name) + ` v\d+ \(INVALID: IPsec is required on this host \(` + regexp.QuoteMeta(cause) + `\) but none of 'psk', 'remote_cert', 'remote_name' is set; `
}

func TestDaemonFollowsSBGlobalIPsec(t *testing.T) {
	testenv.Short(t)
	t.Parallel()
	sb := sbtest.Start(t)
	db := testenv.StartOVSDB(t)
	db.Vsctl("--no-wait", "add-br", "br-int")
	addOVNPort(db, "ovn-ch2-0", "192.0.2.2")
	addOVNPort(db, "ovn-ch3-0", "192.0.2.3")
	db.Vsctl("--no-wait", "set", "open_vswitch", ".", "external_ids:ovn-remote="+sb.Remote)
	d := startDaemon(t, db)
	d.WaitFor("Southbound followed", showWait, func() bool {
		return strings.Contains(d.Logs(), "OVN Southbound monitor established")
	})
	if out, err := d.Appctl("tunnels/show"); err != nil || !strings.Contains(out, "No tunnels configured with IPsec") {
		t.Fatalf("ipsec=false: tunnels/show = %q, %v", out, err)
	}

	// ipsec=true: both ports required at once, although neither has IPsec
	// options; the strongSwan backend cannot drop, and the reason says so.
	sb.SetIPsec(true)
	out := d.WaitShow(showWait, `(?s)`+required("ovn-ch2-0", "OVN SB_Global ipsec=true")+`.*`+required("ovn-ch3-0", "OVN SB_Global ipsec=true"))
	if !strings.Contains(out, "cannot drop its packets, so they still cross in plaintext") || strings.Contains(out, "packets are dropped until") {
		t.Errorf("strongSwan: the reason must not claim a drop:\n%s", out)
	}
	if !strings.Contains(d.Logs(), "only affects tunnels/show") {
		t.Errorf("no log line saying that with strongswan it only affects tunnels/show")
	}

	// The options arrive on one port: that one is configured (INVALID for
	// want of a certificate, upstream's reason), the other still required.
	db.Vsctl("--no-wait", "set", "interface", "ovn-ch2-0", "options:remote_name=ch2", "options:local_ip=192.0.2.1")
	d.WaitShow(showWait, `(?s)ovn-ch2-0 v\d+ \(INVALID: must set 'certificate'.*`+required("ovn-ch3-0", "OVN SB_Global ipsec=true"))

	// Southbound unreachable: the last value stays, and the reason says so.
	sb.Stop()
	d.WaitShow(showWait, required("ovn-ch3-0", "OVN SB_Global ipsec=true when last read; the Southbound database is not reachable now"))
	sb.Start()
	d.WaitShow(showWait, required("ovn-ch3-0", "OVN SB_Global ipsec=true"))

	// ipsec=false: the port without options is no longer a tunnel.
	sb.SetIPsec(false)
	out = d.WaitShow(showWait, `ovn-ch2-0 v\d+`)
	deadline := time.Now().Add(showWait)
	for strings.Contains(out, "ovn-ch3-0") {
		if time.Now().After(deadline) {
			t.Fatalf("ovn-ch3-0 still listed after ipsec=false:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
		out, _ = d.Appctl("tunnels/show")
	}
	if !strings.Contains(d.Logs(), "IPsec not required on tunnel ports without IPsec options (OVN SB_Global ipsec=false)") {
		t.Errorf("no log line for ipsec=false")
	}

	// ovn-remote now names another Southbound, whose ipsec is true: it is
	// followed from the next snapshot on.
	sb2 := sbtest.Start(t)
	sb2.SetIPsec(true)
	db.Vsctl("--no-wait", "set", "open_vswitch", ".", "external_ids:ovn-remote="+sb2.Remote)
	d.WaitShow(showWait, required("ovn-ch3-0", "OVN SB_Global ipsec=true"))
}

// Before the Southbound has answered, an OVN tunnel port with IPsec options
// (OVN writes them only with ipsec=true) makes IPsec required on the others.
func TestDaemonInfersRequirementAtStart(t *testing.T) {
	testenv.Short(t)
	t.Parallel()
	db := testenv.StartOVSDB(t)
	db.Vsctl("--no-wait", "add-br", "br-int")
	addOVNPort(db, "ovn-ch2-0", "192.0.2.2", "remote_name=ch2", "local_ip=192.0.2.1")
	addOVNPort(db, "ovn-ch3-0", "192.0.2.3")
	db.Vsctl("--no-wait", "set", "open_vswitch", ".", "external_ids:ovn-remote=unix:/nonexistent/ovnsb_db.sock")
	d := startDaemon(t, db)
	d.WaitShow(showWait, required("ovn-ch3-0", "OVN tunnel ports carry IPsec options; SB_Global ipsec is not known yet"))

	// OVN takes the options away (ipsec=false reached ovn-controller):
	// nothing requires IPsec any more.
	db.Vsctl("--no-wait", "remove", "interface", "ovn-ch2-0", "options", "remote_name", "local_ip")
	d.WaitShow(showWait, `^No tunnels configured with IPsec`)
}

// --follow-ovn-ipsec=false and a host without ovn-remote do not follow;
// --ovn-sb overrides ovn-remote.
func TestDaemonFollowFlags(t *testing.T) {
	testenv.Short(t)
	t.Parallel()
	sb := sbtest.Start(t)
	sb.SetIPsec(true)

	off := testenv.StartOVSDB(t)
	off.Vsctl("--no-wait", "add-br", "br-int")
	addOVNPort(off, "ovn-ch2-0", "192.0.2.2")
	off.Vsctl("--no-wait", "set", "open_vswitch", ".", "external_ids:ovn-remote="+sb.Remote)
	dOff := startDaemon(t, off, "--follow-ovn-ipsec=false")

	noOVN := testenv.StartOVSDB(t)
	noOVN.Vsctl("--no-wait", "add-br", "br-int")
	addOVNPort(noOVN, "ovn-ch2-0", "192.0.2.2")
	dNoOVN := startDaemon(t, noOVN)

	flag := testenv.StartOVSDB(t)
	flag.Vsctl("--no-wait", "add-br", "br-int")
	addOVNPort(flag, "ovn-ch2-0", "192.0.2.2")
	flag.Vsctl("--no-wait", "set", "open_vswitch", ".", "external_ids:ovn-remote=unix:/nonexistent/ovnsb_db.sock")
	dFlag := startDaemon(t, flag, "--ovn-sb="+sb.Remote)
	dFlag.WaitShow(showWait, required("ovn-ch2-0", "OVN SB_Global ipsec=true"))

	// By now a follower would long have read ipsec=true (dFlag did).
	for name, d := range map[string]interface {
		Appctl(...string) (string, error)
		Logs() string
	}{"--follow-ovn-ipsec=false": dOff, "no ovn-remote": dNoOVN} {
		if out, err := d.Appctl("tunnels/show"); err != nil || !strings.Contains(out, "No tunnels configured with IPsec") {
			t.Errorf("%s: tunnels/show = %q, %v", name, out, err)
		}
		if strings.Contains(d.Logs(), "OVN Southbound monitor established") {
			t.Errorf("%s: connected to the Southbound", name)
		}
	}
}

func TestParseFollowFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--follow-ovn-ipsec=auto"}, ""},
		{[]string{"--follow-ovn-ipsec=false", "--ovn-sb=tcp:192.0.2.10:6642"}, ""},
		{[]string{"--follow-ovn-ipsec=maybe"}, "want auto, true or false"},
		{[]string{"--ovn-sb=ssl:192.0.2.10:6642"}, "not supported"},
		{[]string{"--ovn-sb=ptcp:6642"}, "passive"},
	} {
		_, err := parseArgs(tc.args, &strings.Builder{})
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.wantErr)
		}
	}
}
