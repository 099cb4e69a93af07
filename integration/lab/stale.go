//go:build linux

package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// ownerFile in a lab's directory holds the PID of the process that built it.
const ownerFile = "owner.pid"

// writeOwner creates the lab directory (traversable by the postgres user)
// and records this process as its owner.
func writeOwner(dir string) error {
	if err := os.Mkdir(dir, 0o711); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := os.Chmod(dir, 0o711); err != nil { // umask
		return fmt.Errorf("lab: %w", err)
	}
	pid := strconv.Itoa(os.Getpid())
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(pid+"\n"), 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

// CleanupStale removes what labs named prefix* left behind when their owner
// process died without Close: processes in their namespaces, the
// namespaces, /etc/netns directories and temporary directories. Labs whose
// owner is still running are left alone, so parallel test binaries are safe.
func CleanupStale(prefix string) error {
	if prefix == "" {
		return errors.New("lab: cleanup needs a prefix")
	}
	var errs []error
	for _, ns := range staleNamespaces(prefix) {
		errs = append(errs, deleteNamespace(ns))
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
	for _, d := range dirs {
		if !ownerAlive(labID(filepath.Base(d))) {
			errs = append(errs, os.RemoveAll(d))
		}
	}
	installs, _ := filepath.Glob(filepath.Join(awsInstallRoot, prefix+"*"))
	for _, d := range installs {
		if !ownerAlive(filepath.Base(d)) {
			errs = append(errs, removeAWSDir(d))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab: cleanup %s: %w", prefix, err)
	}
	return nil
}

// staleNamespaces lists namespaces named prefix* whose lab's owner is gone,
// from `ip netns list` and /etc/netns.
func staleNamespaces(prefix string) []string {
	seen := map[string]bool{}
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			seen[f[0]] = true
		}
	}
	etc, _ := os.ReadDir("/etc/netns")
	for _, e := range etc {
		seen[e.Name()] = true
	}
	var stale []string
	for ns := range seen {
		if strings.HasPrefix(ns, prefix) && !ownerAlive(labID(ns)) {
			stale = append(stale, ns)
		}
	}
	return stale
}

// labID is the lab part of a namespace or directory name: "vlab3f9c1a-vpc"
// gives "vlab3f9c1a".
func labID(name string) string {
	id, _, _ := strings.Cut(name, "-")
	return id
}

// ownerAlive reports whether the process recorded as the owner of lab id
// still exists.
func ownerAlive(id string) bool {
	b, err := os.ReadFile(filepath.Join(os.TempDir(), id, ownerFile))
	if err != nil {
		return false
	}
	pid, err := parsePID(string(b))
	if err != nil {
		return false
	}
	return processAlive(pid)
}

// processAlive reports whether pid exists and is not a zombie (a killed
// owner may wait a while to be reaped).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	state := b[i+2]
	return state != 'Z' && state != 'X'
}
