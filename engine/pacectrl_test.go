package engine

import (
	"testing"
	"time"
)

// TestPaceCtrl: the rate's steps from round trips and delivery.
func TestPaceCtrl(t *testing.T) {
	const ms = time.Millisecond
	type step struct {
		at   time.Duration // since start
		rtt  time.Duration
		done bool
		rx   uint64 // bytes in since start
	}
	tests := []struct {
		name  string
		bulk  int           // bulk flows paced; 0: one
		seed  time.Duration // 0: none
		steps []step
		want  float64
	}{
		{"starts at the floor", 0, 13 * ms, nil, paceMinRate},
		{"the floor is per bulk flow", 4, 13 * ms,
			[]step{{200 * ms, 200 * ms, false, 160_000}, {400 * ms, 400 * ms, false, 320_000}}, 4 * paceMinRate},
		{"a probe out longer than the target holds the floor", 0, 13 * ms,
			[]step{{200 * ms, 200 * ms, false, 160_000}, {400 * ms, 400 * ms, false, 320_000}}, paceMinRate},
		{"below the target: paceResume of the delivery seen", 0, 13 * ms,
			[]step{{200 * ms, 200 * ms, false, 160_000}, {400 * ms, 30 * ms, true, 200_000}}, paceResume * 800_000},
		{"then up by a step", 0, 13 * ms,
			[]step{{200 * ms, 200 * ms, false, 160_000}, {400 * ms, 30 * ms, true, 200_000}, {600 * ms, 20 * ms, true, 340_000}},
			paceResume*800_000 + paceIncrease},
		{"above the target: down", 0, 13 * ms,
			[]step{{200 * ms, 200 * ms, false, 160_000}, {400 * ms, 30 * ms, true, 200_000}, {600 * ms, 60 * ms, true, 340_000}},
			paceResume * 800_000 * paceDecrease},
		{"capped at twice the delivery", 0, 13 * ms,
			[]step{{200 * ms, 200 * ms, false, 6_000}, {400 * ms, 20 * ms, true, 8_000}}, 2 * 30_000},
		{"the cap stays above the floor", 0, 13 * ms,
			[]step{{200 * ms, 200 * ms, false, 200}, {400 * ms, 20 * ms, true, 300}}, paceMinRate},
		{"one decrease per round trip", 0, 13 * ms,
			[]step{{200 * ms, 200 * ms, false, 160_000}, {400 * ms, 30 * ms, true, 200_000},
				{600 * ms, 100 * ms, true, 340_000}, {800 * ms, 300 * ms, true, 500_000}},
			paceResume * 800_000 * paceDecrease},
		{"the delivery rate counts only with a queue", 0, 13 * ms,
			[]step{{200 * ms, 20 * ms, true, 160_000}}, paceMinRate + paceIncrease},
		{"without a seed, a queued round trip is not the base", 0, 0,
			[]step{{200 * ms, 2600 * ms, true, 160_000}, {400 * ms, 2500 * ms, true, 320_000}}, paceMinRate},
		{"without a seed, a round trip within the target is", 0, 0,
			[]step{{200 * ms, 2600 * ms, true, 160_000}, {400 * ms, 35 * ms, true, 320_000}}, paceResume * 800_000},
		{"without a seed, the lowest after paceWindow", 0, 0,
			[]step{{200 * ms, 300 * ms, true, 160_000}, {paceWindow + 200*ms, 310 * ms, true, 8_160_000}}, paceResume * 800_000},
		{"the base only falls", 0, 13 * ms,
			[]step{{200 * ms, 5 * ms, true, 160_000}, {400 * ms, 50 * ms, true, 320_000}}, (paceMinRate + paceIncrease) * paceDecrease},
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
			k.start(start, 1<<30)
			for _, s := range tt.steps {
				k.step(start+s.at, s.rtt, s.done, 1<<30+s.rx)
			}
			if d := k.rate - tt.want; d > 1 || d < -1 {
				t.Errorf("rate %.0f, want %.0f", k.rate, tt.want)
			}
		})
	}
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
}
