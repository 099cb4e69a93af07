package cli

import "golang.org/x/sys/unix"

// fdPeerUID returns the user id of the peer of the Unix socket fd.
func fdPeerUID(fd int) (int, error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return -1, err
	}
	return int(cred.Uid), nil
}

// dupTo makes newfd a copy of oldfd.
func dupTo(oldfd, newfd int) error {
	return unix.Dup2(oldfd, newfd)
}
