package cli

import (
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// holdTick is how long the holder sleeps at a time: shorter than the 10 ms
// after which the runtime preempts a goroutine that runs on, so that it
// never needs to.
const holdTick = 5 * time.Millisecond

// holdProcessor takes one of the runtime's processors, without using the
// CPU, until release is called (procs.go says why). Its goroutine sleeps
// in nanosleep through RawSyscall, which does not tell the runtime: the
// processor stays taken for the call, not idle and not in a system call
// that sysmon would take it back from. Between sleeps it yields, so the
// runtime sees it scheduled and never preempts it, and a stop-the-world
// (GC, GOMAXPROCS) interrupts the sleep with its preemption signal rather
// than waiting it out.
func holdProcessor() (release func()) {
	var done atomic.Bool
	go func() {
		ts := unix.NsecToTimespec(holdTick.Nanoseconds())
		for !done.Load() {
			unix.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
			runtime.Gosched()
		}
	}()
	return func() { done.Store(true) }
}
