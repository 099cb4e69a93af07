package routing

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	"github.com/vpcvpn/vpcvpn/platform"
)

// Config is the host state a tunnel wants.
type Config struct {
	Interface string         // the TUN's name, e.g. vpcvpn0
	CIDRs     []netip.Prefix // the ranges to route into the TUN
	// TUNAddr is the TUN's address, the preferred source of the routes.
	// Zero chooses one outside every CIDR (see NewPlan).
	TUNAddr netip.Addr
	// MTU, if not zero, is set on the link; zero leaves the MTU
	// Host.CreateTUN gave it.
	MTU int
	// Protect lists addresses that must never be routed into the tunnel:
	// the bastion's and the transport's endpoints.
	Protect []netip.Addr
	// ProtectNames says, for errors, what a Protect address is (the AWS
	// endpoint a host name resolved to, say); one it does not name is the
	// bastion.
	ProtectNames map[netip.Addr]string

	// DNSServer, if valid, is the DNS proxy's address, served by the
	// netstack: the plan routes it into the TUN as a /32 (unless a CIDR
	// covers it) and, once the routes are up, has Resolver send the
	// DNSDomains to it. Zero leaves the OS resolver alone.
	DNSServer  netip.Addr
	DNSDomains []string          // the split domains; required with DNSServer
	Resolver   platform.Resolver // required with DNSServer

	Logger *slog.Logger // nil: discard
}

// Plan is a validated Config: the routes to install, the TUN address, and
// what Apply has done so far, for Revert. Its methods are safe for
// concurrent use.
type Plan struct {
	host   platform.Host
	log    *slog.Logger
	iface  string
	addr   netip.Prefix // the TUN address as a /32
	mtu    int
	routes []platform.Route
	dns    *platform.DNS     // nil: leave the resolver alone
	res    platform.Resolver // sets dns

	mu         sync.Mutex         // guards following
	configured bool               // the link has addr, maybe
	added      []platform.Route   // routes Apply installed, in order
	dnsSet     bool               // res has set dns
	dnsResult  platform.DNSResult // what res.SetDNS returned
}

// NewPlan validates cfg against the host h and chooses the TUN address. It
// refuses a CIDR that contains a Protect address or the gateway towards
// one, a default gateway, or an address of this machine (its LAN would go
// into the tunnel), a TUNAddr inside a CIDR, and a DNSServer that is local,
// protected or the TUN address. NewPlan changes nothing.
//
// A chosen TUN address comes from 100.77.0.0/24, in the shared address space
// of RFC 6598 (100.64.0.0/10) that home, office and VPC networks rarely use,
// or from 198.18.77.0/24 (RFC 2544 benchmarking) when the CIDRs cover the
// first. It skips addresses this machine already has, so several tunnels
// each get their own. The address never leaves the machine: the netstack
// terminates every packet routed to the TUN.
func NewPlan(cfg Config, h platform.Host) (*Plan, error) {
	if cfg.Interface == "" {
		return nil, errors.New("routing: no interface name")
	}
	cidrs := slices.Clone(cfg.CIDRs)
	if err := checkCIDRs(cidrs); err != nil {
		return nil, err
	}
	if err := checkProtect(h, cidrs, cfg); err != nil {
		return nil, err
	}
	if err := checkGateways(h, cidrs); err != nil {
		return nil, err
	}
	local, err := h.LocalAddrs()
	if err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	if err := checkLocal(cidrs, local); err != nil {
		return nil, err
	}
	if err := checkDNS(cfg, local); err != nil {
		return nil, err
	}
	taken := local // the TUN address must differ from these
	if cfg.DNSServer.IsValid() {
		taken = append(slices.Clone(local), cfg.DNSServer.Unmap())
	}
	addr, err := tunAddr(cfg.TUNAddr, cidrs, taken, cfg.Protect)
	if err != nil {
		return nil, err
	}
	return newPlan(cfg, h, cidrs, addr), nil
}

func newPlan(cfg Config, h platform.Host, cidrs []netip.Prefix, addr netip.Addr) *Plan {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p := &Plan{
		host:  h,
		log:   log.With("component", "routing"),
		iface: cfg.Interface,
		addr:  netip.PrefixFrom(addr, addr.BitLen()),
		mtu:   cfg.MTU,
	}
	for _, c := range cidrs {
		p.routes = append(p.routes, platform.Route{Dst: c, Dev: cfg.Interface, Src: addr})
	}
	if srv := cfg.DNSServer.Unmap(); srv.IsValid() {
		p.dns = &platform.DNS{Interface: cfg.Interface, Server: srv, Domains: slices.Clone(cfg.DNSDomains)}
		p.res = cfg.Resolver
		if _, ok := containing(cidrs, srv); !ok {
			p.routes = append(p.routes, platform.Route{Dst: netip.PrefixFrom(srv, srv.BitLen()), Dev: cfg.Interface, Src: addr})
		}
	}
	return p
}

// SetInterface binds the plan to link name instead of Config.Interface,
// for a system whose kernel names the TUN only when Host.CreateTUN makes it
// (a macOS utun): the routes and the split DNS go to name. It fails once
// Apply has run.
func (p *Plan) SetInterface(name string) error {
	if name == "" {
		return errors.New("routing: no interface name")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.configured || len(p.added) > 0 || p.dnsSet {
		return errors.New("routing: plan already applied")
	}
	p.iface = name
	for i := range p.routes {
		p.routes[i].Dev = name
	}
	if p.dns != nil {
		p.dns.Interface = name
	}
	return nil
}

// TUNAddr returns the TUN's address.
func (p *Plan) TUNAddr() netip.Addr { return p.addr.Addr() }

// Routes returns the ranges the plan routes into the TUN, in order: the
// CIDRs, then the DNS server's /32 if no CIDR covers it.
func (p *Plan) Routes() []netip.Prefix {
	dsts := make([]netip.Prefix, len(p.routes))
	for i, r := range p.routes {
		dsts[i] = r.Dst
	}
	return dsts
}
