package platform

// Tests against the Mac they run on; CI (Linux) only compiles them. The
// read-only ones need no privilege. TestMacUTUN changes the system (a utun,
// a route to 198.18.99.0/24, both removed at the end) and runs only as root
// with VPCVPN_TEST_MAC=1:
//
//	sudo VPCVPN_TEST_MAC=1 go test -run Mac -v ./platform/

import (
	"errors"
	"net/netip"
	"os"
	"testing"

	"golang.org/x/net/route"
	"golang.org/x/sys/unix"
)

// TestMacDumpMatchesXNet: this package's parser reads the live routing
// table as golang.org/x/net/route does.
func TestMacDumpMatchesXNet(t *testing.T) {
	b, err := pfRoute{}.dump()
	if err != nil {
		t.Fatal(err)
	}
	ours, err := parseRtMsgs(b)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := route.ParseRIB(route.RIBTypeRoute, b)
	if err != nil {
		t.Fatal(err)
	}
	var xmsgs []*route.RouteMessage
	for _, m := range theirs {
		if rm, ok := m.(*route.RouteMessage); ok {
			xmsgs = append(xmsgs, rm)
		}
	}
	if len(ours) != len(xmsgs) || len(ours) == 0 {
		t.Fatalf("%d messages, x/net/route %d", len(ours), len(xmsgs))
	}
	for i, m := range ours {
		x := xmsgs[i]
		if int(m.index) != x.Index || int(m.flags) != x.Flags {
			t.Errorf("message %d: %s; x/net: index %d flags %#x", i, &m, x.Index, x.Flags)
		}
		if a, ok := x.Addrs[unix.RTAX_DST].(*route.Inet4Addr); ok && m.sa[rtaxDst].ip != netip.AddrFrom4(a.IP) {
			t.Errorf("message %d: %s; x/net DST %v", i, &m, a.IP)
		}
		if a, ok := x.Addrs[unix.RTAX_GATEWAY].(*route.LinkAddr); ok && (m.sa[rtaxGateway].index != uint16(a.Index) || m.sa[rtaxGateway].name != a.Name) {
			t.Errorf("message %d: %s; x/net GATEWAY %+v", i, &m, a)
		}
	}
}

func TestMacRouteFor(t *testing.T) {
	h, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := h.RouteFor(netip.MustParseAddr("127.0.0.1"))
	if err != nil || r.Dev != "lo0" {
		t.Errorf("RouteFor(127.0.0.1) = %v, %v; want lo0", r, err)
	}
	defaults, err := h.DefaultRoutes()
	t.Logf("default routes: %v, %v", defaults, err)
	if err != nil {
		t.Error(err)
	}
	for _, d := range defaults {
		if !d.Gateway.IsValid() {
			continue
		}
		r, err := h.RouteFor(d.Gateway)
		t.Logf("RouteFor(%s) = %v, %v", d.Gateway, r, err)
	}
}

func TestMacUTUN(t *testing.T) {
	if os.Getenv("VPCVPN_TEST_MAC") != "1" || os.Geteuid() != 0 {
		t.Skip("changes the system: run as root with VPCVPN_TEST_MAC=1")
	}
	h, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := h.CreateTUN("vpcvpn-test", 1400)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	name, err := dev.Name()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("created %s", name)
	if l, err := h.Link(name); err != nil || l.Kind != KindTUN || !l.Attached {
		t.Errorf("Link(%s) = %+v, %v", name, l, err)
	}
	addr := netip.MustParsePrefix("198.18.98.1/32")
	if err := h.ConfigureLink(name, addr, 0); err != nil {
		t.Fatal(err)
	}
	defer h.DeconfigureLink(name, addr)
	r := Route{Dst: netip.MustParsePrefix("198.18.99.0/24"), Dev: name, Src: addr.Addr()}
	if err := h.AddRoute(r); err != nil {
		t.Fatal(err)
	}
	if err := h.AddRoute(r); !errors.Is(err, ErrRouteExists) {
		t.Errorf("second AddRoute: %v, want ErrRouteExists", err)
	}
	got, err := h.RouteFor(netip.MustParseAddr("198.18.99.7"))
	if err != nil || got.Dev != name || got.Src != addr.Addr() {
		t.Errorf("RouteFor(198.18.99.7) = %v, %v; want dev %s src %s", got, err, name, addr.Addr())
	}
	if routes, err := h.LinkRoutes(name); err != nil || len(routes) == 0 {
		t.Errorf("LinkRoutes(%s) = %v, %v", name, routes, err)
	}
	if err := h.DeleteRoute(r); err != nil {
		t.Error(err)
	}
	if err := h.DeleteRoute(r); err != nil {
		t.Errorf("second DeleteRoute: %v", err)
	}
	if got, err := h.RouteFor(netip.MustParseAddr("198.18.99.7")); err == nil && got.Dev == name {
		t.Errorf("the route is still there after DeleteRoute: %v", got)
	}
	if err := h.DeconfigureLink(name, addr); err != nil {
		t.Error(err)
	}
}
