// Sockets: the two UDP sockets (IKE port and NAT-T port) and the framing
// on the NAT-T port (non-ESP marker, ESP-in-UDP hand-off, keepalives).

package ike

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/ovnsec/ovnsec/internal/ike/message"
)

// Port selects one of the engine's two local ports.
type Port uint8

const (
	PortIKE  Port = iota // 500: plain IKE
	PortNATT             // 4500: IKE behind the non-ESP marker, and ESP-in-UDP
)

// PacketConn is the engine's datagram transport: two local ports. The UDP
// implementation is the default; tests may inject another.
type PacketConn interface {
	// ReadFrom blocks for the next datagram on port p.
	ReadFrom(p Port, b []byte) (int, netip.AddrPort, error)
	// WriteTo sends b from port p to dst. It must not keep b: the engine
	// reuses the buffer.
	WriteTo(p Port, b []byte, dst netip.AddrPort) error
	// LocalPort returns the bound port number of p.
	LocalPort(p Port) uint16
	Close() error
}

// UDP is the default transport: one UDP socket per port.
type UDP struct {
	c [2]*net.UDPConn
}

// ListenUDP opens the IKE and NAT-T ports on addr: 0 is the standard
// port (500, 4500), a negative one any free port.
func ListenUDP(addr netip.Addr, portIKE, portNATT int) (*UDP, error) {
	if portIKE == 0 {
		portIKE = message.PortIKE
	}
	if portNATT == 0 {
		portNATT = message.PortNATT
	}
	return listenUDP(addr, portIKE, portNATT)
}

// NewUDP wraps sockets opened elsewhere (handed over by the previous
// process in an upgrade). The transport owns them from then on.
func NewUDP(ike, natt *net.UDPConn) (*UDP, error) {
	if ike == nil || natt == nil {
		return nil, errors.New("ike: NewUDP needs both the IKE and the NAT-T socket")
	}
	return &UDP{c: [2]*net.UDPConn{ike, natt}}, nil
}

// Sockets returns the two sockets, for handing them to another process;
// they stay owned by u.
func (u *UDP) Sockets() (ike, natt *net.UDPConn) { return u.c[PortIKE], u.c[PortNATT] }

func listenUDP(addr netip.Addr, portIKE, portNATT int) (*UDP, error) {
	u := &UDP{}
	for i, port := range []int{portIKE, portNATT} {
		if port < 0 {
			port = 0
		}
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, uint16(port))))
		if err != nil {
			u.Close()
			return nil, fmt.Errorf("ike: listen on %s: %w (is another IKE daemon running?)", netip.AddrPortFrom(addr, uint16(port)), err)
		}
		u.c[i] = c
	}
	return u, nil
}

func (u *UDP) ReadFrom(p Port, b []byte) (int, netip.AddrPort, error) {
	n, from, err := u.c[p].ReadFromUDPAddrPort(b)
	return n, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), err
}

func (u *UDP) WriteTo(p Port, b []byte, dst netip.AddrPort) error {
	_, err := u.c[p].WriteToUDPAddrPort(b, dst)
	return err
}

func (u *UDP) LocalPort(p Port) uint16 {
	return uint16(u.c[p].LocalAddr().(*net.UDPAddr).Port)
}

func (u *UDP) Close() error {
	var errs []error
	for _, c := range u.c {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}
