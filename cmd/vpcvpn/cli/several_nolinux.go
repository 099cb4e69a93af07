//go:build unix && !linux

package cli

import "syscall"

// childProcAttr is nothing here: there is no parent-death signal, so the
// tunnels of a supervising `up` killed with SIGKILL run on until `vpcvpn
// down --all`.
func childProcAttr() *syscall.SysProcAttr { return nil }
