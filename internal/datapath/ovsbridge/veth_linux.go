// Engine port stage, veth flavour (PortVeth): a veth pair whose one end OVS
// drives as an ordinary ("system") port of br-phy and whose other end the
// engine reads and writes with a batched AF_PACKET socket (PacketPort).
//
// The pair persists across engine restarts, like the TAP, so the OVS port
// number stays. Unlike the TAP it keeps its carrier when no engine runs, so
// fail-closed rests on the kernel instead: frames OVS steers to the pair
// reach the engine end addressed to another MAC (the next hop outbound,
// br-phy inbound), which the kernel classes PACKET_OTHERHOST and drops; on
// top of that both ends have no address, IPv6 off, IPv4 forwarding off and
// arp_ignore=8 (never answer ARP). The integration test checks that nothing
// leaves with the engine stopped.

package ovsbridge

import (
	"errors"
	"fmt"
	"os"

	"github.com/vishvananda/netlink"
)

// PortKind is the kind of device the engine port is.
type PortKind uint8

const (
	// PortTAP: a persistent TAP; the engine owns its descriptor and reads
	// and writes one frame per system call.
	PortTAP PortKind = iota
	// PortVeth: a veth pair; the engine reads and writes its end in
	// batches (recvmmsg/sendmmsg on AF_PACKET).
	PortVeth
)

func (k PortKind) String() string {
	switch k {
	case PortTAP:
		return "tap"
	case PortVeth:
		return "veth"
	}
	return fmt.Sprintf("PortKind(%d)", uint8(k))
}

// VethPeer returns the name of the engine's end of the veth pair whose OVS
// end is name ("ovnsec0" -> "ovnsec0_e").
func VethPeer(name string) string {
	if len(name) > 13 {
		name = name[:13]
	}
	return name + "_e"
}

// EnsureVeth makes the veth pair name (OVS end) / VethPeer(name) (engine
// end) exist in the namespace with the given MTU, both ends up and
// hardened (see the file comment). A TAP of the same name, left by the
// TAP port kind, is replaced.
func EnsureVeth(name, netnsPath string, mtu int) error {
	if !validPortName(name) {
		return fmt.Errorf("veth %q: not a valid interface name", name)
	}
	peer := VethPeer(name)
	return inNetns(netnsPath, func() error {
		l, err := netlink.LinkByName(name)
		if err == nil && !isOurVeth(l, peer) {
			if err := netlink.LinkDel(l); err != nil {
				return fmt.Errorf("replace %s (%s) by a veth pair: %w", name, l.Type(), err)
			}
			err = netlink.LinkNotFoundError{}
		}
		if err != nil {
			if !errors.As(err, &netlink.LinkNotFoundError{}) {
				return fmt.Errorf("look up %s: %w", name, err)
			}
			if pl, perr := netlink.LinkByName(peer); perr == nil {
				_ = netlink.LinkDel(pl) // half of a pair cannot exist; a foreign device of that name would clash
			}
			la := netlink.NewLinkAttrs()
			la.Name = name
			if mtu > 0 {
				la.MTU = mtu
			}
			v := &netlink.Veth{LinkAttrs: la, PeerName: peer}
			if err := netlink.LinkAdd(v); err != nil {
				return fmt.Errorf("create veth pair %s/%s: %w", name, peer, err)
			}
		}
		for _, n := range []string{name, peer} {
			if err := hardenLink(n); err != nil {
				return err
			}
			if mtu > 0 {
				if err := setMTU(n, mtu); err != nil {
					return err
				}
			}
			if err := setUp(n); err != nil {
				return err
			}
		}
		return nil
	})
}

func isOurVeth(l netlink.Link, peer string) bool {
	if _, ok := l.(*netlink.Veth); !ok {
		return false
	}
	pl, err := netlink.LinkByName(peer)
	if err != nil {
		return false
	}
	pidx, err := netlink.VethPeerIndex(l.(*netlink.Veth))
	return err == nil && pidx == pl.Attrs().Index
}

// hardenLink keeps the kernel from acting on frames of a port that only
// carries steered tunnel traffic: no IPv6 (no router or multicast
// solicitations), no ARP replies, no forwarding of what it receives.
func hardenLink(name string) error {
	for _, s := range []struct{ path, val string }{
		{"/proc/sys/net/ipv6/conf/" + name + "/disable_ipv6", "1"},
		{"/proc/sys/net/ipv4/conf/" + name + "/arp_ignore", "8"},
		{"/proc/sys/net/ipv4/conf/" + name + "/forwarding", "0"},
		{"/proc/sys/net/ipv4/conf/" + name + "/accept_local", "0"},
	} {
		// Best effort only for IPv6, which may be off entirely.
		if err := os.WriteFile(s.path, []byte(s.val), 0); err != nil && !(errors.Is(err, os.ErrNotExist) && s.val == "1") {
			return fmt.Errorf("harden %s: write %s: %w", name, s.path, err)
		}
	}
	return nil
}

// DeleteVeth removes the veth pair name (both ends). A missing pair is not
// an error.
func DeleteVeth(name, netnsPath string) error {
	return inNetns(netnsPath, func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			if errors.As(err, &netlink.LinkNotFoundError{}) {
				return nil
			}
			return fmt.Errorf("look up %s: %w", name, err)
		}
		if err := netlink.LinkDel(l); err != nil {
			return fmt.Errorf("delete veth %s: %w", name, err)
		}
		return nil
	})
}

// OpenVeth opens the engine's end of the veth pair name for batched I/O.
func OpenVeth(name, netnsPath string) (*PacketPort, error) {
	return OpenPacketPort(VethPeer(name), netnsPath, PacketOptions{QdiscBypass: true})
}

// OpenWire opens a transmit-only packet socket on the NIC, for outbound ESP
// the engine sends straight to the wire (LoopConfig.Wire).
func OpenWire(nic, netnsPath string) (*PacketPort, error) {
	return OpenPacketPort(nic, netnsPath, PacketOptions{TxOnly: true})
}

// OpenEngine opens the engine's device for the port kind: the TAP, or the
// engine end of the veth pair.
func OpenEngine(kind PortKind, name, netnsPath string) (Device, error) {
	switch kind {
	case PortTAP:
		return OpenTAP(name, netnsPath)
	case PortVeth:
		return OpenVeth(name, netnsPath)
	}
	return nil, fmt.Errorf("engine port %s: unknown kind %v", name, kind)
}

// EngineFromFile takes up the engine's device of the port kind that
// another process opened with OpenEngine and handed over (an upgrade).
func EngineFromFile(kind PortKind, name string, f *os.File) (Device, error) {
	switch kind {
	case PortTAP:
		return TAPFromFile(name, f)
	case PortVeth:
		return PacketPortFromFile(VethPeer(name), f, PacketOptions{QdiscBypass: true})
	}
	if f != nil {
		f.Close()
	}
	return nil, fmt.Errorf("engine port %s: unknown kind %v", name, kind)
}

// WireFromFile takes up the NIC's transmit-only socket another process
// opened with OpenWire.
func WireFromFile(nic string, f *os.File) (*PacketPort, error) {
	return PacketPortFromFile(nic, f, PacketOptions{TxOnly: true})
}

// linkType returns the netlink type of interface name ("veth", "tuntap",
// ...), or "" if there is none.
func linkType(name, netnsPath string) string {
	var t string
	_ = inNetns(netnsPath, func() error {
		if l, err := netlink.LinkByName(name); err == nil {
			t = l.Type()
		}
		return nil
	})
	return t
}

// deleteIfVeth removes name when it is a veth (left by PortVeth),
// so that the TAP port kind can create its TAP.
func deleteIfVeth(name, netnsPath string) error {
	return inNetns(netnsPath, func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return nil // absent (or unreadable: OpenTAP reports it)
		}
		if _, ok := l.(*netlink.Veth); !ok {
			return nil
		}
		if err := netlink.LinkDel(l); err != nil {
			return fmt.Errorf("replace veth %s by a TAP: %w", name, err)
		}
		return nil
	})
}
