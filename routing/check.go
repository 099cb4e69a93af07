package routing

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vpcvpn/vpcvpn/platform"
)

// The checks NewPlan makes before it changes anything. Each names the range
// at fault, what it would break and what to do instead.

// checkProtect refuses a CIDR that contains one of cfg's protected
// addresses, or the gateway through which the kernel now reaches one.
func checkProtect(h platform.Host, cidrs []netip.Prefix, cfg Config) error {
	for _, a := range cfg.Protect {
		a = a.Unmap()
		if c, ok := containing(cidrs, a); ok {
			return fmt.Errorf("routing: %s contains %s: the tunnel would route its own transport into itself; route narrower ranges", c, cfg.protected(a))
		}
		r, err := h.RouteFor(a)
		if errors.Is(err, platform.ErrNoRoute) {
			continue // nothing to capture; connecting will fail with its own error
		}
		if err != nil {
			return fmt.Errorf("routing: %w", err)
		}
		if c, ok := containing(cidrs, r.Gateway); ok {
			return fmt.Errorf("routing: %s contains %s, the gateway to %s: the tunnel would route its own transport into itself; route narrower ranges", c, r.Gateway, cfg.protected(a))
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

// protected names the protected address a for an error: "the bastion
// 203.0.113.10", or "10.0.0.5, the address of ssm.eu-west-1.amazonaws.com".
func (cfg Config) protected(a netip.Addr) string {
	if name, ok := cfg.ProtectNames[a]; ok {
		return fmt.Sprintf("%s, the address of %s", a, name)
	}
	return "the bastion " + a.String()
}
