package platform

// systemd-resolved mode: the TUN gets the DNS proxy as its DNS server and
// the split domains as routing-only domains (~domain), so resolved sends
// those names, and only those, to the proxy:
//
//	resolvectl dns vpcvpn0 100.77.0.53
//	resolvectl domain vpcvpn0 ~rds.amazonaws.com ~compute.internal
//	resolvectl revert vpcvpn0          (teardown, or undoing a failed SetDNS)
//
// resolved forgets a link's settings when the link goes away, so a crashed
// vpcvpn, whose TUN the kernel deletes, leaves nothing to clean up.

import (
	"fmt"
	"strings"
	"sync"
)

// resolved is the Resolver of DNSModeResolved.
type resolved struct {
	env *dnsEnv

	mu    sync.Mutex // guards following
	iface string     // the link SetDNS configured; "" if none
}

var _ Resolver = (*resolved)(nil)

// resolvedSetArgv returns the commands that set d.
func resolvedSetArgv(d DNS) [][]string {
	domain := []string{"resolvectl", "domain", d.Interface}
	for _, dom := range d.Domains {
		domain = append(domain, "~"+dom)
	}
	return [][]string{{"resolvectl", "dns", d.Interface, d.Server.String()}, domain}
}

// resolvedRevertArgv returns the command that undoes resolvedSetArgv.
func resolvedRevertArgv(iface string) []string {
	return []string{"resolvectl", "revert", iface}
}

func (r *resolved) SetDNS(d DNS) (DNSResult, error) {
	d, err := d.normalize()
	if err != nil {
		return DNSResult{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.iface != "" {
		return DNSResult{}, errDNSSet
	}
	for _, argv := range resolvedSetArgv(d) {
		if err := r.run(argv); err != nil {
			if rerr := r.run(resolvedRevertArgv(d.Interface)); rerr != nil {
				return DNSResult{}, fmt.Errorf("%w; undoing it failed too: %w", err, rerr)
			}
			return DNSResult{}, err
		}
	}
	r.iface = d.Interface
	r.env.log.Info("split DNS: systemd-resolved sends the split domains to the DNS proxy", "interface", d.Interface, "server", d.Server, "domains", d.Domains)
	return DNSResult{Mode: DNSModeResolved}, nil
}

func (r *resolved) RevertDNS() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.iface == "" {
		return nil
	}
	// Without its link resolved has forgotten the settings already.
	if err := r.run(resolvedRevertArgv(r.iface)); err != nil && r.env.linkExists(r.iface) {
		return err
	}
	r.iface = ""
	return nil
}

// CleanupDNS has nothing to do: see the file comment.
func (r *resolved) CleanupDNS() error { return nil }

// run runs argv with the error saying what failed and what to check.
func (r *resolved) run(argv []string) error {
	out, err := r.env.Run(argv...)
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg != "" {
			msg = ": " + msg
		}
		return fmt.Errorf("platform: %s: %w%s (is systemd-resolved running? systemctl status systemd-resolved; or start with --no-dns)", strings.Join(argv, " "), err, msg)
	}
	return nil
}
