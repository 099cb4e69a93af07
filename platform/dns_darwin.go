package platform

import "os"

// NewResolver returns the Resolver of macOS: one stamped file per split
// domain in /etc/resolver (cfg.ResolverDir), see dns_resolverdir.go.
func NewResolver(cfg ResolverConfig) (Resolver, error) {
	env, err := newDNSEnv(cfg, os.Getpid(), processAlive)
	if err != nil {
		return nil, err
	}
	return &resolverDir{env: env}, nil
}
