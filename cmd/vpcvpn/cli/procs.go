package cli

import (
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"
)

// The Go runtime's processors (GOMAXPROCS), by what the tunnel carries.
//
// A request through vpcvpn is handed from goroutine to goroutine: the TUN
// reader, gVisor's TCP processor, the flow's relay, and on the way back
// x/crypto/ssh's reader, its mux and the relay again. With another
// processor idle, every hand-off wakes a thread to steal the work (a futex
// wake, an interrupt to another core), which finds nothing to do and
// sleeps again while the goroutine it was woken for runs where it was
// readied. On one processor a hand-off is a goroutine switch. Measured
// (netns lab, 2 cores, labbench): pgbench -S 1 client 2799 -> 3033 tps,
// 16 clients 11946 -> 12766 tps, vpcvpn's CPU time per query 0.19 ->
// 0.13 ms.
//
// A bulk download is the other way round: x/crypto/ssh's reader decrypts
// the next packets while gVisor and the relay move the last ones to the
// app, and wants a second core for it (iperf3 -R 2.3 vs 1.9 Gbit/s on one
// processor, medians of 5 and 3 in two benchmarks). A bulk upload is not:
// the relay encrypts as it writes, and it went faster on one processor
// (iperf3 up 3.5 vs 2.8 Gbit/s in the same two). So vpcvpn runs on one
// processor, and on all of them (the runtime's default) while some flow
// downloads in bulk (netstack's Stats.BulkDownloads) and for procsHold
// after the last one stops, so that a client alternating between small
// and large responses does not flip it every time. Setting GOMAXPROCS in
// the environment turns this off.

// procsHold is how long vpcvpn keeps all processors after bulk data
// stopped moving.
const procsHold = time.Second

// procGovernor sets GOMAXPROCS to 1 or to many as netstack reports bulk
// transfers starting and stopping.
type procGovernor struct {
	bulk func() bool // whether some flow moves data in bulk now
	many int         // processors while one does
	hold time.Duration
	set  func(int) // runtime.GOMAXPROCS; tests watch it

	mu    sync.Mutex
	procs int         // as last set
	timer *time.Timer // returns to one processor after hold
}

// newProcGovernor returns a governor that has set one processor, or nil
// when GOMAXPROCS is set in the environment or there is only one anyway.
func newProcGovernor(bulk func() bool, log *slog.Logger) *procGovernor {
	if os.Getenv("GOMAXPROCS") != "" {
		return nil
	}
	g := &procGovernor{
		bulk: bulk, many: runtime.GOMAXPROCS(0), hold: procsHold,
		set: func(n int) {
			runtime.GOMAXPROCS(n)
			log.Debug("processors", "GOMAXPROCS", n)
		},
	}
	if g.many <= 1 {
		return nil
	}
	g.procs = g.many
	g.setProcs(1)
	return g
}

// changed is netstack's Config.BulkChanged: all processors at once when
// bulk data moves, one again hold after it stopped.
func (g *procGovernor) changed() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.bulk() {
		if g.timer != nil {
			g.timer.Stop()
		}
		g.setProcs(g.many)
		return
	}
	if g.procs == 1 {
		return
	}
	if g.timer == nil {
		g.timer = time.AfterFunc(g.hold, g.settle)
		return
	}
	g.timer.Reset(g.hold)
}

// settle returns to one processor unless bulk data moves again.
func (g *procGovernor) settle() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.bulk() {
		g.setProcs(1)
	}
}

// stop cancels a pending return to one processor.
func (g *procGovernor) stop() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.timer != nil {
		g.timer.Stop()
	}
}

// setProcs sets n processors unless they are set already. g.mu is held.
func (g *procGovernor) setProcs(n int) {
	if g.procs != n {
		g.procs = n
		g.set(n)
	}
}
