package platformtest

import (
	"net/netip"
	"slices"

	"github.com/vpcvpn/vpcvpn/platform"
)

// LinkRoutes returns the IPv4 routes bound to link name.
func (h *Host) LinkRoutes(name string) ([]platform.Route, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.query("link-routes " + name); err != nil {
		return nil, err
	}
	if _, ok := h.links[name]; !ok {
		return nil, platform.ErrLinkNotFound
	}
	var routes []platform.Route
	for _, r := range h.routes {
		if r.Dev == name && r.Dst.Addr().Is4() {
			routes = append(routes, r)
		}
	}
	return routes, nil
}

// RouteFor picks the longest matching route, as the kernel does.
func (h *Host) RouteFor(dst netip.Addr) (platform.Route, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.query("route-for " + dst.String()); err != nil {
		return platform.Route{}, err
	}
	best := -1
	for i, r := range h.routes {
		if r.Dst.Contains(dst) && (best < 0 || r.Dst.Bits() > h.routes[best].Dst.Bits()) {
			best = i
		}
	}
	if best < 0 {
		return platform.Route{}, platform.ErrNoRoute
	}
	r := h.routes[best]
	r.Dst = netip.PrefixFrom(dst, dst.BitLen())
	return r, nil
}

// DefaultRoutes returns the IPv4 routes to 0.0.0.0/0.
func (h *Host) DefaultRoutes() ([]platform.Route, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.query("default-routes"); err != nil {
		return nil, err
	}
	var routes []platform.Route
	for _, r := range h.routes {
		if r.Dst.Bits() == 0 && r.Dst.Addr().Is4() {
			routes = append(routes, r)
		}
	}
	return routes, nil
}

// Link describes link name, made by AddLink or CreateTUN.
func (h *Host) Link(name string) (platform.Link, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.query("link " + name); err != nil {
		return platform.Link{}, err
	}
	l, ok := h.links[name]
	if !ok {
		return platform.Link{}, platform.ErrLinkNotFound
	}
	return l.info, nil
}

// LocalAddrs returns the addresses of SetLocalAddrs and then those that
// ConfigureLink gave to links, in name order.
func (h *Host) LocalAddrs() ([]netip.Addr, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.query("local-addrs"); err != nil {
		return nil, err
	}
	return h.localAddrs(), nil
}

// localAddrs is LocalAddrs; h.mu is held.
func (h *Host) localAddrs() []netip.Addr {
	addrs := slices.Clone(h.local)
	names := make([]string, 0, len(h.links))
	for name := range h.links {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for _, p := range h.links[name].addrs {
			addrs = append(addrs, p.Addr())
		}
	}
	return addrs
}

// Close does nothing; the fake holds no resources.
func (h *Host) Close() error { return nil }
