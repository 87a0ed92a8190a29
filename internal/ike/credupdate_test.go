package ike

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

// Renewed certificates and a new CA reach a peer's future IKE SAs through
// UpdateCredentials while its established IKE SA keeps its SPIs.
func TestUpdateCredentialsKeepsSAs(t *testing.T) {
	ca1, ca2 := newCA(t, "CA 1"), newCA(t, "CA 2")
	a := newSide(t, "127.0.0.1", nil)
	b := newSide(t, "127.0.0.2", nil)
	idA, idB := "host-"+a.ip.String(), "host-"+b.ip.String()
	auth := func(ca *testCert, id string) Auth {
		c := issue(t, ca, id, "ec", time.Now().Add(time.Hour))
		return Auth{Cert: []*x509.Certificate{c.cert}, Key: c.key, CAs: []*x509.Certificate{ca.cert}}
	}
	pa, pb := peerOf(a, b, "b", true), peerOf(b, a, "a", false)
	pa.Auth, pb.Auth = auth(&ca1, idA), auth(&ca1, idB)
	if err := b.e.AddPeer(pb); err != nil {
		t.Fatal(err)
	}
	if err := a.e.AddPeer(pa); err != nil {
		t.Fatal(err)
	}
	before := waitUp(t, b, "a")

	// Both move to CA 2 (a rollover done) with certificates it issued.
	if err := b.e.UpdateCredentials("a", auth(&ca2, idB)); err != nil {
		t.Fatal(err)
	}
	a2 := auth(&ca2, idA)
	if err := a.e.UpdateCredentials("b", a2); err != nil {
		t.Fatal(err)
	}
	after := b.e.Status("a")
	if !after.Up() || after.SPIi != before.SPIi || after.SPIr != before.SPIr || len(after.Children) != len(before.Children) {
		t.Fatalf("the established IKE SA changed: before %v/%v, after %v/%v up=%v", before.SPIi, before.SPIr, after.SPIi, after.SPIr, after.Up())
	}

	// A new IKE SA: b must present its CA 2 certificate and accept a's CA 2
	// one; with its first credentials it would fail both ways.
	a.e.RemovePeer("b")
	pa.Auth = a2
	if err := a.e.AddPeer(pa); err != nil {
		t.Fatal(err)
	}
	// b learns of the removal by a Delete it may not have read yet: wait
	// for an IKE SA other than the first (or the deadline).
	deadline := time.Now().Add(10 * time.Second)
	renewed := b.e.Status("a")
	for time.Now().Before(deadline) && !(renewed.Up() && len(renewed.Children) > 0 && renewed.SPIi != before.SPIi) {
		time.Sleep(5 * time.Millisecond)
		renewed = b.e.Status("a")
	}
	if !renewed.Up() || renewed.SPIi == before.SPIi {
		t.Fatalf("no new IKE SA was made: %+v", renewed)
	}

	// PSK peers and incomplete credentials are refused.
	for _, bad := range []Auth{{PSK: []byte("x")}, {CAs: a2.CAs}, {Cert: a2.Cert, Key: a2.Key}} {
		if err := a.e.UpdateCredentials("b", bad); err == nil {
			t.Errorf("UpdateCredentials accepted %+v", bad)
		}
	}
	if err := a.e.UpdateCredentials("nobody", a2); err == nil || !strings.Contains(err.Error(), "no peer") {
		t.Errorf("unknown peer: %v", err)
	}
	p := peerOf(a, b, "psk", false)
	p.Remote = a.ip.Next().Next().Next()
	if err := a.e.AddPeer(p); err != nil {
		t.Fatal(err)
	}
	if err := a.e.UpdateCredentials("psk", a2); err == nil || !strings.Contains(err.Error(), "PSK") {
		t.Errorf("PSK peer switched to certificates: %v", err)
	}
}
