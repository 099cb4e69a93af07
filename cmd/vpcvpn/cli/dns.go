package cli

// The --dns flags, and the OS resolver configuration the engine's split
// DNS (engine/dns.go) sets.

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/vpcvpn/vpcvpn/dnsproxy"
	"github.com/vpcvpn/vpcvpn/engine"
	"github.com/vpcvpn/vpcvpn/platform"
)

// defaultDNSServer is the Amazon-provided DNS address, which every
// instance in a VPC reaches (unlike "CIDR base + 2", which is wrong when
// the user routes a subnet).
const defaultDNSServer = "169.254.169.253"

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

// dnsConfig is the engine's split DNS, nil with --no-dns, which only
// restores what a crashed run may have left.
func (r *upRun) dnsConfig() *engine.DNSConfig {
	o := r.opts
	rcfg := platform.ResolverConfig{Instance: o.name, StateDir: runDir(), Logger: r.log}
	if !o.dns.enabled {
		if res, err := platform.NewResolver(rcfg); err == nil {
			if err := res.CleanupDNS(); err != nil {
				r.log.Warn("restoring the DNS configuration of an earlier run", "err", err)
			}
		}
		return nil
	}
	return &engine.DNSConfig{
		Upstream: o.dns.server,
		Domains:  o.dns.domains,
		Avoid:    otherDNSServers(o.name),
		NewResolver: func(fallbackChanged func([]netip.Addr)) (platform.Resolver, error) {
			rcfg.FallbackChanged = fallbackChanged
			res, err := platform.NewResolver(rcfg)
			if err != nil {
				return nil, fmt.Errorf("split DNS: %w (or run with --no-dns)", err)
			}
			return res, nil
		},
	}
}

// dnsSummary is the DNS part of the connected line.
func dnsSummary(d *engine.DNSStatus) string {
	if d == nil {
		return ""
	}
	return fmt.Sprintf("; DNS for %s at %s (%s)", strings.Join(d.Domains, ", "), d.Server, d.Mode)
}

// otherDNSServers returns the addresses where the DNS proxies of the other
// running tunnels serve: each has its own, routed to its interface.
func otherDNSServers(name string) []netip.Addr {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	running, _ := runningTunnels(ctx)
	var addrs []netip.Addr
	for _, st := range running {
		if st.Name == name || st.DNS == nil {
			continue
		}
		if a, err := netip.ParseAddr(st.DNS.Server); err == nil {
			addrs = append(addrs, a)
		}
	}
	return addrs
}
