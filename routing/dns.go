package routing

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vpcvpn/vpcvpn/platform"
)

// checkDNS checks the split DNS part of cfg: complete, and a server
// address the kernel will send into the TUN.
func checkDNS(cfg Config, local []netip.Addr) error {
	srv := cfg.DNSServer.Unmap()
	if !srv.IsValid() {
		if len(cfg.DNSDomains) > 0 {
			return errors.New("routing: split DNS domains without a DNS server address")
		}
		return nil
	}
	if cfg.Resolver == nil {
		return errors.New("routing: split DNS without a platform.Resolver")
	}
	d := platform.DNS{Interface: cfg.Interface, Server: srv, Domains: cfg.DNSDomains}
	if err := d.Validate(); err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	switch {
	case !srv.Is4() || srv.IsUnspecified() || srv.IsLoopback() || srv.IsMulticast():
		return fmt.Errorf("routing: DNS server %s must be a unicast IPv4 address", srv)
	case srv == cfg.TUNAddr.Unmap():
		return fmt.Errorf("routing: DNS server %s is the TUN's own address, which the kernel answers itself: choose another", srv)
	}
	for _, a := range cfg.Protect {
		if a.Unmap() == srv {
			what := "the bastion's address"
			if name, ok := cfg.ProtectNames[srv]; ok {
				what = "the address of " + name
			}
			return fmt.Errorf("routing: DNS server %s is %s: choose another", srv, what)
		}
	}
	for _, a := range local {
		if a.Unmap() == srv {
			return fmt.Errorf("routing: DNS server %s is already an address of this machine, so its queries would never reach the tunnel: choose another", srv)
		}
	}
	return nil
}

// DNS returns how Apply configured the OS resolver: the mode and, in
// platform.DNSModeResolvConf, the original nameservers, to which the DNS
// proxy must forward the names outside the split domains. It is the zero
// DNSResult without DNSServer, before Apply and after Revert.
func (p *Plan) DNS() platform.DNSResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.dnsResult
	r.Fallback = append([]netip.Addr(nil), r.Fallback...)
	return r
}
