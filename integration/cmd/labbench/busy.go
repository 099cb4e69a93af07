//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// busyWarn is the share of CPU time, busy before a path is measured, above
// which the figures are suspect: the benchmark wants the machine to itself.
const busyWarn = 0.25

// quietWait bounds how long waitQuiet waits for other work to end.
const quietWait = 20 * time.Second

// waitQuiet samples the CPUs each second until they are quiet, for at most
// quietWait; it records the last busy share in res and warns if the
// machine never became quiet.
func waitQuiet(ctx context.Context, res *pathResult) {
	deadline := time.Now().Add(quietWait)
	for waited := false; ; waited = true {
		busy, err := cpuBusy(ctx, time.Second)
		if err != nil {
			return
		}
		res.BusyBefore = busy
		if busy <= busyWarn {
			return
		}
		if time.Now().After(deadline) {
			progress("warning: the CPUs are %.0f%% busy before measuring %s: something else is running, figures will be low", busy*100, res.ID)
			return
		}
		if !waited {
			progress("the CPUs are %.0f%% busy: waiting up to %v for quiet before measuring %s", busy*100, quietWait, res.ID)
		}
	}
}

// cpuBusy returns the share of all CPUs' time that was not idle during d,
// from /proc/stat.
func cpuBusy(ctx context.Context, d time.Duration) (float64, error) {
	busy0, total0, err := cpuTimes()
	if err != nil {
		return 0, err
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(d):
	}
	busy1, total1, err := cpuTimes()
	if err != nil {
		return 0, err
	}
	if total1 <= total0 {
		return 0, fmt.Errorf("/proc/stat did not advance")
	}
	return float64(busy1-busy0) / float64(total1-total0), nil
}

// cpuTimes returns the busy and total jiffies of the "cpu" line of
// /proc/stat; idle and iowait count as not busy.
func cpuTimes() (busy, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("cpu times: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("cpu times: unexpected /proc/stat line %q", line)
	}
	for i, s := range f[1:9] { // user nice system idle iowait irq softirq steal; guest is in user
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("cpu times: %w", err)
		}
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total, nil
}
