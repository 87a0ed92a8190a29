// Turning a chosen SA proposal (one transform per type) into Params.

package suite

import (
	"fmt"

	"github.com/ovnsec/ovnsec/internal/ike/message"
)

// Chosen is what a single-transform-per-type proposal selects, as found in
// an SA payload of a response or built from local configuration.
type Chosen struct {
	Params
	DH  message.DHGroup // DH_NONE if the proposal has no DH transform
	ESN bool
}

// FromProposal checks that p names exactly one transform of each type it
// uses and returns the selection. IKE proposals need ENCR, PRF and DH; ESP
// proposals need ENCR (ESN and DH optional). The encryption must be
// supported (see Params.EncrKeyLen) and, for IKE, the PRF as well.
func FromProposal(p *message.Proposal) (Chosen, error) {
	var c Chosen
	seen := map[message.TransformType]bool{}
	for _, t := range p.Transforms {
		if seen[t.Type] {
			return c, fmt.Errorf("ike suite: proposal %d offers more than one %s transform", p.Num, t.Type)
		}
		seen[t.Type] = true
		switch t.Type {
		case message.TransformENCR:
			c.Encr = message.EncrID(t.ID)
			c.KeyBits, _ = t.KeyLength()
		case message.TransformPRF:
			c.PRF = message.PRFID(t.ID)
		case message.TransformINTEG:
			c.Integ = message.IntegID(t.ID)
		case message.TransformDH:
			c.DH = message.DHGroup(t.ID)
		case message.TransformESN:
			switch message.ESN(t.ID) {
			case message.ESNOff:
			case message.ESNOn:
				c.ESN = true
			default:
				return c, fmt.Errorf("ike suite: proposal %d: unknown ESN value %d", p.Num, t.ID)
			}
		default:
			return c, fmt.Errorf("ike suite: proposal %d: unknown transform type %s", p.Num, t.Type)
		}
	}
	if !seen[message.TransformENCR] {
		return c, fmt.Errorf("ike suite: proposal %d has no encryption transform", p.Num)
	}
	if _, err := c.EncrKeyLen(); err != nil {
		return c, fmt.Errorf("ike suite: proposal %d: %w", p.Num, err)
	}
	switch p.Protocol {
	case message.ProtoIKE:
		if !seen[message.TransformPRF] || !seen[message.TransformDH] {
			return c, fmt.Errorf("ike suite: IKE proposal %d needs PRF and DH transforms", p.Num)
		}
		if _, err := NewPRF(c.PRF); err != nil {
			return c, err
		}
		if seen[message.TransformESN] {
			return c, fmt.Errorf("ike suite: IKE proposal %d has an ESN transform", p.Num)
		}
	case message.ProtoESP:
		if seen[message.TransformPRF] {
			return c, fmt.Errorf("ike suite: ESP proposal %d has a PRF transform", p.Num)
		}
	default:
		return c, fmt.Errorf("ike suite: proposal %d for protocol %s is not supported", p.Num, p.Protocol)
	}
	return c, nil
}
