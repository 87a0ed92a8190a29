// Remove stage: terminate and unload a tunnel's connections (every
// version) and its pre-shared key, and list the tunnels charon still holds
// so that the reconciler can remove leftovers.

package strongswan

import (
	"context"
	"fmt"
)

// unloadConn tears down the SAs of an IKE connection and unloads it. b.mu held.
func (b *Backend) unloadConn(ctx context.Context, name ConnName) error {
	// Terminate without waiting; "no matching SAs" is fine.
	term := msgOf("ike", string(name), "timeout", "-1")
	if _, err := b.stream(ctx, "terminate", "control-log", term); err != nil && !isCommandError(err) {
		return fmt.Errorf("terminate %s: %w", name, err)
	}
	if _, err := b.call(ctx, "unload-conn", msgOf("name", string(name))); err != nil {
		return fmt.Errorf("unload connection %s: %w", name, err)
	}
	b.logs.forgetConn(name)
	b.log.Info("unloaded connection", "conn", name)
	return nil
}

// Remove tears down every connection charon holds for the interface,
// whatever its version, and unloads its pre-shared key.
func (b *Backend) Remove(ctx context.Context, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.remove(ctx, name)
}

func (b *Backend) remove(ctx context.Context, name string) error {
	conns, err := b.listConns(ctx)
	if err != nil {
		return fmt.Errorf("remove tunnel %s: %w", name, err)
	}
	for cn, c := range conns {
		if iface, _, ok := ownedConn(c); ok && iface == name {
			if err := b.unloadConn(ctx, cn); err != nil {
				return fmt.Errorf("remove tunnel %s: %w", name, err)
			}
		}
	}
	if _, err := b.call(ctx, "unload-shared", msgOf("id", sharedID(name))); err != nil && !isCommandError(err) {
		return fmt.Errorf("remove tunnel %s: %w", name, err)
	}
	delete(b.creds, "psk:"+name)
	delete(b.tunnels, name)
	return nil
}

// Loaded lists the interfaces charon holds ovnsec-shaped connections for.
func (b *Backend) Loaded(ctx context.Context) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	conns, err := b.listConns(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, c := range conns {
		if iface, _, ok := ownedConn(c); ok {
			seen[iface] = true
		}
	}
	return sortedKeys(seen), nil
}
