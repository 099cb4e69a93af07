//go:build linux || darwin

package tunnel

import (
	"os"

	"golang.org/x/sys/unix"
)

// noEcho turns tty's echo off and returns the function that puts its state
// back. It goes through SyscallConn, not Fd, which would take the file out
// of Go's poller and with it the prompt's cancellation.
func noEcho(tty *os.File) (restore func(), err error) {
	rc, err := tty.SyscallConn()
	if err != nil {
		return nil, err
	}
	var old *unix.Termios
	cerr := rc.Control(func(fd uintptr) {
		old, err = unix.IoctlGetTermios(int(fd), ioctlGetTermios)
		if err != nil {
			return
		}
		t := *old
		t.Lflag &^= unix.ECHO
		t.Lflag |= unix.ICANON | unix.ISIG
		t.Iflag |= unix.ICRNL
		err = unix.IoctlSetTermios(int(fd), ioctlSetTermios, &t)
	})
	if cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, err
	}
	return func() {
		rc.Control(func(fd uintptr) { unix.IoctlSetTermios(int(fd), ioctlSetTermios, old) })
	}, nil
}
