package enroll

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/ovnsb/sbtest"
	"github.com/ovnsec/ovnsec/internal/testenv"
)

// With --sb-db a chassis enrols only if the Southbound database has it,
// and only from one of its Encap IPs (unless the source check is off).
func TestSouthboundChecks(t *testing.T) {
	testenv.Short(t)
	sb := sbtest.Start(t)
	sb.AddChassis("ch1", "192.0.2.10", "127.0.0.1")
	sb.AddChassis("ch2", "192.0.2.20")

	lk, err := NewSBChassis(sb.Remote, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lk.Close)
	ch, err := lk.LookupChassis(t.Context(), "ch1")
	if err != nil || len(ch.EncapIPs) != 2 {
		t.Fatalf("lookup ch1: %+v %v", ch, err)
	}
	if _, err := lk.LookupChassis(t.Context(), "ch9"); !errors.Is(err, ErrUnknownChassis) {
		t.Fatalf("lookup ch9: %v", err)
	}

	dir := newPKI(t)
	ts := startServer(t, dir, Config{Chassis: lk, CheckSource: true})
	enrol := func(name string) answer {
		return ts.do(req{op: "simpleenroll", user: name, token: string(token(t, dir, name, false)), csr: chassisCSR(t, ecKey(t), name)})
	}
	enrol("ch1").issued(t)
	enrol("ch9").refused(t, 403, `chassis "ch9" is not a Chassis in the OVN Southbound database`)
	enrol("ch2").refused(t, 403, `comes from 127.0.0.1, which is not an Encap IP of chassis "ch2" ([192.0.2.20])`)

	// Renewal is checked the same way.
	k := ecKey(t)
	c2, k2 := issueDirect(t, dir, "ch2", ts.srv.clock.Now(), time.Hour)
	ts.do(req{op: "simplereenroll", cert: tlsCert(c2, k2), csr: chassisCSR(t, k, "ch2")}).refused(t, 403, "not an Encap IP")

	// Without the source check, a known chassis enrols from anywhere.
	open := startServer(t, dir, Config{Chassis: lk})
	open.do(req{op: "simpleenroll", user: "ch2", token: string(token(t, dir, "ch2", false)), csr: chassisCSR(t, ecKey(t), "ch2")}).issued(t)

	// Fail closed: no database, no certificate.
	sb.Stop()
	a := enrol("ch1")
	a.refused(t, 503, "cannot be checked in the OVN Southbound database")
	if !strings.Contains(ts.log.String(), "status=503") {
		t.Errorf("unavailable database not logged:\n%s", ts.log.String())
	}
	sb.Start()
	enrol("ch1").issued(t)
}

func TestNewSBChassisRemotes(t *testing.T) {
	for _, bad := range []string{"", "ssl:192.0.2.1:6642", "ptcp:6642", "tcp:"} {
		if _, err := NewSBChassis(bad, nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	s, err := NewSBChassis("tcp:192.0.2.1:6642,unix:sb.sock", nil)
	if err != nil || len(s.endpoints) != 2 || s.endpoints[1] != "unix:/var/run/ovn/sb.sock" {
		t.Errorf("%+v %v", s, err)
	}
}
