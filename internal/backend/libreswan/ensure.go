// Ensure and Remove: a tunnel's conns written into the files, its
// certificates into NSS, then its conns loaded into pluto (refresh.go),
// and the drop conns of ipsec_skb_mark kept in step.

package libreswan

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/creds"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// material is what a certificate-authenticated tunnel reads from disk.
type material struct {
	cert   *x509.Certificate // the local certificate (first of the file)
	key    crypto.Signer
	ca     *x509.Certificate // first certificate of ca_cert, if set
	remote *x509.Certificate // the pinned peer (self-signed mode)
}

// readMaterial reads t's files through the credentials store and checks
// that the key belongs to the certificate.
func readMaterial(t tunnel.Tunnel, src creds.Source) (material, error) {
	var m material
	if t.Auth != tunnel.AuthSelfSigned && t.Auth != tunnel.AuthCASigned {
		return m, nil
	}
	first := func(path, what string) (*x509.Certificate, error) {
		if path == "" {
			return nil, fmt.Errorf("no %s file configured", what)
		}
		cs, err := src.Certificates(path)
		if err != nil {
			return nil, err
		}
		if len(cs) == 0 {
			return nil, fmt.Errorf("%s %s holds no certificate", what, path)
		}
		return cs[0], nil
	}
	var err error
	if m.cert, err = first(t.Certificate, "certificate"); err != nil {
		return m, err
	}
	if t.PrivateKey == "" {
		return m, errors.New("no private key file configured")
	}
	if m.key, err = src.PrivateKey(t.PrivateKey); err != nil {
		return m, err
	}
	if err := creds.KeyMatches(m.cert, t.Certificate, m.key, t.PrivateKey); err != nil {
		return m, err
	}
	if t.CACert != "" {
		if m.ca, err = first(t.CACert, "CA certificate"); err != nil {
			return m, err
		}
	}
	if t.Auth == tunnel.AuthSelfSigned {
		if m.remote, err = first(t.RemoteCert, "peer certificate"); err != nil {
			return m, err
		}
	}
	return m, nil
}

// Ensure writes t's conns, imports its certificates and loads its conns
// at t.Version into pluto, deleting its other versions. Calling it again
// for a healthy tunnel changes nothing in pluto.
func (b *Backend) Ensure(ctx context.Context, t tunnel.Tunnel) error {
	if err := checkTunnel(t); err != nil {
		return err
	}
	_, refused := customOptions(t)
	mat, err := readMaterial(t, b.cfg.Creds)
	if err != nil {
		return fmt.Errorf("tunnel %s: %w", t.Name, err)
	}

	b.ops.Lock()
	defer b.ops.Unlock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errors.New("the libreswan backend is closed")
	}
	st := b.tunnels[t.Name]
	if st == nil || !st.t.SameConfig(t) {
		st = newTunnelState(t)
		b.tunnels[t.Name] = st
	}
	st.t, st.refused = t, refused
	b.mu.Unlock()

	mark, markErr := b.desiredMark()
	if markErr != nil {
		refused = append(refused, markErr.Error())
	}
	if err := b.writeFiles(b.tracked(), mark); err != nil {
		return err
	}
	if err := b.importCerts(ctx, t, mat); err != nil {
		return fmt.Errorf("tunnel %s: %w", t.Name, err)
	}
	if t.Auth == tunnel.AuthPSK {
		if err := b.reread(ctx); err != nil {
			return fmt.Errorf("tunnel %s: %w", t.Name, err)
		}
	}
	ps, err := b.status(ctx)
	if err != nil {
		return fmt.Errorf("tunnel %s: %w", t.Name, err)
	}
	err = b.refreshName(ctx, t.Name, ps)
	b.syncShunts(ctx, mark, ps)
	b.mu.Lock()
	st.lastErr = ""
	if err != nil {
		st.lastErr = err.Error()
	}
	b.mu.Unlock()
	if err != nil {
		return fmt.Errorf("tunnel %s: %w", t.Name, err)
	}
	if len(refused) > 0 {
		return &backend.UnsupportedOptionsError{Tunnel: t.Name, Backend: "libreswan", Options: refused}
	}
	return nil
}

// tracked returns the tunnels the backend holds.
func (b *Backend) tracked() []tunnel.Tunnel {
	b.mu.Lock()
	defer b.mu.Unlock()
	ts := make([]tunnel.Tunnel, 0, len(b.tunnels))
	for _, st := range b.tunnels {
		ts = append(ts, st.t)
	}
	return ts
}

// desiredMark is the ipsec_skb_mark of the tunnels held (the same global
// value on each), or "" with why it cannot be used.
func (b *Backend) desiredMark() (string, error) {
	mark := ""
	for _, t := range b.tracked() {
		if t.SKBMark != "" {
			mark = t.SKBMark
		}
	}
	if err := checkSKBMark(mark); err != nil {
		return "", err
	}
	return mark, nil
}

// importCerts puts the tunnel's certificates into NSS under upstream's
// nicknames; a changed local certificate CN removes the old entry first.
func (b *Backend) importCerts(ctx context.Context, t tunnel.Tunnel, m material) error {
	if m.cert == nil {
		return nil
	}
	if err := b.nss.ready(ctx); err != nil {
		return err
	}
	nick := certKeyPrefix + t.LocalName
	b.mu.Lock()
	old := b.local
	b.mu.Unlock()
	if old != "" && old != nick {
		if err := b.nss.removeAll(ctx, old); err != nil {
			return err
		}
	}
	if err := b.nss.importCertKey(ctx, nick, m.cert, m.key); err != nil {
		return err
	}
	b.mu.Lock()
	b.local = nick
	b.mu.Unlock()
	if m.ca != nil {
		if err := b.nss.importCert(ctx, caNickname, m.ca, trustCA); err != nil {
			return err
		}
		b.mu.Lock()
		b.caLoaded = true
		b.mu.Unlock()
	}
	if m.remote != nil {
		if err := b.nss.importCert(ctx, certPrefix+t.RemoteName, m.remote, trustPeer); err != nil {
			return err
		}
	}
	return nil
}

// syncShunts adds the drop conns of mark when pluto lacks them, and
// deletes them when mark is "" (ovs-monitor-ipsec adds them with --add).
func (b *Backend) syncShunts(ctx context.Context, mark string, ps plutoStatus) {
	b.mu.Lock()
	prev := b.mark
	b.mu.Unlock()
	var errs []error
	for _, s := range shuntConns {
		switch {
		case mark != "" && (!ps.Loaded[s.name] || prev != mark):
			argv := b.ipsecArgv("--add", "--asynchronous", s.name)
			r, err := b.cfg.Runner.Run(ctx, argv)
			if err != nil || r.Code != 0 {
				errs = append(errs, orCommandError(err, "add drop connection "+s.name, argv, r))
			}
		case mark == "" && prev != "":
			argv := b.ipsecArgv("--delete", "--asynchronous", s.name)
			_, _ = b.cfg.Runner.Run(ctx, argv)
		}
	}
	b.mu.Lock()
	b.mark, b.markErr = mark, ""
	if err := errors.Join(errs...); err != nil {
		b.markErr = err.Error()
	}
	b.mu.Unlock()
	if len(errs) > 0 {
		b.log.Warn("libreswan refused the drop connections of ipsec_skb_mark; unencrypted tunnel packets are not dropped by a kernel policy", "mark", mark, "err", errors.Join(errs...))
	}
}

// Remove deletes every conn of the tunnel name, whatever its version, and
// the pinned peer certificate it alone used.
func (b *Backend) Remove(ctx context.Context, name string) error {
	b.ops.Lock()
	defer b.ops.Unlock()
	return b.removeLocked(ctx, name)
}

// removeLocked is Remove with ops held.
func (b *Backend) removeLocked(ctx context.Context, name string) error {
	b.mu.Lock()
	st := b.tunnels[name]
	delete(b.tunnels, name)
	b.mu.Unlock()
	mark, _ := b.desiredMark()
	if err := b.writeFiles(b.tracked(), mark); err != nil {
		return err
	}
	ps, err := b.status(ctx)
	if err != nil {
		return fmt.Errorf("remove tunnel %s: %w", name, err)
	}
	var errs []error
	for _, c := range b.connsOf(name, ps) {
		if err := b.deleteConn(ctx, c, "is outdated"); err != nil {
			errs = append(errs, err)
		}
	}
	if st != nil && st.t.Auth == tunnel.AuthSelfSigned {
		nick := certPrefix + st.t.RemoteName
		used := false
		for _, o := range b.tracked() {
			used = used || (o.Auth == tunnel.AuthSelfSigned && o.RemoteName == st.t.RemoteName)
		}
		if !used {
			if err := b.nss.removeAll(ctx, nick); err != nil {
				errs = append(errs, err)
			}
		}
	}
	b.syncShunts(ctx, mark, ps)
	if st != nil && st.t.Auth == tunnel.AuthPSK {
		_ = b.reread(ctx)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove tunnel %s: %w", name, err)
	}
	return nil
}
