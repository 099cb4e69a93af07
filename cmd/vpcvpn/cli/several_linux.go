package cli

import "syscall"

// childProcAttr has the kernel send a tunnel's process SIGTERM when the
// supervising `up` dies, even by SIGKILL: a foreground tunnel does not
// outlive the command that runs it.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
