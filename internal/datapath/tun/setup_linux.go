// setup_linux.go: building an attachment on the real system: the TUN
// device (wireguard-go's tun, with IFF_VNET_HDR and TSO/USO offloads), its
// address and routes (netlink) and the underlay socket, all created inside
// a chosen network namespace.

package tun

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"

	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/nsenter"
)

// System says where and how Open creates the device and the socket.
type System struct {
	// NetNS is the network namespace: a name under /run/netns or a path
	// (/proc/<pid>/ns/net); empty means the caller's.
	NetNS string
	// Name is the TUN device name (at most 15 bytes).
	Name string
	// Addr is the device's inner address, e.g. 203.0.113.1/32.
	Addr netip.Prefix
	// Local is the underlay address and port to bind; port 0 means 4500.
	Local netip.AddrPort
	// UnderlayMTU is the underlay link MTU; 0 means 1500.
	UnderlayMTU int
	// MTU is the device MTU; 0 means TunnelMTU(UnderlayMTU), the largest
	// inner packet whose ESP-in-UDP datagram fits the underlay.
	MTU int
	// NoGSO and NoGRO leave the underlay socket's UDP offloads off (for
	// comparison and for kernels that mishandle them).
	NoGSO, NoGRO bool
	// Shared, if set, is the underlay socket, owned and read by another
	// component (the IKE engine's NAT-T socket): the attachment sends on
	// it and is handed received ESP through DeliverESP (SharedConn). Addr
	// may then be left unset (no address on the device).
	Shared *net.UDPConn
	// Table, if not 0, is the routing table the peers' subnets go to,
	// looked up by a rule of priority Table for both families; excluded
	// destinations (SetExclusions) get rules of priority Table-1 to the
	// main table. 0: routes in the main table.
	Table int
}

// TunnelMTU returns the largest inner packet whose ESP-in-UDP datagram
// (outer IPv4 and UDP header, ESP with AES-GCM-16) fits an underlay MTU.
func TunnelMTU(underlayMTU int) int {
	return esp.MaxPayload(underlayMTU - 20 - esp.UDPHeaderLen)
}

// Open creates the device and socket described by sys and returns an
// attachment over them; cfg's Device, Conn and Routes are filled in. The
// caller runs it (Run) and closes it.
func Open(sys System, cfg Config) (*Attachment, error) {
	if sys.Local.Port() == 0 {
		sys.Local = netip.AddrPortFrom(sys.Local.Addr(), esp.NATTPort)
	}
	if sys.UnderlayMTU == 0 {
		sys.UnderlayMTU = 1500
	}
	if sys.MTU == 0 {
		sys.MTU = TunnelMTU(sys.UnderlayMTU)
	}
	if sys.MTU < 576 || sys.MTU > maxPacket {
		return nil, fmt.Errorf("tun attachment %s: MTU %d out of range (underlay MTU %d); want 576..%d", sys.Name, sys.MTU, sys.UnderlayMTU, maxPacket)
	}
	if sys.Name == "" || len(sys.Name) >= unix.IFNAMSIZ || strings.ContainsAny(sys.Name, "/ \t\n") {
		return nil, fmt.Errorf("tun attachment: invalid device name %q; want 1-15 bytes without '/' or spaces", sys.Name)
	}
	if !sys.Addr.IsValid() && sys.Shared == nil {
		return nil, fmt.Errorf("tun attachment %s: device address missing (e.g. 203.0.113.1/32)", sys.Name)
	}
	if sys.Table < 0 || sys.Table == unix.RT_TABLE_MAIN || sys.Table == unix.RT_TABLE_LOCAL || sys.Table == unix.RT_TABLE_DEFAULT {
		return nil, fmt.Errorf("tun attachment %s: routing table %d is reserved; pick another (or 0 for the main table)", sys.Name, sys.Table)
	}
	var (
		dev    wgtun.Device
		conn   Conn
		routes *nlRoutes
	)
	err := inNetNS(sys.NetNS, func() error {
		var err error
		if dev, err = wgtun.CreateTUN(sys.Name, sys.MTU); err != nil {
			return fmt.Errorf("create TUN device %s: %w", sys.Name, err)
		}
		opt := UDPOptions{Batch: cfg.BatchSize, NoGSO: sys.NoGSO, NoGRO: sys.NoGRO}
		if sys.Shared != nil {
			sc, err := ShareUDP(sys.Shared, opt)
			if err != nil {
				return err
			}
			conn = sc
		} else {
			uc, err := ListenUDP(sys.Local, opt)
			if err != nil {
				return err
			}
			conn = uc
		}
		routes, err = configureLink(sys.Name, sys.Addr, sys.Table)
		return err
	})
	if err != nil {
		var cerr error
		if conn != nil {
			cerr = conn.Close()
		}
		if dev != nil {
			cerr = errors.Join(cerr, dev.Close())
		}
		return nil, errors.Join(fmt.Errorf("tun attachment %s in netns %q: %w", sys.Name, sys.NetNS, err), cerr)
	}
	cfg.Device = closer{dev, routes.close}
	cfg.Conn = conn
	cfg.Routes = routes
	a, err := New(cfg)
	if err != nil {
		return nil, errors.Join(err, conn.Close(), cfg.Device.Close())
	}
	// The device's link watchers block once their event channel is
	// full: drain it until Close closes it.
	go func() {
		for ev := range dev.Events() {
			a.log.Debug("tun attachment: device event", "dev", sys.Name, "event", eventName(ev))
		}
	}()
	return a, nil
}

func eventName(e wgtun.Event) string {
	switch e {
	case wgtun.EventUp:
		return "up"
	case wgtun.EventDown:
		return "down"
	case wgtun.EventMTUUpdate:
		return "mtu"
	}
	return fmt.Sprint(int(e))
}

// closer closes the device and then releases the netlink handle.
type closer struct {
	wgtun.Device
	also func()
}

func (c closer) Close() error {
	err := c.Device.Close()
	c.also()
	return err
}

// inNetNS runs f on an OS thread switched into the namespace ns ("" runs
// f on the calling goroutine). File descriptors f creates (device,
// sockets, netlink handles) stay in that namespace afterwards.

// inNetNS runs f in the network namespace ns (a name under /run/netns or
// a path; "" = ours); what f creates stays in that namespace.
func inNetNS(ns string, f func() error) error { return nsenter.Do(ns, f) }

// configureLink gives the device its address (if valid), brings it up and
// returns a route keeper holding a netlink handle in the current
// namespace; with table != 0 the routes go to that table (routes_linux.go).
func configureLink(name string, addr netip.Prefix, table int) (*nlRoutes, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	link, err := h.LinkByName(name)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("find link %s: %w", name, err)
	}
	if addr.IsValid() {
		if err := h.AddrReplace(link, &netlink.Addr{IPNet: prefixNet(addr)}); err != nil {
			h.Close()
			return nil, fmt.Errorf("address %v on %s: %w", addr, name, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		h.Close()
		return nil, fmt.Errorf("set %s up: %w", name, err)
	}
	r := newRoutes(h, link.Attrs().Index, name, table)
	if err := r.adopt(); err != nil {
		r.close()
		return nil, err
	}
	if err := r.addLookupRules(); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}
