package platform

import (
	"os"
	"sync"
)

// NewResolver returns the Resolver of Linux. SetDNS first restores a
// resolv.conf a crashed vpcvpn left, then chooses how to split DNS:
// through systemd-resolved when resolv.conf points at its stub resolver
// and resolvectl is installed, otherwise by managing resolv.conf
// (cfg.ResolvConf) itself. Under `ip netns exec` resolv.conf is the
// namespace's own, which names no stub, so the second.
func NewResolver(cfg ResolverConfig) (Resolver, error) {
	env, err := newDNSEnv(cfg, os.Getpid(), processAlive)
	if err != nil {
		return nil, err
	}
	return newLinuxResolver(env), nil
}

// linuxResolver chooses between its two Resolvers at SetDNS.
type linuxResolver struct {
	env      *dnsEnv
	file     *resolvConf
	resolved *resolved

	mu     sync.Mutex // guards following
	active Resolver   // the one SetDNS used until RevertDNS succeeds; nil if none
}

var _ Resolver = (*linuxResolver)(nil)

func newLinuxResolver(env *dnsEnv) *linuxResolver {
	return &linuxResolver{env: env, file: newResolvConf(env), resolved: &resolved{env: env}}
}

func (r *linuxResolver) SetDNS(d DNS) (DNSResult, error) {
	if err := d.Validate(); err != nil {
		return DNSResult{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active != nil {
		return DNSResult{}, errDNSSet
	}
	if err := r.file.CleanupDNS(); err != nil {
		return DNSResult{}, err
	}
	next := Resolver(r.file)
	if r.mode() == DNSModeResolved {
		next = r.resolved
	}
	res, err := next.SetDNS(d)
	if err != nil {
		return DNSResult{}, err
	}
	r.active = next
	return res, nil
}

// mode chooses how to split DNS (see detectMode). Reading resolv.conf may
// fail: then resolv.conf mode reports it.
func (r *linuxResolver) mode() DNSMode {
	conf, err := os.ReadFile(r.env.ResolvConf)
	if err != nil {
		return DNSModeResolvConf
	}
	_, lerr := r.env.lookPath("resolvectl")
	return detectMode(conf, lerr == nil)
}

func (r *linuxResolver) RevertDNS() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active == nil {
		return nil
	}
	if err := r.active.RevertDNS(); err != nil {
		return err
	}
	r.active = nil
	return nil
}

func (r *linuxResolver) CleanupDNS() error {
	return r.file.CleanupDNS()
}
