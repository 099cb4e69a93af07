package engine

import (
	"context"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/vpcvpn/vpcvpn/tunnel"
)

// pool holds the tunnel's SSH connections: those up, those resuming, and
// those being dialed. Its DialContext is what the netstack and the DNS
// proxy dial every flow with. A connection that ends is taken out and
// closed in the background; when the last one is gone, serve (reconnect.go)
// takes over, as it does with a single connection.
type pool struct {
	max    int                // connections at most
	demand chan struct{}      // a flow waits for a connection; capacity 1
	gone   chan *conn         // the last connection ended; capacity 1
	lost   func(*conn, error) // a connection ended while others remain

	mu      sync.Mutex    // guards following, and the conns' fields
	conns   []*conn       // in dial order
	nextID  int           // the last id given
	changed chan struct{} // closed when conns or a state changes
	empty   bool          // the last connection ended and serve has not dialed the next
	closed  chan struct{} // made by close, closed when every close is done

	wg sync.WaitGroup // watchers, and connections being closed
}

func newPool(max int, lost func(*conn, error)) *pool {
	return &pool{
		max:     max,
		demand:  make(chan struct{}, 1),
		gone:    make(chan *conn, 1),
		lost:    lost,
		changed: make(chan struct{}),
	}
}

// notifyLocked wakes the dials waiting for a change. p.mu is held.
func (p *pool) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// begin records a connection about to be dialed; the dial's context is
// canceled when the pool closes, or, for an extra, when the last
// connection ends.
func (p *pool) begin(ctx context.Context, extra bool) (*conn, context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextID++
	c := &conn{id: p.nextID, extra: extra, state: ConnDialing, since: time.Now(), cancel: cancel}
	if p.closed != nil {
		cancel()
		return c, ctx
	}
	p.conns = append(p.conns, c)
	p.notifyLocked()
	return c, ctx
}

// add makes the dialed c usable with client, and watches it. It reports
// false, and closes client, if the pool has no use for it any more: it is
// closed, or c is an extra and the connections it was to join are gone.
// After close it is called only from goroutines in p.wg (extra dials):
// serve's dials end before Close closes the pool.
func (p *pool) add(c *conn, client *tunnel.Client) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.cancel()
	c.cancel = nil
	if p.closed != nil || (c.extra && p.empty) || !slices.Contains(p.conns, c) {
		p.removeLocked(c)
		p.wg.Go(func() { client.Close() })
		return false
	}
	c.client, c.state, c.since = client, ConnUp, time.Now()
	p.empty = false
	p.notifyLocked()
	p.wg.Go(func() { p.watch(c) })
	return true
}

// abandon forgets c, whose dial failed.
func (p *pool) abandon(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.cancel()
	c.cancel = nil
	p.removeLocked(c)
}

// removeLocked takes c out of conns and marks it closing. p.mu is held.
func (p *pool) removeLocked(c *conn) {
	c.state = ConnClosing
	if i := slices.Index(p.conns, c); i >= 0 {
		p.conns = slices.Delete(p.conns, i, i+1)
		p.notifyLocked()
	}
}

// watch waits for c's connection to end, or for the pool to close it.
func (p *pool) watch(c *conn) {
	<-c.client.Done()
	p.mu.Lock()
	if c.state == ConnClosing { // closed by the pool
		p.mu.Unlock()
		return
	}
	p.removeLocked(c)
	last := !slices.ContainsFunc(p.conns, (*conn).hasClient)
	if last {
		// serve takes over: only a flow from now on asks for the next
		// connection, and extras being dialed are given up.
		p.empty = true
		select {
		case <-p.demand:
		default:
		}
		for _, d := range p.conns {
			if d.extra && d.cancel != nil {
				d.cancel()
			}
		}
	}
	p.mu.Unlock()
	if last {
		p.gone <- c // never blocks: the next is added after serve took it
	} else if p.lost != nil {
		p.lost(c, c.client.Err())
	}
	// Its transport's goodbye can take seconds on a dead path (an SSM
	// session waits for the agent's acks, then calls TerminateSession,
	// each bounded).
	c.client.Close()
}

// hasClient reports whether c is connected, up or resuming. p.mu is held.
func (c *conn) hasClient() bool { return c.client != nil }

// setState moves c from one state to another and reports whether it did,
// with whether any connection is up afterwards.
func (p *pool) setState(c *conn, from, to ConnState) (ok, anyUp bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.state != from {
		return false, false
	}
	c.state = to
	p.notifyLocked()
	return true, slices.ContainsFunc(p.conns, func(c *conn) bool { return c.state == ConnUp })
}

// pickLocked returns a connection to open a flow on: the first up, else the
// first resuming; nil when there is none.
func (p *pool) pickLocked() *conn {
	var resuming *conn
	for _, c := range p.conns {
		switch {
		case !c.usable():
		case c.state == ConnUp:
			return c
		case resuming == nil:
			resuming = c
		}
	}
	return resuming
}

// DialContext opens a channel on one of the connections. While there is
// none, or when the one it chose dies during the dial, it waits for the
// next one until ctx ends.
func (p *pool) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	for {
		p.mu.Lock()
		c, changed := p.pickLocked(), p.changed
		p.mu.Unlock()
		if c != nil {
			nc, err := c.client.DialContext(ctx, network, addr)
			select {
			case <-c.client.Done(): // lost under the dial: wait for the next
				if nc != nil {
					nc.Close()
				}
			default:
				return nc, err
			}
		} else {
			select { // an idle engine reconnects on demand
			case p.demand <- struct{}{}:
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

// status returns the connections' part of Status.
func (p *pool) status() []ConnStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ConnStatus, 0, len(p.conns))
	for _, c := range p.conns {
		out = append(out, ConnStatus{ID: c.id, State: c.state, Since: c.since})
	}
	return out
}

// close closes every connection and gives up the dials in progress, and
// returns a channel that is closed when every connection is closed; every
// call returns the same one. The connections end at once (their flows'
// reads and writes fail); the engine restores the host meanwhile. No
// connection is added after close.
func (p *pool) close() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed != nil {
		return p.closed
	}
	done := make(chan struct{})
	p.closed = done
	for _, c := range p.conns {
		if c.cancel != nil {
			c.cancel()
		}
		if c.client != nil {
			c.state = ConnClosing
			p.wg.Go(func() { c.client.Close() })
		}
	}
	p.conns = nil
	p.notifyLocked()
	go func() {
		p.wg.Wait()
		close(done)
	}()
	return done
}

// newPool makes the engine's pool.
func (e *Engine) newPool() *pool {
	return newPool(1, func(c *conn, err error) {
		e.emit(Event{Kind: EventConnLost, Conn: c.id, Err: err})
	})
}
