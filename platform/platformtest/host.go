package platformtest

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vpcvpn/vpcvpn/platform"
	"golang.zx2c4.com/wireguard/tun"
)

// errBadSrc is what the kernel answers (EINVAL) to a route whose preferred
// source is not an address of this machine.
var errBadSrc = errors.New("invalid preferred source: not a local address")

// CreateTUN makes link name with a tuntest.ChannelTUN behind it (see TUN).
// Closing the device removes the link and its routes, as on Linux.
func (h *Host) CreateTUN(name string, mtu int) (tun.Device, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var dev *tunDevice
	err := h.do(fmt.Sprintf("create-tun %s mtu %d", name, mtu), func() error {
		if l, ok := h.links[name]; ok {
			return fmt.Errorf("%w: %s is a %s link", platform.ErrLinkExists, name, l.info.Kind)
		}
		dev = newTUNDevice(h, name, mtu)
		h.links[name] = &link{info: platform.Link{Name: name, Kind: platform.KindTUN, Attached: true}, tun: dev}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return dev, nil
}

// ConfigureLink records "link configure NAME addr A [mtu N] up" and gives
// the link the address.
func (h *Host) ConfigureLink(name string, addr netip.Prefix, mtu int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	line := fmt.Sprintf("link configure %s addr %s up", name, addr)
	if mtu != 0 {
		line = fmt.Sprintf("link configure %s addr %s mtu %d up", name, addr, mtu)
	}
	return h.do(line, func() error {
		l, ok := h.links[name]
		if !ok {
			return platform.ErrLinkNotFound
		}
		if !slices.Contains(l.addrs, addr) {
			l.addrs = append(l.addrs, addr)
		}
		return nil
	})
}

// DeconfigureLink records "link deconfigure NAME addr A" and removes the
// address; a missing link or address is not an error.
func (h *Host) DeconfigureLink(name string, addr netip.Prefix) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.do(fmt.Sprintf("link deconfigure %s addr %s", name, addr), func() error {
		if l, ok := h.links[name]; ok {
			l.addrs = slices.DeleteFunc(l.addrs, func(p netip.Prefix) bool { return p == addr })
		}
		return nil
	})
}

// AddRoute records "route add ROUTE". Like the kernel it fails for a
// missing link, a source that is no local address, or a route to the same
// destination (platform.ErrRouteExists).
func (h *Host) AddRoute(r platform.Route) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.do("route add "+r.String(), func() error {
		if _, ok := h.links[r.Dev]; r.Dev != "" && !ok {
			return platform.ErrLinkNotFound
		}
		if r.Src.IsValid() && !slices.Contains(h.localAddrs(), r.Src) {
			return errBadSrc
		}
		if slices.ContainsFunc(h.routes, func(o platform.Route) bool { return o.Dst == r.Dst }) {
			return platform.ErrRouteExists
		}
		h.routes = append(h.routes, r)
		return nil
	})
}

// DeleteRoute records "route del ROUTE" and removes an equal route, if
// any.
func (h *Host) DeleteRoute(r platform.Route) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.do("route del "+r.String(), func() error {
		h.routes = slices.DeleteFunc(h.routes, func(o platform.Route) bool { return o == r })
		return nil
	})
}

// DeleteLink records "link delete NAME" and removes the link and its
// routes, if any.
func (h *Host) DeleteLink(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.do("link delete "+name, func() error {
		h.removeLink(name)
		return nil
	})
}

// removeLink deletes link name with its routes, as the kernel does; h.mu is
// held.
func (h *Host) removeLink(name string) {
	delete(h.links, name)
	h.routes = slices.DeleteFunc(h.routes, func(r platform.Route) bool { return r.Dev == name })
}
