package engine

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// makeBulk sends 512 KiB through flow a and reads them back: a's
// download side is bulk at once on the test's clock, which then moves on
// by makeBulkSpan: 2.6 MB/s.
func makeBulk(t *testing.T, tp *testPool, a net.Conn) { makeBulkOf(t, tp, a, 16) }

// makeBulkSpan is how long makeBulk's bytes took on the test's clock.
const makeBulkSpan = 200 * time.Millisecond

// makeBulkOf is makeBulk with blocks of 32 KiB.
func makeBulkOf(t *testing.T, tp *testPool, a net.Conn, blocks int) {
	t.Helper()
	block := make([]byte, 32<<10)
	go func() {
		for range blocks {
			if _, err := a.Write(block); err != nil {
				return
			}
		}
	}()
	if _, err := io.ReadFull(a, make([]byte, blocks*len(block))); err != nil {
		t.Fatalf("read back %d KiB: %v", blocks*32, err)
	}
	if !a.(*flow).isBulk.Load() {
		t.Fatalf("%d KiB in 32 KiB reads at one instant: not bulk", blocks*32)
	}
	tp.advance(makeBulkSpan)
}

// TestPaceBesideOtherFlows: a connection paces its bulk flow only while
// another flow is open on it, or closed within paceHold while it paced; a
// paced read takes at most pacedRead; a lone bulk flow reads at full size.
func TestPaceBesideOtherFlows(t *testing.T) {
	vpctest.LeakCheck(t)
	tp := newTestPool(t, Config{MaxConns: 1, PaceBulk: true})
	if _, err := tp.dial(t.Context()); err != nil {
		t.Fatal(err)
	}
	x := tp.flow(t) // a query just before the download: no reason to pace it
	if err := echoLine(t, x, "select 1"); err != nil {
		t.Fatal(err)
	}
	x.Close()
	a := tp.flow(t)
	pc := a.(*flow).c.pace
	makeBulk(t, tp, a)
	tp.upkeep()
	if pc.pacing() {
		t.Fatal("a lone bulk flow is paced")
	}
	if got := len(pc.wait(make([]byte, 64<<10))); got != 64<<10 {
		t.Errorf("unpaced: a read of 64 KiB may take %d bytes", got)
	}

	b := tp.flow(t)
	if err := echoLine(t, b, "select 1"); err != nil {
		t.Fatal(err)
	}
	tp.upkeep()
	if !pc.pacing() {
		t.Fatal("a bulk flow beside another is not paced")
	}
	pc.mu.Lock()
	rate := pc.ctrl.rate
	pc.mu.Unlock()
	if want := float64(512<<10) / makeBulkSpan.Seconds(); rate < want {
		t.Errorf("pacing starts at %.0f B/s, want the download's own %.0f (512 KiB in makeBulkSpan) or more", rate, want)
	}
	if _, err := a.Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	for got := 0; got < 64<<10; {
		n, err := a.Read(make([]byte, 64<<10))
		if err != nil {
			t.Fatal(err)
		}
		if n > pacedRead {
			t.Fatalf("a paced read returned %d bytes, want at most %d", n, pacedRead)
		}
		got += n
	}

	b.Close()
	tp.upkeep()
	if !pc.pacing() {
		t.Error("pacing stopped as soon as the other flow closed, want paceHold later")
	}
	tp.advance(paceHold)
	tp.upkeep()
	if pc.pacing() {
		t.Error("still pacing paceHold after the other flow closed")
	}
}

// TestPaceEndsWithItsConnection: a read waiting for its turn returns when
// the connection ends, and the pacer's goroutines with it.
func TestPaceEndsWithItsConnection(t *testing.T) {
	vpctest.LeakCheck(t)
	tp := newTestPool(t, Config{MaxConns: 1, PaceBulk: true})
	if _, err := tp.dial(t.Context()); err != nil {
		t.Fatal(err)
	}
	a := tp.flow(t)
	makeBulk(t, tp, a)
	b := tp.flow(t)
	tp.upkeep()
	pc := a.(*flow).c.pace
	if !pc.pacing() {
		t.Fatal("not pacing")
	}
	// The first paced read overdraws the bucket; the second waits.
	if _, err := a.Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Read(make([]byte, pacedRead)); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, a)
		errc <- err
	}()
	tp.far.drop(1)
	if err := <-errc; err == nil {
		t.Error("the paced flow ended without an error when its connection was lost")
	}
	b.Close()
	pc.close()
	if pc.pacing() {
		t.Error("pacing after the connection ended")
	}
}

// TestPaceFloorPerBulkFlow: bulk flows paced together keep paceMinRate
// each, or they would calm down, turn interactive and end the pacing.
func TestPaceFloorPerBulkFlow(t *testing.T) {
	vpctest.LeakCheck(t)
	tp := newTestPool(t, Config{MaxConns: 1, PaceBulk: true})
	if _, err := tp.dial(t.Context()); err != nil {
		t.Fatal(err)
	}
	a, b := tp.flow(t), tp.flow(t)
	makeBulk(t, tp, a)
	makeBulk(t, tp, b)
	q := tp.flow(t)
	tp.upkeep()
	pc := a.(*flow).c.pace
	pc.mu.Lock()
	on, floor, rate := pc.on, pc.ctrl.floor, pc.ctrl.rate
	pc.mu.Unlock()
	if !on || floor != 2*paceMinRate || rate < floor {
		t.Errorf("two bulk flows beside a third: pacing %v, floor %.0f, rate %.0f; want on at %d", on, floor, rate, 2*paceMinRate)
	}
	q.Close()
}

// TestPaceNotWorthIt: a bulk flow delivering more than paceWanted allows
// is not paced beside another flow: its window drains faster than
// paceDrain.
func TestPaceNotWorthIt(t *testing.T) {
	vpctest.LeakCheck(t)
	tp := newTestPool(t, Config{MaxConns: 1, PaceBulk: true})
	if _, err := tp.dial(t.Context()); err != nil {
		t.Fatal(err)
	}
	a := tp.flow(t)
	makeBulkOf(t, tp, a, 128) // 4 MiB in makeBulkSpan: 21 MB/s
	b := tp.flow(t)
	if err := echoLine(t, b, "select 1"); err != nil {
		t.Fatal(err)
	}
	tp.upkeep()
	if a.(*flow).c.pace.pacing() {
		t.Error("a bulk flow at 21 MB/s is paced beside another")
	}
	b.Close()
}

// TestDownRate: a flow's rate is taken from its first bytes in the last
// second, or its birth, so that a transfer that just began is not taken
// for a slow one.
func TestDownRate(t *testing.T) {
	const ms = time.Millisecond
	start := time.Hour // a bucket boundary
	for _, tt := range []struct {
		name  string
		born  time.Duration // since start
		reads []time.Duration
		at    time.Duration
		want  float64
	}{
		{"a second of steady reads", -time.Minute, []time.Duration{0, 250 * ms, 500 * ms, 750 * ms}, 999 * ms, 4 * 100e3 / 0.999},
		{"quiet, then a burst: from its bucket's start", -time.Minute, []time.Duration{700 * ms, 740 * ms}, 750 * ms, 2 * 100e3 / 0.25},
		{"born 20 ms ago", 730 * ms, []time.Duration{740 * ms, 745 * ms}, 750 * ms, 2 * 100e3 / 0.02},
		{"born at the read: rateSpanMin", 750 * ms, []time.Duration{750 * ms}, 750 * ms, 100e3 / rateSpanMin.Seconds()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &flow{born: start + tt.born}
			for _, r := range tt.reads {
				f.down.add(start+r, 100e3)
			}
			if got := f.downRate(start + tt.at); got < tt.want*0.999 || got > tt.want*1.001 {
				t.Errorf("downRate = %.0f, want %.0f", got, tt.want)
			}
		})
	}
}

// TestPaceStartsOver: a flow that turns bulk on a connection that paces
// others starts the pacing over from what the bulk flows deliver, not at
// the rate left by the others (an upload's, say, at the floor).
func TestPaceStartsOver(t *testing.T) {
	vpctest.LeakCheck(t)
	tp := newTestPool(t, Config{MaxConns: 1, PaceBulk: true})
	if _, err := tp.dial(t.Context()); err != nil {
		t.Fatal(err)
	}
	a, q := tp.flow(t), tp.flow(t)
	makeBulk(t, tp, a)
	tp.upkeep()
	pc := a.(*flow).c.pace
	if !pc.pacing() {
		t.Fatal("a bulk flow beside another is not paced")
	}
	b := tp.flow(t)
	makeBulk(t, tp, b)
	pc.mu.Lock()
	pc.ctrl.rate = pc.ctrl.floor // as an episode that drained a queue leaves it
	pc.mu.Unlock()
	tp.upkeep()
	pc.mu.Lock()
	on, rate := pc.on, pc.ctrl.rate
	pc.mu.Unlock()
	if want := float64(512<<10) / makeBulkSpan.Seconds(); !on || rate < want {
		t.Errorf("after a second bulk flow: pacing %v at %.0f B/s, want on at %.0f or more (b's own rate)", on, rate, want)
	}
	q.Close()
}

// shareDownloads opens four flows and a query beside them on tp's one
// connection, and moves 48 KiB through each of the four every bucketSpan
// for 2 s on the test's clock: 192 KiB/s each, under the bulk rule.
func shareDownloads(t *testing.T, tp *testPool) (downloads []net.Conn, q net.Conn) {
	t.Helper()
	downloads = []net.Conn{tp.flow(t), tp.flow(t), tp.flow(t), tp.flow(t)}
	q = tp.flow(t)
	block := make([]byte, 48<<10)
	for range 2 * time.Second / bucketSpan {
		for _, d := range downloads {
			go d.Write(block)
			if _, err := io.ReadFull(d, make([]byte, len(block))); err != nil {
				t.Fatal(err)
			}
		}
		tp.advance(bucketSpan)
	}
	tp.advance(-bucketSpan / 2) // within the last bucket read
	for i, d := range downloads {
		if d.(*flow).isBulk.Load() {
			t.Fatalf("download %d at 192 KiB/s is bulk by the bulk rule", i)
		}
	}
	if err := echoLine(t, q, "select 1"); err != nil {
		t.Fatal(err)
	}
	return downloads, q
}

// TestPaceSharedDownloads: four downloads that share one connection at a
// quarter of its pace each, under the bulk rule's bulkBytes a second, are
// bulk by their share (classify.go) and paced beside a query, four floors
// together.
func TestPaceSharedDownloads(t *testing.T) {
	vpctest.LeakCheck(t)
	tp := newTestPool(t, Config{MaxConns: 1, PaceBulk: true})
	if _, err := tp.dial(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, q := shareDownloads(t, tp)
	tp.upkeep()
	pc := q.(*flow).c.pace
	pc.mu.Lock()
	on, floor := pc.on, pc.ctrl.floor
	pc.mu.Unlock()
	if !on || floor != 4*paceMinRate {
		t.Errorf("four downloads at a quarter of the pace each, beside a query: pacing %v, floor %.0f; want on at %d", on, floor, 4*paceMinRate)
	}
	if q.(*flow).isBulk.Load() {
		t.Error("the query is bulk")
	}
	q.Close()
}

// stuckProber is a connection whose probes never come back: a queue that
// does not drain, whose age the pacer takes as the round trip.
type stuckProber struct{ prober }

func (stuckProber) Probe(ctx context.Context) (time.Duration, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

// TestPaceHoldsBulkWhileQueued: paced flows whose reads found nothing for
// 2 s stay bulk, and paced, while the pacer finds a queue: their bytes
// wait in it behind others'.
func TestPaceHoldsBulkWhileQueued(t *testing.T) {
	vpctest.LeakCheck(t)
	tp := newTestPool(t, Config{MaxConns: 1, PaceBulk: true})
	if _, err := tp.dial(t.Context()); err != nil {
		t.Fatal(err)
	}
	downloads, q := shareDownloads(t, tp)
	c := q.(*flow).c
	c.pace.close()
	c.pace = newPacer(stuckProber{c.client}, vpctest.Logger(t))
	tp.upkeep()
	pc := c.pace
	pc.mu.Lock()
	pc.ctrl.queued = true // as the first tick finds, the probe out 200 ms
	pc.mu.Unlock()
	tp.advance(3 * time.Second)
	tp.upkeep()
	for i, d := range downloads {
		if !d.(*flow).isBulk.Load() {
			t.Errorf("download %d: calm while the pacer finds a queue", i)
		}
	}
	if !pc.queued() {
		t.Error("pacing ended while its reads found nothing behind a queue")
	}
	q.Close()
}
