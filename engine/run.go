package engine

import (
	"context"
	"errors"
	"net"

	"github.com/vpcvpn/vpcvpn/dnsproxy"
	"github.com/vpcvpn/vpcvpn/netstack"
	"github.com/vpcvpn/vpcvpn/routing"
)

// setup is what Run set up on the host, in order; Close undoes it in
// reverse (close.go). A nil field was not reached.
type setup struct {
	iface   string          // the TUN's name: Routing.Interface, or the utunN macOS chose
	stack   *netstack.Stack // owns the TUN
	dns     *dnsproxy.Proxy // nil without split DNS
	applied bool            // the plan's address, routes and DNS are set
}

// stackOrNil returns up's stack, nil if up is nil or has none yet; e.mu is
// held.
func (up *setup) stackOrNil() *netstack.Stack {
	if up == nil {
		return nil
	}
	return up.stack
}

// Run connects, sets up the host and keeps the tunnel up until ctx ends
// (it returns nil then) or the connection is lost for good, or the TUN
// goes away. Nothing is installed before the first connection is made: if
// ctx ends during that dial, Run reports EventStoppedEarly and returns
// nil. Run may be called once; Close restores the host afterwards.
func (e *Engine) Run(ctx context.Context) error {
	ctx, running, err := e.begin(ctx)
	if err != nil {
		return err
	}
	defer close(running)
	p := e.newPool()
	p.start()
	e.mu.Lock()
	e.pool = p
	e.mu.Unlock()
	if _, err := p.dial(ctx); err != nil {
		if ctx.Err() != nil {
			e.emit(Event{Kind: EventStoppedEarly})
			return nil
		}
		return err
	}
	if err := e.setUp(p); err != nil {
		return err
	}
	e.move(StateConnected)
	e.emit(Event{Kind: EventConnected})
	return e.serve(ctx, p)
}

// begin registers a Run, whose context Close ends.
func (e *Engine) begin(ctx context.Context) (context.Context, chan struct{}, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, nil, net.ErrClosed
	}
	if e.running != nil {
		return nil, nil, errors.New("engine: Run called twice")
	}
	ctx, e.stopRun = context.WithCancel(ctx)
	e.running = make(chan struct{})
	return ctx, e.running, nil
}

// setUp creates the TUN and the netstack behind it, starts the DNS proxy
// and applies the plan: the TUN's address, the routes, split DNS. What it
// set up is recorded in e.up as it goes, for Close.
func (e *Engine) setUp(p *pool) error {
	up := &setup{}
	e.mu.Lock()
	e.up = up
	e.mu.Unlock()
	if err := e.startStack(up, p); err != nil {
		return err
	}
	if e.dns.server.IsValid() {
		proxy, err := e.startDNSProxy(up.stack, p)
		if err != nil {
			return err
		}
		e.mu.Lock()
		up.dns = proxy
		e.mu.Unlock()
	}
	if err := e.plan.Apply(); err != nil { // reverts what it did on failure
		return err
	}
	e.mu.Lock()
	up.applied = true
	e.mu.Unlock()
	if up.dns != nil {
		e.setFallback(e.plan.DNS().Fallback)
	}
	return nil
}

// startStack creates the TUN and the netstack that serves it.
func (e *Engine) startStack(up *setup, p *pool) error {
	name := e.cfg.Routing.Interface
	if err := routing.Cleanup(e.cfg.Host, name); err != nil { // a persistent TUN a dead instance left
		return err
	}
	dev, err := e.cfg.Host.CreateTUN(name, e.cfg.MTU)
	if err != nil {
		return err
	}
	// On macOS the kernel named it (utunN): the routes and DNS go there.
	iface, err := dev.Name()
	if err == nil {
		err = e.plan.SetInterface(iface)
	}
	if err != nil {
		dev.Close()
		return err
	}
	locals := newLocalAddrs(e.cfg.Host, e.plan.TUNAddr())
	ncfg := netstack.Config{
		Device:         dev,
		MTU:            e.cfg.MTU,
		Routes:         e.plan.Routes(),
		IsLocal:        locals.contains,
		Dial:           p.DialContext,
		ConnectTimeout: e.cfg.ConnectTimeout,
		Logger:         e.log,
		BulkChanged:    e.cfg.TrafficChanged,
		ActiveChanged:  e.cfg.TrafficChanged,
	}
	if e.cfg.FlowEnded != nil {
		ncfg.Dial, ncfg.FlowEnded = e.flowDial(p), e.flowEnded
	}
	stack, err := netstack.New(ncfg)
	if err != nil {
		dev.Close()
		return err
	}
	e.mu.Lock()
	up.iface, up.stack = iface, stack
	e.mu.Unlock()
	stack.Start()
	return nil
}
