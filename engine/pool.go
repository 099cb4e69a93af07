package engine

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vpcvpn/vpcvpn/tunnel"
)

// pool holds the tunnel's SSH connections: those up, those resuming, and
// those being dialed. Its DialContext is what the netstack dials every flow
// with: it places the flow (schedule.go), opening another connection when
// every one carries something the flow would wait behind, up to max. The
// pool closes extra connections left without flows (maint.go). A
// connection that ends is taken out and its flows alone end; when the last
// one is gone, serve (reconnect.go) takes over, as with a single
// connection.
type pool struct {
	cfg     poolConfig
	log     *slog.Logger
	now     func() time.Duration // a monotonic clock; tests set it
	connect func(context.Context, *conn) (*tunnel.Client, error)
	emit    func(Event)
	// lostOne is called with why a connection was lost while others
	// remain: status's LastError.
	lostOne func(err error)
	// resuming is called when a connection was lost and those left are
	// all resuming: the engine is reconnecting until one has resumed.
	resuming func(cause error)
	// trafficChanged is Config.TrafficChanged: called when moving crosses 2.
	trafficChanged func()
	moving         atomic.Int32 // connections that moved payload in about the last second

	demand chan struct{} // a flow waits for a connection; capacity 1
	gone   chan *conn    // the last connection ended; capacity 1
	fatal  chan error    // an extra dial met what ends Run; capacity 1
	kick   chan struct{} // wakes maint; capacity 1
	ctx    context.Context
	cancel context.CancelFunc // ends extra dials and maint, at close

	mu       sync.Mutex    // guards following, and the conns' fields
	conns    []*conn       // in dial order
	nextID   int           // the last id given
	changed  chan struct{} // closed when conns or a state changes
	empty    bool          // the last connection ended and serve has not dialed the next
	closed   chan struct{} // made by close, closed when every close is done
	ticking  bool          // maint's ticker runs
	dialTime time.Duration // moving average of successful dials
	backoff  backoff       // extra dials after failures
	noExtras bool          // a permanent error stopped extra dials
	dialErr  string        // why the last extra dial failed

	wg sync.WaitGroup // maint, watchers, extra dials, connections being closed
}

// poolConfig is what the Engine's Config says of the pool.
type poolConfig struct {
	max       int           // connections at most
	idle      time.Duration // an extra connection without flows closes after it
	spare     bool          // keep a clean connection while interactive flows are in use
	keepAlive bool          // Config.KeepAlive: the only connection keeps alive without flows
	pace      bool          // pace bulk flows beside others (pace.go)
}

// Dial waits: a new flow waits this long at most for an extra connection
// (1.5 times the average dial, within these bounds), then takes the best
// one there is.
const (
	dialWaitMin     = 50 * time.Millisecond
	dialWaitMax     = 3 * time.Second
	dialTimeDefault = time.Second // before the first dial is measured
)

func newPool(cfg poolConfig, log *slog.Logger, connect func(context.Context, *conn) (*tunnel.Client, error), emit func(Event)) *pool {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if emit == nil {
		emit = func(Event) {}
	}
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	p := &pool{
		cfg:      cfg,
		log:      log,
		now:      func() time.Duration { return time.Since(start) },
		connect:  connect,
		emit:     emit,
		demand:   make(chan struct{}, 1),
		gone:     make(chan *conn, 1),
		fatal:    make(chan error, 1),
		kick:     make(chan struct{}, 1),
		ctx:      ctx,
		cancel:   cancel,
		changed:  make(chan struct{}),
		dialTime: dialTimeDefault,
	}
	return p
}

// start runs maint, until close.
func (p *pool) start() { p.wg.Go(p.maintain) }

// notifyLocked wakes the flows waiting for a change. p.mu is held.
func (p *pool) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// kickLocked wakes maint unless its ticker runs. p.mu is held.
func (p *pool) kickLocked() {
	if p.ticking {
		return
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// dial makes the connection serve needs, the next after the last ended.
func (p *pool) dial(ctx context.Context) (*conn, error) {
	p.mu.Lock()
	c, ctx := p.beginLocked(ctx, false)
	p.mu.Unlock()
	began := p.now()
	client, err := p.connect(ctx, c)
	if err != nil {
		p.abandon(c)
		return nil, err
	}
	if !p.add(c, client, p.now()-began) {
		return nil, net.ErrClosed
	}
	return c, nil
}

// beginLocked records a connection about to be dialed; the dial's context
// is canceled when the pool closes, or, for an extra, when the last
// connection ends. p.mu is held.
func (p *pool) beginLocked(ctx context.Context, extra bool) (*conn, context.Context) {
	ctx, cancel := context.WithCancel(ctx)
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
func (p *pool) add(c *conn, client *tunnel.Client, took time.Duration) bool {
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
	c.session = client.TransportID()
	c.flows = make(map[*flow]struct{})
	c.idleSince = p.now()
	p.limitLocked(c, took)
	if p.cfg.pace {
		c.pace = newPacer(client, p.log.With("conn", c.id))
		c.pace.seed()
	}
	p.empty = false
	p.dialTime = (3*p.dialTime + took) / 4
	p.backoff.reset()
	p.notifyLocked()
	p.kickLocked()
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
	retired := c.state == ConnDraining // its transport's limit, foreseen
	p.removeLocked(c)
	flows := len(c.flows) + c.flowsCut // those whose relays ended already, and the rest
	last := !slices.ContainsFunc(p.conns, (*conn).hasClient)
	noneUp := !slices.ContainsFunc(p.conns, func(d *conn) bool { return d.state == ConnUp })
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
	} else {
		switch {
		case retired:
			p.emit(Event{Kind: EventConnRetired, Conn: c.id, Err: c.client.Err(), Flows: flows})
		default:
			if p.lostOne != nil {
				p.lostOne(c.client.Err())
			}
			p.emit(Event{Kind: EventConnLost, Conn: c.id, Err: c.client.Err(), Flows: flows})
		}
		if noneUp && p.resuming != nil { // those left are resuming
			p.resuming(c.client.Err())
		}
	}
	// Its transport's goodbye can take seconds on a dead path (an SSM
	// session waits for the agent's acks, then calls TerminateSession,
	// each bounded).
	c.closeClient()
}

// setState moves c from one state to another and reports whether it did,
// with whether any connection is up afterwards.
func (p *pool) setState(c *conn, from, to ConnState, why string) (ok, anyUp bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.state != from {
		return false, false
	}
	c.state = to
	if why != "" {
		c.lastErr = why
	}
	p.notifyLocked()
	return true, slices.ContainsFunc(p.conns, func(c *conn) bool { return c.state == ConnUp })
}

// keepAliveActive is c's tunnel.Config.KeepAliveActive: while flows are
// open on it, whose user would otherwise wait out TCP's minutes on a dead
// path, or, with Config.KeepAlive, while it is the only connection. An
// idle tunnel sends nothing.
func (p *pool) keepAliveActive(c *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(c.flows) > 0 {
		return true
	}
	return p.cfg.keepAlive && !slices.ContainsFunc(p.conns, func(d *conn) bool { return d != c && d.hasClient() })
}

// status returns the connections' part of Status, and how long extra
// dials wait yet.
func (p *pool) status() ([]ConnStatus, time.Duration, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	out := make([]ConnStatus, 0, len(p.conns))
	for _, c := range p.conns {
		out = append(out, c.status(now))
	}
	return out, max(p.backoff.until-now, 0), p.dialErr
}

// close closes every connection and gives up the dials in progress, and
// returns a channel that is closed when every connection is closed and
// the pool's goroutines have returned; every call returns the same one.
// The connections end at once (their flows' reads and writes fail); the
// engine restores the host meanwhile. No connection is added after close.
func (p *pool) close() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed != nil {
		return p.closed
	}
	done := make(chan struct{})
	p.closed = done
	p.cancel()
	for _, c := range p.conns {
		if c.cancel != nil {
			c.cancel()
		}
		if c.client != nil {
			c.state = ConnClosing
			p.wg.Go(c.closeClient)
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
