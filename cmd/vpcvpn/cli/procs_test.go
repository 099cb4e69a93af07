package cli

import (
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testGovernor returns a governor over a bulk flag the test sets, whose
// GOMAXPROCS calls are recorded and sent on the returned channel.
func testGovernor(hold time.Duration) (*procGovernor, *atomic.Bool, chan int, func() []int) {
	var bulk atomic.Bool
	calls := make(chan int, 16)
	var mu sync.Mutex
	var log []int
	g := &procGovernor{
		bulk: bulk.Load, many: 4, hold: hold, procs: 1,
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
	g := newProcGovernor(func() bool { return true }, slog.New(slog.DiscardHandler))
	if g != nil {
		t.Fatal("governor with GOMAXPROCS set")
	}
	g.changed()
	g.stop()
}
