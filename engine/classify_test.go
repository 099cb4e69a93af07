package engine

import (
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// TestBulkRule: the bulk rule on a meter fed at given times.
func TestBulkRule(t *testing.T) {
	vpctest.LeakCheck(t)
	for _, tt := range []struct {
		name  string
		reads int           // how many
		size  int           // bytes each
		every time.Duration // apart
		bulk  bool
	}{
		{"256 KiB in 1 s in 32 KiB reads", 8, 32 << 10, 100 * time.Millisecond, true},
		{"SSM's pace: 1 KiB messages coalesced into 16 KiB reads", 20, 16 << 10, 20 * time.Millisecond, true},
		{"224 KiB in 32 KiB reads", 7, 32 << 10, 100 * time.Millisecond, false},
		{"1 MiB in 100 B reads", 10486, 100, 50 * time.Microsecond, false},
		{"256 KiB in 7 KiB reads", 38, 7 << 10, 20 * time.Millisecond, false},
		{"256 KiB over 2 s", 8, 32 << 10, 280 * time.Millisecond, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var m meter
			now := time.Hour
			for i := range tt.reads {
				m.add(now+time.Duration(i)*tt.every, tt.size)
			}
			end := now + time.Duration(tt.reads-1)*tt.every
			if got := m.bulk(end); got != tt.bulk {
				t.Errorf("bulk = %v, want %v", got, tt.bulk)
			}
		})
	}
}

// TestBulkHysteresis: a bulk flow is calm again only after 2 s with less
// than 64 KiB, both directions together; a pause of a second is not calm.
func TestBulkHysteresis(t *testing.T) {
	vpctest.LeakCheck(t)
	var up, down meter
	now := time.Hour
	for i := range 10 {
		down.add(now+time.Duration(i)*100*time.Millisecond, 64<<10)
	}
	now += 900 * time.Millisecond
	if !down.bulk(now) || calm(&up, &down, now) {
		t.Fatal("a download at 640 KiB/s is not bulk")
	}
	if calm(&up, &down, now+time.Second) {
		t.Error("calm after a pause of 1 s")
	}
	up.add(now+1500*time.Millisecond, 40<<10) // a request between downloads
	down.add(now+1600*time.Millisecond, 30<<10)
	if calm(&up, &down, now+2500*time.Millisecond) {
		t.Error("calm with 70 KiB within 2 s")
	}
	if !calm(&up, &down, now+3750*time.Millisecond) {
		t.Error("not calm after 2 s with nothing")
	}
	if down.bulk(now + 3750*time.Millisecond) {
		t.Error("bulk with nothing in the last second")
	}
	// Long silences empty the whole ring.
	if !calm(&up, &down, now+time.Hour) {
		t.Error("not calm an hour later")
	}
}

// TestRisingRule: a flow not yet bulk whose last second holds 64 KiB in
// large reads is rising (a download ramping up); small reads are not.
func TestRisingRule(t *testing.T) {
	vpctest.LeakCheck(t)
	for _, tt := range []struct {
		name        string
		reads, size int
		rising      bool
	}{
		{"64 KiB in 16 KiB reads", 4, 16 << 10, true},
		{"48 KiB in 16 KiB reads", 3, 16 << 10, false},
		{"64 KiB in 1 KiB reads", 64, 1 << 10, false},
	} {
		var m meter
		now := time.Hour
		for i := range tt.reads {
			m.add(now+time.Duration(i)*10*time.Millisecond, tt.size)
		}
		end := now + time.Duration(tt.reads)*10*time.Millisecond
		if got := m.rising(end); got != tt.rising {
			t.Errorf("%s: rising = %v, want %v", tt.name, got, tt.rising)
		}
		if m.rising(end + 1100*time.Millisecond) {
			t.Errorf("%s: rising after a quiet second", tt.name)
		}
	}
}

// feed is a flow direction's reads in a share test: size bytes each,
// every apart, from from to to before the test's instant.
type feed struct {
	size     int
	every    time.Duration
	from, to time.Duration // before the instant; to 0: up to it
}

// TestShareBulkRule: flow directions that hold a fair share of a busy
// connection are bulk (markShareBulkLocked), with the bulk rule as before.
func TestShareBulkRule(t *testing.T) {
	vpctest.LeakCheck(t)
	const ms = time.Millisecond
	const s = time.Second
	// A download's reads at r bytes per second in 16 KiB reads, for 3 s.
	download := func(r int) feed {
		return feed{16 << 10, time.Duration(float64(16<<10) / float64(r) * float64(s)), 3 * s, 0}
	}
	psql := feed{200, 100 * ms, 3 * s, 0} // a small reply every 100 ms
	four := []feed{download(200e3), download(200e3), download(200e3), download(200e3)}
	for _, tt := range []struct {
		name  string
		down  []feed
		up    []feed // of the same flows, if any
		wants []bool // per flow: bulk
	}{
		{"a lone download at SSM's pace", []feed{download(800e3)}, nil, []bool{true}},
		{"a lone slow download on a quiet connection", []feed{download(100e3)}, nil, []bool{false}},
		{"four downloads sharing a session, psql beside them",
			append(four[:4:4], psql), nil, []bool{true, true, true, true, false}},
		{"eight downloads sharing a session",
			[]feed{download(100e3), download(100e3), download(100e3), download(100e3),
				download(100e3), download(100e3), download(100e3), download(100e3)},
			nil, []bool{true, true, true, true, true, true, true, true}},
		{"four downloads in their first second: not yet",
			[]feed{{16 << 10, 80 * ms, 900 * ms, 0}, {16 << 10, 80 * ms, 900 * ms, 0}, {16 << 10, 80 * ms, 900 * ms, 0}, {16 << 10, 80 * ms, 900 * ms, 0}},
			nil, []bool{false, false, false, false}},
		{"four uploads sharing a session", nil, four, []bool{true, true, true, true}},
		{"pgbench's small replies at 400 KB/s beside four downloads",
			append(four[:4:4], feed{200, 500 * time.Microsecond, 3 * s, 0}), nil, []bool{true, true, true, true, false}},
		{"a 100 KB result at once beside four downloads",
			append(four[:4:4], feed{16 << 10, 15 * ms, 300 * ms, 200 * ms}), nil, []bool{true, true, true, true, false}},
		{"a 100 KB result at once on a quiet connection",
			[]feed{{16 << 10, 15 * ms, 300 * ms, 200 * ms}, psql}, nil, []bool{false, false}},
		{"a slow stream beside a lone download",
			[]feed{download(700e3), download(70e3)}, nil, []bool{true, false}},
		{"many small HTTP responses: 4 KiB each, 60 a second on each of 4 flows",
			[]feed{{4 << 10, 16 * ms, 3 * s, 0}, {4 << 10, 16 * ms, 3 * s, 0}, {4 << 10, 16 * ms, 3 * s, 0}, {4 << 10, 16 * ms, 3 * s, 0}},
			nil, []bool{false, false, false, false}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Hour + 999*ms
			c := &conn{flows: map[*flow]struct{}{}}
			flows := make([]*flow, len(tt.wants))
			for i := range flows {
				f := &flow{}
				if i < len(tt.down) {
					fill(f, &f.down, tt.down[i], now)
				}
				if i < len(tt.up) {
					fill(f, &f.up, tt.up[i], now)
				}
				f.isBulk.Store(f.down.bulk(now) || f.up.bulk(now))
				flows[i] = f
				c.flows[f] = struct{}{}
			}
			c.markShareBulkLocked(now)
			for i, f := range flows {
				if got := f.isBulk.Load(); got != tt.wants[i] {
					t.Errorf("flow %d: bulk = %v, want %v", i, got, tt.wants[i])
				}
			}
		})
	}
}

// fill adds fd's reads to m, a direction of f, up to now.
func fill(f *flow, m *meter, fd feed, now time.Duration) {
	for at := now - fd.from; at <= now-fd.to; at += fd.every {
		m.add(at, fd.size)
		f.last.Store(int64(at))
	}
}

// TestShareBulkHysteresis: four downloads bulk by their share stay bulk
// while paced down to paceMinRate each, which the share rule alone would
// not mark (the connection then delivers less than bulkBytes): calm ends
// bulk, as for any bulk flow, 2 s after they stop.
func TestShareBulkHysteresis(t *testing.T) {
	vpctest.LeakCheck(t)
	const ms = time.Millisecond
	now := time.Hour
	c := &conn{flows: map[*flow]struct{}{}}
	var flows []*flow
	for range 4 {
		f := &flow{}
		fill(f, &f.down, feed{16 << 10, 80 * ms, 2 * time.Second, 0}, now)
		c.flows[f] = struct{}{}
		flows = append(flows, f)
	}
	c.markShareBulkLocked(now)
	for i, f := range flows {
		if !f.isBulk.Load() {
			t.Fatalf("flow %d at 200 KB/s of four: not bulk", i)
		}
		// Paced: 16 KiB every 1/3 s, 48 KiB/s.
		for at := now + 333*ms; at <= now+3*time.Second; at += 333 * ms {
			f.down.add(at, 16<<10)
		}
	}
	now += 3 * time.Second
	for i, f := range flows {
		d, _ := f.seconds(now)
		if d.shareBulk(4*d.last, 4) {
			t.Errorf("flow %d at paceMinRate is bulk by its share: the hysteresis is not calm's", i)
		}
		if f.calmed(now) {
			t.Errorf("flow %d paced at paceMinRate is calm", i)
		}
		if !f.calmed(now + 2*time.Second) {
			t.Errorf("flow %d: not calm 2 s after its last read", i)
		}
	}
}
