package routing

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vpcvpn/vpcvpn/platform"
)

// The checks NewPlan makes before it changes anything. Each names the range
// at fault, what it would break and what to do instead.

// checkProtect refuses a CIDR that contains a protected address, or the
// gateway through which the kernel now reaches one.
func checkProtect(h platform.Host, cidrs []netip.Prefix, protect []netip.Addr) error {
	for _, a := range protect {
		a = a.Unmap()
		if c, ok := containing(cidrs, a); ok {
			return fmt.Errorf("routing: %s contains the bastion %s: the tunnel would route its own transport into itself; route narrower ranges", c, a)
		}
		r, err := h.RouteFor(a)
		if errors.Is(err, platform.ErrNoRoute) {
			continue // nothing to capture; connecting will fail with its own error
		}
		if err != nil {
			return fmt.Errorf("routing: %w", err)
		}
		if c, ok := containing(cidrs, r.Gateway); ok {
			return fmt.Errorf("routing: %s contains %s, the gateway to the bastion %s: the tunnel would route its own transport into itself; route narrower ranges", c, r.Gateway, a)
		}
	}
	return nil
}

// checkGateways refuses a CIDR that contains a default gateway.
func checkGateways(h platform.Host, cidrs []netip.Prefix) error {
	defaults, err := h.DefaultRoutes()
	if err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	for _, r := range defaults {
		if c, ok := containing(cidrs, r.Gateway); ok {
			return fmt.Errorf("routing: %s contains your default gateway %s (dev %s): this machine would lose its network; route narrower ranges", c, r.Gateway, r.Dev)
		}
	}
	return nil
}

// checkLocal refuses a CIDR that contains an address of this machine: the
// network it is on (a 10.0.5.0/24 Wi-Fi inside 10.0.0.0/16, say) would be
// routed into the tunnel, or would shadow that part of the VPC.
func checkLocal(cidrs []netip.Prefix, local []netip.Addr) error {
	for _, a := range local {
		a = a.Unmap()
		if c, ok := containing(cidrs, a); ok && !a.IsLoopback() {
			return fmt.Errorf("routing: %s contains %s, an address of this machine: the network it is on overlaps the range; route narrower ranges that leave it out", c, a)
		}
	}
	return nil
}

// containing returns the CIDR that contains a, if any.
func containing(cidrs []netip.Prefix, a netip.Addr) (netip.Prefix, bool) {
	a = a.Unmap()
	for _, c := range cidrs {
		if a.IsValid() && c.Contains(a) {
			return c, true
		}
	}
	return netip.Prefix{}, false
}
