// Credentials stage: certificates, keys and CA bundles renewed under the
// same paths reach the IKE engine for the tunnels that use them. Only new
// IKE SAs authenticate with them; established IKE and Child SAs, and the
// tunnel's version, are left alone.

package native

import (
	"context"
	"fmt"
	"slices"

	"github.com/ovnsec/ovnsec/internal/creds"
	"github.com/ovnsec/ovnsec/internal/ike"
)

// keyMatcher is implemented by CredLoaders that can check a key against
// its certificate (*creds.Store).
type keyMatcher interface {
	KeyMatches(certPath, keyPath string) error
}

// followCreds applies every change until ctx ends.
func (b *Backend) followCreds(ctx context.Context, changes <-chan creds.Change) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case c := <-changes:
			b.credsChanged(c.Paths)
		}
	}
}

// credsChanged re-reads the credentials of every tunnel that uses one of
// paths and hands them to the engine. A half-renewed pair (the certificate
// written, its key not yet) is not applied: the key file's own change
// brings the pair once it matches.
func (b *Backend) credsChanged(paths []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	for _, st := range b.tunnels {
		if !slices.ContainsFunc(st.plan.credPaths, func(p string) bool { return slices.Contains(paths, p) }) {
			continue
		}
		if err := b.renewLocked(st); err != nil {
			b.log.Warn("renewed credentials not applied; new IKE SAs keep using the previous ones", "tunnel", st.t.Name, "err", err)
			st.credErr = err.Error()
			continue
		}
		st.credErr = ""
		b.log.Info("credentials renewed; new IKE SAs of the tunnel use them, established SAs are kept", "tunnel", st.t.Name, "files", st.plan.credPaths)
	}
}

func (b *Backend) renewLocked(st *tunnelState) error {
	t := st.t
	if m, ok := b.cfg.Creds.(keyMatcher); ok {
		if err := m.KeyMatches(t.Certificate, t.PrivateKey); err != nil {
			return err
		}
	}
	peer := st.plan.peer
	peer.Auth = ike.Auth{}
	if err := setAuth(&peer, t, st.plan.local, st.plan.remote, b.cfg.Creds); err != nil {
		return err
	}
	if peer.LocalID != st.plan.peer.LocalID {
		return fmt.Errorf("the renewed certificate %s names %q, not %q; change the configuration to change the identity", t.Certificate, peer.LocalID, st.plan.peer.LocalID)
	}
	if err := b.eng.UpdateCredentials(st.plan.peer.Name, peer.Auth); err != nil {
		return err
	}
	st.plan.peer.Auth = peer.Auth
	return nil
}
