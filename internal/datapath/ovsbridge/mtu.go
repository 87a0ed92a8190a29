// MTU stage: how large an overlay IP packet may be so that, once OVS has
// encapsulated it and the engine has wrapped it in ESP, it still fits the
// underlay MTU. OVS drops oversized tunnel frames silently (no ICMP), so the
// overlay MTU must be computed and reported, not discovered.

package ovsbridge

import (
	"fmt"
)

// Header sizes in bytes.
const (
	ipv4Header     = 20
	ipv6Header     = 40
	udpHeader      = 8
	geneveHeader   = 8  // without options
	vxlanHeader    = 8  //
	greMaxHeader   = 16 // 4 base + 4 checksum + 4 key + 4 sequence (OVS options csum, key, seq)
	innerEthernet  = 14 // OVS tunnels carry Ethernet frames; the overlay MTU excludes it
	espSPISeq      = 8  // SPI + sequence number
	espIVGCM       = 8  // AES-GCM explicit IV
	espMaxPad      = 3  // payload padded to a multiple of 4
	espTrailer     = 2  // pad length + next header
	espICVGCM16    = 16 // AES-GCM-16 integrity check value
	minOverlayMTU  = 576
	OVNGeneveOpt   = 8 // OVN's one Geneve option (class 0x0102 type 0x80, 4 bytes of data)
	ESPOverheadGCM = espSPISeq + espIVGCM + espMaxPad + espTrailer + espICVGCM16
)

// ESPOverhead is the worst-case number of bytes ESP in transport mode with
// AES-GCM-16 adds to an IP packet: 8 (SPI, sequence) + 8 (IV) + up to 3
// (padding) + 2 (pad length, next header) + 16 (ICV) = 37, plus 8 for the
// UDP header with ESP-in-UDP = 45.
func ESPOverhead(e Encap) int {
	if e == EncapUDP4500 {
		return ESPOverheadGCM + udpHeader
	}
	return ESPOverheadGCM
}

// TunnelOverhead is the number of bytes OVS's tunnel encapsulation adds to
// an overlay IP packet: outer IP (20 for IPv4, 40 for IPv6) + tunnel header
// (Geneve: UDP 8 + 8 + options; VXLAN: UDP 8 + 8; GRE: up to 16) + the inner
// Ethernet header (14).
func TunnelOverhead(p Policy, geneveOptions int) int {
	n := ipv4Header
	if !p.PeerIP.Unmap().Is4() {
		n = ipv6Header
	}
	switch p.Proto {
	case ProtoGeneve:
		n += udpHeader + geneveHeader + geneveOptions
	case ProtoVXLAN:
		n += udpHeader + vxlanHeader
	default: // GRE, and the worst case for anything else
		n += greMaxHeader
	}
	return n + innerEthernet
}

// OverlayMTU returns the largest overlay IP packet that still fits the
// underlay once tunnelled and ESP-protected:
//
//	overlay = underlay − TunnelOverhead(p, geneveOptions) − ESPOverhead(p.Encap)
//
// For an IPv4 Geneve tunnel without options on a 1500-byte underlay:
// 1500 − (20+8+8+14) − 37 = 1413; with OVN's 8-byte option 1405; with
// ESP-in-UDP 1397. The ESP overhead is counted in every mode (also bench
// passthrough) so that bench runs compare like with like.
// geneveOptions is the total Geneve option length (OVNGeneveOpt with OVN).
func OverlayMTU(underlay int, p Policy, geneveOptions int) (int, error) {
	if geneveOptions < 0 || geneveOptions > 252 || geneveOptions%4 != 0 {
		return 0, fmt.Errorf("geneve option length %d: must be a multiple of 4 in 0..252", geneveOptions)
	}
	mtu := underlay - TunnelOverhead(p, geneveOptions) - ESPOverhead(p.Encap)
	if mtu < minOverlayMTU {
		return 0, fmt.Errorf("underlay MTU %d leaves an overlay MTU of %d for %s to %s, below %d: raise the underlay (NIC) MTU",
			underlay, mtu, p.Proto, p.PeerIP, minOverlayMTU)
	}
	return mtu, nil
}
