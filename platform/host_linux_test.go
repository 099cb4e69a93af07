package platform

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLinuxTUNRoutes(t *testing.T) {
	h, ns, root := newTestHost(t)
	const name = "vpcvpntest0"
	wantErrIs(t, "Link before CreateTUN", errOnly(h.Link(name)), ErrLinkNotFound)

	dev, err := h.CreateTUN(name, 1400)
	if err != nil {
		t.Fatalf("CreateTUN: %v", err)
	}
	defer dev.Close()
	checkNotInRoot(t, root, name)
	if l, err := h.Link(name); err != nil || l != (Link{Name: name, Kind: KindTUN, Attached: true}) {
		t.Errorf("Link = %+v, %v", l, err)
	}
	wantErrIs(t, "CreateTUN again", errOnly(h.CreateTUN(name, 1400)), ErrLinkExists)

	addr := netip.MustParsePrefix("100.77.0.1/32")
	if err := h.ConfigureLink(name, addr, 1380); err != nil {
		t.Fatalf("ConfigureLink: %v", err)
	}
	if err := h.ConfigureLink(name, addr, 0); err != nil {
		t.Fatalf("ConfigureLink again: %v", err)
	}
	if got := ipIn(t, ns, "-4", "-o", "addr", "show", "dev", name); !strings.Contains(got, "inet 100.77.0.1/32") {
		t.Errorf("address of %s:\n%s", name, got)
	}
	routes := []Route{
		{Dst: netip.MustParsePrefix("10.0.0.0/16"), Dev: name, Src: addr.Addr()},
		{Dst: netip.MustParsePrefix("172.31.7.9/32"), Dev: name, Src: addr.Addr()},
	}
	for _, r := range routes {
		if err := h.AddRoute(r); err != nil {
			t.Fatalf("AddRoute(%s): %v", r, err)
		}
	}
	wantErrIs(t, "AddRoute twice", h.AddRoute(routes[0]), ErrRouteExists)
	want := "10.0.0.0/16 proto static scope link src 100.77.0.1 \n172.31.7.9 proto static scope link src 100.77.0.1"
	if got := ipIn(t, ns, "-4", "route", "show", "dev", name); got != want {
		t.Errorf("ip route show dev %s:\n%s\nwant:\n%s", name, got, want)
	}
	if got, err := h.LinkRoutes(name); err != nil || !slices.Equal(got, routes) {
		t.Errorf("LinkRoutes = %v, %v; want %v", got, err, routes)
	}
	if got, err := h.RouteFor(netip.MustParseAddr("10.0.3.4")); err != nil || got != (Route{Dst: netip.MustParsePrefix("10.0.3.4/32"), Dev: name, Src: addr.Addr()}) {
		t.Errorf("RouteFor(10.0.3.4) = %v, %v", got, err)
	}
	if addrs, err := h.LocalAddrs(); err != nil || !slices.Contains(addrs, addr.Addr()) {
		t.Errorf("LocalAddrs = %v, %v; want %s among them", addrs, err, addr.Addr())
	}

	for range 2 { // the second time finds nothing to delete
		for _, r := range routes {
			if err := h.DeleteRoute(r); err != nil {
				t.Fatalf("DeleteRoute(%s): %v", r, err)
			}
		}
		if err := h.DeconfigureLink(name, addr); err != nil {
			t.Fatalf("DeconfigureLink: %v", err)
		}
	}
	if got := ipIn(t, ns, "-4", "route", "show", "dev", name); got != "" {
		t.Errorf("routes left on %s:\n%s", name, got)
	}
	if got := ipIn(t, ns, "-4", "addr", "show", "dev", name); strings.Contains(got, "inet ") {
		t.Errorf("address left on %s:\n%s", name, got)
	}
}

// TestLinuxTUNCloseRemovesLink: what makes a crash safe on Linux.
func TestLinuxTUNCloseRemovesLink(t *testing.T) {
	h, ns, _ := newTestHost(t)
	const name = "vpcvpntest0"
	dev, err := h.CreateTUN(name, 1500)
	if err != nil {
		t.Fatal(err)
	}
	r := Route{Dst: netip.MustParsePrefix("10.0.0.0/16"), Dev: name, Src: netip.MustParseAddr("100.77.0.1")}
	if err := h.ConfigureLink(name, netip.PrefixFrom(r.Src, 32), 0); err != nil {
		t.Fatal(err)
	}
	if err := h.AddRoute(r); err != nil {
		t.Fatal(err)
	}
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	wantErrIs(t, "Link after Close", errOnly(h.Link(name)), ErrLinkNotFound)
	if got := ipIn(t, ns, "-4", "route", "show", "10.0.0.0/16"); got != "" {
		t.Errorf("route left after close: %s", got)
	}
	if err := h.DeleteRoute(r); err != nil {
		t.Errorf("DeleteRoute after the link went: %v", err)
	}
	if err := h.DeconfigureLink(name, netip.PrefixFrom(r.Src, 32)); err != nil {
		t.Errorf("DeconfigureLink after the link went: %v", err)
	}
	wantErrIs(t, "LinkRoutes after close", errOnly(h.LinkRoutes(name)), ErrLinkNotFound)
}

func TestLinuxGateways(t *testing.T) {
	h, ns, _ := newTestHost(t)
	wantErrIs(t, "RouteFor with no routes", errOnly(h.RouteFor(netip.MustParseAddr("8.8.8.8"))), ErrNoRoute)
	ipIn(t, ns, "link", "add", "eth9", "type", "bridge") // not every kernel has dummy
	ipIn(t, ns, "addr", "add", "192.168.50.2/24", "dev", "eth9")
	ipIn(t, ns, "link", "set", "eth9", "up")
	ipIn(t, ns, "route", "add", "default", "via", "192.168.50.1")
	ipIn(t, ns, "route", "add", "default", "via", "192.168.50.254", "table", "100")
	ipIn(t, ns, "route", "add", "unreachable", "203.0.113.0/24")

	gw := Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Dev: "eth9", Gateway: netip.MustParseAddr("192.168.50.1")}
	gw100 := gw
	gw100.Gateway = netip.MustParseAddr("192.168.50.254")
	if got, err := h.DefaultRoutes(); err != nil || !slices.Equal(got, []Route{gw, gw100}) && !slices.Equal(got, []Route{gw100, gw}) {
		t.Errorf("DefaultRoutes = %v, %v; want %v and %v", got, err, gw, gw100)
	}
	want := Route{Dst: netip.MustParsePrefix("8.8.8.8/32"), Dev: "eth9", Gateway: gw.Gateway, Src: netip.MustParseAddr("192.168.50.2")}
	if got, err := h.RouteFor(want.Dst.Addr()); err != nil || got != want {
		t.Errorf("RouteFor(8.8.8.8) = %v, %v; want %v", got, err, want)
	}
	wantErrIs(t, "RouteFor unreachable", errOnly(h.RouteFor(netip.MustParseAddr("203.0.113.5"))), ErrNoRoute)
	if l, err := h.Link("eth9"); err != nil || l != (Link{Name: "eth9", Kind: "bridge"}) {
		t.Errorf("Link(eth9) = %+v, %v", l, err)
	}
	err := errOnly(h.CreateTUN("eth9", 1500))
	if want := "platform: create tun eth9: network interface name already in use: eth9 is a bridge link, not a TUN; choose another name"; err == nil || err.Error() != want {
		t.Errorf("CreateTUN(eth9) = %v\nwant %s", err, want)
	}
}

func TestLinuxLeftoverTUN(t *testing.T) {
	h, ns, _ := newTestHost(t)
	const name = "vpcvpntest1"
	ipIn(t, ns, "tuntap", "add", "dev", name, "mode", "tun")
	if l, err := h.Link(name); err != nil || l != (Link{Name: name, Kind: KindTUN}) {
		t.Errorf("Link = %+v, %v; want a TUN no one holds", l, err)
	}
	err := errOnly(h.CreateTUN(name, 1500))
	if want := "platform: create tun vpcvpntest1: network interface name already in use: vpcvpntest1 is a leftover persistent TUN; remove it with: sudo ip link delete vpcvpntest1"; err == nil || err.Error() != want {
		t.Errorf("CreateTUN = %v\nwant %s", err, want)
	}
	for range 2 {
		if err := h.DeleteLink(name); err != nil {
			t.Fatalf("DeleteLink: %v", err)
		}
	}
	wantErrIs(t, "Link after DeleteLink", errOnly(h.Link(name)), ErrLinkNotFound)
}

func TestCreateTUNBadArgs(t *testing.T) {
	h := &linuxHost{} // never reaches netlink
	tests := []struct {
		name, link string
		mtu        int
		want       string
	}{
		{name: "empty name", link: "", mtu: 1500, want: `platform: create tun : invalid interface name "": use 1-15 letters, digits, '-' or '_'`},
		{name: "long name", link: "vpcvpn-much-too-long", mtu: 1500, want: `platform: create tun vpcvpn-much-too-long: invalid interface name "vpcvpn-much-too-long": use 1-15 letters, digits, '-' or '_'`},
		{name: "slash", link: "a/b", mtu: 1500, want: `platform: create tun a/b: invalid interface name "a/b": use 1-15 letters, digits, '-' or '_'`},
		{name: "mtu", link: "vpcvpn0", mtu: 70000, want: "platform: create tun vpcvpn0: mtu 70000 is outside 68-65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := errOnly(h.CreateTUN(tt.link, tt.mtu))
			if err == nil || err.Error() != tt.want {
				t.Errorf("CreateTUN = %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestWrapErr(t *testing.T) {
	err := wrapErr("add route 10.0.0.0/16 dev vpcvpn0", unix.EPERM)
	want := "platform: add route 10.0.0.0/16 dev vpcvpn0: vpcvpn must run as root (sudo vpcvpn up ...): operation not permitted"
	if !errors.Is(err, ErrPermission) || !errors.Is(err, unix.EPERM) || err.Error() != want {
		t.Errorf("wrapErr(EPERM) = %v\nwant %s", err, want)
	}
}

func errOnly[T any](_ T, err error) error { return err }
