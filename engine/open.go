package engine

// Opening a flow: placed (schedule.go), counted on its connection, and
// wrapped in its meter (flow.go). A flow that waits for an extra
// connection claims that dial; the connection is kept for it when it comes
// up.

import (
	"context"
	"errors"
	"net"
	"slices"
	"time"

	"github.com/vpcvpn/vpcvpn/tunnel"
)

// DialContext opens a flow's channel on the connection placement chooses.
// While there is none, or when the one it chose dies during the dial, it
// waits for the next one until ctx ends. It is the netstack's Dial.
func (p *pool) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return p.open(ctx, network, addr, false)
}

// dialQuiet opens a channel for the DNS proxy: a connection kept for
// reuse, with queries too small and short to be worth a connection of
// their own. It is placed as a flow, without waiting for a dial, and not
// counted: it neither keeps a connection up nor alive.
func (p *pool) dialQuiet(ctx context.Context, network, addr string) (net.Conn, error) {
	return p.open(ctx, network, addr, true)
}

func (p *pool) open(ctx context.Context, network, addr string, quiet bool) (net.Conn, error) {
	var mine *conn // the extra dial this flow waits for
	waited := quiet
	for {
		p.mu.Lock()
		changed := p.changed
		c, wait := p.placeLocked(mine, waited)
		var f *flow
		if c != nil && !quiet {
			f = p.attachLocked(c)
		}
		p.mu.Unlock()
		if c != nil {
			nc, err := c.client.DialContext(ctx, network, addr)
			select {
			case <-c.client.Done(): // lost under the dial: wait for the next
				if nc != nil {
					nc.Close()
				}
				if f != nil {
					p.detach(f)
				}
			default:
				if err != nil || f == nil {
					if f != nil {
						p.detach(f)
					}
					return nc, err
				}
				f.Conn = nc
				return f, nil
			}
		} else if wait != nil {
			mine, waited = wait, true
			if err := p.awaitDial(ctx, wait); err != nil {
				return nil, err
			}
			continue
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// placeLocked returns the connection to open a flow on, or the extra dial
// to wait for, or neither: wait for a change (there is no connection; one
// was asked for). mine is the dial the flow waited for, if any. p.mu is
// held.
func (p *pool) placeLocked(mine *conn, waited bool) (*conn, *conn) {
	if mine != nil {
		mine.claims--
		if mine.state == ConnUp {
			return mine, nil
		}
	}
	now := p.now()
	var up []*conn
	for _, c := range p.conns {
		if c.state == ConnUp && !(c.extra && c.claims > 0) {
			up = append(up, c)
		}
	}
	if len(up) == 0 { // only resuming ones, or none: as with one connection
		for _, c := range p.conns {
			if c.usable() {
				up = append(up, c)
			}
		}
	}
	if len(up) == 0 && !slices.ContainsFunc(p.conns, func(c *conn) bool { return c.state == ConnDialing }) {
		up = p.drainingLocked() // no successor on its way: better than none
	}
	v := placeView{
		conns:  make([]connView, len(up)),
		total:  p.countedLocked(),
		max:    p.cfg.max,
		noDial: waited || !p.mayDialLocked(now),
	}
	for i, c := range up {
		v.conns[i] = c.view(now)
	}
	for _, c := range p.conns {
		if c.state == ConnDialing && c.extra {
			if c.claims == 0 {
				v.unclaimed++
			} else {
				v.claimed++
			}
		}
	}
	switch d, i := place(v); d {
	case placeUse:
		return up[i], nil
	case placeJoin:
		for _, c := range p.conns {
			if c.state == ConnDialing && c.extra && c.claims == 0 {
				c.claims++
				return nil, c
			}
		}
	case placeShare: // the dial in progress the fewest flows wait for
		var share *conn
		for _, c := range p.conns {
			if c.state == ConnDialing && c.extra && (share == nil || c.claims < share.claims) {
				share = c
			}
		}
		share.claims++
		return nil, share
	case placeDial:
		c := p.startDialLocked()
		c.claims++
		return nil, c
	}
	select { // an idle engine reconnects on demand
	case p.demand <- struct{}{}:
	default:
	}
	return nil, nil
}

// mayDialLocked reports whether an extra dial may start now. p.mu is held.
func (p *pool) mayDialLocked(now time.Duration) bool {
	return p.cfg.max > 1 && !p.empty && !p.noExtras && p.closed == nil && now >= p.backoff.until &&
		len(p.conns) > 0
}

// awaitDial waits for the extra dial c to end, for 1.5 times the average
// dial at most; then the flow is placed on what there is, unless every
// connection carries a bulk or rising flow: it waits on for the dial, up to
// dialWaitMax in all, since a round trip behind a download at SSM's pace
// takes longer (docs/parallel-sessions.md §1.4).
func (p *pool) awaitDial(ctx context.Context, c *conn) error {
	p.mu.Lock()
	wait := min(max(p.dialTime*3/2, dialWaitMin), dialWaitMax)
	p.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	for extended := false; ; extended = true {
		select {
		case <-c.ready:
			return nil
		case <-t.C:
		case <-ctx.Done():
			p.mu.Lock()
			c.claims--
			p.mu.Unlock()
			return ctx.Err()
		}
		p.mu.Lock()
		busy := p.allBusyLocked(p.now())
		p.mu.Unlock()
		if extended || !busy || wait >= dialWaitMax {
			return nil
		}
		t.Reset(dialWaitMax - wait)
	}
}

// allBusyLocked reports whether every up connection carries a bulk or
// rising flow (or is in bulkHold). p.mu is held.
func (p *pool) allBusyLocked(now time.Duration) bool {
	for _, c := range p.conns {
		if c.state != ConnUp || (c.extra && c.claims > 0) {
			continue
		}
		if now < c.bulkUntil {
			continue
		}
		busy := false
		for f := range c.flows {
			if f.bulkish() {
				busy = true
				break
			}
		}
		if !busy {
			return false
		}
	}
	return true
}

// attachLocked counts a flow being opened on c. p.mu is held.
func (p *pool) attachLocked(c *conn) *flow {
	f := &flow{p: p, c: c, born: p.now()}
	c.flows[f] = struct{}{}
	c.flowsTotal++
	p.kickLocked()
	return f
}

// detach uncounts a flow that closed, or whose open failed.
func (p *pool) detach(f *flow) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := f.c
	delete(c.flows, f)
	now := p.now()
	if f.isBulk.Load() {
		c.bulkUntil = now + bulkHold
	} else if c.pace != nil && c.pace.pacing() {
		c.quietAt = now // pacing goes on for the next one (paceHold)
	}
	if f.cut.Load() {
		c.flowsCut++
	}
	if len(c.flows) == 0 {
		c.idleSince = now
	}
}

// turnedBulk is a flow's news that it moves data in bulk: maint follows it
// at once, ticking or not, so that a connection that paces reconsiders
// before the flow's reads wait on a rate set for others (pace.go).
func (p *pool) turnedBulk(f *flow) {
	f.isBulk.Store(true)
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// startDialLocked starts an extra dial. p.mu is held.
func (p *pool) startDialLocked() *conn {
	c, ctx := p.beginLocked(p.ctx, true)
	c.ready = make(chan struct{})
	p.wg.Go(func() {
		defer close(c.ready)
		began := p.now()
		client, err := p.connect(ctx, c)
		if err == nil {
			if p.add(c, client, p.now()-began) {
				p.emit(Event{Kind: EventConnOpened, Conn: c.id, Took: p.now() - began, Replaces: c.replaces})
			}
			return
		}
		gaveUp := ctx.Err() != nil // the pool closed, or its last connection ended
		p.abandon(c)
		if !gaveUp {
			p.dialFailed(c, err)
		}
	})
	return c
}

// dialFailed backs off extra dials after err; a permanent error stops them
// for the pool's life, and a changed host key ends Run.
func (p *pool) dialFailed(c *conn, err error) {
	var hostKey *tunnel.HostKeyError
	p.mu.Lock()
	p.dialErr = err.Error()
	kind := EventConnFailed
	switch {
	case errors.As(err, &hostKey):
		p.noExtras = true
		select {
		case p.fatal <- err:
		default:
		}
	case IsPermanent(err):
		p.noExtras = true
		p.log.Warn("cannot open another connection; carrying on with those open", "err", err)
	case IsThrottled(err):
		kind = EventConnThrottled
		p.backoff.fail(p.now(), backoffThrottled)
	default:
		p.backoff.fail(p.now(), backoffFailed)
	}
	wait := max(p.backoff.until-p.now(), 0)
	p.notifyLocked()
	p.mu.Unlock()
	p.emit(Event{Kind: kind, Conn: c.id, Err: err, Took: wait})
}
