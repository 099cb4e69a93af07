package vpctest

import (
	"bytes"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// leakWait bounds how long LeakCheck waits for goroutines to exit.
var leakWait = 5 * time.Second

// background lists frames of goroutines that the runtime, os/signal and
// testing start on their own and keep: a test is not to blame for them.
var background = []string{
	"testing.(*T).Parallel(",   // a parallel test waiting for its turn
	"testing.(*T).Run(",        // a test waiting for its subtests
	"testing.runFuzzing(",      // the fuzzing coordinator
	"os/signal.signal_recv(",   // started by the first signal.Notify
	"os/signal.loop(",          //   and kept for the process's life
	"runtime.ensureSigM(",      //   likewise
	"runtime.runFinalizers(",   // the finalizer goroutine, while it runs one
	"runtime.runCleanups(",     // a cleanup goroutine, while it runs one
	"runtime.ReadTrace(",       // an execution trace (go test -trace)
	"runtime/trace.Start.func", //   likewise
}

// LeakCheck fails t if goroutines started during the test are still
// running when it ends. Call it first in a test, so that its cleanup runs
// after every other: it then waits up to a few seconds for the goroutines
// that are not in the set seen at the start to exit, and fails listing the
// stacks of those that did not. Goroutines are told apart by their
// identity, not counted, so one that ends cannot hide one that leaked;
// those the runtime and package testing keep for themselves are ignored.
// It cannot tell one parallel test's goroutines from another's: use it in
// tests that do not call t.Parallel.
func LeakCheck(t testing.TB) {
	t.Helper()
	before := goroutines()
	t.Cleanup(func() {
		deadline := time.Now().Add(leakWait)
		for {
			leaked := leakedSince(before)
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("vpctest: %d goroutines leaked:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(10 * time.Millisecond) // polling for exits; nothing to wait on
		}
	})
}

// leakedSince returns the stacks of the goroutines running now that were
// not in before and are not background ones, sorted.
func leakedSince(before map[string]string) []string {
	var leaked []string
	for id, stack := range goroutines() {
		if _, ok := before[id]; !ok && !isBackground(stack) {
			leaked = append(leaked, stack)
		}
	}
	slices.Sort(leaked)
	return leaked
}

func isBackground(stack string) bool {
	for _, frame := range background {
		if strings.Contains(stack, frame) {
			return true
		}
	}
	return false
}

// goroutines maps each goroutine's identity ("goroutine N", never reused
// in a process) to its stack, leaving out the calling goroutine.
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	ids := make(map[string]string)
	for i, g := range bytes.Split(buf, []byte("\n\n")) {
		if i == 0 { // the caller's own, always first
			continue
		}
		id, _, _ := strings.Cut(string(g), " [")
		ids[id] = string(g)
	}
	return ids
}
