package cli

// Reconnect: when the SSH connection (or the transport under it) dies, the
// instance keeps its routes, DNS and netstack and dials a new connection,
// with capped exponential backoff and jitter, for as long as it runs.
// Flows that were open end with the old connection; new flows wait in
// link.DialContext, up to the netstack's connect timeout, for the next one.
// An error that retrying cannot fix (a changed host key, refused
// credentials, AWS access denied or no such target) ends the instance.

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vpcvpn/vpcvpn/tunnel"
	"github.com/vpcvpn/vpcvpn/tunnel/ssm"
)

// Reconnect backoff: the first retry after reconnectMin, doubling up to
// reconnectMax, each +-20%.
const (
	reconnectMin = time.Second
	reconnectMax = 30 * time.Second
)

// link is the instance's current SSH connection, replaced on reconnect.
// Its DialContext is what the netstack and the DNS proxy dial with.
type link struct {
	demand chan struct{} // a dial waits for a connection; capacity 1

	mu      sync.Mutex     // guards following
	client  *tunnel.Client // nil while reconnecting
	changed chan struct{}  // closed when client is replaced
	closed  chan struct{}  // made by close, closed when every close is done

	closing sync.WaitGroup // connections being closed (retire)
}

func newLink(c *tunnel.Client) *link {
	return &link{client: c, changed: make(chan struct{}), demand: make(chan struct{}, 1)}
}

// set replaces the connection (nil while there is none) and wakes the
// dials waiting for it. It returns the previous one. Setting nil forgets
// earlier demand: only a dial from then on asks for a connection.
func (l *link) set(c *tunnel.Client) *tunnel.Client {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.setLocked(c)
}

// setLocked is set with l.mu held.
func (l *link) setLocked(c *tunnel.Client) *tunnel.Client {
	old := l.client
	l.client = c
	close(l.changed)
	l.changed = make(chan struct{})
	if c == nil {
		select {
		case <-l.demand:
		default:
		}
	}
	return old
}

// current returns the connection, nil while reconnecting.
func (l *link) current() *tunnel.Client {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.client
}

// DialContext opens a channel on the current connection. While there is
// none, or when the connection dies during the dial, it waits for the next
// one until ctx ends.
func (l *link) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	for {
		l.mu.Lock()
		c, changed := l.client, l.changed
		l.mu.Unlock()
		if c != nil {
			conn, err := c.DialContext(ctx, network, addr)
			select {
			case <-c.Done(): // lost under the dial: wait for the next
				if conn != nil {
					conn.Close()
				}
			default:
				return conn, err
			}
		} else {
			select { // an idle instance reconnects on demand
			case l.demand <- struct{}{}:
			default:
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// retire closes c, a connection the link no longer holds, in the
// background: the transport's goodbye can take seconds on a dead path (an
// SSM session waits for the agent's acks, then calls TerminateSession,
// each bounded). close waits for it.
func (l *link) retire(c *tunnel.Client) {
	l.closing.Go(func() { c.Close() })
}

// close retires the current connection, if any, and returns a channel
// that is closed when every retired connection is closed; every call
// returns the same one. The connections end at once (their flows' reads
// and writes fail); the instance restores the host meanwhile and waits
// for the goodbyes only at the end. No connection is set after close.
func (l *link) close() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed != nil {
		return l.closed
	}
	if c := l.setLocked(nil); c != nil {
		l.retire(c)
	}
	done := make(chan struct{})
	l.closed = done
	go func() {
		l.closing.Wait()
		close(done)
	}()
	return done
}

// minAttempt is how long a dial runs before a change of the network may
// abandon it: a network that keeps changing must not starve every attempt.
const minAttempt = time.Second

// dialOnce runs one dial, abandoned when the machine's network changes
// under it (the SDK's own retries can hold an attempt for many seconds
// after the network came back), though not before minAttempt; changed
// reports that.
func (in *instance) dialOnce(ctx context.Context, dial func(context.Context) (*tunnel.Client, error)) (c *tunnel.Client, err error, changed bool) {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var netChanged atomic.Bool
	done := make(chan struct{})
	defer close(done)
	began := time.Now()
	go func() {
		select {
		case <-in.netChg:
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

// permanent reports whether dialing again cannot succeed without the user
// changing something. Expired AWS credentials are the exception: a tunnel
// that ran all day outlives its SSO session, and keeps retrying (saying
// why) until the user logs in again, as each dial loads them afresh.
func permanent(err error) bool {
	var hk *tunnel.HostKeyError
	var auth *tunnel.AuthError
	var se *ssm.SessionError
	if errors.As(err, &se) {
		return se.Permanent() && se.Kind != ssm.ErrCredentialsExpired
	}
	if pe, ok := errors.AsType[*pushError](err); ok {
		return pe.permanent()
	}
	return errors.As(err, &hk) || errors.As(err, &auth)
}

// reconnect dials until it succeeds, a permanent error, ctx ends or down
// is requested. dial is dialSSH with the instance's options. The first
// attempt comes after first (+-20%), later ones back off from reconnectMin;
// a change of the machine's network (a link back up, a new address) cuts
// the wait short and starts the backoff over.
func (in *instance) reconnect(ctx context.Context, dial func(context.Context) (*tunnel.Client, error), first time.Duration) (*tunnel.Client, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // vpcvpn down also ends a dial in progress
		select {
		case <-in.downCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	select { // only changes from now on count
	case <-in.netChg:
	default:
	}
	delay := first
	for attempt := 1; ; attempt++ {
		wait := time.Duration(float64(delay) * (0.8 + 0.4*rand.Float64()))
		in.log.Info("reconnecting", "attempt", attempt, "in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-in.netChg:
			t.Stop()
			in.log.Info("the network changed; reconnecting now")
			delay = 0
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		c, err, changed := in.dialOnce(ctx, dial)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if changed { // an attempt begun on the old network is worth nothing
			in.log.Info("the network changed during a reconnect attempt; trying again now", "err", err)
			delay = 0
			continue
		}
		in.lastErr.Store(err.Error())
		if permanent(err) {
			return nil, err
		}
		in.progress("reconnect failed (%v); trying again", err)
		delay = min(max(2*delay, reconnectMin), reconnectMax)
	}
}
