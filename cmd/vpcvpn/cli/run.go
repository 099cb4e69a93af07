package cli

// One `vpcvpn up` in the foreground: the control socket first (a second
// tunnel of the same name is refused before anything else), then the
// engine (package engine) built from the flags, run until Ctrl-C, SIGTERM,
// `vpcvpn down` or a loss that cannot be recovered, and closed. Its events
// become the progress lines; the processor governor follows its traffic.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vpcvpn/vpcvpn/engine"
	"github.com/vpcvpn/vpcvpn/platform"
	"github.com/vpcvpn/vpcvpn/routing"
)

// errDown is the cause of a run's end that `vpcvpn down` asked for.
var errDown = errors.New("vpcvpn down")

// upRun is one `vpcvpn up`.
type upRun struct {
	opts  *upOptions
	inv   invoker
	out   io.Writer // progress and the connected line, for the person
	log   *slog.Logger
	since time.Time

	stop    context.CancelCauseFunc       // ends the run; errDown for `vpcvpn down`
	eng     atomic.Pointer[engine.Engine] // nil until the bastion is resolved and the routes planned
	procs   atomic.Pointer[procGovernor]  // nil until connected, or when GOMAXPROCS is the user's
	flows   *flowLog                      // --flow-log; nil without
	bastion ephemeralRun                  // --ephemeral: what was launched

	// found guards opts.host, user and cidrs while findTarget settles
	// them (--target by name, -N) and the control socket answers status.
	found sync.Mutex
}

func runTunnel(ctx context.Context, o *upOptions, stderr io.Writer) error {
	log := newLogger(stderr, o.verbose)
	host, err := platform.New(log)
	if err != nil {
		return fmt.Errorf("vpcvpn up is not supported on this system yet: %w", err)
	}
	defer host.Close()
	r := &upRun{opts: o, inv: currentInvoker(), out: stderr, log: log, since: time.Now()}
	return r.run(ctx, host)
}

// run serves the control socket, builds the engine and runs it, then
// closes it: the host is restored, the control socket removed (`vpcvpn
// down` returns then), and the transports' goodbyes awaited.
func (r *upRun) run(ctx context.Context, host platform.Host) error {
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	r.stop = stop
	defer r.endEphemeral() // last: after the goodbyes
	ctl, err := r.serveControl()
	if err != nil {
		return err
	}
	if err := checkRunningOverlap(ctx, r.opts.name, r.opts.cidrs); err != nil {
		ctl.close()
		return err
	}
	if r.flows, err = openFlowLog(r.opts.flowLog, r.opts.name, r.inv, r.log); err != nil {
		ctl.close()
		return err
	}
	defer r.flows.close() // after eng.Close: every flow has ended
	eng, err := r.newEngine(ctx, host)
	if err != nil {
		ctl.close()
		if errors.Is(context.Cause(ctx), errDown) {
			r.progress("stopped before connecting; nothing was installed")
			return nil
		}
		return err
	}
	err = eng.Run(ctx)
	// In reverse: the host restored, the processors let go, the control
	// socket removed, the goodbyes awaited.
	err = errors.Join(err, eng.Close())
	r.procs.Load().stop()
	r.awaitGoodbye(eng, ctl)
	return err
}

// serveControl starts the control socket, which `vpcvpn status` and `vpcvpn
// down` talk to.
func (r *upRun) serveControl() (*controlServer, error) {
	o := r.opts
	ln, err := listenControl(socketPath(o.name), r.inv.UID, r.inv.GID)
	if errors.Is(err, errAlreadyRunning) {
		return nil, alreadyRunning(o.name)
	}
	if err != nil {
		return nil, err
	}
	ctl := &controlServer{
		ln: ln, path: socketPath(o.name), status: r.status,
		down: func() { r.stop(errDown) }, allowed: r.inv.allowed, log: r.log,
	}
	ctl.start()
	return ctl, nil
}

// newEngine resolves what must stay out of the tunnel (the bastion, the AWS
// endpoints) and builds the engine, which plans the routes.
func (r *upRun) newEngine(ctx context.Context, host platform.Host) (*engine.Engine, error) {
	o := r.opts
	netChg, err := platform.WatchNetwork(ctx, r.log)
	if err != nil {
		r.log.Warn("reconnects will not notice network changes", "err", err)
	}
	// The AWS endpoints the transport runs over stay out of the tunnel,
	// as a bastion does (an interface VPC endpoint, say).
	var endpoints []netip.Addr
	var names map[netip.Addr]string
	if o.viaAWS() {
		cfg, err := awsConfig(ctx, o, r.inv)
		if err != nil {
			return nil, sudoHint(err, o, r.inv)
		}
		endpoints, names = resolveAWSEndpoints(ctx, awsEndpointHosts(ctx, cfg))
		if err := r.findTarget(ctx, cfg, endpoints, names); err != nil {
			return nil, sudoHint(err, o, r.inv)
		}
		if o.via == "eice" {
			addrs, more, err := r.findEICE(ctx, cfg)
			if err != nil {
				return nil, sudoHint(err, o, r.inv)
			}
			endpoints = append(endpoints, addrs...)
			maps.Copy(names, more)
		}
		if o.autoNets {
			// The VPC's ranges are known only now.
			if err := checkRunningOverlap(ctx, o.name, o.cidrs); err != nil {
				return nil, err
			}
		}
	}
	r.progress("connecting to %s via %s", o.bastion(), o.transportName())
	protect, err := resolveBastion(ctx, o)
	if err != nil {
		return nil, err
	}
	rcfg := routing.Config{
		Interface: o.name, CIDRs: o.cidrs, TUNAddr: o.tunAddr, Logger: r.log,
		Protect: append(slices.Clone(protect), endpoints...), ProtectNames: names,
	}
	d := &dialer{opts: o, inv: r.inv, log: r.log, protect: protect}
	eng, err := engine.New(engine.Config{
		Host:           host,
		Routing:        rcfg,
		DNS:            r.dnsConfig(),
		Connect:        d.connect,
		Bastion:        o.bastion(),
		MTU:            o.mtu,
		ConnectTimeout: o.connectTimeout,
		KeepAlive:      o.keepAlive,
		MaxConns:       o.maxSessions,
		ConnIdle:       o.sessionIdle,
		NoSpare:        !o.spare,
		PaceBulk:       o.paceBulk,
		NetworkChanged: netChg,
		Events:         func(ev engine.Event) { r.event(ctx, ev) },
		TrafficChanged: func() { r.procs.Load().changed() },
		FlowEnded:      r.flows.flowEnded(),
		Logger:         r.log,
	})
	if errors.Is(err, engine.ErrNoDNSAddr) {
		err = fmt.Errorf("%w; use --no-dns", err)
	}
	if err != nil {
		return nil, err
	}
	r.eng.Store(eng)
	return eng, nil
}

// event prints an engine's progress for the person.
func (r *upRun) event(ctx context.Context, ev engine.Event) {
	b := r.opts.bastion()
	switch ev.Kind {
	case engine.EventConnected:
		r.connected()
	case engine.EventStoppedEarly:
		r.progress("stopped before connecting; nothing was installed")
	case engine.EventResuming:
		r.progress("SSM data channel broken (%v); resuming the session, routes and DNS stay in place", ev.Err)
	case engine.EventResumed:
		r.progress("SSM session resumed")
	case engine.EventLost:
		r.progress("connection to %s lost (%v); reconnecting, routes and DNS stay in place", b, ev.Err)
	case engine.EventLostIdle:
		r.progress("connection to %s ended while idle (%v); the next connection through the tunnel reconnects", b, ev.Err)
	case engine.EventDemand:
		r.progress("reconnecting to %s for a new connection", b)
	case engine.EventRetry:
		r.progress("reconnect failed (%v); trying again", ev.Err)
	case engine.EventReconnected:
		r.progress("reconnected to %s via %s in %v", b, r.opts.transportName(), ev.Took.Round(time.Millisecond))
	case engine.EventStopping:
		if errors.Is(context.Cause(ctx), errDown) {
			r.progress("disconnecting (vpcvpn down)")
		} else {
			r.progress("disconnecting")
		}
	default:
		r.connEvent(ev)
	}
}

// connEvent logs what happened to one of several sessions (connections
// over --ssh): a loss, and the end of a draining one that reset
// connections, as a warning; a successor opened for a draining one at
// Info; the rest for -v.
func (r *upRun) connEvent(ev engine.Event) {
	name := fmt.Sprintf("%s #%d", r.opts.sessionWord(), ev.Conn)
	switch ev.Kind {
	case engine.EventConnLost:
		r.log.Warn(fmt.Sprintf("%s lost; %d connection(s) through it reset, the others carry on", name, ev.Flows), "err", ev.Err)
	case engine.EventConnOpened:
		if ev.Replaces != 0 {
			r.log.Info(fmt.Sprintf("%s opened to succeed #%d, which reaches its maximum duration soon; new connections go to #%d",
				name, ev.Replaces, ev.Conn), "took", ev.Took.Round(time.Millisecond))
			return
		}
		r.log.Debug(name+" opened", "took", ev.Took.Round(time.Millisecond))
	case engine.EventConnDraining:
		r.log.Debug(fmt.Sprintf("%s ends in %v (its maximum duration): it takes no new connections; the %d open on it are reset then",
			name, ev.Took.Round(time.Second), ev.Flows))
	case engine.EventConnRetired:
		if ev.Flows == 0 {
			r.log.Info(name + " closed before its maximum duration: no connection was open on it")
			return
		}
		// a warning, as for a lost one: connections were reset
		r.log.Warn(fmt.Sprintf("%s ended at its maximum duration; %d connection(s) still open on it reset", name, ev.Flows), "err", ev.Err)
	case engine.EventConnClosedIdle:
		r.log.Debug(name + " closed: nothing used it")
	case engine.EventConnThrottled:
		r.log.Debug(name+" throttled by AWS; no more sessions for a while", "retry_in", ev.Took.Round(time.Second), "err", ev.Err)
	case engine.EventConnFailed:
		r.log.Debug(name+" failed", "retry_in", ev.Took.Round(time.Second), "err", ev.Err)
	}
}

// connected prints the connected line, starts the processor governor and
// tells a waiting --background parent.
func (r *upRun) connected() {
	o := r.opts
	eng := r.eng.Load()
	st := eng.Status()
	r.progress("connected to %s via %s; routing %s through %s (%s)%s. Ctrl-C to disconnect",
		o.bastion(), o.transportName(), joinPrefixes(o.cidrs), st.Interface, st.Address, dnsSummary(st.DNS))
	g := newProcGovernor(func() bool {
		return eng.Traffic().BulkDownloads > 0
	}, func() bool {
		return eng.Traffic().BulkOpen > 0
	}, func() bool {
		return eng.Traffic().Active
	}, func() bool {
		return eng.ConnsMoving() >= 2
	}, r.log)
	r.procs.Store(g)
	g.changed()
	backgroundReady()
}

// awaitGoodbye runs last, once the host is restored: it removes the
// control socket and waits for the closes of the engine's connections.
// Over SSM on a dead path that is a goodbye to AWS of a few seconds, so the
// control socket goes first (`vpcvpn down` returns as soon as nothing of
// the tunnel is left on the host), and Ctrl-C ends the wait.
func (r *upRun) awaitGoodbye(eng *engine.Engine, ctl *controlServer) {
	defer ctl.close() // idempotent
	done := eng.Wait()
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
	r.progress("host restored; ending the session with %s (a few seconds at most, Ctrl-C skips it)", r.opts.bastion())
	select {
	case <-done:
	case <-sig:
		r.progress("stopped without ending the session: AWS ends it when its idle timeout runs out")
	}
}

func (r *upRun) progress(format string, args ...any) {
	if os.Getenv(tunnelEnv) != "" {
		// One of several: say which.
		format = r.opts.name + ": " + format
	}
	fmt.Fprintf(r.out, "vpcvpn: "+format+"\n", args...)
}

func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
