// Rules stage: turns the bridge configuration and the set of peer policies
// into the complete OpenFlow table of br-phy. Pure: no I/O.

package ovsbridge

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Proto is the tunnel protocol; its values equal tunnel.Type's, so
// Proto(t.Type) converts.
type Proto string

const (
	ProtoGeneve Proto = "geneve"
	ProtoVXLAN  Proto = "vxlan"
	ProtoGRE    Proto = "gre"
)

// Encap is how ESP travels between the two underlay addresses.
type Encap uint8

const (
	EncapNone Encap = iota // ESP as IP protocol 50
	// EncapUDP4500 is ESP-in-UDP (RFC 3948), NAT or forced: from our port
	// 4500 to the peer's NAT-T port (Policy.NATTPort: 4500, or the port a
	// NAT in front of the peer mapped its 4500 to), and to our 4500 from
	// the peer, whatever its source port.
	EncapUDP4500
)

func (e Encap) String() string {
	switch e {
	case EncapNone:
		return "none"
	case EncapUDP4500:
		return "udp4500"
	}
	return "Encap(" + strconv.Itoa(int(e)) + ")"
}

// Mode says how a peer's traffic is treated.
type Mode uint8

const (
	// ModeProtected is the only production mode: tunnel packets to the peer
	// go through the engine, ESP (and UDP to our 4500 with EncapUDP4500)
	// from the peer goes through the engine, plaintext tunnel packets from
	// the peer are dropped by OVS and counted, and the engine may only send
	// ESP to the peer (with EncapUDP4500 also UDP from our 4500 to the
	// peer's NAT-T port).
	ModeProtected Mode = iota
	// ModeBenchPassthrough steers plaintext tunnel packets through the
	// engine in both directions and lets the engine send anything to the
	// peer. It exists for tests and the bench ("steering without
	// encrypting") only. Code that maps OVSDB configuration to policies must
	// never produce it.
	ModeBenchPassthrough
)

func (m Mode) String() string {
	switch m {
	case ModeProtected:
		return "protected"
	case ModeBenchPassthrough:
		return "bench-passthrough"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// Policy is one protected tunnel: the peer's underlay address, the tunnel
// protocol and its UDP destination port (0 means the IANA port; ignored for
// GRE), how ESP is carried, and the mode.
//
// EncapPort is the peer's NAT-T port with EncapUDP4500: the UDP port our
// ESP-in-UDP goes to, as IKE learned it (a NAT in front of the peer may
// have mapped the peer's 4500 to another port). 0 means 4500; it must be 0
// without EncapUDP4500. All policies of one peer must agree on it.
//
// ExactPort makes DstPort the port even when it is 0: ovs-vswitchd sends a
// UDP tunnel whose options:dst_port reads as 0 to UDP port 0, and such a
// tunnel's packets must still be blocked on that port.
type Policy struct {
	PeerIP    netip.Addr
	Proto     Proto
	DstPort   uint16
	ExactPort bool
	Encap     Encap
	EncapPort uint16
	Mode      Mode
}

// Cookie tags every flow ovnsec installs. The low byte must be zero: it
// carries the Kind of each flow, so that counters of one kind (for example
// the plaintext drops) can be read by cookie mask.
type Cookie uint64

// DefaultCookie is "ovnsec" folded into the high bytes.
const DefaultCookie Cookie = 0x6f766e7365630000

// kindMask selects the Kind byte of a cookie.
const kindMask = 0xff

// Kind is the job of one flow; it is the low byte of the flow's cookie.
type Kind uint8

const (
	KindSteerOut       Kind = 1 // LOCAL -> engine: tunnel packet to a peer
	KindSteerIn        Kind = 2 // NIC -> engine: ESP/4500 (or bench plaintext) from a peer
	KindToNIC          Kind = 3 // engine -> NIC: packet to a peer
	KindToLocal        Kind = 4 // engine -> LOCAL: packet from a peer (decrypted)
	KindDropPlaintext  Kind = 5 // NIC -> drop: plaintext tunnel packet from a protected peer
	KindDropEngineLeak Kind = 6 // engine -> drop: non-ESP packet to a protected peer
	KindDropEngine     Kind = 7 // engine -> drop: anything else from the engine port
	KindNormal         Kind = 8 // everything else: NORMAL
)

var kindNames = [...]string{
	KindSteerOut:       "steer-out",
	KindSteerIn:        "steer-in",
	KindToNIC:          "to-nic",
	KindToLocal:        "to-local",
	KindDropPlaintext:  "drop-plaintext",
	KindDropEngineLeak: "drop-engine-leak",
	KindDropEngine:     "drop-engine",
	KindNormal:         "normal",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Flow priorities. Steering beats the drops; NORMAL is the catch-all.
const (
	prioSteer       = 200
	prioEngineLeak  = 150
	prioDropPlain   = 100
	prioEngineDrop  = 50
	prioNormal      = 0
	ianaGenevePort  = 6081
	ianaVXLANPort   = 4789
	natTraversalUDP = 4500
	protoESP        = 50
	protoGRE        = 47
)

// BridgeConfig names br-phy's ports: the NIC (underlay) port, the engine's
// TAP port, and the cookie that tags every flow.
type BridgeConfig struct {
	NIC    string
	Engine string
	Cookie Cookie
}

// Flow is one OpenFlow rule in table 0 of br-phy.
type Flow struct {
	Kind     Kind
	Priority int
	Match    string // ovs-ofctl match fields, comma separated; empty matches all
	Actions  string
	cookie   Cookie
}

// Cookie returns the full cookie of the flow (bridge cookie | kind).
func (f Flow) Cookie() uint64 { return uint64(f.cookie) | uint64(f.Kind) }

// String renders f in ovs-ofctl add-flow/replace-flows syntax.
func (f Flow) String() string {
	var b strings.Builder
	b.WriteString("cookie=0x")
	b.WriteString(strconv.FormatUint(f.Cookie(), 16))
	b.WriteString(",table=0,priority=")
	b.WriteString(strconv.Itoa(f.Priority))
	if f.Match != "" {
		b.WriteByte(',')
		b.WriteString(f.Match)
	}
	b.WriteString(",actions=")
	b.WriteString(f.Actions)
	return b.String()
}

// Text renders flows one per line, as `ovs-ofctl replace-flows <br> -` reads them.
func Text(flows []Flow) string {
	var b strings.Builder
	for _, f := range flows {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// validPortName accepts Linux interface names (OVS port names here are
// kernel interface names) and refuses anything that could change the
// meaning of a flow line.
func validPortName(s string) bool {
	if s == "" || len(s) > 15 || s == "LOCAL" || s == "." || s == ".." {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// Validate checks the bridge configuration.
func (c BridgeConfig) Validate() error {
	if !validPortName(c.NIC) {
		return fmt.Errorf("bridge NIC port %q: not a valid interface name (1-15 of [A-Za-z0-9._-])", c.NIC)
	}
	if !validPortName(c.Engine) {
		return fmt.Errorf("bridge engine port %q: not a valid interface name (1-15 of [A-Za-z0-9._-])", c.Engine)
	}
	if c.NIC == c.Engine {
		return fmt.Errorf("bridge NIC and engine port are both %q: they must differ", c.NIC)
	}
	if c.Cookie&kindMask != 0 {
		return fmt.Errorf("bridge cookie %#x: the low byte must be zero (it carries the flow kind)", uint64(c.Cookie))
	}
	if c.Cookie == 0 {
		return fmt.Errorf("bridge cookie is zero: set a non-zero cookie (e.g. DefaultCookie) so ovnsec's flows can be recognised")
	}
	return nil
}

// Port returns the tunnel's UDP destination port (IANA default when
// DstPort is 0 and not ExactPort) or 0 for GRE.
func (p Policy) Port() uint16 {
	if p.ExactPort && p.Proto != ProtoGRE {
		return p.DstPort
	}
	switch p.Proto {
	case ProtoGeneve:
		if p.DstPort == 0 {
			return ianaGenevePort
		}
	case ProtoVXLAN:
		if p.DstPort == 0 {
			return ianaVXLANPort
		}
	case ProtoGRE:
		return 0
	}
	return p.DstPort
}

// NATTPort returns the UDP port at the peer that our ESP-in-UDP goes to:
// EncapPort (4500 when 0) with EncapUDP4500, 0 without.
func (p Policy) NATTPort() uint16 {
	switch {
	case p.Encap != EncapUDP4500:
		return 0
	case p.EncapPort == 0:
		return natTraversalUDP
	}
	return p.EncapPort
}

// Validate checks one policy.
func (p Policy) Validate() error {
	if !p.PeerIP.IsValid() || p.PeerIP.Zone() != "" || p.PeerIP.IsUnspecified() || p.PeerIP.IsMulticast() {
		return fmt.Errorf("policy peer %q: need a unicast IPv4 or IPv6 address without zone", p.PeerIP)
	}
	switch p.Proto {
	case ProtoGeneve, ProtoVXLAN, ProtoGRE:
	default:
		return fmt.Errorf("policy for %s: tunnel protocol %q not supported (geneve, vxlan or gre)", p.PeerIP, p.Proto)
	}
	if p.Proto != ProtoGRE && p.Port() == natTraversalUDP {
		return fmt.Errorf("policy for %s: tunnel dst_port 4500 collides with ESP-in-UDP; choose another port", p.PeerIP)
	}
	if p.Encap > EncapUDP4500 {
		return fmt.Errorf("policy for %s: unknown encapsulation %v", p.PeerIP, p.Encap)
	}
	if p.EncapPort != 0 && p.Encap != EncapUDP4500 {
		return fmt.Errorf("policy for %s: ESP-in-UDP port %d without ESP-in-UDP encapsulation", p.PeerIP, p.EncapPort)
	}
	if p.Proto != ProtoGRE && p.Encap == EncapUDP4500 && p.NATTPort() == p.Port() {
		return fmt.Errorf("policy for %s: the peer's ESP-in-UDP port %d is its tunnel port: ESP-in-UDP and plaintext tunnel packets would look alike; refusing (fail closed)", p.PeerIP, p.Port())
	}
	if p.Mode > ModeBenchPassthrough {
		return fmt.Errorf("policy for %s: unknown mode %v", p.PeerIP, p.Mode)
	}
	return nil
}

// peer returns the canonical form of the peer address (IPv4-mapped IPv6
// becomes IPv4) so that one peer has one key.
func (p Policy) peer() netip.Addr { return p.PeerIP.Unmap() }

// l3 returns the match prefix and address field names for the peer's family.
func l3(a netip.Addr) (ip, udp, src, dst string) {
	if a.Is4() {
		return "ip", "udp", "nw_src", "nw_dst"
	}
	return "ipv6", "udp6", "ipv6_src", "ipv6_dst"
}

// tunnelMatch matches the policy's tunnel protocol packets, with addr
// selecting the peer ("nw_dst=1.2.3.4").
func tunnelMatch(p Policy, addr string) string {
	ip, udp, _, _ := l3(p.peer())
	if p.Proto == ProtoGRE {
		return ip + "," + addr + ",nw_proto=" + strconv.Itoa(protoGRE)
	}
	return udp + "," + addr + ",tp_dst=" + strconv.Itoa(int(p.Port()))
}

// Rules computes the complete table 0 of br-phy for the given policies.
// The result is deterministic (sorted) and free of duplicates; it always
// ends with the engine catch-all drop and the NORMAL catch-all, so that with
// no policies br-phy behaves like a plain NORMAL switch that never floods to
// the engine port (the port is also marked no-flood by the Attachment).
//
// Per peer P (IPv4 shown; IPv6 uses ipv6_src/ipv6_dst):
//
//	prio 200 in_port=LOCAL,<tunnel>,nw_dst=P           -> engine  (steer-out)
//	prio 200 in_port=NIC,ip,nw_src=P,nw_proto=50       -> engine  (steer-in, protected)
//	prio 200 in_port=NIC,udp,nw_src=P,tp_dst=4500      -> engine  (steer-in, protected+udp4500; any source port)
//	prio 200 in_port=NIC,<tunnel>,nw_src=P             -> engine  (steer-in, bench passthrough)
//	prio 200 in_port=engine,ip,nw_dst=P,nw_proto=50    -> NIC     (protected)
//	prio 200 in_port=engine,udp,nw_dst=P,tp_src=4500,tp_dst=N -> NIC (protected+udp4500; N = NATTPort)
//	prio 200 in_port=engine,ip,nw_dst=P                -> NIC     (bench passthrough)
//	prio 200 in_port=engine,ip,nw_src=P                -> LOCAL   (decrypted; OVS pops the tunnel)
//	prio 150 in_port=engine,ip,nw_dst=P                -> drop    (protected: engine never leaks plaintext)
//	prio 100 in_port=NIC,<tunnel>,nw_src=P             -> drop    (protected: plaintext from the peer)
//	prio 100 in_port=NIC,udp,nw_src=P,nw_frag=later    -> drop    (protected UDP tunnels: later fragments)
//	prio  50 in_port=engine                            -> drop
//	prio   0                                           -> NORMAL  (ARP, IKE on 500, management)
//
// The engine-output direction is decided by address, not by protocol, so
// that the same rules carry ESP and bench passthrough frames.
func Rules(cfg BridgeConfig, policies []Policy) ([]Flow, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, p := range policies {
		if err := p.Validate(); err != nil {
			return nil, err
		}
	}
	if _, err := mergePeers(policies); err != nil {
		return nil, err
	}

	seen := make(map[string]bool)
	var flows []Flow
	add := func(k Kind, prio int, match, actions string) {
		f := Flow{Kind: k, Priority: prio, Match: match, Actions: actions, cookie: cfg.Cookie}
		key := strconv.Itoa(prio) + "|" + match
		if seen[key] {
			return
		}
		seen[key] = true
		flows = append(flows, f)
	}
	inNIC := "in_port=" + cfg.NIC
	inEng := "in_port=" + cfg.Engine
	toEng := "output:" + cfg.Engine
	toNIC := "output:" + cfg.NIC

	for _, p := range policies {
		peer := p.peer()
		ip, udp, src, dst := l3(peer)
		s := src + "=" + peer.String()
		d := dst + "=" + peer.String()

		add(KindSteerOut, prioSteer, "in_port=LOCAL,"+tunnelMatch(p, d), toEng)
		add(KindToLocal, prioSteer, inEng+","+ip+","+s, "LOCAL")

		switch p.Mode {
		case ModeProtected:
			add(KindSteerIn, prioSteer, inNIC+","+ip+","+s+",nw_proto="+strconv.Itoa(protoESP), toEng)
			add(KindToNIC, prioSteer, inEng+","+ip+","+d+",nw_proto="+strconv.Itoa(protoESP), toNIC)
			if p.Encap == EncapUDP4500 {
				add(KindSteerIn, prioSteer, inNIC+","+udp+","+s+",tp_dst="+strconv.Itoa(natTraversalUDP), toEng)
				add(KindToNIC, prioSteer, inEng+","+udp+","+d+",tp_src="+strconv.Itoa(natTraversalUDP)+",tp_dst="+strconv.Itoa(int(p.NATTPort())), toNIC)
			}
			add(KindDropEngineLeak, prioEngineLeak, inEng+","+ip+","+d, "drop")
			add(KindDropPlaintext, prioDropPlain, inNIC+","+tunnelMatch(p, s), "drop")
			if p.Proto != ProtoGRE {
				add(KindDropPlaintext, prioDropPlain, inNIC+","+udp+","+s+",nw_frag=later", "drop")
			}
		case ModeBenchPassthrough:
			add(KindSteerIn, prioSteer, inNIC+","+tunnelMatch(p, s), toEng)
			add(KindToNIC, prioSteer, inEng+","+ip+","+d, toNIC)
		}
	}
	sort.SliceStable(flows, func(i, j int) bool {
		if flows[i].Priority != flows[j].Priority {
			return flows[i].Priority > flows[j].Priority
		}
		if flows[i].Kind != flows[j].Kind {
			return flows[i].Kind < flows[j].Kind
		}
		return flows[i].Match < flows[j].Match
	})
	add(KindDropEngine, prioEngineDrop, inEng, "drop")
	add(KindNormal, prioNormal, "", "NORMAL")
	return flows, nil
}
