// routes_linux.go: the kernel routes that send the peers' subnets into the
// device. In the main table (the default) one route per subnet. With a
// table of their own (System.Table) the routes go there, a rule per family
// looks that table up, and rules ahead of it send excluded destinations
// (the gateways themselves, passthrough subnets) to the main table, so
// that a catch-all subnet never captures the tunnel's own packets or what
// the operator exempted. Each subnet there also gets a blackhole route of
// lower preference, which outlives the device: when the process stops or
// dies and the device goes, the subnets are dropped, never routed in
// clear, until the next process routes them into its device again (it
// takes the table's routes and rules over) or Withdraw removes them.
// Addresses on the device follow SetAddrs.

package tun

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// blackholeMetric is the preference of the blackhole routes: behind the
// device's routes (metric 0).
const blackholeMetric = 1000

// nlRoutes keeps the device's routes, exclusion rules and addresses.
type nlRoutes struct {
	h     *netlink.Handle
	link  int
	name  string
	table int // 0: the main table, no rules, no blackholes
	cur   map[netip.Prefix]bool
	holes map[netip.Prefix]bool // blackholes in the table (some a previous process's)
	excl  map[netip.Prefix]bool
	addrs map[netip.Prefix]bool
}

func newRoutes(h *netlink.Handle, link int, name string, table int) *nlRoutes {
	return &nlRoutes{h: h, link: link, name: name, table: table, cur: map[netip.Prefix]bool{},
		holes: map[netip.Prefix]bool{}, excl: map[netip.Prefix]bool{}, addrs: map[netip.Prefix]bool{}}
}

func (r *nlRoutes) blackhole(p netip.Prefix) *netlink.Route {
	return &netlink.Route{Dst: prefixNet(p), Table: r.table, Type: unix.RTN_BLACKHOLE, Priority: blackholeMetric}
}

// adopt takes over a previous process's blackholes and exclusion rules in
// the table, so that the next Set and SetExclusions keep or remove them
// like their own.
func (r *nlRoutes) adopt() error {
	if r.table == 0 {
		return nil
	}
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		routes, err := r.h.RouteListFiltered(fam, &netlink.Route{Table: r.table}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return fmt.Errorf("routes of table %d: %w", r.table, err)
		}
		for _, rt := range routes {
			if rt.Type == unix.RTN_BLACKHOLE && rt.Dst != nil {
				if p, ok := netipPrefix(rt.Dst); ok {
					r.holes[p] = true
				}
			}
		}
		rules, err := r.h.RuleList(fam)
		if err != nil {
			return fmt.Errorf("rules: %w", err)
		}
		for _, rule := range rules {
			if rule.Priority == r.table-1 && rule.Table == unix.RT_TABLE_MAIN && rule.Dst != nil {
				if p, ok := netipPrefix(rule.Dst); ok {
					r.excl[p] = true
				}
			}
		}
	}
	return nil
}

func netipPrefix(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), bits), true
}

func (r *nlRoutes) route(p netip.Prefix) *netlink.Route {
	rt := &netlink.Route{LinkIndex: r.link, Dst: prefixNet(p), Scope: netlink.SCOPE_LINK}
	if r.table != 0 {
		rt.Table = r.table
	}
	return rt
}

// Set makes the routes through the device exactly prefixes (and, with a
// table of its own, the blackholes behind them; a subnet's blackhole goes
// in before its route and comes out after it).
func (r *nlRoutes) Set(prefixes []netip.Prefix) error {
	want := make(map[netip.Prefix]bool, len(prefixes))
	var errs error
	for _, p := range prefixes {
		p = p.Masked()
		want[p] = true
		if r.table != 0 && !r.holes[p] {
			// Reported, but the route into the device goes in anyway:
			// without it the subnet would be routed in clear now.
			if err := r.h.RouteReplace(r.blackhole(p)); err != nil {
				errs = errors.Join(errs, fmt.Errorf("blackhole %v table %d: %w", p, r.table, err))
			} else {
				r.holes[p] = true
			}
		}
		if r.cur[p] {
			continue
		}
		if err := r.h.RouteReplace(r.route(p)); err != nil {
			errs = errors.Join(errs, fmt.Errorf("route %v dev %s: %w", p, r.name, err))
			continue
		}
		r.cur[p] = true
	}
	for p := range r.cur {
		if want[p] {
			continue
		}
		// ESRCH: the kernel removed it already (with the device's last
		// IPv4 address, or with the device).
		if err := r.h.RouteDel(r.route(p)); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = errors.Join(errs, fmt.Errorf("remove route %v dev %s: %w", p, r.name, err))
			continue
		}
		delete(r.cur, p)
	}
	for p := range r.holes {
		if want[p] || r.cur[p] {
			continue
		}
		if err := r.h.RouteDel(r.blackhole(p)); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = errors.Join(errs, fmt.Errorf("remove blackhole %v table %d: %w", p, r.table, err))
			continue
		}
		delete(r.holes, p)
	}
	return errs
}

// lookupRule is the rule of one family that looks the table up.
func (r *nlRoutes) lookupRule(family int) *netlink.Rule {
	rule := netlink.NewRule()
	rule.Family = family
	rule.Table = r.table
	rule.Priority = r.table
	return rule
}

// exclusionRule sends p to the main table ahead of the lookup rule.
func (r *nlRoutes) exclusionRule(p netip.Prefix) *netlink.Rule {
	rule := netlink.NewRule()
	rule.Family = unix.AF_INET
	if p.Addr().Is6() {
		rule.Family = unix.AF_INET6
	}
	rule.Dst = prefixNet(p)
	rule.Table = unix.RT_TABLE_MAIN
	rule.Priority = r.table - 1
	return rule
}

// addLookupRules adds the table's lookup rules (none for the main table).
func (r *nlRoutes) addLookupRules() error {
	if r.table == 0 {
		return nil
	}
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		_ = r.h.RuleDel(r.lookupRule(fam)) // a previous run's, if any
		if err := r.h.RuleAdd(r.lookupRule(fam)); err != nil {
			return fmt.Errorf("rule: lookup table %d (priority %d): %w", r.table, r.table, err)
		}
	}
	return nil
}

// SetExclusions makes the destinations that bypass the table exactly
// prefixes (with a table of its own only).
func (r *nlRoutes) SetExclusions(prefixes []netip.Prefix) error {
	if r.table == 0 {
		if len(prefixes) > 0 {
			return fmt.Errorf("exclusions %v on %s: need a routing table of its own (System.Table)", prefixes, r.name)
		}
		return nil
	}
	want := make(map[netip.Prefix]bool, len(prefixes))
	var errs error
	for _, p := range prefixes {
		p = p.Masked()
		want[p] = true
		if r.excl[p] {
			continue
		}
		if err := r.h.RuleAdd(r.exclusionRule(p)); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = errors.Join(errs, fmt.Errorf("rule: %v lookup main: %w", p, err))
			continue
		}
		r.excl[p] = true
	}
	for p := range r.excl {
		if want[p] {
			continue
		}
		if err := r.h.RuleDel(r.exclusionRule(p)); err != nil {
			errs = errors.Join(errs, fmt.Errorf("remove rule: %v lookup main: %w", p, err))
			continue
		}
		delete(r.excl, p)
	}
	return errs
}

// SetAddrs makes the device's addresses exactly prefixes.
func (r *nlRoutes) SetAddrs(prefixes []netip.Prefix) error {
	link, err := r.h.LinkByIndex(r.link)
	if err != nil {
		return fmt.Errorf("find link %s: %w", r.name, err)
	}
	want := make(map[netip.Prefix]bool, len(prefixes))
	var errs error
	for _, p := range prefixes {
		want[p] = true
		if r.addrs[p] {
			continue
		}
		if err := r.h.AddrReplace(link, &netlink.Addr{IPNet: prefixNet(p)}); err != nil {
			errs = errors.Join(errs, fmt.Errorf("address %v on %s: %w", p, r.name, err))
			continue
		}
		r.addrs[p] = true
	}
	for p := range r.addrs {
		if want[p] {
			continue
		}
		if err := r.h.AddrDel(link, &netlink.Addr{IPNet: prefixNet(p)}); err != nil {
			errs = errors.Join(errs, fmt.Errorf("remove address %v from %s: %w", p, r.name, err))
			continue
		}
		delete(r.addrs, p)
	}
	return errs
}

// Withdraw removes the routes, blackholes and rules: the subnets are
// routed normally again (a removed connection, an exit with cleanup).
func (r *nlRoutes) Withdraw() error {
	errs := errors.Join(r.Set(nil), r.SetExclusions(nil))
	if r.table != 0 {
		for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
			if err := r.h.RuleDel(r.lookupRule(fam)); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = errors.Join(errs, fmt.Errorf("remove rule: lookup table %d: %w", r.table, err))
			}
		}
	}
	return errs
}

// close releases the netlink handle. The routes through the device go
// with it; blackholes and rules stay (fail closed) unless withdrawn.
func (r *nlRoutes) close() { r.h.Close() }
