// Proposals: strongSwan-style proposal strings, the SA payloads we offer,
// and choosing one of the peer's proposals (RFC 7296 §3.3).

package ike

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ovnsec/ovnsec/internal/ike/message"
	"github.com/ovnsec/ovnsec/internal/ike/suite"
)

type encrAlg struct {
	id   message.EncrID
	bits int
}

// proposal is one configured proposal: every combination of its
// transforms is acceptable.
type proposal struct {
	proto message.ProtocolID
	encr  []encrAlg
	prf   []message.PRFID
	dh    []message.DHGroup // ESP: PFS groups (empty: no PFS)
	esn   []bool
}

func parseProposal(s string, proto message.ProtocolID) (proposal, error) {
	p := proposal{proto: proto}
	for _, tok := range strings.Split(strings.ToLower(strings.TrimSpace(s)), "-") {
		switch tok {
		case "aes128gcm16", "aes128gcm128":
			p.encr = append(p.encr, encrAlg{message.ENCR_AES_GCM_16, 128})
		case "aes256gcm16", "aes256gcm128", "aes256gcm":
			p.encr = append(p.encr, encrAlg{message.ENCR_AES_GCM_16, 256})
		case "prfsha256", "sha256":
			if proto == message.ProtoIKE {
				p.prf = append(p.prf, message.PRF_HMAC_SHA2_256)
			}
		case "prfsha384", "sha384":
			if proto == message.ProtoIKE {
				p.prf = append(p.prf, message.PRF_HMAC_SHA2_384)
			}
		case "prfsha512", "sha512":
			if proto == message.ProtoIKE {
				p.prf = append(p.prf, message.PRF_HMAC_SHA2_512)
			}
		case "modp2048":
			p.dh = append(p.dh, message.MODP_2048)
		case "ecp256":
			p.dh = append(p.dh, message.ECP_256)
		case "x25519", "curve25519":
			p.dh = append(p.dh, message.CURVE_25519)
		case "esn":
			p.esn = append(p.esn, true)
		case "noesn":
			p.esn = append(p.esn, false)
		default:
			return p, fmt.Errorf("proposal %q: unsupported algorithm %q (supported: aes128gcm16 aes256gcm16 prfsha256 prfsha384 prfsha512 modp2048 ecp256 x25519 esn noesn)", s, tok)
		}
	}
	if len(p.encr) == 0 {
		return p, fmt.Errorf("proposal %q: no encryption algorithm", s)
	}
	if proto == message.ProtoIKE {
		if len(p.prf) == 0 {
			p.prf = []message.PRFID{message.PRF_HMAC_SHA2_256}
		}
		if len(p.dh) == 0 {
			return p, fmt.Errorf("proposal %q: an IKE proposal needs a DH group", s)
		}
	} else if len(p.esn) == 0 {
		p.esn = []bool{false}
	}
	return p, nil
}

// toWire builds the proposal substructure (number num, SPI spi). The DH
// group dhFirst, if set, is put first (the group of our KE payload).
func (p proposal) toWire(num uint8, spi []byte, dhFirst message.DHGroup, withDH bool) message.Proposal {
	w := message.Proposal{Num: num, Protocol: p.proto, SPI: spi}
	for _, e := range p.encr {
		w.Transforms = append(w.Transforms, message.Transform{Type: message.TransformENCR, ID: uint16(e.id), Attributes: message.KeyLengthAttr(uint16(e.bits))})
	}
	for _, f := range p.prf {
		w.Transforms = append(w.Transforms, message.Transform{Type: message.TransformPRF, ID: uint16(f)})
	}
	if withDH {
		dh := p.dh
		if len(dh) == 0 {
			// PFS we do not insist on (the peer wants it): offer every
			// group we implement, the one of our KE payload first.
			dh = supportedDH
		}
		if dhFirst != 0 && slices.Contains(dh, dhFirst) {
			dh = append([]message.DHGroup{dhFirst}, slices.DeleteFunc(slices.Clone(dh), func(g message.DHGroup) bool { return g == dhFirst })...)
		}
		for _, g := range dh {
			w.Transforms = append(w.Transforms, message.Transform{Type: message.TransformDH, ID: uint16(g)})
		}
	}
	for _, e := range p.esn {
		id := message.ESNOff
		if e {
			id = message.ESNOn
		}
		w.Transforms = append(w.Transforms, message.Transform{Type: message.TransformESN, ID: uint16(id)})
	}
	return w
}

// offer builds our SA payload.
func offer(ps []proposal, spi []byte, dhFirst message.DHGroup, withDH bool) *message.SA {
	sa := &message.SA{}
	for i, p := range ps {
		sa.Proposals = append(sa.Proposals, p.toWire(uint8(i+1), spi, dhFirst, withDH))
	}
	return sa
}

// choose picks the first of our proposals (in our order) that one of the
// peer's proposals satisfies. For each transform type it takes our most
// preferred transform the peer offers, except that a DH group equal to
// keGroup (the peer's KE payload) wins when acceptable, which avoids an
// INVALID_KE_PAYLOAD round trip. It returns the selected single-transform
// proposal as it goes back on the wire (with the peer's number and SPI).
func choose(ours []proposal, theirs []message.Proposal, keGroup message.DHGroup, wantDH bool) (message.Proposal, suite.Chosen, bool) {
	for _, o := range ours {
		for _, t := range theirs {
			if t.Protocol != o.proto {
				continue
			}
			sel, ok := match(o, t, keGroup, wantDH)
			if !ok {
				continue
			}
			c, err := suite.FromProposal(&sel)
			if err != nil {
				continue
			}
			return sel, c, true
		}
	}
	return message.Proposal{}, suite.Chosen{}, false
}

// ofType returns the transforms of type typ in ts. It allocates only when
// they are not adjacent (peers list them grouped by type).
func ofType(ts []message.Transform, typ message.TransformType) []message.Transform {
	start, end := -1, -1
	for i, tr := range ts {
		if tr.Type != typ {
			continue
		}
		if start < 0 {
			start = i
		} else if end != i {
			// A gap: collect them one by one.
			var out []message.Transform
			for _, x := range ts {
				if x.Type == typ {
					out = append(out, x)
				}
			}
			return out
		}
		end = i + 1
	}
	if start < 0 {
		return nil
	}
	return ts[start:end:end]
}

func match(o proposal, t message.Proposal, keGroup message.DHGroup, wantDH bool) (message.Proposal, bool) {
	if integ := ofType(t.Transforms, message.TransformINTEG); len(integ) > 0 {
		ok := false
		for _, tr := range integ {
			if message.IntegID(tr.ID) == message.AUTH_NONE {
				ok = true
			}
		}
		if !ok {
			return message.Proposal{}, false
		}
	}
	// At most one transform of each of the four types.
	sel := message.Proposal{Num: t.Num, Protocol: t.Protocol, SPI: t.SPI, Transforms: make([]message.Transform, 0, 4)}
	found := false
	theirEncr := ofType(t.Transforms, message.TransformENCR)
	for _, e := range o.encr {
		for _, tr := range theirEncr {
			kl, _ := tr.KeyLength()
			if message.EncrID(tr.ID) == e.id && kl == e.bits {
				sel.Transforms = append(sel.Transforms, tr)
				found = true
				break
			}
		}
		if found {
			break
		}
	}
	if !found {
		return sel, false
	}
	if o.proto == message.ProtoIKE {
		found = false
		theirPRF := ofType(t.Transforms, message.TransformPRF)
		for _, f := range o.prf {
			for _, tr := range theirPRF {
				if message.PRFID(tr.ID) == f {
					sel.Transforms = append(sel.Transforms, tr)
					found = true
					break
				}
			}
			if found {
				break
			}
		}
		if !found {
			return sel, false
		}
	}
	// DH: IKE always; ESP only when we want PFS, or when the peer offers
	// it and we accept it.
	theirDH := ofType(t.Transforms, message.TransformDH)
	peerNoDH := len(theirDH) == 0 || (len(theirDH) == 1 && message.DHGroup(theirDH[0].ID) == message.DH_NONE)
	switch {
	case o.proto == message.ProtoIKE || (wantDH && len(o.dh) > 0):
		g, ok := pickDH(o.dh, theirDH, keGroup)
		if !ok {
			return sel, false
		}
		sel.Transforms = append(sel.Transforms, message.Transform{Type: message.TransformDH, ID: uint16(g)})
	case len(o.dh) == 0 && !peerNoDH:
		// The peer asks for PFS we do not configure: without its KE (no
		// CREATE_CHILD_SA) only DH_NONE will do; with it, accept any group
		// we implement (OVS configures strongSwan with
		// esp=aes256gcm16-modp2048, Libreswan with pfs=yes).
		okNone := false
		for _, tr := range theirDH {
			if message.DHGroup(tr.ID) == message.DH_NONE {
				okNone = true
			}
		}
		if okNone && !wantDH {
			break
		}
		if !wantDH {
			return sel, false
		}
		g, ok := pickDH(supportedDH, theirDH, keGroup)
		if !ok {
			return sel, false
		}
		sel.Transforms = append(sel.Transforms, message.Transform{Type: message.TransformDH, ID: uint16(g)})
	case len(o.dh) > 0 && peerNoDH:
		return sel, false // we require PFS
	case len(o.dh) > 0:
		g, ok := pickDH(o.dh, theirDH, keGroup)
		if !ok {
			return sel, false
		}
		sel.Transforms = append(sel.Transforms, message.Transform{Type: message.TransformDH, ID: uint16(g)})
	}
	if o.proto == message.ProtoESP {
		theirESN := ofType(t.Transforms, message.TransformESN)
		found = false
		for _, e := range o.esn {
			want := message.ESNOff
			if e {
				want = message.ESNOn
			}
			if len(theirESN) == 0 && !e {
				found = true
				break
			}
			for _, tr := range theirESN {
				if message.ESN(tr.ID) == want {
					sel.Transforms = append(sel.Transforms, tr)
					found = true
					break
				}
			}
			if found {
				break
			}
		}
		if !found {
			return sel, false
		}
	}
	return sel, true
}

// supportedDH are the groups suite implements, in our order of preference.
var supportedDH = []message.DHGroup{message.CURVE_25519, message.ECP_256, message.MODP_2048}

func pickDH(ours []message.DHGroup, theirs []message.Transform, keGroup message.DHGroup) (message.DHGroup, bool) {
	offered := func(g message.DHGroup) bool {
		for _, tr := range theirs {
			if message.DHGroup(tr.ID) == g {
				return true
			}
		}
		return false
	}
	if keGroup != 0 && slices.Contains(ours, keGroup) && offered(keGroup) {
		return keGroup, true
	}
	for _, g := range ours {
		if offered(g) {
			return g, true
		}
	}
	return 0, false
}

// acceptsChosen checks that a proposal the responder returned is one
// transform per type and matches what we offered.
func acceptsChosen(ours []proposal, got message.Proposal, proto message.ProtocolID, wantDH bool) (suite.Chosen, error) {
	if got.Protocol != proto {
		return suite.Chosen{}, fmt.Errorf("responder chose a %s proposal, we offered %s", got.Protocol, proto)
	}
	c, err := suite.FromProposal(&got)
	if err != nil {
		return c, err
	}
	for _, o := range ours {
		if sel, ok := match(o, got, c.DH, wantDH); ok && len(sel.Transforms) == len(got.Transforms) {
			return c, nil
		}
	}
	return c, fmt.Errorf("responder chose proposal %v which we did not offer", got.Transforms)
}

// withoutDH returns ps without DH groups: Child SAs created in IKE_AUTH
// never use PFS (RFC 7296 §1.2), so ESP proposals are matched without it.
func withoutDH(ps []proposal) []proposal {
	out := make([]proposal, len(ps))
	for i, p := range ps {
		p.dh = nil
		out[i] = p
	}
	return out
}

// algString names a chosen suite for Status.
func algString(c suite.Chosen, proto message.ProtocolID) string {
	s := "AES_GCM_16_" + strconv.Itoa(c.KeyBits)
	if proto == message.ProtoIKE {
		s += "/" + c.PRF.String()
	}
	if c.DH != 0 {
		s += "/" + c.DH.String()
	}
	if proto == message.ProtoESP && c.ESN {
		s += "/ESN"
	}
	return s
}
