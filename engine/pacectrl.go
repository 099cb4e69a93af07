package engine

// The pacer's arithmetic, on an explicit clock: the rate controller and
// the token bucket.

import "time"

// paceCtrl sets the paced reads' rate from probe round trips. Its delay is
// a probe's round trip less the lowest one, base: the queue a reply waits
// behind. The rate:
//
//   - starts at what the bulk flows delivered in their last second (the
//     meter's), so that a download on a fast path goes on at its speed;
//   - drops to the floor while the delay is above paceDrain: the queue is
//     the window's worth found when pacing starts over a slow path (2 MiB
//     at SSM's 0.8 MB/s is 2.6 s), which must drain at once;
//   - falls by paceDecrease, once per round trip, while the delay is above
//     paceTarget;
//   - below it, rises at once to paceResume of the highest delivery rate
//     seen with a queue in paceWindow (the path's pace: while a queue
//     drains, the connection delivers at it whatever the reads take); then
//     by paceGrow a step while the delay stays under half the target and
//     the rate is below that pace, or no pace was seen in paceWindow (no
//     queue builds: probe up fast, as a fast path shows no queue), else
//     by paceStep of the rate (paceIncrease at least);
//   - never above twice what the connection delivered (credit far beyond
//     what arrives would take many decreases to come down from).
//
// base is the lowest round trip of the connection's life, from a probe
// when it came up (seed) and every probe since. It does not expire, as a
// windowed minimum would: pacing starts when the queue is already full,
// so a window could hold only queued samples and take 2.6 s for the
// path's round trip. A path that turned slower is paced to a lower
// delay than paceTarget, never to a longer queue. Without a seed, a round
// trip within paceTarget is taken as base, or else the lowest one after
// paceWindow of probes.
type paceCtrl struct {
	rate  float64 // bytes per second
	floor float64 // the lowest rate: paceMinRate per bulk flow

	base    time.Duration // the lowest round trip, once seen
	seen    bool
	lowest  time.Duration // without a seed: the lowest so far, since firstAt
	firstAt time.Duration

	decAt   time.Duration // of the last decrease
	deliv   float64       // the highest delivery rate with a queue, bytes per second, at delivAt
	delivAt time.Duration
	recent  float64 // the delivery rate over the last span, queue or not
	queued  bool    // the last round trip's delay was above paceTarget
	rx      uint64  // the connection's bytes in at rxAt
	rxAt    time.Duration
}

// seed takes a round trip of the connection while nothing queued.
func (k *paceCtrl) seed(rtt time.Duration) {
	if !k.seen || rtt < k.base {
		k.base, k.seen = rtt, true
	}
}

// setFloor sets the lowest rate for bulk flows paced together: each keeps
// paceMinRate, or calm would take it for interactive again.
func (k *paceCtrl) setFloor(bulk int) {
	k.floor = float64(max(bulk, 1)) * paceMinRate
	k.rate = max(k.rate, k.floor)
}

// start begins an episode of pacing at now, with the connection's bytes
// in so far and what its bulk flows delivered lately (bytes per second);
// setFloor comes first.
func (k *paceCtrl) start(now time.Duration, rx uint64, delivered float64) {
	if k.floor == 0 {
		k.setFloor(1)
	}
	k.rate = max(delivered, k.floor)
	k.recent = delivered
	k.deliv, k.delivAt = 0, 0 // the path's pace is learned again, for these flows
	k.rx, k.rxAt = rx, now
	k.decAt = now
	k.queued = false
}

// step takes a round trip at now: a probe's (done), or the age of one
// still out, which is a lower bound; rx is the connection's bytes in.
func (k *paceCtrl) step(now, rtt time.Duration, done bool, rx uint64) {
	if done {
		k.learnBase(now, rtt)
	}
	delay := rtt - k.base
	k.delivered(now, rx, delay > paceTarget/2)
	k.queued = delay > paceTarget
	switch {
	case delay > paceDrain:
		k.rate, k.decAt = k.floor, now
	case delay > paceTarget:
		// Once per round trip: a probe sent before the last decrease
		// saw the queue from before it.
		if now-rtt >= k.decAt {
			k.rate = max(k.rate*paceDecrease, k.floor)
			k.decAt = now
		}
	case done:
		// Near the path's known pace, step; below it, or with no pace
		// known lately, and no queue, grow.
		near := k.deliv > 0 && now-k.delivAt <= paceWindow && k.rate >= paceResume*k.deliv
		grown := k.rate + max(paceIncrease, k.rate*paceStep)
		if delay < paceTarget/2 && !near {
			grown = max(grown, k.rate*paceGrow)
		}
		k.rate = max(grown, paceResume*k.deliv)
		if cap := 2 * max(k.deliv, k.recent); cap > 0 {
			k.rate = max(min(k.rate, cap), k.floor)
		}
	}
}

// learnBase takes a probe's round trip at now into base.
func (k *paceCtrl) learnBase(now, rtt time.Duration) {
	switch {
	case k.seen:
		k.base = min(k.base, rtt)
	case rtt <= paceTarget:
		k.seed(rtt)
	case k.lowest == 0:
		k.lowest, k.firstAt = rtt, now
	default:
		k.lowest = min(k.lowest, rtt)
		if now-k.firstAt >= paceWindow {
			k.seed(k.lowest)
		}
	}
}

// delivered takes the connection's bytes in at now, over spans of
// probeEvery at least. Only a span that ends with a queue (queued) counts
// towards the highest delivery rate: the connection then delivers at the
// path's pace, else at what the paced reads allow.
func (k *paceCtrl) delivered(now time.Duration, rx uint64, queued bool) {
	span := now - k.rxAt
	if span < probeEvery {
		return
	}
	r := float64(rx-k.rx) / span.Seconds()
	k.recent = r
	if queued && (r >= k.deliv || now-k.delivAt > paceWindow) {
		k.deliv, k.delivAt = r, now
	}
	k.rx, k.rxAt = rx, now
}

// bucket is a token bucket that a read may overdraw: a read waits until
// the balance is not negative, then takes what it got.
type bucket struct {
	tokens float64       // bytes; negative: owed
	at     time.Duration // of the last refill
}

// wait returns how long a read must wait at now, at rate bytes per second.
// Unused tokens last paceBurst at rate, and one read's at least: at a
// fast path's rate a wait per read would cost more than the read.
func (b *bucket) wait(now time.Duration, rate float64) time.Duration {
	if now > b.at {
		b.tokens = min(b.tokens+rate*(now-b.at).Seconds(), max(pacedRead, rate*paceBurst.Seconds()))
		b.at = now
	}
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / rate * float64(time.Second))
}

// take counts n bytes read.
func (b *bucket) take(n int) { b.tokens -= float64(n) }
