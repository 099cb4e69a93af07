package dnsproxy

// The upstream: DNS over TCP (RFC 7766) to the VPC resolver, over
// connections opened with Config.Dial and kept for reuse.
//
//	exchange --> slot (bounded) --> least busy conn, or dial one more
//	  --> queue --> writer goroutine: coalesces queued queries, one Write
//	conn --> reader goroutine --> answer matched by ID --> exchange
//
// Many queries are outstanding on a conn at once (pipelining). Each gets an
// ID that no other pending query on its conn has, so two clients that chose
// the same ID never collide; handle restores the client's ID. Another conn
// is dialed, one dial at a time, only when every conn has pipelineDepth
// queries pending. A conn that fails is dropped and its pending queries are
// tried once more on another; a conn on which a query times out with no
// answer read since it was sent is taken for stalled and closed.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
)

const pipelineDepth = 32 // pending queries on a conn before another is dialed

type pool struct {
	dial  DialFunc
	addr  string
	max   int // conns
	log   *slog.Logger
	slots chan struct{} // semaphore: queries pending on all conns together

	mu      sync.Mutex // guards following
	conns   []*upConn
	dialing chan struct{} // non-nil while a dial runs; closed when it ends
	closed  bool
	wg      sync.WaitGroup // each conn's reader, writer and closer
}

func newPool(dial DialFunc, addr string, maxConns int, log *slog.Logger) *pool {
	return &pool{dial: dial, addr: addr, max: maxConns, log: log, slots: make(chan struct{}, maxConns*pipelineDepth)}
}

// exchange sends the query q (its ID is replaced) and returns the answer,
// which carries the ID the upstream saw.
func (p *pool) exchange(ctx context.Context, q []byte) ([]byte, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("dnsproxy: wait for a query slot: %w", ctx.Err())
	}
	defer func() { <-p.slots }()
	ans, err := p.try(ctx, q)
	if errors.Is(err, errConnLost) && ctx.Err() == nil {
		// The server closed the conn or it broke: queries are idempotent,
		// so try once more on another.
		ans, err = p.try(ctx, q)
	}
	if err != nil {
		return nil, fmt.Errorf("dnsproxy: upstream %s: %w", p.addr, err)
	}
	return ans, nil
}

func (p *pool) try(ctx context.Context, q []byte) ([]byte, error) {
	c, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	return c.exchange(ctx, q)
}

// get returns the conn to send a query on, dialing one if needed.
func (p *pool) get(ctx context.Context) (*upConn, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, net.ErrClosed
		}
		best := p.leastBusy()
		if best != nil && (best.busy() < pipelineDepth || len(p.conns) >= p.max || p.dialing != nil) {
			p.mu.Unlock()
			return best, nil
		}
		if wait := p.dialing; wait != nil {
			p.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		p.dialing = make(chan struct{})
		p.mu.Unlock()
		return p.connect(ctx)
	}
}

// leastBusy returns the live conn with the fewest pending queries, or nil.
// p.mu must be held.
func (p *pool) leastBusy() *upConn {
	var best *upConn
	n := 0
	for _, c := range p.conns {
		if c.failed() {
			continue
		}
		if b := c.busy(); best == nil || b < n {
			best, n = c, b
		}
	}
	return best
}

// connect dials a conn and adds it to the pool. The caller has set
// p.dialing.
func (p *pool) connect(ctx context.Context) (*upConn, error) {
	nc, err := p.dial(ctx, "tcp", p.addr)
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.dialing)
	p.dialing = nil
	if err != nil {
		return nil, fmt.Errorf("dial through the tunnel: %w", err)
	}
	if p.closed {
		nc.Close()
		return nil, net.ErrClosed
	}
	c := &upConn{
		nc:      nc,
		out:     make(chan []byte, pipelineDepth),
		dead:    make(chan struct{}),
		pending: make(map[uint16]chan []byte),
	}
	p.conns = append(p.conns, c)
	p.wg.Add(3)
	go func() {
		defer p.wg.Done()
		c.readLoop()
	}()
	go func() {
		defer p.wg.Done()
		c.writeLoop()
	}()
	go func() {
		defer p.wg.Done()
		<-c.dead
		c.nc.Close()
		p.remove(c)
		p.log.Debug("upstream connection closed", "addr", p.addr, "err", c.err)
	}()
	return c, nil
}

func (p *pool) remove(c *upConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = slices.DeleteFunc(p.conns, func(x *upConn) bool { return x == c })
}

// close fails every conn and waits for their goroutines.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	conns := slices.Clone(p.conns)
	p.mu.Unlock()
	for _, c := range conns {
		c.fail(net.ErrClosed)
	}
	p.wg.Wait()
}

// upConn is one DNS-over-TCP connection to the upstream.
type upConn struct {
	nc       net.Conn
	out      chan []byte   // framed queries, for the writer
	dead     chan struct{} // closed when the conn has failed
	answers  atomic.Uint64 // answers read
	failOnce sync.Once
	err      error // why it failed; set before dead is closed

	mu      sync.Mutex             // guards following
	pending map[uint16]chan []byte // by ID; nil once failed
}

// exchange sends q with an ID of its own and waits for the answer.
func (c *upConn) exchange(ctx context.Context, q []byte) ([]byte, error) {
	id, ch, err := c.register()
	if err != nil {
		return nil, err
	}
	defer c.unregister(id)
	msg := appendMsg(make([]byte, 0, 2+len(q)), q)
	binary.BigEndian.PutUint16(msg[2:], id)
	before := c.answers.Load()
	select {
	case c.out <- msg:
	case <-c.dead:
		return nil, errConnLost
	case <-ctx.Done():
		return nil, c.timedOut(ctx, before)
	}
	select {
	case ans := <-ch:
		return ans, nil
	case <-c.dead:
		select {
		case ans := <-ch: // read just before the conn failed
			return ans, nil
		default:
			return nil, errConnLost
		}
	case <-ctx.Done():
		return nil, c.timedOut(ctx, before)
	}
}

// timedOut closes the conn if it has read no answer since the query was
// queued: the tunnel or the server is stalled, and the next query should
// dial afresh.
func (c *upConn) timedOut(ctx context.Context, before uint64) error {
	if c.answers.Load() == before && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		c.fail(errStalled)
	}
	return ctx.Err()
}

func (c *upConn) register() (uint16, chan []byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		return 0, nil, errConnLost
	}
	for {
		id := uint16(rand.Uint32())
		if _, used := c.pending[id]; !used {
			ch := make(chan []byte, 1)
			c.pending[id] = ch
			return id, ch, nil
		}
	}
}

func (c *upConn) unregister(id uint16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, id)
}

// busy returns the number of pending queries.
func (c *upConn) busy() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

func (c *upConn) failed() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

// fail marks the conn failed for err; its closer goroutine closes it. fail
// never blocks.
func (c *upConn) fail(err error) {
	c.failOnce.Do(func() {
		c.err = err
		c.mu.Lock()
		c.pending = nil
		c.mu.Unlock()
		close(c.dead)
	})
}

// readLoop hands each answer to the query waiting for its ID. Answers
// nobody waits for (their query timed out) are dropped.
func (c *upConn) readLoop() {
	r := bufio.NewReader(c.nc)
	for {
		ans, err := readMsg(r)
		if err != nil {
			c.fail(fmt.Errorf("read: %w", err))
			return
		}
		if len(ans) < headerLen {
			c.fail(fmt.Errorf("read: a %d-byte message", len(ans)))
			return
		}
		c.answers.Add(1)
		id := binary.BigEndian.Uint16(ans)
		c.mu.Lock()
		ch := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if ch != nil {
			ch <- ans // buffered; one answer per ID
		}
	}
}

// writeLoop writes the queued queries, as many at once as are queued.
func (c *upConn) writeLoop() {
	var buf []byte
	for {
		select {
		case <-c.dead:
			return
		case msg := <-c.out:
			buf = append(buf[:0], msg...)
		}
		for more := true; more && len(buf) < 16<<10; {
			select {
			case msg := <-c.out:
				buf = append(buf, msg...)
			default:
				more = false
			}
		}
		if _, err := c.nc.Write(buf); err != nil {
			c.fail(fmt.Errorf("write: %w", err))
			return
		}
	}
}

// readMsg reads one length-prefixed DNS message (RFC 1035 §4.2.2).
func readMsg(r io.Reader) ([]byte, error) {
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// appendMsg appends m to dst with its length prefix.
func appendMsg(dst, m []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(m)))
	return append(dst, m...)
}
