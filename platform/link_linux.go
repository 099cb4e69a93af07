package platform

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func (h *linuxHost) ConfigureLink(name string, addr netip.Prefix, mtu int) error {
	op := fmt.Sprintf("configure %s with %s mtu %d", name, addr, mtu)
	if !addr.IsValid() || (mtu != 0 && (mtu < minMTU || mtu > maxMTU)) {
		return fmt.Errorf("platform: %s: invalid address or mtu", op)
	}
	l, err := h.linkByName(name)
	if err != nil {
		return err
	}
	if err := h.nl.AddrReplace(l, &netlink.Addr{IPNet: ipNet(addr)}); err != nil {
		return wrapErr(op, err)
	}
	if mtu != 0 {
		if err := h.nl.LinkSetMTU(l, mtu); err != nil {
			return wrapErr(op, err)
		}
	}
	if err := h.nl.LinkSetUp(l); err != nil {
		return wrapErr(op, err)
	}
	return nil
}

func (h *linuxHost) DeconfigureLink(name string, addr netip.Prefix) error {
	op := fmt.Sprintf("deconfigure %s address %s", name, addr)
	l, err := h.linkByName(name)
	if errors.Is(err, ErrLinkNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	err = h.nl.AddrDel(l, &netlink.Addr{IPNet: ipNet(addr)})
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !isLinkNotFound(err) {
		return wrapErr(op, err)
	}
	if err := h.nl.LinkSetDown(l); err != nil && !isLinkNotFound(err) {
		return wrapErr(op, err)
	}
	return nil
}

func (h *linuxHost) Link(name string) (Link, error) {
	l, err := h.linkByName(name)
	if err != nil {
		return Link{}, err
	}
	info := Link{Name: name, Kind: l.Type()}
	if t, ok := l.(*netlink.Tuntap); ok {
		switch t.Mode {
		case netlink.TUNTAP_MODE_TUN:
			info.Kind = KindTUN
		case netlink.TUNTAP_MODE_TAP:
			info.Kind = "tap"
		}
		// A TUN that is not persistent exists only while held. The kernel
		// reports the queue count only for multi-queue TUNs, so for others
		// the carrier, on while held, is the sign; it is not reported while
		// the link is down.
		up := l.Attrs().RawFlags&unix.IFF_LOWER_UP != 0
		info.Attached = t.NonPersist || t.Queues > 0 || up
	}
	return info, nil
}

func (h *linuxHost) DeleteLink(name string) error {
	l, err := h.linkByName(name)
	if errors.Is(err, ErrLinkNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := h.nl.LinkDel(l); err != nil && !isLinkNotFound(err) {
		return wrapErr("delete interface "+name, err)
	}
	return nil
}

func (h *linuxHost) LocalAddrs() ([]netip.Addr, error) {
	var list []netlink.Addr
	err := retryDump(func() (err error) {
		list, err = h.nl.AddrList(nil, netlink.FAMILY_ALL)
		return err
	})
	if err != nil {
		return nil, wrapErr("list addresses", err)
	}
	addrs := make([]netip.Addr, 0, len(list))
	for _, a := range list {
		if ip := addrOf(a.IP); ip.IsValid() {
			addrs = append(addrs, ip)
		}
	}
	return addrs, nil
}
