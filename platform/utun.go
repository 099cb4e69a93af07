package platform

// The Host of macOS, in portable code so that it is tested on every OS;
// platform_darwin.go gives it the system: the utun driver (wireguard-go's
// tun.CreateTUN), PF_ROUTE, ifconfig(8) and the interface list.
//
// A utun is named by the kernel (utun0, utun1, ...): CreateTUN takes the
// next free one unless asked for a utunN, and the device's Name says which.
// It exists exactly as long as the descriptor that made it, so a vpcvpn that
// dies takes its utun, address and routes with it, and there is never a
// leftover to clean up: Link reports every utun as attached.
//
// Its address is set as tailscale sets its utun's, a point-to-point link
// whose far end is the same /32:
//
//	ifconfig utun5 inet 100.77.0.1/32 100.77.0.1
//	ifconfig utun5 mtu 1500
//	ifconfig utun5 up
//
// and removed with `ifconfig utun5 inet 100.77.0.1/32 -alias` and
// `ifconfig utun5 down`. Routes go through the routing socket (rtmsg_table.go).

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"golang.zx2c4.com/wireguard/tun"
)

// ifconfigPath is ifconfig(8) of macOS.
const ifconfigPath = "/sbin/ifconfig"

// The MTU range CreateTUN and ConfigureLink accept; the kernel may refuse
// more.
const (
	utunMinMTU = 68
	utunMaxMTU = 65535
)

// utunHost is the Host of macOS. Its methods are safe for concurrent use.
type utunHost struct {
	log *slog.Logger
	rt  *rtTable
	run CommandRunner // ifconfig
	// create opens a utun, as tun.CreateTUN: name is "utun" or a utunN.
	create func(name string, mtu int) (tun.Device, error)
	// interfaces lists the network interfaces, as net.Interfaces.
	interfaces func() ([]net.Interface, error)
	// addrs returns the addresses of ifi, or of every interface when ifi is
	// nil, as net.Interface.Addrs and net.InterfaceAddrs.
	addrs func(ifi *net.Interface) ([]net.Addr, error)
}

var _ Host = (*utunHost)(nil)

// newUTUNHost returns a utunHost whose routing table uses sock and the
// interface list of h.interfaces.
func newUTUNHost(h *utunHost, sock routeSocket) *utunHost {
	h.log = h.log.With("component", "platform")
	h.rt = &rtTable{sock: sock, ifIndex: h.ifIndex, ifName: h.ifName}
	return h
}

// utunName returns the name to ask the utun driver for: name itself when
// it is a utun name, else "utun", which takes the next free one.
func utunName(name string) string {
	if isUTUN(name) {
		return name
	}
	return "utun"
}

// isUTUN reports whether name is a utun's: utunN, N without leading zeros.
func isUTUN(name string) bool {
	n, ok := strings.CutPrefix(name, "utun")
	_, err := strconv.ParseUint(n, 10, 16)
	return ok && err == nil && (n == "0" || n[0] != '0')
}

// CreateTUN opens a utun. name is used only when it is a utun name
// (utunN); otherwise the kernel chooses the next free utunN, and the
// device's Name reports it.
func (h *utunHost) CreateTUN(name string, mtu int) (tun.Device, error) {
	want := utunName(name)
	op := "create tun " + want
	if mtu < utunMinMTU || mtu > utunMaxMTU {
		return nil, fmt.Errorf("platform: %s: mtu %d is outside %d-%d", op, mtu, utunMinMTU, utunMaxMTU)
	}
	dev, err := h.create(want, mtu)
	switch {
	case errors.Is(err, errnoEPERM), errors.Is(err, errnoEACCES):
		return nil, fmt.Errorf("platform: %s: %w: %w", op, ErrPermission, err)
	case errors.Is(err, errnoEBUSY):
		return nil, fmt.Errorf("platform: %s: %w: %s is in use by another program", op, ErrLinkExists, want)
	case err != nil:
		return nil, fmt.Errorf("platform: %s: %w", op, err)
	}
	got, err := dev.Name()
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("platform: %s: %w", op, err)
	}
	h.log.Debug("created tun", "name", got, "mtu", mtu)
	return dev, nil
}

// iface finds interface name, or returns ErrLinkNotFound.
func (h *utunHost) iface(name string) (*net.Interface, error) {
	list, err := h.interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	i := slices.IndexFunc(list, func(ifi net.Interface) bool { return ifi.Name == name })
	if i < 0 {
		return nil, ErrLinkNotFound
	}
	return &list[i], nil
}

// findIface is iface with the error of a Host method.
func (h *utunHost) findIface(name string) (*net.Interface, error) {
	ifi, err := h.iface(name)
	if err != nil {
		return nil, fmt.Errorf("platform: find interface %s: %w", name, err)
	}
	return ifi, nil
}

func (h *utunHost) ifIndex(name string) (int, error) {
	ifi, err := h.iface(name)
	if err != nil {
		return 0, err
	}
	return ifi.Index, nil
}

func (h *utunHost) ifName(index int) string {
	list, _ := h.interfaces()
	for _, ifi := range list {
		if ifi.Index == index {
			return ifi.Name
		}
	}
	return ""
}

func (h *utunHost) ConfigureLink(name string, addr netip.Prefix, mtu int) error {
	op := fmt.Sprintf("configure %s with %s mtu %d", name, addr, mtu)
	if !addr.IsValid() || !addr.Addr().Is4() || (mtu != 0 && (mtu < utunMinMTU || mtu > utunMaxMTU)) {
		return fmt.Errorf("platform: %s: invalid address or mtu", op)
	}
	if _, err := h.findIface(name); err != nil {
		return err
	}
	return h.ifconfig(op, ifconfigUpArgv(name, addr, mtu))
}

func (h *utunHost) DeconfigureLink(name string, addr netip.Prefix) error {
	op := fmt.Sprintf("deconfigure %s address %s", name, addr)
	ifi, err := h.findIface(name)
	if errors.Is(err, ErrLinkNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	list, err := h.addrs(ifi)
	if err != nil {
		return fmt.Errorf("platform: %s: %w", op, err)
	}
	has := slices.Contains(netAddrs(list), addr.Addr().Unmap())
	return h.ifconfig(op, ifconfigDownArgv(name, addr, has))
}

// ifconfigUpArgv are the commands of ConfigureLink.
func ifconfigUpArgv(name string, addr netip.Prefix, mtu int) [][]string {
	argv := [][]string{{ifconfigPath, name, "inet", addr.String(), addr.Addr().String()}}
	if mtu != 0 {
		argv = append(argv, []string{ifconfigPath, name, "mtu", strconv.Itoa(mtu)})
	}
	return append(argv, []string{ifconfigPath, name, "up"})
}

// ifconfigDownArgv are the commands of DeconfigureLink, when the link has
// addr or not.
func ifconfigDownArgv(name string, addr netip.Prefix, has bool) [][]string {
	var argv [][]string
	if has {
		argv = append(argv, []string{ifconfigPath, name, "inet", addr.String(), "-alias"})
	}
	return append(argv, []string{ifconfigPath, name, "down"})
}

// ifconfig runs each of argv, stopping at the first that fails.
func (h *utunHost) ifconfig(op string, argv [][]string) error {
	for _, a := range argv {
		out, err := h.run(a...)
		if err == nil {
			continue
		}
		msg := strings.TrimSpace(string(out))
		if strings.Contains(msg, "Operation not permitted") || strings.Contains(msg, "Permission denied") {
			return fmt.Errorf("platform: %s: %w: %s", op, ErrPermission, msg)
		}
		return fmt.Errorf("platform: %s: %s: %w: %s", op, strings.Join(a, " "), err, msg)
	}
	return nil
}

func (h *utunHost) AddRoute(r Route) error { return h.rt.add(r) }

func (h *utunHost) DeleteRoute(r Route) error { return h.rt.delete(r) }

func (h *utunHost) LinkRoutes(name string) ([]Route, error) { return h.rt.linkRoutes(name) }

func (h *utunHost) RouteFor(dst netip.Addr) (Route, error) { return h.rt.routeFor(dst) }

func (h *utunHost) DefaultRoutes() ([]Route, error) { return h.rt.defaultRoutes() }

// Link describes interface name. A utun is a TUN that is always attached:
// it cannot outlive the descriptor that made it.
func (h *utunHost) Link(name string) (Link, error) {
	ifi, err := h.findIface(name)
	if err != nil {
		return Link{}, err
	}
	l := Link{Name: name, Kind: "device"}
	switch {
	case isUTUN(name):
		l.Kind, l.Attached = KindTUN, true
	case ifi.Flags&net.FlagLoopback != 0:
		l.Kind = "loopback"
	case ifi.Flags&net.FlagPointToPoint != 0:
		l.Kind = "point-to-point"
	}
	return l, nil
}

// DeleteLink cannot remove an interface on macOS: a utun goes with the
// program that holds it, the others with their drivers.
func (h *utunHost) DeleteLink(name string) error {
	_, err := h.iface(name)
	if errors.Is(err, ErrLinkNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("platform: delete interface %s: %w", name, err)
	}
	return fmt.Errorf("platform: delete interface %s: macOS removes an interface only with the program or driver that made it: %w", name, errors.ErrUnsupported)
}

func (h *utunHost) LocalAddrs() ([]netip.Addr, error) {
	list, err := h.addrs(nil)
	if err != nil {
		return nil, fmt.Errorf("platform: list addresses: %w", err)
	}
	return netAddrs(list), nil
}

// netAddrs returns the IP addresses of list, IPv4 unmapped.
func netAddrs(list []net.Addr) []netip.Addr {
	var addrs []netip.Addr
	for _, a := range list {
		var ip net.IP
		switch a := a.(type) {
		case *net.IPNet:
			ip = a.IP
		case *net.IPAddr:
			ip = a.IP
		}
		if ip, ok := netip.AddrFromSlice(ip); ok {
			addrs = append(addrs, ip.Unmap())
		}
	}
	return addrs
}

// Close does nothing: utunHost opens a routing socket per request.
func (h *utunHost) Close() error { return nil }
