package cli

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// TestHoldProcessor: the holder's goroutine counts as running, not as in a
// system call, so its processor is neither idle nor taken back; a
// stop-the-world completes while it holds; release ends it.
func TestHoldProcessor(t *testing.T) {
	vpctest.LeakCheck(t) // release ends the holder
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	// Goroutines running, and in system calls (or otherwise outside Go).
	m := []metrics.Sample{
		{Name: "/sched/goroutines/running:goroutines"},
		{Name: "/sched/goroutines/not-in-go:goroutines"},
	}
	read := func() (running, syscall uint64) {
		metrics.Read(m)
		return m[0].Value.Uint64(), m[1].Value.Uint64()
	}
	_, syscallBefore := read()
	release := holdProcessor()
	start := time.Now()

	// This goroutine and the holder: two running and none more in a
	// system call, in most samples over a few of the holder's sleeps (it
	// is runnable only for its yield between them, though on a loaded
	// machine the OS may hold its thread there for a while). A holder in
	// an ordinary system call would be seen running in almost none.
	for time.Since(start) < holdTick { // its first sleep has begun
		runtime.Gosched()
	}
	var held, samples int
	for time.Since(start) < 5*holdTick {
		samples++
		if r, s := read(); r >= 2 && s <= syscallBefore {
			held++
		}
	}
	if held < samples/2 {
		release()
		t.Fatalf("the holder seen running in %d of %d samples", held, samples)
	}
	runtime.GC() // stops the world, which must get the held processor too
	runtime.GOMAXPROCS(3)
	runtime.GOMAXPROCS(2)

	release()
}
