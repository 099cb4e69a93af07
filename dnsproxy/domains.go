package dnsproxy

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/miekg/dns"
)

// DefaultDomains returns the split domains used when Config.Domains is
// empty: RDS endpoints and the private host names of EC2 instances.
func DefaultDomains() []string {
	return []string{"rds.amazonaws.com", "compute.internal", "ec2.internal"}
}

// canonicalDomains checks the split domains and returns them lower case and
// fully qualified, without duplicates.
func canonicalDomains(domains []string) ([]string, error) {
	var out []string
	for _, d := range domains {
		c := dns.CanonicalName(d)
		if _, ok := dns.IsDomainName(c); d == "" || !ok {
			return nil, fmt.Errorf("dnsproxy: split domain %q is not a domain name: give names like corp.example", d)
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// inDomains reports whether name is one of domains or below one. It
// compares whole labels and ignores case and a missing trailing dot, so
// "db.RDS.amazonaws.com" matches rds.amazonaws.com and "xrds.amazonaws.com"
// does not. domains must be canonical.
func inDomains(domains []string, name string) bool {
	name = dns.CanonicalName(name)
	for _, d := range domains {
		if dns.IsSubDomain(d, name) {
			return true
		}
	}
	return false
}

// serverAddr turns a nameserver given as an IP address (port 53) or
// host:port into host:port.
func serverAddr(s string) (string, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, 53).String(), nil
	}
	if host, port, err := net.SplitHostPort(s); err == nil && host != "" && port != "" {
		return s, nil
	}
	return "", fmt.Errorf("nameserver %q: give an IP address or host:port", s)
}
