// Renewal stage: certificates, keys and CA bundles renewed under the same
// paths reach charon for the tunnels that use them. The tunnel's version
// does not change (internal/tunnel ignores file contents), so the backend
// follows the files itself: it applies each affected tunnel again, which
// loads exactly the credentials that changed and replaces the connection's
// configuration in place. Connections are never unloaded and SAs never
// terminated; established IKE and Child SAs keep running, new ones
// authenticate with the renewed files.

package strongswan

import (
	"context"
	"errors"
	"slices"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/creds"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// followCreds applies every change until ctx ends. A tunnel whose renewal
// failed (charon busy or unreachable, a file unreadable) is tried again
// after RetryInterval, and on any later change of its files.
func (b *Backend) followCreds(ctx context.Context, changes <-chan creds.Change) {
	retry := make(chan struct{}, 1)
	var failed []string
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-changes:
			failed = b.credsChanged(ctx, func(st *tunnelState) bool {
				return slices.Contains(failed, st.t.Name) || slices.ContainsFunc(st.credPaths, func(p string) bool { return slices.Contains(c.Paths, p) })
			})
		case <-retry:
			failed = b.credsChanged(ctx, func(st *tunnelState) bool { return slices.Contains(failed, st.t.Name) })
		}
		if len(failed) > 0 {
			b.cfg.Clock.AfterFunc(b.cfg.RetryInterval, func() {
				select {
				case retry <- struct{}{}:
				default:
				}
			})
		}
	}
}

// credsChanged applies again every tracked tunnel that match selects and
// returns the names of those it failed for.
func (b *Backend) credsChanged(ctx context.Context, match func(*tunnelState) bool) []string {
	b.mu.Lock()
	var ts []tunnel.Tunnel
	for _, name := range sortedKeys(b.tunnels) {
		if st := b.tunnels[name]; len(st.credPaths) > 0 && match(st) {
			ts = append(ts, st.t)
		}
	}
	b.mu.Unlock()

	var failed []string
	for _, t := range ts {
		err := b.ensure(ctx, t, true)
		if errors.Is(err, errSuperseded) {
			continue
		}
		if isPartial(err) {
			err = nil
		}
		b.mu.Lock()
		st := b.tunnels[t.Name]
		if err != nil && st != nil && st.t.SameConfig(t) {
			st.credErr = err.Error()
		}
		held := st != nil && st.credErr != ""
		b.mu.Unlock()
		switch {
		case err != nil:
			b.log.Warn("renewed credentials not loaded into charon; new IKE SAs keep using the previous ones", "tunnel", t.Name, "err", err)
			failed = append(failed, t.Name)
		case !held:
			b.log.Info("credential files renewed; loaded into charon, established SAs kept", "tunnel", t.Name, "files", t.CredPaths())
		}
	}
	return failed
}

func isPartial(err error) bool {
	var u *backend.UnsupportedOptionsError
	return errors.As(err, &u)
}
