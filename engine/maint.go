package engine

// The pool's upkeep, one goroutine: flows that calmed down are interactive
// again, extra connections left without flows close after cfg.idle, and a
// spare connection is dialed while interactive flows are in use, so that
// the next new flow (which may be a download) does not land beside them.
// Its ticker runs only while flows are open or extra connections exist: an
// idle tunnel wakes nothing.

import (
	"math/rand/v2"
	"slices"
	"time"
)

const (
	maintEvery = 500 * time.Millisecond
	// spareWithin: a proven interactive flow that moved a byte this
	// recently wants a spare connection beside it.
	spareWithin = 60 * time.Second
)

// Extra dials back off after a failure: from backoffFailed (or
// backoffThrottled when AWS throttled StartSession), doubling up to
// backoffMax, each +-20%. A successful dial resets it.
const (
	backoffFailed    = 2 * time.Second
	backoffThrottled = 5 * time.Second
	backoffMax       = 2 * time.Minute
)

type backoff struct {
	step  time.Duration // the last wait, before jitter; 0: no failure since the last success
	until time.Duration // on the pool's clock: no extra dial before
}

func (b *backoff) fail(now, first time.Duration) {
	b.step = min(max(2*b.step, first), backoffMax)
	b.until = now + time.Duration(float64(b.step)*(0.8+0.4*rand.Float64()))
}

func (b *backoff) reset() { *b = backoff{} }

// maintain is maint's goroutine, until the pool closes.
func (p *pool) maintain() {
	var ticker *time.Ticker
	var tick <-chan time.Time
	drain := time.NewTimer(time.Hour) // when the next connection drains (rollover.go)
	drain.Stop()
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
		drain.Stop()
	}()
	for {
		select {
		case <-p.kick:
		case <-tick:
		case <-drain.C:
		case <-p.ctx.Done():
			return
		}
		busy := p.upkeep()
		if d, ok := p.nextDrain(); ok {
			drain.Reset(d)
		} else {
			drain.Stop()
		}
		switch {
		case busy && ticker == nil:
			ticker = time.NewTicker(maintEvery)
			tick = ticker.C
		case !busy && ticker != nil:
			ticker.Stop()
			ticker, tick = nil, nil
		}
	}
}

// upkeep runs one round of maint, and reports whether another is due.
func (p *pool) upkeep() (busy bool) {
	p.mu.Lock()
	now := p.now()
	flows, interactive, moving := 0, false, 0
	for _, c := range p.conns {
		if (c.state == ConnUp || c.state == ConnDraining) && c.moved() {
			moving++
		}
		bulk, other := 0, now-c.quietAt < paceHold && c.quietAt > 0
		var delivered float64 // bytes per second: the bulk flows' lately
		fresh := false        // a bulk flow no pacing decision counted yet
		c.markShareBulkLocked(now)
		// While the pacer finds a queue, a bulk flow stays bulk: its
		// bytes may wait behind others' (four downloads sharing one
		// session get theirs in turns), and a flow let go unpaced would
		// return its window's credit at once, which refills the queue.
		queued := c.pace != nil && c.pace.queued()
		for f := range c.flows {
			flows++
			if (f.isBulk.Load() || f.rising.Load()) && !(queued && f.isBulk.Load()) && f.calmed(now) {
				if f.isBulk.Load() {
					c.bulkUntil = now + bulkHold
				}
				f.isBulk.Store(false)
				f.rising.Store(false)
			}
			if f.isBulk.Load() {
				bulk++
				if c.pace != nil {
					delivered += f.downRate(now)
					fresh = fresh || !f.paceSeen
					f.paceSeen = true
				}
			} else {
				other = true
			}
			// A proven interactive flow, older than unprovenAge: a
			// download that has not reached the bulk rule yet is not.
			if !f.bulkish() && now-f.born >= unprovenAge && now-time.Duration(f.last.Load()) < spareWithin {
				interactive = true
			}
		}
		if c.pace != nil {
			c.pace.set(bulk > 0 && other && paceWanted(bulk, delivered, c.pace.pacing()), bulk, delivered, fresh)
		}
	}
	events := p.rolloverLocked(now)
	spare := p.cfg.spare && interactive
	closed := p.closeIdleLocked(now, spare)
	if spare && p.needSpareLocked(now) {
		p.startDialLocked()
	}
	busy = flows > 0 || len(p.conns) > 1 || p.anyDrainingLocked()
	p.ticking = busy
	p.mu.Unlock()
	for _, ev := range events {
		p.emit(ev)
	}
	for _, c := range closed {
		p.emit(Event{Kind: EventConnClosedIdle, Conn: c.id})
	}
	if was := p.moving.Swap(int32(moving)); (was >= 2) != (moving >= 2) && p.trafficChanged != nil {
		p.trafficChanged()
	}
	return busy
}

// closeIdleLocked closes the extra connections that carried no flow for
// cfg.idle, newest first, keeping one up, and a clean empty one as the
// spare when spare. p.mu is held.
func (p *pool) closeIdleLocked(now time.Duration, spare bool) (closed []*conn) {
	up := 0
	for _, c := range p.conns {
		if c.state == ConnUp {
			up++
		}
	}
	keptSpare := false
	for _, c := range slices.Backward(slices.Clone(p.conns)) {
		if c.state != ConnUp || len(c.flows) > 0 || c.claims > 0 {
			continue
		}
		if spare && !keptSpare && now >= c.bulkUntil {
			keptSpare = true
			continue
		}
		if up <= 1 || now-c.idleSince < p.cfg.idle {
			continue
		}
		up--
		p.removeLocked(c)
		closed = append(closed, c)
		p.wg.Go(c.closeClient)
	}
	return closed
}

// needSpareLocked reports whether a spare should be dialed: no clean
// connection without flows is up or being dialed, and one more is allowed.
// p.mu is held.
func (p *pool) needSpareLocked(now time.Duration) bool {
	if !p.mayDialLocked(now) || p.countedLocked() >= p.cfg.max {
		return false
	}
	for _, c := range p.conns {
		if c.state == ConnDialing || (c.state == ConnUp && len(c.flows) == 0 && now >= c.bulkUntil) {
			return false
		}
	}
	return true
}
