package engine

// Reconnect: when the SSH connection (or the transport under it) dies, the
// engine keeps its routes, DNS and netstack and dials a new connection,
// with capped exponential backoff and jitter, for as long as it runs.
// Flows that were open end with the old connection; new flows wait in
// pool.DialContext, up to the netstack's connect timeout, for the next
// one. An error that retrying cannot fix (IsPermanent: a changed host
// key, refused credentials, AWS access denied or no such target) ends Run.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/vpcvpn/vpcvpn/tunnel"
)

// Reconnect backoff: the first retry after reconnectMin, doubling up to
// reconnectMax, each +-20%.
const (
	reconnectMin = time.Second
	reconnectMax = 30 * time.Second
)

// minAttempt is how long a dial runs before a change of the network may
// abandon it: a network that keeps changing must not starve every attempt.
const minAttempt = time.Second

// IsPermanent reports whether err, from a ConnectFunc, says that dialing
// again cannot succeed without the user changing something: some error in
// its chain answers Permanent() true, as a net.Error answers Timeout.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// serve keeps the tunnel up until ctx ends, the TUN goes away, or a lost
// connection cannot be restored. It takes over when the pool's last
// connection ends: a connection lost while idle (no flow open, no
// KeepAlive: an SSM session the service timed out) is restored when the
// next flow or DNS query needs it.
func (e *Engine) serve(ctx context.Context, p *pool) error {
	for {
		c, end, err := until(e, ctx, p, p.gone)
		if end {
			return err
		}
		lost := c.client.Err()
		e.setLastErr(lost.Error())
		// A connection that lasted is redialed at once; one that died
		// young waits, so that a bastion that drops every connection
		// is not hammered.
		first := reconnectMin
		if time.Since(c.since) > reconnectMax {
			first = 0
		}
		if c.client.EndedIdle() {
			e.move(StateIdle)
			e.emit(Event{Kind: EventLostIdle, Conn: c.id, Err: lost})
			if _, end, err := until(e, ctx, p, p.demand); end {
				return err
			}
			e.emit(Event{Kind: EventDemand})
			first = 0
		} else {
			e.emit(Event{Kind: EventLost, Conn: c.id, Err: lost})
		}
		e.move(StateReconnecting)
		began := time.Now()
		next, err := e.reconnect(ctx, p, first)
		if err != nil {
			if ctx.Err() != nil {
				e.emit(Event{Kind: EventStopping})
				return nil
			}
			return fmt.Errorf("connection to %s lost and cannot be restored: %w", e.cfg.Bastion, err)
		}
		e.move(StateConnected)
		e.emit(Event{Kind: EventReconnected, Conn: next.id, Took: time.Since(began)})
	}
}

// until waits for a value from ch, or for what ends Run: ctx, the TUN
// gone, or an extra dial that met a changed host key. end reports the
// latter, and err what serve returns then.
func until[T any](e *Engine, ctx context.Context, p *pool, ch <-chan T) (v T, end bool, err error) {
	select {
	case v = <-ch:
		return v, false, nil
	case err := <-p.fatal:
		return v, true, fmt.Errorf("another connection to %s: %w", e.cfg.Bastion, err)
	case <-ctx.Done():
		e.emit(Event{Kind: EventStopping})
		return v, true, nil
	case <-e.up.stack.Done():
		return v, true, ErrInterfaceGone
	}
}

// reconnect dials until it succeeds, a permanent error, or ctx ends. The
// first attempt comes after first (+-20%), later ones back off from
// reconnectMin; a change of the machine's network (a link back up, a new
// address) cuts the wait short and starts the backoff over.
func (e *Engine) reconnect(ctx context.Context, p *pool, first time.Duration) (*conn, error) {
	select { // only changes from now on count
	case <-e.cfg.NetworkChanged:
	default:
	}
	delay := first
	for attempt := 1; ; attempt++ {
		wait := time.Duration(float64(delay) * (0.8 + 0.4*rand.Float64()))
		e.log.Info("reconnecting", "attempt", attempt, "in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-e.cfg.NetworkChanged:
			t.Stop()
			e.log.Info("the network changed; reconnecting now")
			delay = 0
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		var c *conn
		_, err, changed := e.dialOnce(ctx, func(ctx context.Context) (*tunnel.Client, error) {
			var err error
			c, err = p.dial(ctx)
			if err != nil {
				return nil, err
			}
			return c.client, nil
		})
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if changed { // an attempt begun on the old network is worth nothing
			e.log.Info("the network changed during a reconnect attempt; trying again now", "err", err)
			delay = 0
			continue
		}
		e.setLastErr(err.Error())
		if IsPermanent(err) {
			return nil, err
		}
		e.emit(Event{Kind: EventRetry, Err: err})
		delay = min(max(2*delay, reconnectMin), reconnectMax)
	}
}

// dialOnce runs one dial, abandoned when the machine's network changes
// under it (the SDK's own retries can hold an attempt for many seconds
// after the network came back), though not before minAttempt; changed
// reports that.
func (e *Engine) dialOnce(ctx context.Context, dial func(context.Context) (*tunnel.Client, error)) (c *tunnel.Client, err error, changed bool) {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var netChanged atomic.Bool
	done := make(chan struct{})
	defer close(done)
	began := time.Now()
	go func() {
		select {
		case <-e.cfg.NetworkChanged:
		case <-done:
			return
		}
		t := time.NewTimer(minAttempt - time.Since(began))
		defer t.Stop()
		select {
		case <-t.C:
			netChanged.Store(true)
			cancel()
		case <-done:
		}
	}()
	c, err = dial(actx)
	return c, err, err != nil && netChanged.Load()
}

// newPool makes the pool of Run's connections.
func (e *Engine) newPool() *pool {
	var p *pool
	p = newPool(poolConfig{
		max:       max(e.cfg.MaxConns, 1),
		idle:      cmp.Or(e.cfg.ConnIdle, DefaultConnIdle),
		spare:     !e.cfg.NoSpare,
		pace:      e.cfg.PaceBulk,
		keepAlive: e.cfg.KeepAlive,
	}, e.log, func(ctx context.Context, c *conn) (*tunnel.Client, error) {
		return e.cfg.Connect(ctx, e.hooks(p, c))
	}, e.emit)
	p.trafficChanged = e.cfg.TrafficChanged
	p.lostOne = func(err error) { e.setLastErr(err.Error()) }
	p.resuming = func(cause error) {
		if e.moveFrom(StateConnected, StateReconnecting) {
			e.setLastErr(cause.Error())
			e.emit(Event{Kind: EventResuming, Err: cause})
		}
	}
	return p
}

// hooks follow the connection c: an SSM data channel that breaks and
// resumes under it marks it resuming and back, and the engine reconnecting
// and back when no other connection is up meanwhile. The hooks of a
// connection the pool let go change nothing.
func (e *Engine) hooks(p *pool, c *conn) ConnHooks {
	return ConnHooks{
		KeepAliveActive: func() bool { return p.keepAliveActive(c) },
		Resuming: func(cause error) {
			why := "SSM data channel broken: " + cause.Error()
			ok, anyUp := p.setState(c, ConnUp, ConnResuming, why)
			if !ok {
				return
			}
			if !anyUp && e.moveFrom(StateConnected, StateReconnecting) {
				e.setLastErr(why)
				e.emit(Event{Kind: EventResuming, Conn: c.id, Err: cause})
				return
			}
			e.log.Info("SSM data channel broken; resuming the session", "conn", c.id, "err", cause)
		},
		Resumed: func() {
			if ok, _ := p.setState(c, ConnResuming, ConnUp, ""); !ok {
				return
			}
			if e.moveFrom(StateReconnecting, StateConnected) {
				e.emit(Event{Kind: EventResumed, Conn: c.id})
				return
			}
			e.log.Info("SSM session resumed", "conn", c.id)
		},
	}
}

// IsThrottled reports whether err, from a ConnectFunc, says the service
// refused the dial for its rate (an SSM StartSession ThrottlingException):
// some error in its chain answers Throttled() true. Extra connections back
// off longer then.
func IsThrottled(err error) bool {
	var t interface{ Throttled() bool }
	return errors.As(err, &t) && t.Throttled()
}
