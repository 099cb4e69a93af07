package routing

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ParseCIDRs parses the ranges to route, one IPv4 CIDR per argument, in the
// order given. Its errors name the bad argument and say how to fix it.
func ParseCIDRs(args []string) ([]netip.Prefix, error) {
	ps := make([]netip.Prefix, 0, len(args))
	for _, arg := range args {
		p, err := parseCIDR(arg)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	if err := checkCIDRs(ps); err != nil {
		return nil, err
	}
	return ps, nil
}

func parseCIDR(arg string) (netip.Prefix, error) {
	if !strings.Contains(arg, "/") {
		if a, err := netip.ParseAddr(arg); err == nil && a.Is4() {
			return netip.Prefix{}, fmt.Errorf("routing: %s is an address, not a CIDR: did you mean %s/32?", arg, arg)
		} else if err == nil {
			return netip.Prefix{}, fmt.Errorf("routing: %s: IPv6 is not supported yet; give IPv4 ranges", arg)
		}
	}
	p, err := netip.ParsePrefix(arg)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("routing: %s is not a valid CIDR (like 10.0.0.0/16): %w", arg, err)
	}
	if p.Bits() > 0 && p.Masked() != p && p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("routing: %s has host bits set: did you mean %s?", arg, p.Masked())
	}
	return p, nil
}

// reserved lists IPv4 ranges that can never be routed into the tunnel.
var reserved = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), `the "this network" range`},
	{netip.MustParsePrefix("127.0.0.0/8"), "the loopback range"},
	{netip.MustParsePrefix("224.0.0.0/4"), "the multicast range"},
	{netip.MustParsePrefix("240.0.0.0/4"), "the reserved range (with broadcast)"},
}

// checkCIDRs reports the first range in ps that cannot be routed: not a
// masked IPv4 CIDR, everything, reserved, given twice or overlapping
// another.
func checkCIDRs(ps []netip.Prefix) error {
	if len(ps) == 0 {
		return errors.New("routing: no CIDR given: name the ranges to route, e.g. 10.0.0.0/16")
	}
	for i, p := range ps {
		if err := checkCIDR(p); err != nil {
			return err
		}
		for _, q := range ps[:i] {
			if err := checkDisjoint(q, p); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkCIDR(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return fmt.Errorf("routing: %s is not a valid CIDR", p)
	case !p.Addr().Is4():
		return fmt.Errorf("routing: %s: IPv6 is not supported yet; give IPv4 ranges", p)
	case p.Bits() == 0:
		return fmt.Errorf("routing: %s would route all traffic, the tunnel's own included: give the VPC's ranges", p)
	case p.Masked() != p:
		return fmt.Errorf("routing: %s has host bits set: did you mean %s?", p, p.Masked())
	}
	for _, r := range reserved {
		if r.prefix.Overlaps(p) {
			return fmt.Errorf("routing: %s overlaps %s, %s, which cannot be routed", p, r.prefix, r.what)
		}
	}
	return nil
}

func checkDisjoint(q, p netip.Prefix) error {
	switch {
	case q == p:
		return fmt.Errorf("routing: %s is given twice", p)
	case q.Overlaps(p) && q.Bits() < p.Bits():
		return fmt.Errorf("routing: %s overlaps %s: give only the larger", q, p)
	case q.Overlaps(p):
		return fmt.Errorf("routing: %s overlaps %s: give only the larger", p, q)
	}
	return nil
}
