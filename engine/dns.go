package engine

// Split DNS: the DNS proxy (package dnsproxy) serves at an address of its
// own inside the tunnel, a /32 routed to the TUN like the CIDRs, and
// forwards the split domains to the VPC resolver through the SSH
// connection.
//
//	resolver (split domains) --> server:53 on the TUN --> netstack service
//	    --> dnsproxy --> DNS over TCP in a direct-tcpip channel --> VPC resolver

import (
	"net"
	"net/netip"
	"slices"

	"github.com/vpcvpn/vpcvpn/dnsproxy"
	"github.com/vpcvpn/vpcvpn/netstack"
	"github.com/vpcvpn/vpcvpn/platform"
	"github.com/vpcvpn/vpcvpn/routing"
)

// DNSConfig is the split DNS an Engine serves.
type DNSConfig struct {
	Upstream netip.Addr // the VPC resolver, as the bastion reaches it (port 53)
	Domains  []string   // the split domains, normalized

	// Avoid are addresses the proxy must not take, besides the host's own:
	// those where other tunnels' proxies serve, whose /32 routes are theirs.
	Avoid []netip.Addr

	// NewResolver makes the OS resolver configuration the plan sets, e.g.
	// with platform.NewResolver. It must call fallbackChanged when the
	// host's own nameservers change (ResolverConfig.FallbackChanged).
	NewResolver func(fallbackChanged func([]netip.Addr)) (platform.Resolver, error)
}

// dnsAddrCandidates are tried in order for the proxy's address; the first
// outside every routed CIDR and not local is used.
var dnsAddrCandidates = []netip.Addr{
	netip.MustParseAddr("100.77.0.53"),
	netip.MustParseAddr("100.78.0.53"),
	netip.MustParseAddr("100.79.0.53"),
	netip.MustParseAddr("198.19.255.53"),
}

// dnsPlan is the split DNS New planned.
type dnsPlan struct {
	cfg    *DNSConfig
	server netip.Addr // where the proxy serves; zero without split DNS
}

// pickDNSAddr returns the first candidate address outside cidrs that is
// not local. The proxy's /32 is routed to the TUN, so it must not shadow a
// routed destination or an address of this machine.
func pickDNSAddr(cidrs []netip.Prefix, tunAddr netip.Addr, isLocal func(netip.Addr) bool) (netip.Addr, error) {
next:
	for _, a := range dnsAddrCandidates {
		if a == tunAddr || isLocal(a) {
			continue
		}
		for _, p := range cidrs {
			if p.Contains(a) {
				continue next
			}
		}
		return a, nil
	}
	return netip.Addr{}, ErrNoDNSAddr
}

// planDNS picks the proxy's address and the OS resolver for rcfg.
func (e *Engine) planDNS(rcfg *routing.Config) error {
	d := e.cfg.DNS
	res, err := d.NewResolver(e.setFallback)
	if err != nil {
		return err
	}
	locals, err := e.cfg.Host.LocalAddrs()
	if err != nil {
		return err
	}
	addr, err := pickDNSAddr(rcfg.CIDRs, rcfg.TUNAddr, func(a netip.Addr) bool {
		return slices.Contains(locals, a) || slices.Contains(d.Avoid, a)
	})
	if err != nil {
		return err
	}
	rcfg.DNSServer, rcfg.DNSDomains, rcfg.Resolver = addr, d.Domains, res
	e.dns = dnsPlan{cfg: d, server: addr}
	return nil
}

// startDNSProxy serves the proxy at its address, port 53, in the stack,
// UDP and TCP, before the OS sends it anything. Names outside the split
// domains are refused until setFallback learns the host's own nameservers.
func (e *Engine) startDNSProxy(stack *netstack.Stack, pl *pool) (*dnsproxy.Proxy, error) {
	p, err := dnsproxy.New(dnsproxy.Config{
		Dial:     pl.dialQuiet,
		Upstream: net.JoinHostPort(e.dns.cfg.Upstream.String(), "53"),
		Domains:  e.dns.cfg.Domains,
		Names:    namesSize(e.cfg.FlowEnded != nil),
		Logger:   e.log,
	})
	if err != nil {
		return nil, err
	}
	ap := netip.AddrPortFrom(e.dns.server, 53)
	pc, err := stack.ListenUDP(ap)
	if err != nil {
		p.Close()
		return nil, err
	}
	ln, err := stack.ListenTCP(ap)
	if err != nil {
		pc.Close()
		p.Close()
		return nil, err
	}
	go p.ServePacket(pc) // both return at p.Close, which waits for them
	go p.Serve(ln)
	return p, nil
}

// namesSize is dnsproxy.Config.Names: the recent answers are kept only for
// Config.FlowEnded.
func namesSize(flowLog bool) int {
	if flowLog {
		return 0 // the default
	}
	return -1
}

// setFallback gives the proxy the host's original nameservers, which the
// resolv.conf mode sends every name to the proxy instead of. It runs when
// the OS configuration is applied and again when a DHCP client changes
// them.
func (e *Engine) setFallback(servers []netip.Addr) {
	e.mu.Lock()
	up := e.up
	e.mu.Unlock()
	if up == nil || up.dns == nil {
		return
	}
	var list []string
	for _, a := range servers {
		for _, p := range e.cfg.Routing.CIDRs {
			if p.Contains(a) {
				e.log.Warn("the host's nameserver is inside a routed range; names outside the split domains may not resolve", "nameserver", a, "range", p)
			}
		}
		list = append(list, a.String())
	}
	if err := up.dns.SetFallback(list); err != nil {
		e.log.Warn("split DNS: cannot use the host's nameservers", "err", err)
	}
}

// dnsStatus is the DNS part of Status, nil without split DNS.
func (e *Engine) dnsStatus(up *setup) *DNSStatus {
	e.mu.Lock()
	p := up.dns
	e.mu.Unlock()
	if p == nil {
		return nil
	}
	r := e.plan.DNS()
	return &DNSStatus{
		Server:   e.dns.server,
		Upstream: e.dns.cfg.Upstream,
		Domains:  e.dns.cfg.Domains,
		Mode:     r.Mode,
		Fallback: r.Fallback,
		Stats:    p.Stats(),
	}
}
