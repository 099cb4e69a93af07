package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/vpcvpn/vpcvpn/tunnel"
)

// resolveBastion returns the addresses the transport will connect to, which
// must never be routed into the tunnel. A proxy command reaches the bastion
// some way vpcvpn cannot see, so there is nothing to protect there.
func resolveBastion(ctx context.Context, o *upOptions) ([]netip.Addr, error) {
	if o.proxyCommand != "" || o.via == "ssm" {
		// Over SSM the stream goes to AWS's HTTPS endpoints, not the
		// bastion, so no bastion address needs protecting.
		return nil, nil
	}
	if a, err := netip.ParseAddr(o.host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", o.host)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve the bastion %s: %w", o.host, err)
	}
	for i := range addrs {
		addrs[i] = addrs[i].Unmap()
	}
	return addrs, nil
}

// bastionAddrs returns the addresses to try for the bastion, in order: the
// name's addresses as it resolves now, those no routed CIDR captures (an
// Elastic IP moved, a load balancer's zone gone), then the addresses it
// had at start, which routing keeps out of the tunnel. A name that does not
// resolve now leaves those.
func bastionAddrs(ctx context.Context, o *upOptions, protect []netip.Addr, log *slog.Logger) []netip.Addr {
	if _, err := netip.ParseAddr(o.host); err == nil || len(protect) == 0 {
		return protect
	}
	// Briefly: the name may resolve through vpcvpn's own DNS proxy, and so
	// through the tunnel that is down.
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	fresh, err := resolveBastion(ctx, o)
	if err != nil {
		log.Debug("bastion not resolved again; dialing its first addresses", "err", err)
		return protect
	}
	var addrs []netip.Addr
	for _, a := range append(fresh, protect...) {
		if slices.Contains(addrs, a) {
			continue
		}
		if !slices.Contains(protect, a) && slices.ContainsFunc(o.cidrs, func(p netip.Prefix) bool { return p.Contains(a) }) {
			log.Warn("the bastion's new address is in a routed range; not dialing it through the tunnel", "host", o.host, "addr", a)
			continue
		}
		addrs = append(addrs, a)
	}
	return addrs
}

// connHooks let the instance follow the connection it dials. Nil fields
// are not called.
type connHooks struct {
	keepAlive func() bool       // tunnel.Config.KeepAliveActive
	resuming  func(cause error) // ssm.Config.Resuming
	resumed   func()            // ssm.Config.Resumed
}

// dialSSH connects to the bastion and authenticates. protect holds the
// resolved bastion addresses (empty with a proxy command); keys keeps the
// identity files read for the instance's next dials.
func dialSSH(ctx context.Context, o *upOptions, inv invoker, keys *tunnel.Keys, protect []netip.Addr, hooks connHooks, log *slog.Logger) (*tunnel.Client, error) {
	if o.via == "ssm" {
		return dialSSM(ctx, o, inv, keys, hooks, log)
	}
	auth, err := tunnel.NewAuth(tunnel.AuthConfig{
		KeyFile:    o.identity,
		AgentSock:  os.Getenv("SSH_AUTH_SOCK"),
		Home:       inv.Home,
		Passphrase: tunnel.PassphrasePrompt(ctx),
		Logger:     log,
		Keys:       keys,
	})
	if err != nil {
		return nil, err
	}
	defer auth.Close()
	hk := &tunnel.HostKeys{
		Files:     []string{o.knownHosts, "/etc/ssh/ssh_known_hosts"},
		WriteFile: o.knownHosts,
		AcceptNew: o.acceptNew,
		UID:       inv.UID,
		GID:       inv.GID,
		Logger:    log,
	}
	if !o.acceptNew {
		hk.Prompt = tunnel.TermPrompt(ctx)
	}
	cfg := tunnel.Config{
		User:              o.user,
		Addr:              joinHostPort(o.host, o.port),
		HostKeyCallback:   hk.Callback(),
		HostKeyAlgorithms: hk.Algorithms(joinHostPort(o.host, o.port)),
		Auth:              auth.Methods,
		AuthSources:       auth.Sources,
		KeepAliveInterval: o.keepAliveEvery,
		KeepAliveActive:   hooks.keepAlive,
		Logger:            log,
	}
	switch {
	case o.proxyCommand != "":
		cfg.Transport = tunnel.ProxyCommand(o.proxyCommand, o.host, o.port, o.user, os.Stderr)
	case len(protect) > 0:
		var addrs []string
		for _, a := range bastionAddrs(ctx, o, protect, log) {
			addrs = append(addrs, joinHostPort(a.String(), o.port))
		}
		cfg.Transport = tunnel.TCPTransport(addrs...)
	default:
		return nil, fmt.Errorf("the bastion %s has no IPv4 address", o.host)
	}
	return tunnel.Dial(ctx, cfg)
}

func joinHostPort(host, port string) string { return net.JoinHostPort(host, port) }
