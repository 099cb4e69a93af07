package engine

// Reconnect: when the SSH connection (or the transport under it) dies, the
// engine keeps its routes, DNS and netstack and dials a new connection,
// with capped exponential backoff and jitter, for as long as it runs.
// Flows that were open end with the old connection; new flows wait in
// clientSlot.DialContext, up to the netstack's connect timeout, for the
// next one. An error that retrying cannot fix (IsPermanent: a changed host
// key, refused credentials, AWS access denied or no such target) ends Run.

import (
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
// connection cannot be restored. A connection lost while idle (no flow
// open, no KeepAlive: an SSM session the service timed out) is restored
// when the next flow or DNS query needs it.
func (e *Engine) serve(ctx context.Context, slot *clientSlot) error {
	up := time.Now() // when the current connection was made
	for {
		c := slot.current()
		if end, err := e.until(ctx, c.Done()); end {
			return err
		}
		lost := c.Err()
		slot.set(nil)
		e.setLastErr(lost.Error())
		slot.retire(c) // its transport's goodbye can take seconds
		// A connection that lasted is redialed at once; one that died
		// young waits, so that a bastion that drops every connection
		// is not hammered.
		first := reconnectMin
		if time.Since(up) > reconnectMax {
			first = 0
		}
		if c.EndedIdle() {
			e.move(StateIdle)
			e.emit(Event{Kind: EventLostIdle, Err: lost})
			if end, err := e.until(ctx, slot.demand); end {
				return err
			}
			e.emit(Event{Kind: EventDemand})
			first = 0
		} else {
			e.emit(Event{Kind: EventLost, Err: lost})
		}
		e.move(StateReconnecting)
		began := time.Now()
		next, err := e.reconnect(ctx, first)
		if err != nil {
			if ctx.Err() != nil {
				e.emit(Event{Kind: EventStopping})
				return nil
			}
			return fmt.Errorf("connection to %s lost and cannot be restored: %w", e.cfg.Bastion, err)
		}
		slot.set(next)
		up = time.Now()
		e.move(StateConnected)
		e.emit(Event{Kind: EventReconnected, Took: time.Since(began)})
	}
}

// until waits for ch, or for what ends Run: ctx, or the TUN gone. end
// reports the latter, and err what serve returns then.
func (e *Engine) until(ctx context.Context, ch <-chan struct{}) (end bool, err error) {
	select {
	case <-ch:
		return false, nil
	case <-ctx.Done():
		e.emit(Event{Kind: EventStopping})
		return true, nil
	case <-e.up.stack.Done():
		return true, ErrInterfaceGone
	}
}

// reconnect dials until it succeeds, a permanent error, or ctx ends. The
// first attempt comes after first (+-20%), later ones back off from
// reconnectMin; a change of the machine's network (a link back up, a new
// address) cuts the wait short and starts the backoff over.
func (e *Engine) reconnect(ctx context.Context, first time.Duration) (*tunnel.Client, error) {
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
		c, err, changed := e.dialOnce(ctx, e.dial)
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

// dial makes a connection with Config.Connect, hooked to this engine.
func (e *Engine) dial(ctx context.Context) (*tunnel.Client, error) {
	return e.cfg.Connect(ctx, e.hooks(e.gen.Add(1)))
}

// hooks follow the connection of dial number gen: an SSM data channel that
// breaks and resumes under it shows in status as reconnecting and back.
func (e *Engine) hooks(gen int64) ConnHooks {
	current := func() bool { return e.gen.Load() == gen }
	return ConnHooks{
		KeepAliveActive: e.keepAliveActive,
		Resuming: func(cause error) {
			if current() && e.moveFrom(StateConnected, StateReconnecting) {
				e.setLastErr("SSM data channel broken: " + cause.Error())
				e.emit(Event{Kind: EventResuming, Err: cause})
			}
		},
		Resumed: func() {
			if current() && e.moveFrom(StateReconnecting, StateConnected) {
				e.emit(Event{Kind: EventResumed})
			}
		},
	}
}

// keepAliveActive says when the SSH connection sends keepalives: while
// flows are open, whose user would otherwise wait out TCP's minutes on a
// dead path, or always with KeepAlive. An idle tunnel sends nothing.
func (e *Engine) keepAliveActive() bool {
	return e.cfg.KeepAlive || e.Traffic().FlowsOpen > 0
}
