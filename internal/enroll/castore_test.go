package enroll

import (
	"crypto/x509"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/pki"
)

// During a CA rollover cacerts publishes the new CA, the old one and the
// link certificates; the new CA signs; certificates of the old CA still
// authenticate; a client that has only the old CA still reaches the
// server. When the overlap ends the old CA is neither published nor
// trusted, without a restart.
func TestRolloverWhileServing(t *testing.T) {
	dir := newPKI(t)
	clk := &offsetClock{}
	ts := startServer(t, dir, Config{Store: NewDirStore(dir, clk)})
	oldPool := ts.pool
	k := ecKey(t)
	fromOld := ts.do(req{op: "simpleenroll", user: "ch1", token: string(token(t, dir, "ch1", false)), csr: chassisCSR(t, k, "ch1")}).issued(t)

	res, err := pki.Dir{Path: dir}.Rollover(pki.RolloverOptions{Overlap: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// The server re-issues its certificate from the new CA at the next
	// handshake; a client with only the old CA verifies it through
	// NewWithOld.
	a := ts.do(req{op: "cacerts"})
	certs, err := ParseCertsOnlyBase64([]byte(a.body))
	if err != nil {
		t.Fatal(err)
	}
	want := []*x509.Certificate{res.New, res.Old, res.OldWithNew, res.NewWithOld}
	if len(certs) != len(want) {
		t.Fatalf("cacerts has %d certificates, want new, old and two links", len(certs))
	}
	for i := range want {
		if !certs[i].Equal(want[i]) {
			t.Errorf("cacerts certificate %d is %q", i, certs[i].Subject)
		}
	}
	if ts.pool != oldPool {
		t.Fatal("test client's pool changed")
	}
	ts.pool = x509.NewCertPool()
	ts.pool.AddCert(res.New)
	renewed := ts.do(req{op: "simplereenroll", cert: tlsCert(fromOld, k), csr: chassisCSR(t, k, "ch1")}).issued(t)
	if err := renewed.CheckSignatureFrom(res.New); err != nil {
		t.Errorf("renewal not signed by the new CA: %v", err)
	}

	clk.set(2 * time.Hour)
	a = ts.do(req{op: "cacerts"})
	certs, _ = ParseCertsOnlyBase64([]byte(a.body))
	if len(certs) != 1 || !certs[0].Equal(res.New) {
		t.Errorf("after the overlap cacerts has %d certificates, want the new CA only", len(certs))
	}
	ts.do(req{op: "simplereenroll", cert: tlsCert(fromOld, k), csr: chassisCSR(t, k, "ch1")}).refused(t, http.StatusUnauthorized, "not one this CA issued")
	ts.do(req{op: "simplereenroll", cert: tlsCert(renewed, k), csr: chassisCSR(t, k, "ch1")}).issued(t)
}

// offsetClock is the real time moved by an offset.
type offsetClock struct {
	clock.Real
	off atomic.Int64
}

func (c *offsetClock) set(d time.Duration) { c.off.Store(int64(d)) }

func (c *offsetClock) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }
