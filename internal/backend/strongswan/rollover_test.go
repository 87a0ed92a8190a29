// CA rollover through charon: charon does not read several CAs from one
// file, so the backend loads every certificate of the ca_cert bundle as a
// CA of its own (load-cert flag CA) and names them all in the connection's
// remote cacerts. A rollover (new CA first, old CA after it), the renewal
// under the new CA and the old CA's retirement each replace the
// connection in place: no connection unloaded, no SA terminated, the
// tunnel's version kept.

package strongswan

import (
	"context"
	"encoding/pem"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/creds"
)

func remoteCACerts(t *testing.T, calls []fakeCall) []string {
	t.Helper()
	for _, c := range calls {
		if c.Cmd == "load-conn" {
			v, _ := path(t, c.Msg, "gnv1-1", "remote", "cacerts").([]string)
			return v
		}
	}
	t.Fatal("no load-conn")
	return nil
}

func TestCARolloverBundle(t *testing.T) {
	f := newFakeCharon(t)
	established(t, f)
	store := creds.NewStore(creds.Options{Log: slog.New(slog.DiscardHandler), Poll: time.Hour})
	b := New(Config{ViciSocket: f.socket, Creds: store}, nil)
	t.Cleanup(func() { _ = b.Close(context.Background(), false) })
	ctx := context.Background()
	p := newRenewPKI(t, "ch1")
	if err := b.Ensure(ctx, p.tunnel()); err != nil {
		t.Fatal(err)
	}
	f.takeCalls()
	certPEM := func() string { return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.ca.Raw})) }
	oldPEM := certPEM()

	// The rollover: the bundle holds the new CA and the old one.
	p.renewCA()
	newPEM := certPEM()
	p.replaceFile(p.caPath, []byte(newPEM+oldPEM))
	store.Refresh()
	calls := callsUntil(t, f, "load-conn")
	noTeardown(t, calls)
	if got := loadedCert(calls, "CA"); !slices.Equal(got, []string{newPEM}) {
		t.Errorf("loaded as CAs %d certificates, want the new CA (the old one is loaded already)", len(got))
	}
	if got := remoteCACerts(t, calls); !slices.Equal(got, []string{newPEM, oldPEM}) {
		t.Errorf("the connection trusts %d CAs, want the new and the old one", len(got))
	}

	// The chassis renews under the new CA; both CAs stay trusted.
	certNew := p.writeCert()
	store.Refresh()
	calls = callsUntil(t, f, "load-conn")
	noTeardown(t, calls)
	if c := connCerts(t, calls); len(c) != 1 || c[0] != string(certNew) {
		t.Error("the certificate from the new CA is not the connection's")
	}
	if got := remoteCACerts(t, calls); !slices.Equal(got, []string{newPEM, oldPEM}) {
		t.Errorf("after the renewal the connection trusts %d CAs", len(got))
	}

	// The old CA retires: only the new one is trusted.
	p.replaceFile(p.caPath, []byte(newPEM))
	store.Refresh()
	calls = callsUntil(t, f, "load-conn")
	noTeardown(t, calls)
	if got := remoteCACerts(t, calls); !slices.Equal(got, []string{newPEM}) {
		t.Errorf("after the retirement the connection trusts %d CAs, want the new one only", len(got))
	}
	st := statusUntil(t, b, "gnv1", func(s backend.TunnelStatus) bool { return credNote(s) == "" })
	if st.Version != 1 {
		t.Errorf("version %d after the rollover", st.Version)
	}
}
