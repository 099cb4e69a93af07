//go:build linux || darwin

package platform

import (
	"errors"
	"syscall"
)

// processAlive reports whether process pid exists. EPERM means it does,
// under another user.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
