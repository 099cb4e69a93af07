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
	Logger  *slog.Logger // nil: discard
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

	mu         sync.Mutex       // guards following
	configured bool             // the link has addr, maybe
	added      []platform.Route // routes Apply installed, in order
}

// NewPlan validates cfg against the host h and chooses the TUN address. It
// refuses a CIDR that contains a Protect address or the gateway towards
// one, a default gateway, or an address of this machine (its LAN would go
// into the tunnel), and a TUNAddr inside a CIDR. NewPlan changes nothing.
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
	if err := checkProtect(h, cidrs, cfg.Protect); err != nil {
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
	addr, err := tunAddr(cfg.TUNAddr, cidrs, local, cfg.Protect)
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
	return p
}

// TUNAddr returns the TUN's address.
func (p *Plan) TUNAddr() netip.Addr { return p.addr.Addr() }

// Routes returns the ranges the plan routes into the TUN, in order.
func (p *Plan) Routes() []netip.Prefix {
	dsts := make([]netip.Prefix, len(p.routes))
	for i, r := range p.routes {
		dsts[i] = r.Dst
	}
	return dsts
}
