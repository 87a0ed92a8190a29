// Initiate stage: start the CHILD_SAs that are neither up nor being
// negotiated, the "-in-" ones only after the peer's grace period.

package strongswan

import (
	"context"
	"fmt"

	"github.com/strongswan/govici/vici"
)

// initiate starts the children that are neither up nor being negotiated.
// b.mu held.
func (b *Backend) initiate(ctx context.Context, st *tunnelState) error {
	sas, err := b.listSAs(ctx, st.ike)
	if err != nil {
		return err
	}
	now := b.cfg.Clock.Now()
	for _, ch := range st.children {
		if childUpOrBusy(sas, st.ike, ch.Name) {
			continue
		}
		if ch.Dir == DirIn && now.Sub(st.loadedAt) < b.cfg.PeerGrace {
			continue // let the peer's "-out-" initiate it
		}
		if last, ok := st.initiated[ch.Name]; ok && now.Sub(last) < b.cfg.RetryInterval {
			continue
		}
		in := vici.NewMessage()
		for _, kv := range [][2]string{{"child", string(ch.Name)}, {"ike", string(st.ike)}, {"timeout", "-1"}, {"init-limits", "no"}} {
			if err := in.Set(kv[0], kv[1]); err != nil {
				return err
			}
		}
		if _, err := b.stream(ctx, "initiate", "control-log", in); err != nil {
			return fmt.Errorf("initiate %s: %w", ch.Name, err)
		}
		st.initiated[ch.Name] = now
		b.log.Info("initiating", "tunnel", st.t.Name, "child", ch.Name)
	}
	return nil
}

// childUpOrBusy reports whether a child is installed, or charon is still
// negotiating it or the IKE_SA that would carry it.
func childUpOrBusy(sas []ikeSA, ike, child ConnName) bool {
	for _, sa := range sas {
		if sa.Conn != ike {
			continue
		}
		for _, c := range sa.Children {
			if c.Name == child && (c.installed() || c.inProgress()) {
				return true
			}
		}
		if sa.State == "CONNECTING" || sa.State == "CREATED" {
			return true
		}
	}
	return false
}
