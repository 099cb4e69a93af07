package engine

import (
	"testing"
	"time"
)

// step is a round trip the controller takes (paceCtrl.step).
type step struct {
	at   time.Duration // since start
	rtt  time.Duration
	done bool
	rx   uint64 // bytes in since start
}

// TestPaceCtrl: the rate's steps from round trips and delivery.
func TestPaceCtrl(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name  string
		bulk  int           // bulk flows paced; 0: one
		seed  time.Duration // 0: none
		from  float64       // what the bulk flows delivered before, bytes per second
		steps []step
		want  float64
	}{
		{"starts at the floor without a rate", 0, 13 * ms, 0, nil, paceMinRate},
		{"starts at the bulk flows' rate", 0, 13 * ms, 5e6, nil, 5e6},
		{"the floor is per bulk flow", 4, 13 * ms, 0,
			[]step{{200 * ms, 200 * ms, false, 160_000}, {400 * ms, 400 * ms, false, 320_000}}, 4 * paceMinRate},
		{"a probe out past paceDrain: the floor", 0, 13 * ms, 800_000,
			[]step{{200 * ms, 200 * ms, false, 160_000}}, paceMinRate},
		{"a probe out longer than the target holds the floor", 0, 13 * ms, 0,
			[]step{{200 * ms, 200 * ms, false, 160_000}, {400 * ms, 400 * ms, false, 320_000}}, paceMinRate},
		{"below the target: paceResume of the delivery seen", 0, 13 * ms, 800_000,
			[]step{{200 * ms, 200 * ms, false, 160_000}, {400 * ms, 30 * ms, true, 200_000}}, paceResume * 800_000},
		{"then near that pace: up by paceStep", 0, 13 * ms, 800_000,
			[]step{{200 * ms, 200 * ms, false, 160_000}, {400 * ms, 30 * ms, true, 200_000}, {600 * ms, 20 * ms, true, 340_000}},
			paceResume * 800_000 * (1 + paceStep)},
		{"a short queue: up by paceStep", 0, 13 * ms, 800_000,
			[]step{{200 * ms, 200 * ms, false, 160_000}, {400 * ms, 30 * ms, true, 200_000}, {600 * ms, 45 * ms, true, 340_000}},
			paceResume * 800_000 * (1 + paceStep)},
		{"no queue, the pace seen long ago: up by paceGrow", 0, 13 * ms, 800_000,
			[]step{{200 * ms, 200 * ms, false, 160_000}, {400 * ms, 30 * ms, true, 200_000},
				{paceWindow + 600*ms, 20 * ms, true, 8_200_000}},
			paceResume * 800_000 * paceGrow},
		{"above the target: down", 0, 13 * ms, 0,
			[]step{{200 * ms, 200 * ms, false, 160_000}, {400 * ms, 30 * ms, true, 200_000}, {600 * ms, 60 * ms, true, 340_000}},
			paceResume * 800_000 * paceDecrease},
		{"capped at twice the delivery", 0, 13 * ms, 0,
			[]step{{200 * ms, 200 * ms, false, 6_000}, {400 * ms, 20 * ms, true, 8_000}}, 2 * 30_000},
		{"the cap stays above the floor", 0, 13 * ms, 0,
			[]step{{200 * ms, 200 * ms, false, 200}, {400 * ms, 20 * ms, true, 300}}, paceMinRate},
		{"one decrease per round trip", 0, 13 * ms, 0,
			[]step{{200 * ms, 200 * ms, false, 160_000}, {400 * ms, 30 * ms, true, 200_000},
				{600 * ms, 100 * ms, true, 340_000}, {700 * ms, 150 * ms, true, 420_000}},
			paceResume * 800_000 * paceDecrease},
		{"the delivery rate counts only with a queue", 0, 13 * ms, 0,
			[]step{{200 * ms, 20 * ms, true, 160_000}}, paceMinRate + paceIncrease},
		{"without a seed, a queued round trip is not the base", 0, 0, 0,
			[]step{{200 * ms, 2600 * ms, true, 160_000}, {400 * ms, 2500 * ms, true, 320_000}}, paceMinRate},
		{"without a seed, a round trip within the target is", 0, 0, 0,
			[]step{{200 * ms, 2600 * ms, true, 160_000}, {400 * ms, 35 * ms, true, 320_000}}, paceResume * 800_000},
		{"without a seed, the lowest after paceWindow", 0, 0, 0,
			[]step{{200 * ms, 300 * ms, true, 160_000}, {paceWindow + 200*ms, 310 * ms, true, 8_160_000}}, paceResume * 800_000},
		{"the base only falls", 0, 13 * ms, 0,
			[]step{{200 * ms, 5 * ms, true, 160_000}, {400 * ms, 50 * ms, true, 320_000}}, (paceMinRate + paceIncrease) * paceDecrease},
		// A fast path (a Gbit link, 0.2 ms round trips): no queue shows,
		// and the rate follows what the reads take.
		{"a fast path: up by paceGrow while the reads keep up", 0, ms / 5, 50e6,
			[]step{{200 * ms, ms / 4, true, 10_000_000}, {400 * ms, ms / 4, true, 22_500_000}}, 50e6 * paceGrow * paceGrow},
		{"a fast path: no higher than twice what arrives", 0, ms / 5, 50e6,
			[]step{{200 * ms, ms / 4, true, 4_000_000}, {400 * ms, ms / 4, true, 8_000_000}}, 2 * 20e6},
		{"a fast path from the floor: up by paceGrow a step", 0, ms / 5, 0,
			fastRamp(12, ms/4), rampRate(12)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var k paceCtrl
			if tt.bulk > 0 {
				k.setFloor(tt.bulk)
			}
			if tt.seed > 0 {
				k.seed(tt.seed)
			}
			start := time.Hour
			k.start(start, 1<<30, tt.from)
			for _, s := range tt.steps {
				k.step(start+s.at, s.rtt, s.done, 1<<30+s.rx)
			}
			if d := k.rate - tt.want; d > 1 || d < -1 {
				t.Errorf("rate %.0f, want %.0f", k.rate, tt.want)
			}
		})
	}
}

// fastRamp is n probes of rtt a probeEvery apart on a path that delivers
// what the rate allows, from the floor.
func fastRamp(n int, rtt time.Duration) []step {
	var steps []step
	rx := uint64(0)
	for i := range n {
		rx += uint64(rampRate(i) * probeEvery.Seconds())
		steps = append(steps, step{time.Duration(i+1) * probeEvery, rtt, true, rx})
	}
	return steps
}

// rampRate is the rate after n steps up from the floor without a queue:
// paceIncrease a step while that is more than paceGrow's, then paceGrow.
func rampRate(n int) float64 {
	rate := float64(paceMinRate)
	for range n {
		rate = max(rate+paceIncrease, rate*paceGrow)
	}
	return rate
}

// TestBucket: a read waits for the balance it overdrew, at the rate.
func TestBucket(t *testing.T) {
	b := bucket{at: time.Second}
	if d := b.wait(time.Second, 16<<10); d != 0 {
		t.Fatalf("first read waits %v, want 0", d)
	}
	b.take(32 << 10)
	if d := b.wait(time.Second, 16<<10); d != 2*time.Second {
		t.Errorf("32 KiB owed at 16 KiB/s: wait %v, want 2s", d)
	}
	if d := b.wait(2*time.Second, 16<<10); d != time.Second {
		t.Errorf("a second later: wait %v, want 1s", d)
	}
	if d := b.wait(time.Minute, 16<<10); d != 0 || b.tokens != pacedRead {
		t.Errorf("after a long pause: wait %v, tokens %.0f; want 0 and at most one read's", d, b.tokens)
	}
	if d := b.wait(2*time.Minute, 100e6); d != 0 || b.tokens != 100e6*paceBurst.Seconds() {
		t.Errorf("after a long pause at 100 MB/s: wait %v, tokens %.0f; want 0 and paceBurst's", d, b.tokens)
	}
}

// TestPaceWanted: bulk flows are paced only while their windows hold more
// than paceDrain of their data.
func TestPaceWanted(t *testing.T) {
	for _, tt := range []struct {
		bulk      int
		delivered float64 // bytes per second
		pacing    bool
		want      bool
	}{
		{1, 800e3, false, true},  // an SSM session: 2.6 s of window
		{1, 0, false, false},     // a bulk upload: nothing to pace
		{1, 20e3, false, false},  // under half the floor
		{2, 60e3, false, true},   // two at the floor's pace, about
		{4, 20e3, true, true},    // paced reads that found little: pacing goes on
		{1, 13e6, false, true},   // 161 ms
		{1, 14e6, false, false},  // 150 ms
		{1, 40e6, false, false},  // a fast SSH path: 52 ms
		{1, 40e6, true, false},   // likewise while pacing
		{4, 40e6, false, true},   // four windows: 210 ms
		{4, 100e6, false, false}, // 84 ms
	} {
		if got := paceWanted(tt.bulk, tt.delivered, tt.pacing); got != tt.want {
			t.Errorf("paceWanted(%d, %.0f, %v) = %v, want %v", tt.bulk, tt.delivered, tt.pacing, got, tt.want)
		}
	}
}

// TestPaceCtrlQueued: the controller tells a queue above paceTarget from
// the last round trip, measured or the age of one out, and none at start.
func TestPaceCtrlQueued(t *testing.T) {
	const ms = time.Millisecond
	var k paceCtrl
	k.seed(13 * ms)
	k.start(0, 0, 800_000)
	for _, s := range []struct {
		step
		want bool
	}{
		{step{200 * ms, 200 * ms, false, 160_000}, true},
		{step{400 * ms, 30 * ms, true, 200_000}, false},
		{step{600 * ms, 13*ms + paceTarget + ms, true, 340_000}, true},
		{step{800 * ms, 13*ms + paceTarget, true, 480_000}, false},
	} {
		k.step(s.at, s.rtt, s.done, s.rx)
		if k.queued != s.want {
			t.Errorf("after a round trip of %v: queued %v, want %v", s.rtt, k.queued, s.want)
		}
	}
	k.start(time.Second, 500_000, 800_000)
	if k.queued {
		t.Error("queued at the start of an episode")
	}
}
