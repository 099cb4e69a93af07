package cli

// Split DNS: the DNS proxy (package dnsproxy) serves at an address of its
// own inside the tunnel, a /32 routed to the TUN like the CIDRs, and
// forwards the split domains to the VPC resolver through the SSH
// connection.
//
//	resolver (split domains) --> dnsAddr:53 on the TUN --> netstack service
//	    --> dnsproxy --> DNS over TCP in a direct-tcpip channel --> VPC resolver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"github.com/vpcvpn/vpcvpn/dnsproxy"
	"github.com/vpcvpn/vpcvpn/platform"
	"github.com/vpcvpn/vpcvpn/routing"
)

// defaultDNSServer is the Amazon-provided DNS address, which every
// instance in a VPC reaches (unlike "CIDR base + 2", which is wrong when
// the user routes a subnet).
const defaultDNSServer = "169.254.169.253"

// dnsAddrCandidates are tried in order for the proxy's address; the first
// outside every routed CIDR and not local is used.
var dnsAddrCandidates = []netip.Addr{
	netip.MustParseAddr("100.77.0.53"),
	netip.MustParseAddr("100.78.0.53"),
	netip.MustParseAddr("100.79.0.53"),
	netip.MustParseAddr("198.19.255.53"),
}

// dnsOptions are the --dns flags.
type dnsOptions struct {
	enabled bool
	server  netip.Addr // the VPC resolver, reached from the bastion
	domains []string   // split domains: the defaults and every --dns-domain
}

func dnsFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.BoolWithInverseFlag{Name: "dns", Value: true, Usage: "resolve the split domains through the tunnel (--no-dns: leave DNS alone)"},
		&ucli.StringSliceFlag{Name: "dns-domain", Usage: "also resolve `DOMAIN` through the tunnel, e.g. a Route 53 private zone (repeatable; " + strings.Join(dnsproxy.DefaultDomains(), ", ") + " always are)"},
		&ucli.StringFlag{Name: "dns-server", Value: defaultDNSServer, Usage: "the VPC resolver's `IP`, as the bastion reaches it"},
	}
}

// parseDNS reads the --dns flags.
func parseDNS(cmd *ucli.Command) (dnsOptions, error) {
	d := dnsOptions{enabled: cmd.Bool("dns")}
	if !d.enabled {
		for _, f := range []string{"dns-domain", "dns-server"} {
			if cmd.IsSet(f) {
				return d, fmt.Errorf("--%s has no effect with --no-dns: drop one of them", f)
			}
		}
		return d, nil
	}
	s := cmd.String("dns-server")
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return d, fmt.Errorf("invalid --dns-server %q: give the VPC resolver's IPv4 address, such as %s", s, defaultDNSServer)
	}
	d.server = a
	seen := map[string]bool{}
	for _, dom := range append(dnsproxy.DefaultDomains(), cmd.StringSlice("dns-domain")...) {
		n, err := normalizeDomain(dom)
		if err != nil {
			return d, err
		}
		if !seen[n] {
			seen[n] = true
			d.domains = append(d.domains, n)
		}
	}
	return d, nil
}

// normalizeDomain checks a --dns-domain and returns it lower-case without
// a trailing dot.
func normalizeDomain(s string) (string, error) {
	n := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	bad := func(why string) error {
		return fmt.Errorf("invalid --dns-domain %q: %s; give a domain such as internal.example", s, why)
	}
	switch {
	case n == "":
		return "", bad("it is empty (the root would send every name through the tunnel)")
	case strings.HasPrefix(n, "*."):
		return "", bad("no wildcard is needed, a domain covers its subdomains")
	case len(n) > 253:
		return "", bad("it is longer than 253 characters")
	}
	for _, label := range strings.Split(n, ".") {
		if label == "" || len(label) > 63 {
			return "", bad("a label is empty or longer than 63 characters")
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", bad(fmt.Sprintf("it contains %q", c))
			}
		}
	}
	return n, nil
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
	return netip.Addr{}, errors.New("no free address for the DNS proxy: every candidate is routed or local; use --no-dns")
}

// planDNS picks the proxy's address and the OS resolver for cfg. With
// --no-dns it only restores what a crashed run may have left.
func (in *instance) planDNS(cfg *routing.Config) error {
	o := in.opts
	rcfg := platform.ResolverConfig{
		Instance:        o.name,
		StateDir:        runDir(),
		FallbackChanged: in.setFallback,
		Logger:          in.log,
	}
	if !o.dns.enabled {
		if r, err := platform.NewResolver(rcfg); err == nil {
			if err := r.CleanupDNS(); err != nil {
				in.log.Warn("restoring the DNS configuration of an earlier run", "err", err)
			}
		}
		return nil
	}
	res, err := platform.NewResolver(rcfg)
	if err != nil {
		return fmt.Errorf("split DNS: %w (or run with --no-dns)", err)
	}
	locals, err := in.host.LocalAddrs()
	if err != nil {
		return err
	}
	addr, err := pickDNSAddr(o.cidrs, o.tunAddr, func(a netip.Addr) bool { return slices.Contains(locals, a) })
	if err != nil {
		return err
	}
	cfg.DNSServer, cfg.DNSDomains, cfg.Resolver = addr, o.dns.domains, res
	return nil
}

// startDNSProxy serves the proxy at addr:53 in the stack, UDP and TCP,
// before the OS sends it anything. Names outside the split domains are
// refused until setFallback learns the host's own nameservers.
func (in *instance) startDNSProxy(addr netip.Addr) error {
	d := in.opts.dns
	p, err := dnsproxy.New(dnsproxy.Config{
		Dial:     in.link.DialContext,
		Upstream: net.JoinHostPort(d.server.String(), "53"),
		Domains:  d.domains,
		Logger:   in.log,
	})
	if err != nil {
		return err
	}
	ap := netip.AddrPortFrom(addr, 53)
	pc, err := in.stack.ListenUDP(ap)
	if err != nil {
		p.Close()
		return err
	}
	ln, err := in.stack.ListenTCP(ap)
	if err != nil {
		pc.Close()
		p.Close()
		return err
	}
	go p.ServePacket(pc) // both return at p.Close, which waits for them
	go p.Serve(ln)
	in.dnsAddr = addr
	in.dns = p
	return nil
}

// setFallback gives the proxy the host's original nameservers, which the
// resolv.conf mode sends every name to the proxy instead of. It runs when
// the OS configuration is applied and again when a DHCP client changes
// them.
func (in *instance) setFallback(servers []netip.Addr) {
	if in.dns == nil {
		return
	}
	var list []string
	for _, a := range servers {
		for _, p := range in.opts.cidrs {
			if p.Contains(a) {
				in.log.Warn("the host's nameserver is inside a routed range; names outside the split domains may not resolve", "nameserver", a, "range", p)
			}
		}
		list = append(list, a.String())
	}
	if err := in.dns.SetFallback(list); err != nil {
		in.log.Warn("split DNS: cannot use the host's nameservers", "err", err)
	}
}

// dnsSummary is the DNS part of the connected line.
func (in *instance) dnsSummary() string {
	if in.dns == nil {
		return ""
	}
	return fmt.Sprintf("; DNS for %s at %s (%s)", strings.Join(in.opts.dns.domains, ", "), in.dnsAddr, in.plan.DNS().Mode)
}

// dnsStatus is the DNS part of status, nil with --no-dns.
func (in *instance) dnsStatus() *DNSStatus {
	if in.dns == nil {
		return nil
	}
	st := in.dns.Stats()
	r := in.plan.DNS()
	ds := &DNSStatus{
		Server:    in.dnsAddr.String(),
		Upstream:  in.opts.dns.server.String(),
		Domains:   in.opts.dns.domains,
		Mode:      string(r.Mode),
		Queries:   st.Queries,
		Forwarded: st.Forwarded,
		CacheHits: st.CacheHits,
		Failures:  st.Failures,
	}
	for _, a := range r.Fallback {
		ds.Fallback = append(ds.Fallback, a.String())
	}
	return ds
}
