package platform

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func (h *linuxHost) AddRoute(r Route) error {
	op := "add route " + r.String()
	nr, err := h.netlinkRoute(r)
	if err != nil {
		return err
	}
	nr.Protocol = unix.RTPROT_STATIC
	if !r.Gateway.IsValid() {
		nr.Scope = netlink.SCOPE_LINK
	}
	err = h.nl.RouteAdd(nr)
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("platform: %s: %w", op, ErrRouteExists)
	}
	if err != nil {
		return wrapErr(op, err)
	}
	return nil
}

func (h *linuxHost) DeleteRoute(r Route) error {
	nr, err := h.netlinkRoute(r)
	if errors.Is(err, ErrLinkNotFound) {
		return nil // the link took its routes with it
	}
	if err != nil {
		return err
	}
	err = h.nl.RouteDel(nr)
	if err != nil && !errors.Is(err, unix.ESRCH) && !isLinkNotFound(err) {
		return wrapErr("delete route "+r.String(), err)
	}
	return nil
}

// netlinkRoute translates r for the main table.
func (h *linuxHost) netlinkRoute(r Route) (*netlink.Route, error) {
	if !r.Dst.IsValid() {
		return nil, fmt.Errorf("platform: route %s: no destination", r)
	}
	nr := &netlink.Route{
		Dst:   ipNet(r.Dst.Masked()),
		Gw:    ipOf(r.Gateway),
		Src:   ipOf(r.Src),
		Table: unix.RT_TABLE_MAIN,
	}
	if r.Dev != "" {
		l, err := h.linkByName(r.Dev)
		if err != nil {
			return nil, err
		}
		nr.LinkIndex = l.Attrs().Index
	}
	return nr, nil
}

func (h *linuxHost) LinkRoutes(name string) ([]Route, error) {
	l, err := h.linkByName(name)
	if err != nil {
		return nil, err
	}
	filter := &netlink.Route{LinkIndex: l.Attrs().Index, Table: unix.RT_TABLE_MAIN}
	var list []netlink.Route
	err = retryDump(func() (err error) {
		list, err = h.nl.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
		return err
	})
	if err != nil {
		return nil, wrapErr("list routes of "+name, err)
	}
	routes := make([]Route, 0, len(list))
	for _, nr := range list {
		routes = append(routes, toRoute(nr.Dst, nr.Gw, nr.Src, name))
	}
	return routes, nil
}

func (h *linuxHost) RouteFor(dst netip.Addr) (Route, error) {
	op := "find route to " + dst.String()
	list, err := h.nl.RouteGet(ipOf(dst))
	switch {
	// Unreachable, prohibit and blackhole routes answer with these.
	case errors.Is(err, unix.ENETUNREACH), errors.Is(err, unix.EHOSTUNREACH),
		errors.Is(err, unix.EACCES), errors.Is(err, unix.EINVAL):
		return Route{}, fmt.Errorf("platform: %s: %w", op, ErrNoRoute)
	case err != nil:
		return Route{}, wrapErr(op, err)
	case len(list) == 0:
		return Route{}, fmt.Errorf("platform: %s: %w", op, ErrNoRoute)
	}
	nr := list[0]
	r := toRoute(nil, nr.Gw, nr.Src, h.linkName(nr.LinkIndex))
	r.Dst = netip.PrefixFrom(dst, dst.BitLen())
	return r, nil
}

func (h *linuxHost) DefaultRoutes() ([]Route, error) {
	filter := &netlink.Route{Table: unix.RT_TABLE_UNSPEC}
	var list []netlink.Route
	err := retryDump(func() (err error) {
		list, err = h.nl.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_TABLE)
		return err
	})
	if err != nil {
		return nil, wrapErr("list default routes", err)
	}
	var routes []Route
	for _, nr := range list {
		if nr.Type != unix.RTN_UNICAST || (nr.Dst != nil && prefixOf(nr.Dst).Bits() != 0) {
			continue
		}
		if len(nr.MultiPath) == 0 {
			routes = append(routes, toRoute(nr.Dst, nr.Gw, nr.Src, h.linkName(nr.LinkIndex)))
		}
		for _, nh := range nr.MultiPath {
			routes = append(routes, toRoute(nr.Dst, nh.Gw, nr.Src, h.linkName(nh.LinkIndex)))
		}
	}
	return routes, nil
}

// linkName returns the name of link index, or "" if it has none (any more).
func (h *linuxHost) linkName(index int) string {
	if index == 0 {
		return ""
	}
	l, err := h.nl.LinkByIndex(index)
	if err != nil {
		return ""
	}
	return l.Attrs().Name
}
