//go:build !linux && !darwin

package cli

import (
	"errors"
	"net"
)

// peerUID is not supported here: the control socket refuses every peer.
func peerUID(net.Conn) (int, error) {
	return -1, errors.ErrUnsupported
}

func dupTo(oldfd, newfd int) error { return errors.ErrUnsupported }

// giveFileBack does nothing here: there is no sudo.
func giveFileBack(string, int, int) {}
