package routing

import (
	"errors"
	"fmt"
	"slices"

	"github.com/vpcvpn/vpcvpn/platform"
)

// Apply gives the TUN its address (and MTU) and brings it up, then routes
// each CIDR (and the DNS server) into it with the TUN address as preferred
// source, then sets split DNS. If any step fails, Apply reverts what it did
// and returns the error joined with any error of reverting. Apply fails if
// the plan is applied already.
func (p *Plan) Apply() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.configured || len(p.added) > 0 || p.dnsSet {
		return errors.New("routing: plan already applied")
	}
	p.configured = true // even a failed ConfigureLink may have added the address
	if err := p.host.ConfigureLink(p.iface, p.addr, p.mtu); err != nil {
		err = fmt.Errorf("routing: configure %s: %w", p.iface, err)
		return errors.Join(err, p.revert())
	}
	for _, r := range p.routes {
		if err := p.host.AddRoute(r); err != nil {
			return errors.Join(routeErr(r, err), p.revert())
		}
		p.added = append(p.added, r)
		p.log.Debug("route added", "route", r)
	}
	if p.dns == nil {
		return nil
	}
	res, err := p.res.SetDNS(*p.dns) // changes nothing if it fails
	if err != nil {
		return errors.Join(fmt.Errorf("routing: split DNS: %w", err), p.revert())
	}
	p.dnsSet, p.dnsResult = true, res
	p.log.Debug("split DNS set", "mode", res.Mode, "fallback", res.Fallback)
	return nil
}

func routeErr(r platform.Route, err error) error {
	if errors.Is(err, platform.ErrRouteExists) {
		return fmt.Errorf("routing: %s is routed already (another VPN?); remove that route or route other ranges: %w", r.Dst, err)
	}
	return fmt.Errorf("routing: route %s into %s: %w", r.Dst, r.Dev, err)
}

// Revert restores the OS resolver, deletes exactly the routes Apply added,
// newest first, then removes the TUN address. It returns the errors
// joined; what failed is kept and tried again by the next Revert, and once
// everything is undone Revert does nothing, so it is safe to call more than
// once and after a failed Apply.
func (p *Plan) Revert() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.revert()
}

// revert is Revert; p.mu is held.
func (p *Plan) revert() error {
	var errs []error
	if p.dnsSet {
		if err := p.res.RevertDNS(); err != nil {
			errs = append(errs, fmt.Errorf("routing: revert split DNS: %w", err))
		} else {
			p.dnsSet, p.dnsResult = false, platform.DNSResult{}
		}
	}
	for i := len(p.added) - 1; i >= 0; i-- {
		r := p.added[i]
		if err := p.host.DeleteRoute(r); err != nil {
			errs = append(errs, fmt.Errorf("routing: delete route %s: %w", r.Dst, err))
			continue
		}
		p.added = slices.Delete(p.added, i, i+1)
		p.log.Debug("route deleted", "route", r)
	}
	if p.configured {
		if err := p.host.DeconfigureLink(p.iface, p.addr); err != nil {
			errs = append(errs, fmt.Errorf("routing: deconfigure %s: %w", p.iface, err))
		} else {
			p.configured = false
		}
	}
	return errors.Join(errs...)
}
