package engine

// Pacing the reads of bulk flows on a connection that also carries
// interactive ones (docs/parallel-sessions.md §1.4 C). x/crypto/ssh
// advertises a 2 MiB window on every channel and returns credit as the
// relay reads; over SSM (0.8 MB/s) a download's 2 MiB then queues ahead of
// every reply on the same connection: 2.6 s per round trip. Reading a bulk
// channel more slowly than it arrives leaves its data in x/crypto's buffer
// and withholds the credit, so that less of it waits in the path. The
// queue is measured, not guessed: a keepalive@openssh.com request with a
// reply travels behind the queued data (tunnel.Client.Probe).
//
//	flow.Read (a bulk flow) -> pacer.wait: a token bucket at rate, reads of
//	    pacedRead at most -> the channel's Read, which credits what it returns
//	pacer.run, while pacing: a probe at once, then every probeEvery; the
//	    rate (pacectrl.go) from the probe's round trip less the lowest one
//	    seen, against paceTarget, starting at the bulk flows' own rate
//
// A connection paces only while it carries a bulk flow and a flow that is
// not bulk (open, or closed within paceHold): a lone download reads at
// full speed. And only while its bulk flows deliver less than
// channelWindow/paceDrain each (13 MB/s, paceWanted): faster, the most a
// window can queue ahead of a reply drains within paceDrain, and pacing
// would cost the download more than it saves the reply. While its probes
// find a queue, its bulk flows stay bulk (maint): their bytes may wait
// in it behind others'.

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/vpcvpn/vpcvpn/tunnel"
)

const (
	paceTarget   = 40 * time.Millisecond  // the queue delay aimed at
	paceDrain    = 4 * paceTarget         // above it, the rate drops to the floor until the queue drains
	probeEvery   = 200 * time.Millisecond // probes, and rate steps, while pacing
	paceWindow   = 10 * time.Second       // the lowest round trip and the highest delivery rate are of this span
	paceHold     = 5 * time.Second        // pacing goes on this long after the last flow that was not bulk closed
	pacedRead    = 16 << 10               // a paced read takes at most this: credit returns in small steps
	paceBurst    = 4 * time.Millisecond   // unused tokens last this long at the rate
	paceDecrease = 0.9                    // the rate's factor per round trip above paceTarget
	paceResume   = 0.95                   // below paceTarget, the rate is at least this share of the path's pace
	paceGrow     = 1.25                   // the rate's factor per step without a queue
	paceStep     = 1.0 / 16               // the rate's share added per step near the path's pace
	paceIncrease = 32 << 10               // bytes per second added per step near the path's pace, at least
	// paceMinRate is the rate's floor per bulk flow: above calm's 64 KiB
	// in 2 s, so that a paced download stays bulk while the queue drains.
	paceMinRate = 48 << 10
	// channelWindow is what x/crypto/ssh lets the far side send on a
	// channel before the relay reads it (docs/parallel-sessions.md §1.1).
	channelWindow = 2 << 20
	// rateSpanMin is the shortest span a flow's rate is taken over.
	rateSpanMin = 10 * time.Millisecond
)

// paceWanted reports whether bulk flows that delivered delivered bytes
// per second together are worth pacing: whether they download (half the
// floor each at least: bulk uploads have no reads to pace, and their
// queue is on the way out) and their windows hold more than paceDrain of
// their data. Over SSM (0.8 MB/s a session) they hold 2.6 s each; over a
// fast SSH path, milliseconds, and paced reads there measured 0.78x the
// shared download's rate for no shorter round trip (docs/performance.md,
// 2026-12-06). Pacing that goes on (pacing) does not end for reads that
// found little: paced downloads that share a session get their bytes in
// turns, and pacing that ended would let them take their windows' credit
// at once (docs/parallel-sessions.md §10.2).
func paceWanted(bulk int, delivered float64, pacing bool) bool {
	downloads := pacing || delivered >= float64(bulk)*paceMinRate/2
	return downloads && delivered*paceDrain.Seconds() < float64(bulk)*channelWindow
}

// prober is what a pacer needs of its connection (a *tunnel.Client).
type prober interface {
	Probe(ctx context.Context) (time.Duration, error)
	Done() <-chan struct{}
	Stats() tunnel.Stats // BytesIn: what the connection delivered
}

// pacer paces the bulk flows of one connection.
type pacer struct {
	conn prober
	log  *slog.Logger
	now  func() time.Duration // a monotonic clock
	wg   sync.WaitGroup       // run and its probes

	mu     sync.Mutex // guards following
	on     bool
	wake   chan struct{}      // closed when pacing stops, so that waiting reads go on
	cancel context.CancelFunc // run's, while on
	ctrl   paceCtrl
	bucket bucket
}

func newPacer(conn prober, log *slog.Logger) *pacer {
	start := time.Now()
	return &pacer{conn: conn, log: log, now: func() time.Duration { return time.Since(start) }}
}

// seed probes the connection once, now that nothing queues on it yet, for
// the controller's lowest round trip. The probe ends with the connection.
func (pc *pacer) seed() {
	pc.wg.Add(1)
	go func() {
		defer pc.wg.Done()
		rtt, err := pc.conn.Probe(context.Background())
		if err == nil {
			pc.mu.Lock()
			pc.ctrl.seed(rtt)
			pc.mu.Unlock()
		}
	}()
}

// set starts or stops pacing, for bulk bulk flows that delivered
// delivered bytes per second lately; fresh: one of them was not counted
// before, and pacing that goes on starts over from what they deliver
// (the rate and the path's pace learned for others, an upload's say, are
// not this flow's).
func (pc *pacer) set(on bool, bulk int, delivered float64, fresh bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if on {
		pc.ctrl.setFloor(bulk)
	}
	if on && pc.on && fresh {
		now := pc.now()
		pc.ctrl.start(now, pc.conn.Stats().BytesIn, delivered)
		pc.bucket = bucket{at: now}
		pc.log.Debug("pacing starts over for a new bulk flow", "rate_kBps", int(pc.ctrl.rate/1e3))
		return
	}
	if on == pc.on {
		return
	}
	if !on {
		pc.stopLocked()
		pc.log.Debug("pacing ended", "rate_kBps", int(pc.ctrl.rate/1e3))
		return
	}
	select {
	case <-pc.conn.Done():
		return
	default:
	}
	now := pc.now()
	pc.on = true
	pc.wake = make(chan struct{})
	pc.ctrl.start(now, pc.conn.Stats().BytesIn, delivered)
	pc.bucket = bucket{at: now}
	ctx, cancel := context.WithCancel(context.Background())
	pc.cancel = cancel
	pc.wg.Add(1)
	go pc.run(ctx)
	pc.log.Debug("pacing bulk reads beside other flows", "rate_kBps", int(pc.ctrl.rate/1e3))
}

func (pc *pacer) stopLocked() {
	if !pc.on {
		return
	}
	pc.on = false
	pc.cancel()
	close(pc.wake)
}

// pacing reports whether the pacer paces now.
func (pc *pacer) pacing() bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.on
}

// queued reports whether the pacer paces and its last round trip (or the
// age of one out) found a queue above paceTarget: bytes of the paced
// flows may wait in it behind others', so that a paced flow that reads
// nothing for a while is not calm (maint) and pacing goes on.
func (pc *pacer) queued() bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.on && pc.ctrl.queued
}

// close stops pacing and waits for the pacer's goroutines.
func (pc *pacer) close() {
	pc.set(false, 0, 0, false)
	pc.wg.Wait()
}

// wait returns b, or its first pacedRead bytes, once a read may take them.
func (pc *pacer) wait(b []byte) []byte {
	for {
		pc.mu.Lock()
		if !pc.on {
			pc.mu.Unlock()
			return b
		}
		d := pc.bucket.wait(pc.now(), pc.ctrl.rate)
		wake := pc.wake
		pc.mu.Unlock()
		if d <= 0 {
			return b[:min(len(b), pacedRead)]
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-wake:
			t.Stop()
		}
	}
}

// took counts n bytes read after wait.
func (pc *pacer) took(n int) {
	pc.mu.Lock()
	if pc.on {
		pc.bucket.take(n)
	}
	pc.mu.Unlock()
}

// run probes the connection while pacing and sets the rate: one probe at
// a time, the first at once (the rate starts at the bulk flows' own, which
// a slow path's queue must not keep long), then at a tick; while one is
// out, its age is a lower bound of the round trip, so the rate falls each
// tick the queue is known too long.
func (pc *pacer) run(ctx context.Context) {
	defer pc.wg.Done()
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	results := make(chan time.Duration, 1)
	sent := pc.now()
	probe := func() {
		sent = pc.now()
		pc.wg.Add(1)
		go func() {
			defer pc.wg.Done()
			rtt, err := pc.conn.Probe(ctx)
			if err != nil {
				rtt = 0
			}
			results <- rtt
		}()
	}
	probe()
	out := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-pc.conn.Done():
			pc.set(false, 0, 0, false)
			return
		case rtt := <-results:
			out = false
			if rtt > 0 {
				pc.step(rtt, true)
			}
		case <-t.C:
			if out {
				pc.step(pc.now()-sent, false)
				continue
			}
			out = true
			probe()
		}
	}
}

// step feeds the controller a round trip: one measured, or (done false)
// the age of a probe still out.
func (pc *pacer) step(rtt time.Duration, done bool) {
	pc.mu.Lock()
	if pc.on {
		pc.ctrl.step(pc.now(), rtt, done, pc.conn.Stats().BytesIn)
	}
	pc.mu.Unlock()
}

// downRate returns what f read from the far side in about the last second,
// in bytes per second: where the pacer starts, and whether it is wanted.
// The span runs from the oldest bucket that holds bytes, or from the
// flow's birth, so that a download that began a moment ago is not taken
// for a slow one (a fast path's would be paced for seconds).
func (f *flow) downRate(now time.Duration) float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := &f.down
	m.advance(now)
	var bytes uint64
	span := time.Duration(0)
	for i := int64(nBuckets/2 - 1); i >= 0; i-- {
		j := (m.head - i) % nBuckets
		if j < 0 {
			j += nBuckets
		}
		if m.bytes[j] > 0 && bytes == 0 {
			span = time.Duration(i)*bucketSpan + now%bucketSpan
		}
		bytes += uint64(m.bytes[j])
	}
	span = max(min(span, now-f.born), rateSpanMin)
	return float64(bytes) / span.Seconds()
}
