package routing

import (
	"fmt"
	"net/netip"
	"slices"
)

// tunAddrPools are where tunAddr looks for a free TUN address, in order
// (see NewPlan).
var tunAddrPools = []netip.Prefix{
	netip.MustParsePrefix("100.77.0.0/24"),
	netip.MustParsePrefix("198.18.77.0/24"),
}

// tunAddr checks the TUN address the caller chose, or chooses one: outside
// every CIDR, not an address of this machine, not protected.
func tunAddr(want netip.Addr, cidrs []netip.Prefix, local, protect []netip.Addr) (netip.Addr, error) {
	if want.IsValid() {
		return want.Unmap(), checkTUNAddr(want.Unmap(), cidrs, local, protect)
	}
	for _, pool := range tunAddrPools {
		for a := pool.Addr().Next(); pool.Contains(a.Next()); a = a.Next() {
			if checkTUNAddr(a, cidrs, local, protect) == nil {
				return a, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("routing: no free TUN address in %v: choose one outside the routed ranges", tunAddrPools)
}

func checkTUNAddr(a netip.Addr, cidrs []netip.Prefix, local, protect []netip.Addr) error {
	if !a.Is4() || a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() {
		return fmt.Errorf("routing: TUN address %s must be a unicast IPv4 address", a)
	}
	if c, ok := containing(cidrs, a); ok {
		return fmt.Errorf("routing: TUN address %s is inside %s: choose one outside every routed range", a, c)
	}
	if slices.Contains(protect, a) {
		return fmt.Errorf("routing: TUN address %s is the bastion's", a)
	}
	if slices.ContainsFunc(local, func(l netip.Addr) bool { return l.Unmap() == a }) {
		return fmt.Errorf("routing: TUN address %s is already an address of this machine: choose another", a)
	}
	return nil
}
