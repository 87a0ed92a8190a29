// Ensure stage: load a tunnel's credentials (pre-shared key, private key,
// certificates) and its connection into charon, unload its other versions
// and hand over to initiate.

package strongswan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/strongswan/govici/vici"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// Ensure loads credentials and the connection for t.Version, unloads every
// other version of the tunnel and initiates what is not up. Calling it
// again for a healthy tunnel changes nothing in charon.
func (b *Backend) Ensure(ctx context.Context, t tunnel.Tunnel) error {
	return b.ensure(ctx, t, false)
}

// errSuperseded: a renewal found the tunnel removed or reconfigured since
// it was picked; whoever changed it loaded the current files.
var errSuperseded = errors.New("tunnel removed or reconfigured meanwhile")

// ensure is Ensure. With renewal it only re-applies a tunnel that is still
// tracked with exactly t's configuration (errSuperseded otherwise), so
// that following renewed files never brings back a removed tunnel.
func (b *Backend) ensure(ctx context.Context, t tunnel.Tunnel, renewal bool) error {
	mat, readErr := readCreds(t, b.cfg.Creds)

	b.mu.Lock()
	defer b.mu.Unlock()

	prev := b.tunnels[t.Name]
	if renewal && (b.closed || prev == nil || prev.t.Version != t.Version || !prev.t.SameConfig(t)) {
		return errSuperseded
	}
	if readErr != nil {
		err := fmt.Errorf("tunnel %s: %w", t.Name, readErr)
		if renewal {
			prev.credErr = err.Error()
		}
		return err
	}
	// Half a renewal (the certificate written, its key not yet, or the
	// reverse) is not loaded: charon would hold a certificate it has no
	// key for. The previous files' material stays in use until the pair
	// matches again; the change of the second file brings it.
	credErr := ""
	if err := mat.keyMatches(t); err != nil {
		if prev == nil || prev.mat == nil || !slices.Equal(prev.credPaths, t.CredPaths()) {
			return fmt.Errorf("tunnel %s: %w", t.Name, err)
		}
		if prev.credErr != err.Error() {
			b.log.Warn("certificate and private key do not match (renewal under way?); charon keeps the previous ones", "tunnel", t.Name, "err", err)
		}
		mat, credErr = *prev.mat, err.Error()
	}
	spec, err := buildConn(t, mat.pemMaterial)
	if err != nil {
		return err
	}
	connFP := fingerprint([]byte(spec.Msg.String()))

	// Track the desired tunnel first, so that Status reports it even
	// while charon is unreachable.
	st := prev
	if st == nil || st.ike != spec.IKE {
		st = &tunnelState{initiated: map[ConnName]time.Time{}, mat: prevMat(prev), credPaths: prevPaths(prev)}
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
	if mat.Key != nil {
		m := mat
		st.mat = &m
	} else {
		st.mat = nil
	}
	st.credPaths, st.credErr = t.CredPaths(), credErr
	if !present || st.connFP != connFP {
		if _, err := b.call(ctx, "load-conn", spec.Msg); err != nil {
			return fmt.Errorf("ensure tunnel %s: load connection %s: %w", t.Name, spec.IKE, err)
		}
		b.log.Info("loaded connection", "tunnel", t.Name, "conn", spec.IKE, "version", t.Version)
		st.connFP = connFP
		if !present {
			st.loadedAt = b.cfg.Clock.Now()
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
		return &backend.UnsupportedOptionsError{Tunnel: t.Name, Backend: "strongswan", Options: spec.Unsupported}
	}
	return nil
}

func prevMat(st *tunnelState) *credMaterial {
	if st == nil {
		return nil
	}
	return st.mat
}

func prevPaths(st *tunnelState) []string {
	if st == nil {
		return nil
	}
	return st.credPaths
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
