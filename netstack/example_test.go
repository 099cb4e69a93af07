package netstack_test

import (
	"context"
	"net"
	"net/netip"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/vpcvpn/vpcvpn/netstack"
)

// Example wires a Stack between a TUN device and a dialer. In vpcvpn the
// dialer is (*ssh.Client).DialContext; here it is a plain net.Dialer.
func Example() {
	run := func(ctx context.Context, dev tun.Device, localAddr netip.Addr) error {
		var d net.Dialer
		s, err := netstack.New(netstack.Config{
			Device:  dev,
			Routes:  []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")},
			IsLocal: func(a netip.Addr) bool { return a == localAddr },
			Dial:    d.DialContext,
		})
		if err != nil {
			return err
		}
		s.Start()
		select {
		case <-ctx.Done():
		case <-s.Done():
		}
		return s.Close()
	}
	_ = run
}
