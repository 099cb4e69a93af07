package cli

import "golang.org/x/sys/unix"

// fdPeerUID returns the user id of the peer of the Unix socket fd.
func fdPeerUID(fd int) (int, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return -1, err
	}
	return int(cred.Uid), nil
}

// dupTo makes newfd a copy of oldfd.
func dupTo(oldfd, newfd int) error {
	return unix.Dup3(oldfd, newfd, 0)
}
