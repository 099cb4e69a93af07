package cli

import (
	"os"
	"runtime"
)

// oneProc runs the tunnel's Go code on one processor (GOMAXPROCS=1) unless
// the GOMAXPROCS environment variable asks for something else.
//
// A request through vpcvpn is handed from goroutine to goroutine: the TUN
// reader, gVisor's TCP processor, the flow's relay, and on the way back
// x/crypto/ssh's reader, its mux, the relay again. With a second processor
// idle, every hand-off wakes a thread to steal the work (a futex wake, an
// interrupt to another core), which then finds nothing to do and sleeps
// again, while the goroutine it was woken for runs where it was readied.
// On one processor a hand-off is a goroutine switch. Measured (netns lab,
// 2 cores, pgbench -S, labbench): 1 client 2799 -> 3033 tps, 16 clients
// 11946 -> 12766 tps, vpcvpn's CPU time per transaction 0.19 -> 0.13 ms,
// bulk TCP unchanged within noise (up 3.6 -> 4.5, down 2.9 -> 2.8 Gbit/s).
//
// Bulk transfers hardly need more: one SSH connection encrypts under one
// lock and decrypts in one goroutine, and a single core carries several
// Gbit/s, more than a laptop's path to AWS. System calls still run in
// parallel, on threads of their own.
func oneProc() {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	runtime.GOMAXPROCS(1)
}
