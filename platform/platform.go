package platform

import (
	"fmt"
	"net/netip"
	"strings"

	"golang.zx2c4.com/wireguard/tun"
)

// Host is everything vpcvpn changes or asks on the operating system. Its
// methods are safe for concurrent use.
type Host interface {
	// CreateTUN creates the TUN device name with the given MTU and returns
	// it. It refuses a name that is already in use, whatever kind of link
	// holds it. On Linux the device uses batched I/O and segmentation
	// offload where the kernel has them. On macOS the kernel names the
	// device: name is used only if it is a utun name (utunN), otherwise the
	// next free utunN is taken. Either way the device's Name is the link
	// name for the other methods.
	CreateTUN(name string, mtu int) (tun.Device, error)

	// ConfigureLink gives link name the address addr (vpcvpn uses a /32),
	// sets its MTU unless mtu is 0, and brings it up. Configuring the same
	// address again is not an error.
	ConfigureLink(name string, addr netip.Prefix, mtu int) error

	// DeconfigureLink undoes ConfigureLink: it removes addr from link name
	// and takes the link down. A missing link or address is not an error.
	DeconfigureLink(name string, addr netip.Prefix) error

	// AddRoute installs r in the main routing table. A route to r.Dst that
	// already exists (another VPN's, say) is not replaced: AddRoute fails
	// with ErrRouteExists.
	AddRoute(r Route) error

	// DeleteRoute removes r. A route or link that is already gone is not an
	// error, so deleting twice is safe.
	DeleteRoute(r Route) error

	// LinkRoutes returns the IPv4 routes of the main table bound to link
	// name, or ErrLinkNotFound.
	LinkRoutes(name string) ([]Route, error)

	// RouteFor returns the route the kernel picks now for packets to dst,
	// with Dst set to dst as a single-address prefix. It returns
	// ErrNoRoute when dst is unreachable.
	RouteFor(dst netip.Addr) (Route, error)

	// DefaultRoutes returns the IPv4 default routes of every routing table,
	// one per next hop.
	DefaultRoutes() ([]Route, error)

	// Link describes link name, or returns ErrLinkNotFound.
	Link(name string) (Link, error)

	// DeleteLink removes link name. A missing link is not an error.
	DeleteLink(name string) error

	// LocalAddrs returns every address of every link of this machine,
	// loopback included, IPv4 addresses unmapped.
	LocalAddrs() ([]netip.Addr, error)

	// Close releases the Host's own resources (netlink sockets). It changes
	// nothing on the system.
	Close() error
}

// Route is one entry of a routing table.
type Route struct {
	Dst     netip.Prefix
	Dev     string     // the link the route is bound to; empty if none
	Gateway netip.Addr // the next hop; zero for a route on the link
	Src     netip.Addr // the preferred source address; zero if none
}

// String formats r the way `ip route` does, e.g.
// "10.0.0.0/16 dev vpcvpn0 src 100.77.0.1".
func (r Route) String() string {
	var b strings.Builder
	b.WriteString(r.Dst.String())
	if r.Gateway.IsValid() {
		fmt.Fprintf(&b, " via %s", r.Gateway)
	}
	if r.Dev != "" {
		fmt.Fprintf(&b, " dev %s", r.Dev)
	}
	if r.Src.IsValid() {
		fmt.Fprintf(&b, " src %s", r.Src)
	}
	return b.String()
}

// KindTUN is the Link.Kind of a TUN device.
const KindTUN = "tun"

// Link describes a network interface.
type Link struct {
	Name string
	// Kind is KindTUN for a TUN device, otherwise the kernel's name for
	// the link type ("tap", "dummy", "veth", "device" for hardware...).
	Kind string
	// Attached reports, for a TUN, whether some process holds it open. A
	// TUN that exists without one was made persistent and is a leftover.
	// On Linux a persistent TUN that is held but down reports false: the
	// kernel does not say.
	Attached bool
}
