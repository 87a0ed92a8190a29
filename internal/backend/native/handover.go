// Handover stage: a stopping ovnsecd saves its established SAs (the IKE SA
// with its keys and message IDs, and where each ESP SA's sequence numbers
// and replay window stand) so that the next ovnsecd takes them up instead
// of negotiating: the peers see no new IKE SA and traffic does not wait
// for a handshake. br-phy's rules stay in place between the two, so
// nothing crosses in clear meanwhile.

package native

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// handoverVersion is the layout of the handover file.
const handoverVersion = 1

// Handover is what one process hands to the next: every tunnel whose SAs
// could be saved. It holds keys; the file is 0600 and removed once read.
type Handover struct {
	Version int
	Local   string // the underlay address the engine served
	Tunnels []SavedTunnel
}

// SavedTunnel is one tunnel's SAs.
type SavedTunnel struct {
	Name string
	// Config identifies the tunnel's configuration (configID): the SAs are
	// restored only for a tunnel configured exactly the same way.
	Config string
	SA     ike.SavedSA
	// ESP is where each Child SA's ESP SAs stand, by inbound SPI.
	ESP map[esp.SPI]ESPResume
}

// ESPResume is where one Child SA's pair of ESP SAs stands.
type ESPResume struct {
	In, Out esp.Resume
}

// zero erases the key material of h.
func (h *Handover) zero() {
	for i := range h.Tunnels {
		h.Tunnels[i].SA.Zero()
	}
}

// configID fingerprints everything of t that the SAs depend on: addresses,
// protocol and port, authentication (the PSK and the credential files as
// configured) and the ipsec_* options; not the version, which restarts at
// 1 in a new process, nor status-only fields.
func configID(t tunnel.Tunnel) string {
	type id struct {
		Type                              tunnel.Type
		Local, Remote                     string
		DstPort                           uint16
		Auth                              tunnel.AuthMethod
		PSK                               string
		Certificate, PrivateKey, CACert   string
		LocalName, RemoteCert, RemoteName string
		Options                           []tunnel.Option
	}
	b, _ := json.Marshal(id{t.Type, t.Local.String(), t.Remote.String(), t.DstPort, t.Auth, t.PSK.Reveal(),
		t.Certificate, t.PrivateKey, t.CACert, t.LocalName, t.RemoteCert, t.RemoteName, t.CustomOptions})
	sum := sha256.Sum256(b)
	clear(b)
	return hex.EncodeToString(sum[:])
}

// Suspend stops the backend for a restart or an upgrade and writes the
// handover to path: the IKE engine stops without deleting anything, the
// packet loop and the other parts stop, and each established SA is saved
// with its ESP state. br-phy keeps its rules (protected traffic is dropped,
// never sent in clear, until the next process takes over). It reports how
// many tunnels were saved. After Suspend the backend is closed.
func (b *Backend) Suspend(ctx context.Context, path string) (int, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return 0, errClosed
	}
	b.closed = true
	saved := b.eng.Suspend()
	b.mu.Unlock()

	// Stop the packet loop (and everything else) first: the ESP sequence
	// numbers are final only once nothing seals any more.
	b.stop()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for i := range saved {
			saved[i].Zero()
		}
		return 0, fmt.Errorf("native backend: suspend: %w", ctx.Err())
	}
	for _, c := range b.closers {
		_ = c.Close()
	}

	h := Handover{Version: handoverVersion, Local: b.cfg.Local.String()}
	b.mu.Lock()
	for _, s := range saved {
		st := b.byPeer[s.Peer]
		if st == nil {
			s.Zero()
			continue
		}
		rec := SavedTunnel{Name: st.t.Name, Config: configID(st.t), SA: s, ESP: map[esp.SPI]ESPResume{}}
		for _, c := range s.Children {
			if cs := st.children[c.Info.InSPI]; cs != nil {
				rec.ESP[c.Info.InSPI] = ESPResume{In: cs.in.Saved(), Out: cs.out.Saved()}
			}
		}
		h.Tunnels = append(h.Tunnels, rec)
	}
	b.mu.Unlock()
	defer h.zero()
	if err := writeHandover(path, &h); err != nil {
		return 0, err
	}
	b.log.Info("SAs saved for the next ovnsecd; br-phy keeps dropping protected traffic until it takes over", "tunnels", len(h.Tunnels), "file", path)
	return len(h.Tunnels), nil
}

// writeHandover writes h to path atomically, readable by root only.
func writeHandover(path string, h *Handover) error {
	b, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("native backend: encode the handover: %w", err)
	}
	defer clear(b)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".handover-*")
	if err != nil {
		return fmt.Errorf("native backend: write the handover in %s: %w", filepath.Dir(path), err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("native backend: write the handover: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("native backend: write the handover %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("native backend: write the handover %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("native backend: write the handover %s: %w", path, err)
	}
	return nil
}

// ReadHandover reads and removes the handover at path (so that keys do not
// outlive their use and a later start does not take up stale SAs). A
// missing file is no handover (nil, nil).
func ReadHandover(path string) (*Handover, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the handover %s: %w", path, err)
	}
	defer clear(b)
	if rerr := os.Remove(path); rerr != nil {
		return nil, fmt.Errorf("remove the handover %s after reading it: %w", path, rerr)
	}
	var h Handover
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("handover %s: %w; the SAs are negotiated again", path, err)
	}
	if h.Version != handoverVersion {
		h.zero()
		return nil, fmt.Errorf("handover %s: layout version %d, want %d; the SAs are negotiated again", path, h.Version, handoverVersion)
	}
	return &h, nil
}

// takeSavedLocked forgets the saved SAs of the tunnel named t.Name and
// returns them if they were saved for exactly t's configuration.
func (b *Backend) takeSavedLocked(t tunnel.Tunnel) (SavedTunnel, bool) {
	id := configID(t)
	i := slices.IndexFunc(b.handover, func(s SavedTunnel) bool { return s.Name == t.Name })
	if i < 0 {
		return SavedTunnel{}, false
	}
	s := b.handover[i]
	b.handover = slices.Delete(b.handover, i, i+1)
	if s.Config != id {
		// Configured otherwise since it was saved: negotiated anew.
		s.SA.Zero()
		b.log.Info("the previous ovnsecd's SA was for another configuration of the tunnel; negotiating", "tunnel", t.Name)
		return SavedTunnel{}, false
	}
	return s, true
}

// restoreLocked takes up saved SAs for st's freshly added IKE peer (added
// without initiating). On failure the caller initiates as usual.
func (b *Backend) restoreLocked(st *tunnelState, s SavedTunnel) error {
	for spi, r := range s.ESP {
		b.resumes[spi] = r
	}
	err := b.eng.Restore(st.plan.peer.Name, s.SA)
	s.SA.Zero()
	if err != nil {
		for spi := range s.ESP {
			delete(b.resumes, spi)
		}
		return err
	}
	st.lastEvent = "restored from the previous ovnsecd"
	b.log.Info("IKE SA taken up from the previous ovnsecd: no new negotiation", "tunnel", st.t.Name, "children", len(s.SA.Children))
	return nil
}
