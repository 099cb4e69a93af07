package netstack

// Activity: whether packets arrive from the TUN, for a caller that tunes the
// process to the traffic (vpcvpn's processor governor, cmd/vpcvpn/cli).
//
// The pump counts every batch it reads. The first batch after an idle spell
// makes the stack active and calls Config.ActiveChanged; a timer then looks
// every Config.IdleAfter whether the count moved, and when it did not,
// makes the stack idle and calls it again. An idle stack runs no timer: a
// tunnel nobody uses wakes nothing.

import (
	"sync"
	"sync/atomic"
	"time"
)

// activity tracks whether packets arrive from the TUN.
type activity struct {
	packets atomic.Uint64 // packets read from the TUN
	active  atomic.Bool
	idle    time.Duration // Config.IdleAfter
	changed func()        // Config.ActiveChanged; nil: nobody asked

	mu      sync.Mutex // guards the following and the transitions of active
	seen    uint64     // packets when the timer was last set
	timer   *time.Timer
	stopped bool
}

// arrived counts n packets read from the TUN. It runs on the pump, once per
// batch: on an active stack, an atomic add and load.
func (a *activity) arrived(n int) {
	a.packets.Add(uint64(n))
	if !a.active.Load() && a.changed != nil {
		a.wake()
	}
}

// wake makes the stack active and starts the idle timer.
func (a *activity) wake() {
	a.mu.Lock()
	if a.active.Load() || a.stopped {
		a.mu.Unlock()
		return
	}
	a.active.Store(true)
	a.seen = a.packets.Load()
	if a.timer == nil {
		a.timer = time.AfterFunc(a.idle, a.check)
	} else {
		a.timer.Reset(a.idle)
	}
	a.mu.Unlock()
	a.changed()
}

// check is the idle timer: it looks again later while packets arrive, and
// makes the stack idle once a whole period passed without one.
func (a *activity) check() {
	a.mu.Lock()
	if a.stopped || !a.active.Load() {
		a.mu.Unlock()
		return
	}
	if n := a.packets.Load(); n != a.seen {
		a.seen = n
		a.timer.Reset(a.idle)
		a.mu.Unlock()
		return
	}
	a.active.Store(false)
	// A batch counted after the load above may have seen the stack still
	// active and not woken it; this load sees that batch.
	missed := a.packets.Load() != a.seen
	a.mu.Unlock()
	a.changed()
	if missed {
		a.wake()
	}
}

// stop stops the timer; ActiveChanged is not called again.
func (a *activity) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopped = true
	if a.timer != nil {
		a.timer.Stop()
	}
}
