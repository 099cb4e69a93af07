package platformtest_test

import (
	"fmt"
	"net/netip"

	"github.com/vpcvpn/vpcvpn/platform"
	"github.com/vpcvpn/vpcvpn/platform/platformtest"
)

func Example() {
	h := platformtest.New()
	dev, _ := h.CreateTUN("vpcvpn0", 1500)
	addr := netip.MustParsePrefix("100.77.0.1/32")
	h.ConfigureLink("vpcvpn0", addr, 0)
	h.AddRoute(platform.Route{Dst: netip.MustParsePrefix("10.0.0.0/16"), Dev: "vpcvpn0", Src: addr.Addr()})
	h.FailMatch("route add 10.1.", fmt.Errorf("injected"))
	h.AddRoute(platform.Route{Dst: netip.MustParsePrefix("10.1.0.0/16"), Dev: "vpcvpn0", Src: addr.Addr()})
	dev.Close()
	for _, line := range h.Transcript() {
		fmt.Println(line)
	}
	fmt.Println(h.Routes())
	// Output:
	// create-tun vpcvpn0 mtu 1500
	// link configure vpcvpn0 addr 100.77.0.1/32 up
	// route add 10.0.0.0/16 dev vpcvpn0 src 100.77.0.1
	// route add 10.1.0.0/16 dev vpcvpn0 src 100.77.0.1: injected
	// tun close vpcvpn0
	// []
}
