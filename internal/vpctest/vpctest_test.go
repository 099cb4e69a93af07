package vpctest

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTB records what LeakCheck and Logger do with their testing.TB.
type fakeTB struct {
	testing.TB // nil: a method not overridden here panics

	mu       sync.Mutex // guards following
	cleanups []func()
	errors   []string
	logs     []string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Log(args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, fmt.Sprint(args...))
}

// end runs the cleanups, last registered first, as a test's end does.
func (f *fakeTB) end() {
	f.mu.Lock()
	fns := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

func (f *fakeTB) recorded() (errors, logs []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.errors, f.logs
}

// parkedForLeakTest blocks until release is closed; its name marks its
// stack in LeakCheck's report.
func parkedForLeakTest(release <-chan struct{}, done *sync.WaitGroup) {
	defer done.Done()
	<-release
}

func shortLeakWait(t *testing.T) {
	old := leakWait
	leakWait = 200 * time.Millisecond
	t.Cleanup(func() { leakWait = old })
}

func TestLeakCheck(t *testing.T) {
	tests := []struct {
		name string
		// during runs between LeakCheck and the end of the test; what it
		// starts waits for release, closed by the test after its end.
		during   func(f *fakeTB, release chan struct{}, wg *sync.WaitGroup)
		wantLeak bool
	}{
		{
			name: "leaked goroutine",
			during: func(_ *fakeTB, release chan struct{}, wg *sync.WaitGroup) {
				wg.Add(1)
				go parkedForLeakTest(release, wg)
			},
			wantLeak: true,
		},
		{
			name: "goroutine ended by a later cleanup",
			during: func(f *fakeTB, release chan struct{}, wg *sync.WaitGroup) {
				wg.Add(1)
				go parkedForLeakTest(release, wg)
				f.Cleanup(func() { close(release) }) // it exits while LeakCheck waits
			},
		},
		{
			name: "os/signal's goroutine",
			during: func(*fakeTB, chan struct{}, *sync.WaitGroup) {
				c := make(chan os.Signal, 1)
				signal.Notify(c, os.Interrupt)
				signal.Stop(c)
			},
		},
		{
			name:   "nothing started",
			during: func(*fakeTB, chan struct{}, *sync.WaitGroup) {},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shortLeakWait(t)
			f := &fakeTB{}
			LeakCheck(f)
			release := make(chan struct{})
			var wg sync.WaitGroup
			tt.during(f, release, &wg)
			f.end()
			select {
			case <-release:
			default:
				close(release)
			}
			wg.Wait()
			errs, _ := f.recorded()
			switch {
			case tt.wantLeak && (len(errs) != 1 || !strings.Contains(errs[0], "vpctest.parkedForLeakTest")):
				t.Errorf("errors %q, want one naming the leaked goroutine's function", errs)
			case !tt.wantLeak && len(errs) != 0:
				t.Errorf("errors %q, want none", errs)
			}
		})
	}
}

// TestLeakCheckOlderGoroutine: a goroutine that was running before the
// test began is not the test's leak.
func TestLeakCheckOlderGoroutine(t *testing.T) {
	shortLeakWait(t)
	release := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go parkedForLeakTest(release, &wg)
	defer wg.Wait()
	defer close(release)
	f := &fakeTB{}
	LeakCheck(f)
	f.end()
	if errs, _ := f.recorded(); len(errs) != 0 {
		t.Errorf("errors %q, want none", errs)
	}
}

// TestLogger: each record is one line through t.Log, Debug included; after
// the test's end, records are dropped rather than logged through t.
func TestLogger(t *testing.T) {
	f := &fakeTB{}
	log := Logger(f)
	log.Debug("dialing", "addr", "10.0.0.5:5432")
	log.With("component", "tunnel").Info("connected")
	f.end()
	log.Error("late", "after", "the test")
	_, logs := f.recorded()
	want := []string{"level=DEBUG msg=dialing addr=10.0.0.5:5432", "level=INFO msg=connected component=tunnel"}
	if len(logs) != len(want) {
		t.Fatalf("logged %q, want %d lines", logs, len(want))
	}
	for i, line := range logs {
		if !strings.HasSuffix(line, want[i]) || strings.Contains(line, "\n") {
			t.Errorf("line %d = %q, want one line ending in %q", i, line, want[i])
		}
	}
}
