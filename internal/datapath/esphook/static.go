// Static keys stage: installing an SA pair from fixed keys, for tests and
// the bench only. Nothing maps OVSDB configuration to this; production SAs
// come from the IKE engine.

package esphook

import (
	"fmt"
	"net/netip"

	"github.com/ovnsec/ovnsec/internal/esp"
)

// StaticSA describes one SA pair with fixed keys: FOR TESTS AND BENCHMARKS
// ONLY. Keys are AES-GCM key plus 4-byte salt (20 or 36 bytes); InKey must
// equal the peer's OutKey and InSPI the peer's OutSPI.
type StaticSA struct {
	InSPI, OutSPI esp.SPI
	InKey, OutKey []byte
	// Encap is the outbound encapsulation; for ESP-in-UDP both ports are
	// normally esp.NATTPort. Inbound accepts the same type.
	Encap esp.Encap
}

// InstallStatic installs a transport-mode SA pair with peer from fixed
// keys. It exists FOR TESTS AND THE BENCH ONLY and must never be reachable
// from OVSDB configuration.
func (h *Hook) InstallStatic(peer netip.Addr, s StaticSA) error {
	inKey, err := esp.NewKey(s.InKey)
	if err != nil {
		return fmt.Errorf("static SA for %v: inbound: %w", peer, err)
	}
	defer inKey.Zero()
	outKey, err := esp.NewKey(s.OutKey)
	if err != nil {
		return fmt.Errorf("static SA for %v: outbound: %w", peer, err)
	}
	defer outKey.Zero()
	in, err := esp.NewSA(esp.Config{SPI: s.InSPI, Dir: esp.Inbound, Mode: esp.Transport, Encap: s.Encap, Key: inKey})
	if err != nil {
		return fmt.Errorf("static SA for %v: %w", peer, err)
	}
	out, err := esp.NewSA(esp.Config{SPI: s.OutSPI, Dir: esp.Outbound, Mode: esp.Transport, Encap: s.Encap, Key: outKey})
	if err != nil {
		return fmt.Errorf("static SA for %v: %w", peer, err)
	}
	if err := h.AddInbound(peer, in); err != nil {
		return err
	}
	return h.SetOutbound(peer, out)
}
