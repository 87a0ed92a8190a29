// Lifetime options: checks the lifetimes and rekey margin parsed by
// internal/tunnel against the engine's defaults and sets them on the IKE
// peer. Pure.

package native

import (
	"fmt"
	"time"

	"github.com/ovnsec/ovnsec/internal/ike"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// applyLifetimes checks the lifetime options against each other and the
// engine's defaults and writes them to peer. Unset values keep the
// engine's defaults (ike.DefaultIKELifetime, DefaultChildLifetime, a margin
// of a tenth of the lifetime).
func applyLifetimes(peer *ike.Peer, o tunnel.Options) error {
	if o.RekeyMargin != 0 {
		// The engine uses one margin for both SAs; it must leave time
		// before either expires, or nothing would ever be used before
		// its rekey starts.
		for _, v := range []struct {
			what string
			d    time.Duration
		}{{"ikelifetime", effective(o.IKELifetime, ike.DefaultIKELifetime)}, {"salifetime", effective(o.ChildLifetime, ike.DefaultChildLifetime)}} {
			if o.RekeyMargin >= v.d {
				return fmt.Errorf("option %s=%v: not shorter than %s %v; lower the margin or raise the lifetime", o.Spelling(tunnel.OptRekeyMargin), o.RekeyMargin, v.what, v.d)
			}
		}
	}
	peer.IKELifetime, peer.ChildLifetime, peer.RekeyMargin = o.IKELifetime, o.ChildLifetime, o.RekeyMargin
	if o.Has(tunnel.OptRekeyFuzz) {
		margin := o.RekeyMargin
		if margin == 0 {
			// the engine's default margin for the shorter lifetime
			margin = min(effective(o.IKELifetime, ike.DefaultIKELifetime), effective(o.ChildLifetime, ike.DefaultChildLifetime)) / 10
		}
		peer.RekeyJitter = margin * time.Duration(o.RekeyFuzz) / 100
		if peer.RekeyJitter == 0 {
			peer.RekeyJitter = time.Nanosecond // 0% fuzz: the engine treats 0 as "default"
		}
	}
	return nil
}

func effective(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
