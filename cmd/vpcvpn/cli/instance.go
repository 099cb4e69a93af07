package cli

// An instance is one running `vpcvpn up`: it connects SSH first, so that bad
// credentials or an unreachable bastion leave nothing on the host, then
// creates the TUN, starts the netstack, installs the routes and serves the
// control socket. Teardown runs in reverse.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vpcvpn/vpcvpn/dnsproxy"
	"github.com/vpcvpn/vpcvpn/netstack"
	"github.com/vpcvpn/vpcvpn/platform"
	"github.com/vpcvpn/vpcvpn/routing"
	"github.com/vpcvpn/vpcvpn/tunnel"
)

type instance struct {
	opts  *upOptions
	inv   invoker
	out   io.Writer // progress and the connected line, for the person
	log   *slog.Logger
	host  platform.Host
	since time.Time
	iface string // the TUN's name: --name on Linux, the utunN the kernel chose on macOS

	state   atomic.Value // string: connecting, connected, reconnecting, idle
	lastErr atomic.Value // string: why the connection was last lost
	gen     atomic.Int64 // dials so far: hooks of older connections are ignored
	link    *link        // the SSH connection, replaced on reconnect
	protect []netip.Addr // the bastion's addresses, for redials
	keys    tunnel.Keys  // identity files read, for redials: one passphrase prompt
	stack   *netstack.Stack
	stackP  atomic.Pointer[netstack.Stack] // stack, for the keepalive goroutine
	procs   *procGovernor                  // nil: GOMAXPROCS is the user's
	plan    *routing.Plan
	dns     *dnsproxy.Proxy // nil with --no-dns
	dnsAddr netip.Addr      // where dns serves
	downCh  chan struct{}   // closed by a `vpcvpn down` request
	downed  sync.Once       // closes downCh: two requests may come at once
	netChg  <-chan struct{} // the machine's network changed (nil: not watched)
}

func runInstance(ctx context.Context, o *upOptions, stderr io.Writer) error {
	log := newLogger(stderr, o.verbose)
	host, err := platform.New(log)
	if err != nil {
		return fmt.Errorf("vpcvpn up is not supported on this system yet: %w", err)
	}
	defer host.Close()
	in := &instance{
		opts: o, inv: currentInvoker(), out: stderr, log: log, host: host,
		since: time.Now(), downCh: make(chan struct{}),
	}
	in.state.Store("connecting")
	in.lastErr.Store("")
	return in.run(ctx)
}

func (in *instance) run(ctx context.Context) (err error) {
	o := in.opts
	ln, err := listenControl(socketPath(o.name), in.inv.UID, in.inv.GID)
	if errors.Is(err, errAlreadyRunning) {
		return alreadyRunning(o.name)
	}
	if err != nil {
		return err
	}
	ctl := &controlServer{
		ln: ln, path: socketPath(o.name), status: in.status,
		down: in.requestDown, allowed: in.inv.allowed, log: in.log,
	}
	defer ctl.close()
	ctl.start()

	if in.netChg, err = platform.WatchNetwork(ctx, in.log); err != nil {
		in.log.Warn("reconnects will not notice network changes", "err", err)
	}
	in.progress("connecting to %s via %s", in.bastion(), in.transportName())
	protect, err := resolveBastion(ctx, o)
	if err != nil {
		return err
	}
	rcfg := routing.Config{
		Interface: o.name, CIDRs: o.cidrs, TUNAddr: o.tunAddr, Protect: protect, Logger: in.log,
	}
	if o.via == "ssm" {
		// The AWS endpoints the transport runs over stay out of the
		// tunnel, as a bastion does (an interface VPC endpoint, say).
		cfg, err := awsConfig(ctx, o, in.inv)
		if err != nil {
			return sudoHint(err, o, in.inv)
		}
		endpoints, names := resolveAWSEndpoints(ctx, awsEndpointHosts(ctx, cfg))
		rcfg.Protect, rcfg.ProtectNames = append(slices.Clone(protect), endpoints...), names
	}
	if err := in.planDNS(&rcfg); err != nil {
		return err
	}
	if in.plan, err = routing.NewPlan(rcfg, in.host); err != nil {
		return err
	}
	in.protect = protect
	client, err := in.dialFirst(ctx)
	if err != nil {
		if ctx.Err() != nil || isClosed(in.downCh) {
			in.progress("stopped before connecting; nothing was installed")
			return nil
		}
		return err
	}
	in.link = newLink(client)
	defer in.awaitLink(ctl)
	if err := in.startStack(); err != nil {
		return err
	}
	defer in.stack.Close()
	defer in.procs.stop()
	if rcfg.DNSServer.IsValid() {
		if err := in.startDNSProxy(rcfg.DNSServer); err != nil {
			return err
		}
		defer in.dns.Close()
	}
	if err := in.plan.Apply(); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, in.plan.Revert()) }()
	defer in.disconnect()
	if in.dns != nil {
		in.setFallback(in.plan.DNS().Fallback)
	}

	in.state.Store("connected")
	in.progress("connected to %s via %s; routing %s through %s (%s)%s. Ctrl-C to disconnect",
		in.bastion(), in.transportName(), joinPrefixes(o.cidrs), in.iface, in.plan.TUNAddr(), in.dnsSummary())
	backgroundReady()
	return in.wait(ctx)
}

// startStack creates the TUN and the netstack that serves it.
func (in *instance) startStack() error {
	o := in.opts
	if err := routing.Cleanup(in.host, o.name); err != nil { // a persistent TUN a dead instance left
		return err
	}
	dev, err := in.host.CreateTUN(o.name, o.mtu)
	if err != nil {
		return err
	}
	// On macOS the kernel named it (utunN): the routes and DNS go there.
	if in.iface, err = dev.Name(); err == nil {
		err = in.plan.SetInterface(in.iface)
	}
	if err != nil {
		dev.Close()
		return err
	}
	locals := newLocalAddrs(in.host, in.plan.TUNAddr())
	procs := newProcGovernor(func() bool {
		s := in.stackP.Load()
		return s != nil && s.Stats().BulkDownloads > 0
	}, func() bool {
		s := in.stackP.Load()
		return s != nil && s.Stats().BulkOpen > 0
	}, func() bool {
		s := in.stackP.Load()
		return s != nil && s.Stats().Active
	}, in.log)
	in.stack, err = netstack.New(netstack.Config{
		Device:         dev,
		MTU:            o.mtu,
		Routes:         in.plan.Routes(),
		IsLocal:        locals.contains,
		Dial:           in.link.DialContext,
		ConnectTimeout: o.connectTimeout,
		Logger:         in.log,
		BulkChanged:    procs.changed,
		ActiveChanged:  procs.changed,
	})
	if err != nil {
		dev.Close()
		return err
	}
	in.procs = procs
	in.stackP.Store(in.stack)
	in.stack.Start()
	return nil
}

// flowsOpen is the number of TCP flows open through the tunnel.
func (in *instance) flowsOpen() int64 {
	if s := in.stackP.Load(); s != nil {
		return s.Stats().FlowsOpen
	}
	return 0
}

// keepAliveActive says when the SSH connection sends keepalives: while
// flows are open, whose user would otherwise wait out TCP's minutes on a
// dead path, or always with --keep-alive. An idle tunnel sends nothing.
func (in *instance) keepAliveActive() bool {
	return in.opts.keepAlive || in.flowsOpen() > 0
}

// disconnect ends the SSH connection and resets the apps' flows, before
// the routes and the interface go: the resets reach the apps, whose
// connections would otherwise hang until their next write timed out. The
// connection goes first: a relay waits in its channel's Read until the
// server answers the channel's close, which on a dead path it never does;
// with the connection ended, every channel ends at once. Its transport's
// goodbye goes on meanwhile (awaitLink).
func (in *instance) disconnect() {
	in.link.close()
	in.stack.ResetFlows()
}

// awaitLink runs last, once the host is restored: it waits for the closes
// of the connections that disconnect and reconnects began (or begins one,
// on an early return). Over SSM on a dead path that is a goodbye to AWS of
// a few seconds, so the control socket goes first (`vpcvpn down` returns as
// soon as nothing of the tunnel is left on the host), and Ctrl-C ends the
// wait.
func (in *instance) awaitLink(ctl *controlServer) {
	done := in.link.close()
	select {
	case <-done:
		return
	default:
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	ctl.close()
	slow := time.NewTimer(250 * time.Millisecond)
	defer slow.Stop()
	select {
	case <-done:
		return
	case <-slow.C:
	}
	in.progress("host restored; ending the session with %s (a few seconds at most, Ctrl-C skips it)", in.bastion())
	select {
	case <-done:
	case <-sig:
		in.progress("stopped without ending the session: AWS ends it when its idle timeout runs out")
	}
}

// dialFirst is the first dial, which `vpcvpn down` cancels as Ctrl-C
// does: nothing is installed yet, and there is nothing to wait for.
func (in *instance) dialFirst(ctx context.Context) (*tunnel.Client, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // ends with the dial at the latest
		select {
		case <-in.downCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	return in.dial(ctx)
}

// dial connects to the bastion with the instance's options.
func (in *instance) dial(ctx context.Context) (*tunnel.Client, error) {
	return dialSSH(ctx, in.opts, in.inv, &in.keys, in.protect, in.hooks(in.gen.Add(1)), in.log)
}

// hooks follow the connection of dial number gen: an SSM data channel that
// breaks and resumes under it shows in status as reconnecting and back.
func (in *instance) hooks(gen int64) connHooks {
	current := func() bool { return in.gen.Load() == gen }
	return connHooks{
		keepAlive: in.keepAliveActive,
		resuming: func(cause error) {
			if current() && in.state.CompareAndSwap("connected", "reconnecting") {
				in.lastErr.Store("SSM data channel broken: " + cause.Error())
				in.progress("SSM data channel broken (%v); resuming the session, routes and DNS stay in place", cause)
			}
		},
		resumed: func() {
			if current() && in.state.CompareAndSwap("reconnecting", "connected") {
				in.progress("SSM session resumed")
			}
		},
	}
}

// wait runs until Ctrl-C, SIGTERM, `vpcvpn down`, or a lost connection
// that cannot be reconnected (reconnect.go). A connection lost while idle
// (no flow open, no --keep-alive: an SSM session the service timed out) is
// restored when the next flow or DNS query needs it.
func (in *instance) wait(ctx context.Context) error {
	up := time.Now() // when the current connection was made
	for {
		c := in.link.current()
		if end, err := in.until(ctx, c.Done()); end {
			return err
		}
		lost := c.Err()
		in.link.set(nil)
		in.lastErr.Store(lost.Error())
		in.link.retire(c) // its transport's goodbye can take seconds
		// A connection that lasted is redialed at once; one that died
		// young waits, so that a bastion that drops every connection
		// is not hammered.
		first := reconnectMin
		if time.Since(up) > reconnectMax {
			first = 0
		}
		if c.EndedIdle() {
			in.state.Store("idle")
			in.progress("connection to %s ended while idle (%v); the next connection through the tunnel reconnects", in.bastion(), lost)
			if end, err := in.until(ctx, in.link.demand); end {
				return err
			}
			in.progress("reconnecting to %s for a new connection", in.bastion())
			first = 0
		} else {
			in.progress("connection to %s lost (%v); reconnecting, routes and DNS stay in place", in.bastion(), lost)
		}
		in.state.Store("reconnecting")
		began := time.Now()
		next, err := in.reconnect(ctx, in.dial, first)
		if err != nil {
			if ctx.Err() != nil || isClosed(in.downCh) {
				in.progress("disconnecting")
				return nil
			}
			return fmt.Errorf("connection to %s lost and cannot be restored: %w", in.bastion(), err)
		}
		in.link.set(next)
		up = time.Now()
		in.state.Store("connected")
		in.progress("reconnected to %s via %s in %v", in.bastion(), in.transportName(), time.Since(began).Round(time.Millisecond))
	}
}

// until waits for ch, or for what ends the instance: Ctrl-C or SIGTERM,
// `vpcvpn down`, the interface gone. end reports the latter, and err what
// wait returns then.
func (in *instance) until(ctx context.Context, ch <-chan struct{}) (end bool, err error) {
	select {
	case <-ch:
		return false, nil
	case <-ctx.Done():
		in.progress("disconnecting")
		return true, nil
	case <-in.downCh:
		in.progress("disconnecting (vpcvpn down)")
		return true, nil
	case <-in.stack.Done():
		return true, errors.New("the tunnel interface went away")
	}
}

// isClosed reports whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (in *instance) requestDown() {
	in.downed.Do(func() { close(in.downCh) })
}

func (in *instance) status() Status {
	o := in.opts
	st := Status{
		Name:      o.name,
		State:     in.state.Load().(string),
		Transport: in.transportName(),
		Bastion:   in.bastion(),
		Interface: o.name,
		PID:       os.Getpid(),
		Since:     in.since,
		Routes:    []string{},
	}
	for _, p := range o.cidrs {
		st.Routes = append(st.Routes, p.String())
	}
	st.LastError = in.lastErr.Load().(string)
	if st.State != "connecting" {
		st.Address = in.plan.TUNAddr().String()
		st.Interface = in.iface
		s := in.stack.Stats()
		st.FlowsOpen, st.FlowsTotal, st.FlowsFailed = s.FlowsOpen, s.FlowsTotal, s.FlowsFailed
		st.BytesUp, st.BytesDown = s.BytesUp, s.BytesDown
		st.DNS = in.dnsStatus()
	}
	return st
}

func (in *instance) bastion() string {
	if in.opts.via == "ssm" {
		if in.opts.port != "22" {
			return in.opts.user + "@" + in.opts.host + ":" + in.opts.port
		}
		return in.opts.user + "@" + in.opts.host
	}
	return in.opts.user + "@" + joinHostPort(in.opts.host, in.opts.port)
}

func (in *instance) transportName() string {
	if in.opts.via == "ssm" {
		return "ssm"
	}
	if in.opts.proxyCommand != "" {
		return "ssh (proxy command)"
	}
	return "ssh"
}

func (in *instance) progress(format string, args ...any) {
	fmt.Fprintf(in.out, "vpcvpn: "+format+"\n", args...)
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
