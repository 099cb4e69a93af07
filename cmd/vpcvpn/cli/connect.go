package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/vpcvpn/vpcvpn/engine"
	"github.com/vpcvpn/vpcvpn/tunnel"
)

// resolveBastion returns the addresses the transport will connect to, which
// must never be routed into the tunnel. A proxy command reaches the bastion
// some way vpcvpn cannot see, so there is nothing to protect there.
func resolveBastion(ctx context.Context, o *upOptions) ([]netip.Addr, error) {
	if o.proxyCommand != "" || o.viaAWS() {
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

// dialer makes the engine's connections to the bastion from the flags:
// one tunnel.Config for every transport, with the stream, credentials and
// host keys each way of reaching the bastion brings (peer).
type dialer struct {
	opts    *upOptions
	inv     invoker
	log     *slog.Logger
	protect []netip.Addr // the bastion's addresses at start; empty with a proxy command or SSM
	keys    tunnel.Keys  // identity files read, for redials: one passphrase prompt
	// ephemeralKeys holds an ephemeral bastion's host key for the run
	// (awsHostKeys).
	ephemeralKeys     *tunnel.HostKeys
	ephemeralKeysOnce sync.Once
}

// peer is how one dial reaches the bastion and proves who it is.
type peer struct {
	transport tunnel.Transport
	auth      []ssh.AuthMethod
	sources   []string // where auth's keys come from, for errors
	hostKeys  *tunnel.HostKeys
	close     func() // releases what auth holds (an agent connection)
}

// connect is the engine's ConnectFunc: it connects to the bastion and
// authenticates.
func (d *dialer) connect(ctx context.Context, hooks engine.ConnHooks) (*tunnel.Client, error) {
	o := d.opts
	var p *peer
	var err error
	switch o.via {
	case "ssm":
		p, err = d.ssmPeer(ctx, hooks)
	case "eice":
		p, err = d.eicePeer(ctx)
	default:
		p, err = d.sshPeer(ctx)
	}
	if err != nil {
		return nil, err
	}
	defer p.close()
	addr := joinHostPort(o.host, o.port)
	c, err := tunnel.Dial(ctx, tunnel.Config{
		User:              o.user,
		Addr:              addr,
		Transport:         p.transport,
		HostKeyCallback:   p.hostKeys.Callback(),
		HostKeyAlgorithms: p.hostKeys.Algorithms(addr),
		Auth:              p.auth,
		AuthSources:       p.sources,
		KeepAliveInterval: o.keepAliveEvery,
		KeepAliveActive:   hooks.KeepAliveActive,
		Logger:            d.log,
	})
	if o.viaAWS() {
		err = renewable(sudoHint(ssmHint(err), o, d.inv))
	}
	return c, err
}

// sshPeer reaches an SSH bastion over TCP or a proxy command, with the
// agent's keys, -i or the default keys, and known_hosts.
func (d *dialer) sshPeer(ctx context.Context) (*peer, error) {
	o, inv := d.opts, d.inv
	auth, err := tunnel.NewAuth(tunnel.AuthConfig{
		KeyFile:    o.identity,
		AgentSock:  os.Getenv("SSH_AUTH_SOCK"),
		Home:       inv.Home,
		Passphrase: tunnel.PassphrasePrompt(ctx),
		Logger:     d.log,
		Keys:       &d.keys,
	})
	if err != nil {
		return nil, err
	}
	p := &peer{auth: auth.Methods, sources: auth.Sources, close: func() { auth.Close() }}
	p.hostKeys = &tunnel.HostKeys{
		Files:     []string{o.knownHosts, "/etc/ssh/ssh_known_hosts"},
		WriteFile: o.knownHosts,
		AcceptNew: o.acceptNew,
		UID:       inv.UID,
		GID:       inv.GID,
		Logger:    d.log,
	}
	if !o.acceptNew {
		p.hostKeys.Prompt = tunnel.TermPrompt(ctx)
	}
	switch {
	case o.proxyCommand != "":
		p.transport = tunnel.ProxyCommand(o.proxyCommand, o.host, o.port, o.user, os.Stderr)
	case len(d.protect) > 0:
		var addrs []string
		for _, a := range bastionAddrs(ctx, o, d.protect, d.log) {
			addrs = append(addrs, joinHostPort(a.String(), o.port))
		}
		p.transport = tunnel.TCPTransport(addrs...)
	default:
		p.close()
		return nil, fmt.Errorf("the bastion %s has no IPv4 address", o.host)
	}
	return p, nil
}

func joinHostPort(host, port string) string { return net.JoinHostPort(host, port) }
