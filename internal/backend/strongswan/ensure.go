// Ensure stage: load a tunnel's credentials (pre-shared key, private key,
// certificates) and its connection into charon, unload its other versions
// and hand over to initiate.

package strongswan

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/strongswan/govici/vici"

	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// UnsupportedOptionsError is returned by Ensure when some ipsec_* custom
// options could not be applied. The tunnel IS loaded and initiated without
// them; the reconciler should show the error rather than back off hard.
type UnsupportedOptionsError struct {
	Tunnel  string
	Options []string
}

// Partial marks the error as backend.PartialError: the tunnel is applied.
func (e *UnsupportedOptionsError) Partial() bool { return true }

func (e *UnsupportedOptionsError) Error() string {
	return fmt.Sprintf("tunnel %s loaded without some options: %s", e.Tunnel, strings.Join(e.Options, "; "))
}

// Ensure loads credentials and the connection for t.Version, unloads every
// other version of the tunnel and initiates what is not up. Calling it
// again for a healthy tunnel changes nothing in charon.
func (b *Backend) Ensure(ctx context.Context, t tunnel.Tunnel) error {
	mat, err := readCreds(t, b.cfg.Creds)
	if err != nil {
		return fmt.Errorf("tunnel %s: %w", t.Name, err)
	}
	spec, err := buildConn(t, mat.pemMaterial)
	if err != nil {
		return err
	}
	connFP := fingerprint([]byte(spec.Msg.String()))

	b.mu.Lock()
	defer b.mu.Unlock()

	// Track the desired tunnel first, so that Status reports it even
	// while charon is unreachable.
	st := b.tunnels[t.Name]
	if st == nil || st.ike != spec.IKE {
		st = &tunnelState{initiated: map[ConnName]time.Time{}}
		b.tunnels[t.Name] = st
	}
	st.t, st.ike, st.children, st.unsupported = t, spec.IKE, spec.Children, spec.Unsupported

	conns, err := b.listConns(ctx)
	if err != nil {
		return fmt.Errorf("ensure tunnel %s: %w", t.Name, err)
	}
	_, present := conns[spec.IKE]

	if err := b.loadCreds(ctx, t, mat, !present); err != nil {
		return fmt.Errorf("ensure tunnel %s: %w", t.Name, err)
	}
	if !present || st.connFP != connFP {
		if _, err := b.call(ctx, "load-conn", spec.Msg); err != nil {
			return fmt.Errorf("ensure tunnel %s: load connection %s: %w", t.Name, spec.IKE, err)
		}
		b.log.Info("loaded connection", "tunnel", t.Name, "conn", spec.IKE, "version", t.Version)
		st.connFP = connFP
		if !present {
			st.loadedAt = b.cfg.Now()
			clear(st.initiated)
		}
	}

	// Unload every other version of this tunnel.
	for name, c := range conns {
		iface, v, ok := ownedConn(c)
		if !ok || iface != t.Name || v == t.Version {
			continue
		}
		if err := b.unloadConn(ctx, name); err != nil {
			return fmt.Errorf("ensure tunnel %s: %w", t.Name, err)
		}
	}

	if err := b.initiate(ctx, st); err != nil {
		return fmt.Errorf("ensure tunnel %s: %w", t.Name, err)
	}
	if len(spec.Unsupported) > 0 {
		return &UnsupportedOptionsError{Tunnel: t.Name, Options: spec.Unsupported}
	}
	return nil
}

// loadCreds loads the tunnel's secrets and certificates unless this charon
// already has exactly them. force reloads regardless (connection missing:
// charon may have restarted). b.mu held.
func (b *Backend) loadCreds(ctx context.Context, t tunnel.Tunnel, mat credMaterial, force bool) error {
	load := func(key, fp, cmd string, build func() (*vici.Message, error)) (*vici.Message, error) {
		if !force && b.creds[key] == fp {
			return nil, nil
		}
		m, err := build()
		if err != nil {
			return nil, err
		}
		resp, err := b.call(ctx, cmd, m)
		if err != nil {
			return nil, err
		}
		b.creds[key] = fp
		return resp, nil
	}
	switch t.Auth {
	case tunnel.AuthPSK:
		fp := fingerprint([]byte(t.PSK.Reveal()), []byte(t.RemoteIP))
		if _, err := load("psk:"+t.Name, fp, "load-shared", func() (*vici.Message, error) { return loadSharedMsg(t) }); err != nil {
			return fmt.Errorf("load pre-shared key: %w", err)
		}
	case tunnel.AuthSelfSigned, tunnel.AuthCASigned:
		if mat.Key != nil {
			fp := fingerprint(mat.Key.DER)
			resp, err := load("key:"+fp, fp, "load-key", func() (*vici.Message, error) { return loadKeyMsg(*mat.Key) })
			if err != nil {
				return fmt.Errorf("load private key %s: %w", t.PrivateKey, err)
			}
			if resp != nil {
				var r loadKeyReply
				if err := unmarshal(resp, &r); err != nil {
					delete(b.creds, "key:"+fp) // load it again next time, to learn its id
					return fmt.Errorf("load private key %s: decode charon's load-key reply: %w", t.PrivateKey, err)
				}
				if r.ID != "" {
					b.keyIDs[r.ID] = true
				}
			}
		}
		fp := fingerprint(mat.LocalCert)
		if _, err := load("cert:"+fp, fp, "load-cert", func() (*vici.Message, error) { return loadCertMsg(mat.LocalCert, "NONE") }); err != nil {
			return fmt.Errorf("load certificate %s: %w", t.Certificate, err)
		}
		if len(mat.RemoteCert) > 0 {
			fp := fingerprint(mat.RemoteCert)
			if _, err := load("cert:"+fp, fp, "load-cert", func() (*vici.Message, error) { return loadCertMsg(mat.RemoteCert, "NONE") }); err != nil {
				return fmt.Errorf("load peer certificate %s: %w", t.RemoteCert, err)
			}
		}
		for _, ca := range mat.CACerts {
			fp := fingerprint(ca)
			if _, err := load("ca:"+fp, fp, "load-cert", func() (*vici.Message, error) { return loadCertMsg(ca, "CA") }); err != nil {
				return fmt.Errorf("load CA certificate %s: %w", t.CACert, err)
			}
		}
	}
	return nil
}
