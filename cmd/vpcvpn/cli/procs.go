package cli

import (
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
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
// Between two requests vpcvpn is idle, and so is every processor: the
// runtime's sysmon thread then sleeps deeply, and the first system call
// after the wait (the TUN read of the next request, the SSH write) wakes
// it with a futex, after which it polls every 20 us until it finds every
// processor idle again: two thread wake-ups per request, on its critical
// path (runtime/proc.go: sysmon, entersyscallWakeSysmon). While packets
// flow, vpcvpn therefore holds a second processor (holdProcessor): taken,
// it keeps sysmon at its slow pace, and the work still runs on one
// processor. Measured (netns lab, 2 cores, pgbench -S 1 client, two labs
// in turns, 12 runs each): 0.81x -> 0.89x ssh -L's tps, vpcvpn's CPU time
// per query 0.18 -> 0.12 ms, context switches 5.1 -> 2.5. The stack is
// idle (netstack's Config.ActiveChanged) one to two seconds after its last
// packet, and an idle tunnel holds nothing and wakes nothing.
//
// A bulk download is the other way round: x/crypto/ssh's reader decrypts
// the next packets while gVisor and the relay move the last ones to the
// app, and wants a second core for it (iperf3 -R 2.3 vs 1.9 Gbit/s on one
// processor, medians of 5 and 3 in two benchmarks). A bulk upload is not:
// the relay encrypts as it writes, and it went faster on one processor
// (iperf3 up 3.5 vs 2.8 Gbit/s in the same two). So while some flow
// downloads in bulk (netstack's Stats.BulkDownloads) vpcvpn runs on all
// processors (the runtime's default) and holds none; and for procsHold
// after the last one pauses, so that a client alternating between small
// and large responses on one connection does not flip it every time, but
// no longer once no flow that downloaded in bulk is open (Stats.BulkOpen):
// a query right after a download would otherwise run its first second in
// bulk mode (pgbench -S 1 client, its first second after iperf3 -R:
// 1,600-2,400 tps against 2,550-2,850 otherwise). Setting GOMAXPROCS in
// the environment turns all this off.
//
// A bulk download also makes garbage: x/crypto/ssh returns every packet it
// reads in a buffer of its own (transport.go, readPacket), 32 KiB each,
// hundreds of megabytes a second. With the default GOGC of 100 the
// collector ran about 50 times a second (iperf3 -R, counted with a probe
// on runtime.gcStart) and took a tenth of vpcvpn's CPU (zeroing, marking,
// pages returned to the kernel and faulted back in); at 400, 10 times. So
// in bulk mode the collector lets the heap grow to bulkGCPercent over what
// is live, and when bulk mode ends vpcvpn returns that memory to the
// kernel at once. Measured (netns lab, 2 cores, iperf3 -R, two labs in
// turns, 6 runs each): 2.50 -> 3.09 Gbit/s (medians), vpcvpn's peak
// resident memory 56 -> 103 MiB, and 31 MiB a second after the download
// (44 MiB without: the collector keeps what it took). GOGC or GOMEMLIMIT
// in the environment leaves the collector alone (GOMAXPROCS, the whole
// governor).
//
// Several SSH connections (--max-sessions) each have their own x/crypto/ssh
// reader and writer, and a request on one does not hand off to another:
// when two or more moved data within the last second (the engine's
// ConnsMoving), the work is many connections' at once, as with 16 pgbench
// clients over plain SSH, and vpcvpn runs on all processors (procsParallel),
// the collector left alone unless a flow downloads in bulk too.

// procsHold is how long vpcvpn keeps all processors after bulk data
// stopped moving.
const procsHold = time.Second

// bulkGCPercent is the collector's GOGC while a flow downloads in bulk.
const bulkGCPercent = 400

// procMode is what the governor tunes the runtime for.
type procMode int

const (
	procsIdle     procMode = iota // no packets: one processor
	procsActive                   // requests and responses: one, and one held
	procsParallel                 // several connections move data: all processors
	procsBulk                     // a bulk download: all processors, and the collector's GOGC
)

// procGovernor sets GOMAXPROCS, holds a processor and sets the collector's
// GOGC as netstack reports traffic starting and stopping and bulk
// transfers starting and stopping.
type procGovernor struct {
	bulk func() bool // whether some flow moves data in bulk now
	// bulkOpen reports whether some flow that moved data in bulk is still
	// open: one that paused may resume.
	bulkOpen func() bool
	active   func() bool // whether packets arrive
	parallel func() bool // whether several connections move data; nil: never
	many     int         // processors while a flow moves data in bulk
	hold     time.Duration
	set      func(int) // runtime.GOMAXPROCS; tests watch it
	// holdProc takes a processor until the returned function is called;
	// nil where it cannot (holdProcessor).
	holdProc func() (release func())
	// gcPercent is debug.SetGCPercent, and freeOS debug.FreeOSMemory;
	// gcPercent nil leaves the collector alone.
	gcPercent func(int) int
	freeOS    func()

	mu      sync.Mutex
	mode    procMode
	procs   int         // as last set
	release func()      // releases the held processor; nil: none held
	timer   *time.Timer // leaves bulk mode after hold
	stopped bool        // by stop: later reports change nothing
	gcPrev  int         // GOGC before bulk mode; 0: not changed
}

// newProcGovernor returns a governor that has set one processor, or nil
// when GOMAXPROCS is set in the environment or there is only one anyway.
func newProcGovernor(bulk, bulkOpen, active, parallel func() bool, log *slog.Logger) *procGovernor {
	if os.Getenv("GOMAXPROCS") != "" {
		return nil
	}
	g := &procGovernor{
		bulk: bulk, bulkOpen: bulkOpen, active: active, parallel: parallel, many: runtime.GOMAXPROCS(0), hold: procsHold,
		set: func(n int) {
			runtime.GOMAXPROCS(n)
			log.Debug("processors", "GOMAXPROCS", n)
		},
		holdProc: holdProcessor,
	}
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		g.gcPercent, g.freeOS = debug.SetGCPercent, debug.FreeOSMemory
	}
	if g.many <= 1 {
		return nil
	}
	g.procs = g.many
	g.setMode(procsIdle)
	return g
}

// changed is netstack's Config.BulkChanged and Config.ActiveChanged: all
// processors at once when bulk data moves; back when no flow that moved it
// is left, or hold after the last one paused; one and one held while
// packets arrive, one when they stop.
func (g *procGovernor) changed() {
	if g == nil {
		return
	}
	g.mu.Lock()
	garbage := g.update()
	g.mu.Unlock()
	if garbage {
		// A collection, not on the relay that reported the end of its
		// download: it passes the far side's FIN on next.
		go g.freeOS()
	}
}

// update sets the mode for what the stack reports, and reports whether it
// left bulk mode with garbage to return to the kernel. g.mu is held.
func (g *procGovernor) update() (garbage bool) {
	switch {
	case g.stopped:
	case g.bulk():
		g.stopTimer()
		g.setMode(procsBulk)
	case g.mode != procsBulk:
		g.setMode(g.calm())
	case !g.bulkOpen():
		// The downloads ended; none paused that may resume.
		g.stopTimer()
		return g.setMode(g.calm())
	case g.timer == nil:
		g.timer = time.AfterFunc(g.hold, g.settle)
	default:
		g.timer.Reset(g.hold)
	}
	return false
}

// stopTimer cancels a pending settle. g.mu is held.
func (g *procGovernor) stopTimer() {
	if g.timer != nil {
		g.timer.Stop()
	}
}

// settle leaves bulk mode unless bulk data moves again.
func (g *procGovernor) settle() {
	g.mu.Lock()
	garbage := false
	if !g.stopped && !g.bulk() {
		garbage = g.setMode(g.calm())
	}
	g.mu.Unlock()
	if garbage {
		g.freeOS() // a collection: not under g.mu, which the packet path takes
	}
}

// calm is the mode without bulk data.
func (g *procGovernor) calm() procMode {
	switch {
	case g.parallel != nil && g.parallel():
		return procsParallel
	case g.active():
		return procsActive
	}
	return procsIdle
}

// stop cancels a pending mode change and releases a held processor, for
// good: the stack may still report until it is closed.
func (g *procGovernor) stop() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopped = true
	g.stopTimer()
	g.unhold()
	g.restoreGC()
}

// setMode sets the processors, the hold and the collector of mode m, and
// reports whether it left bulk mode with garbage to return to the kernel.
// g.mu is held.
func (g *procGovernor) setMode(m procMode) (garbage bool) {
	g.mode = m
	switch {
	case m == procsBulk:
		g.unhold() // before more processors: nothing to take from
		g.setProcs(g.many)
		if g.gcPercent != nil && g.gcPrev == 0 {
			g.gcPrev = g.gcPercent(bulkGCPercent)
		}
		return false
	case m == procsParallel:
		g.unhold()
		g.setProcs(g.many)
	case m == procsActive && g.holdProc != nil:
		g.setProcs(2)
		if g.release == nil {
			g.release = g.holdProc()
		}
	default:
		g.unhold() // before one processor, which the holder would keep
		g.setProcs(1)
	}
	return g.restoreGC()
}

// restoreGC sets the collector's GOGC back from bulk mode's, and reports
// whether it did. g.mu is held.
func (g *procGovernor) restoreGC() bool {
	if g.gcPrev == 0 {
		return false
	}
	g.gcPercent(g.gcPrev)
	g.gcPrev = 0
	return true
}

// unhold releases the held processor, if any. g.mu is held.
func (g *procGovernor) unhold() {
	if g.release != nil {
		g.release()
		g.release = nil
	}
}

// setProcs sets n processors unless they are set already. g.mu is held.
func (g *procGovernor) setProcs(n int) {
	if g.procs != n {
		g.procs = n
		g.set(n)
	}
}
