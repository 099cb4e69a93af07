package engine

// Rollover: a transport may end a connection at a time it sets, whatever
// the connection carries (an EC2 Instance Connect Endpoint's tunnel lasts
// at most its maximum duration; tunnel.Client.Expires). A flow cannot
// move from one SSH connection to another, so shortly before that time
// the connection drains: it takes no new flows, and a successor is dialed
// for them unless another connection takes them already, even at
// Config.MaxConns (a draining connection does not count against it). The
// flows open on the draining connection carry on until the transport
// ends it, and are reset then; one without flows closes as soon as
// another connection is up.

import (
	"slices"
	"time"
)

// Drain lead: a connection drains this long before its transport ends it:
// a tenth of its duration, at least drainLeadMin and four average dials,
// at most half its duration.
const drainLeadMin = 5 * time.Second

// drainLead is the lead for a connection that lasts total, when a dial
// takes dial on average.
func drainLead(total, dial time.Duration) time.Duration {
	return min(max(total/10, 4*dial, drainLeadMin), total/2)
}

// limitLocked records when c's transport ends it, if it does, and when c
// drains; took is how long its dial took. p.mu is held.
func (p *pool) limitLocked(c *conn, took time.Duration) {
	exp := c.client.Expires()
	if exp.IsZero() {
		return
	}
	left := time.Until(exp)
	c.expires = exp
	c.endAt = p.now() + left
	c.drainAt = c.endAt - drainLead(left+took, p.dialTime)
}

// countedLocked is the number of connections that count against max:
// all but the draining ones. p.mu is held.
func (p *pool) countedLocked() int {
	n := 0
	for _, c := range p.conns {
		if c.state != ConnDraining {
			n++
		}
	}
	return n
}

// drainingLocked returns the draining connections. p.mu is held.
func (p *pool) drainingLocked() []*conn {
	var out []*conn
	for _, c := range p.conns {
		if c.state == ConnDraining {
			out = append(out, c)
		}
	}
	return out
}

// rolloverLocked is maint's part in the rollover at now: it drains the
// connections whose drain time has come, dials a successor when no
// connection takes new flows, and closes the draining connections left
// without flows once another is up; it returns the events to emit. p.mu
// is held.
func (p *pool) rolloverLocked(now time.Duration) (events []Event) {
	taker, up := false, false
	for _, c := range p.conns {
		if c.state == ConnUp && !c.expires.IsZero() && now >= c.drainAt {
			c.state = ConnDraining
			events = append(events, Event{Kind: EventConnDraining, Conn: c.id,
				Took: max(c.endAt-now, 0), Flows: len(c.flows)})
			p.notifyLocked()
		}
		switch c.state {
		case ConnUp:
			taker, up = true, true
		case ConnResuming, ConnDialing:
			taker = true
		}
	}
	draining := p.drainingLocked()
	if len(draining) == 0 {
		return events
	}
	if !taker && !p.empty && !p.noExtras && p.closed == nil && now >= p.backoff.until {
		s := p.startDialLocked()
		s.replaces = draining[0].id
	}
	if !up {
		return events
	}
	for _, c := range draining {
		if len(c.flows) > 0 {
			continue
		}
		p.removeLocked(c)
		events = append(events, Event{Kind: EventConnRetired, Conn: c.id})
		p.wg.Go(c.closeClient)
	}
	return events
}

// nextDrain returns how long until the next connection drains, and false
// when none will.
func (p *pool) nextDrain() (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now, next, ok := p.now(), time.Duration(0), false
	for _, c := range p.conns {
		if c.state == ConnUp && !c.expires.IsZero() && (!ok || c.drainAt < next) {
			next, ok = c.drainAt, true
		}
	}
	return max(next-now, 0), ok
}

// anyDrainingLocked reports whether a connection drains. p.mu is held.
func (p *pool) anyDrainingLocked() bool {
	return slices.ContainsFunc(p.conns, func(c *conn) bool { return c.state == ConnDraining })
}
