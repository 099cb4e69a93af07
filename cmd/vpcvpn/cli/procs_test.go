package cli

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testGovernor returns a governor over a bulk flag the test sets, whose
// GOMAXPROCS calls are recorded and sent on the returned channel, and which
// holds no processor (its stack never becomes active). The flow that
// downloaded in bulk stays open.
func testGovernor(hold time.Duration) (*procGovernor, *atomic.Bool, chan int, func() []int) {
	var bulk atomic.Bool
	calls := make(chan int, 16)
	var mu sync.Mutex
	var log []int
	g := &procGovernor{
		bulk: bulk.Load, bulkOpen: func() bool { return true }, active: func() bool { return false },
		many: 4, hold: hold, procs: 1,
		set: func(n int) {
			mu.Lock()
			log = append(log, n)
			mu.Unlock()
			calls <- n
		},
	}
	return g, &bulk, calls, func() []int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(log)
	}
}

// holdLog records a governor's GOMAXPROCS calls and processor holds in
// order: "procs N", "hold", "release".
type holdLog struct {
	mu     sync.Mutex
	events []string
}

func (l *holdLog) add(e string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *holdLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.events
	l.events = nil
	return e
}

// govFlags are what a loggedGovernor's stack reports.
type govFlags struct {
	bulk, open, active atomic.Bool // Stats.BulkDownloads, BulkOpen, Active
	parallel           atomic.Bool // ConnsMoving() >= 2
}

// loggedGovernor returns a governor over flags the test sets, whose
// GOMAXPROCS calls, processor holds and collector settings go to l.
func loggedGovernor(l *holdLog) (*procGovernor, *govFlags) {
	f := new(govFlags)
	gogc := 100
	g := &procGovernor{
		bulk: f.bulk.Load, bulkOpen: f.open.Load, active: f.active.Load, parallel: f.parallel.Load,
		many: 4, hold: time.Hour, procs: 1,
		set: func(n int) { l.add(fmt.Sprint("procs ", n)) },
		holdProc: func() func() {
			l.add("hold")
			return func() { l.add("release") }
		},
		gcPercent: func(n int) int {
			l.add(fmt.Sprint("gc ", n))
			prev := gogc
			gogc = n
			return prev
		},
		freeOS: func() { l.add("free") },
	}
	return g, f
}

// TestProcGovernorActive: while packets arrive, one processor works and a
// second is held; the hold ends before the processors change again, since
// a held processor would keep the only one or sit among the many. A bulk
// download raises GOGC, and its end restores it and frees the garbage.
func TestProcGovernorActive(t *testing.T) {
	var l holdLog
	g, f := loggedGovernor(&l)
	bulk, active := &f.bulk, &f.active
	defer g.stop()
	step := func(what string, want ...string) {
		t.Helper()
		if got := l.take(); !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", what, got, want)
		}
	}
	active.Store(true)
	g.changed()
	step("active", "procs 2", "hold")
	g.changed()
	step("active again")
	bulk.Store(true)
	f.open.Store(true)
	g.changed()
	step("bulk", "release", "procs 4", "gc 400")
	bulk.Store(false)
	g.changed()
	step("bulk paused, within the hold")
	g.settle()
	step("bulk stopped, after the hold, still active", "procs 2", "hold", "gc 100", "free")
	active.Store(false)
	g.changed()
	step("idle", "release", "procs 1")
	active.Store(true)
	g.changed()
	step("active after idle", "procs 2", "hold")
	g.stop()
	step("stop", "release")
	active.Store(true)
	g.changed() // the stack's last report, after stop
	step("active after stop")
}

// TestProcGovernorParallel: while two or more connections move data, all
// processors work, with no processor held and the collector left alone;
// a bulk download among them raises GOGC, and its end leaves the
// processors to the connections.
func TestProcGovernorParallel(t *testing.T) {
	var l holdLog
	g, f := loggedGovernor(&l)
	defer g.stop()
	step := func(what string, want ...string) {
		t.Helper()
		if got := l.take(); !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", what, got, want)
		}
	}
	f.active.Store(true)
	g.changed()
	step("active", "procs 2", "hold")
	f.parallel.Store(true)
	g.changed()
	step("two connections move data", "release", "procs 4")
	f.bulk.Store(true)
	f.open.Store(true)
	g.changed()
	step("and a bulk download", "gc 400")
	f.bulk.Store(false)
	g.changed()
	step("the download paused, within the hold")
	g.settle()
	step("the download stopped, after the hold", "gc 100", "free")
	f.parallel.Store(false)
	g.changed()
	step("one connection moves data", "procs 2", "hold")
}

// TestProcGovernorDownloadEnded: when the last flow that downloaded in
// bulk ends, bulk mode ends at once, hold or not, and the garbage goes back
// to the kernel off the reporting goroutine (a relay about to pass a FIN
// on).
func TestProcGovernorDownloadEnded(t *testing.T) {
	var l holdLog
	g, f := loggedGovernor(&l)
	defer g.stop()
	freed := make(chan struct{})
	g.freeOS = func() {
		l.add("free")
		close(freed)
	}
	step := func(what string, want ...string) {
		t.Helper()
		if got := l.take(); !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", what, got, want)
		}
	}
	f.active.Store(true)
	f.bulk.Store(true)
	f.open.Store(true)
	g.changed()
	step("bulk", "procs 4", "gc 400")
	f.bulk.Store(false)
	g.changed()
	step("bulk paused, within the hold")
	f.open.Store(false)
	g.changed()
	<-freed
	step("the download ended", "procs 2", "hold", "gc 100", "free")
	g.settle() // the paused download's timer, had it not been stopped
	step("settle after")

	// A download that ends in bulk, without pausing first.
	freed = make(chan struct{})
	f.bulk.Store(true)
	f.open.Store(true)
	g.changed()
	f.bulk.Store(false)
	f.open.Store(false)
	g.changed()
	<-freed
	step("ended in bulk", "release", "procs 4", "gc 400", "procs 2", "hold", "gc 100", "free")
}

// TestProcGovernorStopInBulk: stopping in bulk mode restores GOGC.
func TestProcGovernorStopInBulk(t *testing.T) {
	var l holdLog
	g, f := loggedGovernor(&l)
	f.bulk.Store(true)
	g.changed()
	g.changed()
	g.stop()
	if got, want := l.take(), []string{"procs 4", "gc 400", "gc 100"}; !slices.Equal(got, want) {
		t.Errorf("%q, want %q", got, want)
	}
}

// TestProcGovernorNoHold: where no processor can be held, an active
// tunnel stays on one.
func TestProcGovernorNoHold(t *testing.T) {
	g, _, _, log := testGovernor(time.Hour)
	active := true
	g.active = func() bool { return active }
	g.changed()
	active = false
	g.changed()
	if got := log(); len(got) != 0 {
		t.Errorf("GOMAXPROCS calls %v, want none", got)
	}
}

// TestProcGovernor: all processors as soon as bulk data moves, one again
// once it has stopped for the hold time.
func TestProcGovernor(t *testing.T) {
	g, bulk, calls, log := testGovernor(time.Millisecond)
	defer g.stop()
	bulk.Store(true)
	g.changed()
	if got := <-calls; got != 4 {
		t.Fatalf("bulk started: GOMAXPROCS(%d), want 4", got)
	}
	g.changed() // a late report of the same state sets nothing
	bulk.Store(false)
	start := time.Now()
	g.changed()
	select {
	case got := <-calls:
		if got != 1 {
			t.Fatalf("bulk stopped: GOMAXPROCS(%d), want 1", got)
		}
		if d := time.Since(start); d < time.Millisecond {
			t.Errorf("back to one processor after %v, before the hold time", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("never back to one processor")
	}
	if got, want := log(), []int{4, 1}; !slices.Equal(got, want) {
		t.Errorf("GOMAXPROCS calls %v, want %v", got, want)
	}
}

// TestProcGovernorHold: bulk data that resumes within the hold time keeps
// all processors; nothing flips.
func TestProcGovernorHold(t *testing.T) {
	g, bulk, _, log := testGovernor(time.Hour)
	defer g.stop()
	for range 3 {
		bulk.Store(true)
		g.changed()
		bulk.Store(false)
		g.changed()
	}
	g.settle() // the hold's end, had bulk data not resumed
	if got, want := log(), []int{4, 1}; !slices.Equal(got, want) {
		t.Errorf("GOMAXPROCS calls %v, want %v", got, want)
	}
	bulk.Store(true)
	g.changed()
	g.settle() // a stale timer: bulk data moves, nothing changes
	if got, want := log(), []int{4, 1, 4}; !slices.Equal(got, want) {
		t.Errorf("GOMAXPROCS calls %v, want %v", got, want)
	}
}

// TestProcGovernorOff: GOMAXPROCS in the environment turns the governor
// off, and a nil governor ignores reports.
func TestProcGovernorOff(t *testing.T) {
	t.Setenv("GOMAXPROCS", "3")
	yes := func() bool { return true }
	g := newProcGovernor(yes, yes, yes, yes, slog.New(slog.DiscardHandler))
	if g != nil {
		t.Fatal("governor with GOMAXPROCS set")
	}
	g.changed()
	g.stop()
}
