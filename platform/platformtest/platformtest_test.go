package platformtest

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vpcvpn/vpcvpn/platform"
)

func TestHost(t *testing.T) {
	h := New()
	h.AddLink(platform.Link{Name: "eth0", Kind: "device"})
	h.SetLocalAddrs(netip.MustParseAddr("192.168.1.23"))
	h.AddSystemRoute(platform.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Dev: "eth0", Gateway: netip.MustParseAddr("192.168.1.1")})
	boom := errors.New("boom")
	h.FailNth(4, boom)

	dev, err := h.CreateTUN("vpcvpn0", 1400)
	if err != nil {
		t.Fatal(err)
	}
	if name, _ := dev.Name(); name != "vpcvpn0" {
		t.Errorf("Name() = %q", name)
	}
	if h.TUN("vpcvpn0") == nil {
		t.Errorf("TUN(vpcvpn0) = nil")
	}
	if _, err := h.CreateTUN("eth0", 1500); !errors.Is(err, platform.ErrLinkExists) {
		t.Errorf("CreateTUN(eth0) = %v, want ErrLinkExists", err)
	}
	addr := netip.MustParsePrefix("100.77.0.1/32")
	r := platform.Route{Dst: netip.MustParsePrefix("10.0.0.0/16"), Dev: "vpcvpn0", Src: addr.Addr()}
	if err := h.AddRoute(r); err == nil {
		t.Errorf("AddRoute with a source that is no local address succeeded")
	}
	if err := h.ConfigureLink("vpcvpn0", addr, 0); !errors.Is(err, boom) {
		t.Errorf("4th call = %v, want the injected error", err)
	}
	for _, err := range []error{h.ConfigureLink("vpcvpn0", addr, 0), h.AddRoute(r)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, err := h.RouteFor(netip.MustParseAddr("10.0.3.4")); err != nil || got.Dev != "vpcvpn0" {
		t.Errorf("RouteFor(10.0.3.4) = %v, %v", got, err)
	}
	if got, err := h.RouteFor(netip.MustParseAddr("8.8.8.8")); err != nil || got.String() != "8.8.8.8/32 via 192.168.1.1 dev eth0" {
		t.Errorf("RouteFor(8.8.8.8) = %v, %v", got, err)
	}
	if got, _ := h.LinkRoutes("vpcvpn0"); !slices.Equal(got, []platform.Route{r}) {
		t.Errorf("LinkRoutes = %v", got)
	}
	dev.Close()
	dev.Close()
	if got, _ := h.LinkRoutes("vpcvpn0"); got != nil {
		t.Errorf("routes after close: %v", got)
	}
	want := []string{
		"create-tun vpcvpn0 mtu 1400",
		"create-tun eth0 mtu 1500: network interface name already in use: eth0 is a device link",
		"route add 10.0.0.0/16 dev vpcvpn0 src 100.77.0.1: invalid preferred source: not a local address",
		"link configure vpcvpn0 addr 100.77.0.1/32 up: boom",
		"link configure vpcvpn0 addr 100.77.0.1/32 up",
		"route add 10.0.0.0/16 dev vpcvpn0 src 100.77.0.1",
		"tun close vpcvpn0",
	}
	if got := h.Transcript(); !slices.Equal(got, want) {
		t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestResolver(t *testing.T) {
	h := New()
	d := platform.DNS{Interface: "vpcvpn0", Server: netip.MustParseAddr("100.77.0.53"), Domains: []string{"compute.internal"}}
	fallback := []netip.Addr{netip.MustParseAddr("192.168.1.1")}
	h.SetDNSResult(platform.DNSResult{Mode: platform.DNSModeResolvConf, Fallback: fallback})
	if _, err := h.SetDNS(platform.DNS{Interface: "vpcvpn0", Server: d.Server}); err == nil {
		t.Errorf("SetDNS without domains succeeded")
	}
	res, err := h.SetDNS(d)
	if err != nil || res.Mode != platform.DNSModeResolvConf || !slices.Equal(res.Fallback, fallback) {
		t.Errorf("SetDNS = %+v, %v", res, err)
	}
	if got, ok := h.DNS(); !ok || got.Server != d.Server {
		t.Errorf("DNS() = %+v, %v", got, ok)
	}
	if _, err := h.SetDNS(d); err == nil {
		t.Errorf("second SetDNS succeeded")
	}
	h.FailMatch("dns revert", errors.New("boom"))
	if err := h.RevertDNS(); err == nil {
		t.Errorf("RevertDNS did not fail as told")
	}
	if err := h.RevertDNS(); err != nil {
		t.Errorf("RevertDNS: %v", err)
	}
	if _, ok := h.DNS(); ok {
		t.Errorf("DNS set after RevertDNS")
	}
	if err := h.CleanupDNS(); err != nil {
		t.Errorf("CleanupDNS: %v", err)
	}
	want := []string{
		"dns set vpcvpn0 server 100.77.0.53 domains : platform: split DNS: no domains: give at least one",
		"dns set vpcvpn0 server 100.77.0.53 domains compute.internal",
		"dns set vpcvpn0 server 100.77.0.53 domains compute.internal: split DNS is set already",
		"dns revert vpcvpn0: boom",
		"dns revert vpcvpn0",
		"dns cleanup",
	}
	if got := h.Transcript(); !slices.Equal(got, want) {
		t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
