//go:build linux

package lab

// What a process holds and may hold: resident memory, descriptors and
// threads from /proc/<pid>, and RLIMIT_NOFILE.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ProcUsage is what a process holds, from /proc/<pid>.
type ProcUsage struct {
	RSS     uint64 // resident memory in bytes (VmRSS)
	FDs     int    // open file descriptors
	Threads int    // OS threads
}

// String reads "12.3 MiB resident, 15 descriptors, 9 threads".
func (u ProcUsage) String() string {
	return fmt.Sprintf("%.1f MiB resident, %d descriptors, %d threads", float64(u.RSS)/(1<<20), u.FDs, u.Threads)
}

// ReadProcUsage reads pid's resident memory, open descriptors and threads.
func ReadProcUsage(pid int) (ProcUsage, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return ProcUsage{}, fmt.Errorf("lab: %w", err)
	}
	var u ProcUsage
	if u.RSS, err = statusField(string(status), "VmRSS"); err != nil {
		return ProcUsage{}, err
	}
	threads, err := statusField(string(status), "Threads")
	if err != nil {
		return ProcUsage{}, err
	}
	u.Threads = int(threads)
	fds, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return ProcUsage{}, fmt.Errorf("lab: %w", err)
	}
	u.FDs = len(fds)
	return u, nil
}

// statusField returns a number from /proc/<pid>/status, e.g. "VmRSS:  1234
// kB" as 1234*1024 bytes, or "Threads:  7" as 7.
func statusField(status, name string) (uint64, error) {
	for _, line := range strings.Split(status, "\n") {
		rest, ok := strings.CutPrefix(line, name+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			break
		}
		if len(f) > 1 && f[1] == "kB" {
			v *= 1024
		}
		return v, nil
	}
	return 0, fmt.Errorf("lab: no %s in /proc/<pid>/status", name)
}

// ReadFileLimit returns pid's soft and hard RLIMIT_NOFILE, from
// /proc/<pid>/limits ("Max open files  1024  524288  files").
func ReadFileLimit(pid int) (soft, hard uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/limits")
	if err != nil {
		return 0, 0, fmt.Errorf("lab: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "Max open files")
		if f := strings.Fields(rest); ok && len(f) >= 2 {
			soft, err1 := strconv.ParseUint(f[0], 10, 64)
			hard, err2 := strconv.ParseUint(f[1], 10, 64)
			if err1 == nil && err2 == nil {
				return soft, hard, nil
			}
		}
	}
	return 0, 0, fmt.Errorf("lab: no \"Max open files\" in /proc/%d/limits", pid)
}

// RaiseFileLimit raises this process's RLIMIT_NOFILE to at least n, the hard
// limit too if needed (root may). Every process the lab starts afterwards
// inherits it: sshd and its per-connection processes, ssh, vpcvpn. Go raises
// its own soft limit at start but gives children the original one back
// unless the program set the limit itself, which this does.
func RaiseFileLimit(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("lab: getrlimit: %w", err)
	}
	hard := lim.Max
	lim.Cur = max(lim.Cur, n)
	lim.Max = max(lim.Max, lim.Cur)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("lab: raise RLIMIT_NOFILE to %d (hard limit %d): %w", n, hard, err)
	}
	return nil
}
