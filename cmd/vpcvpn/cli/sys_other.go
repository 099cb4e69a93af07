//go:build !linux && !darwin

package cli

import (
	"errors"
	"net"
	"os"
)

// peerUID is not supported here: the control socket refuses every peer.
func peerUID(net.Conn) (int, error) {
	return -1, errors.ErrUnsupported
}

func dupTo(oldfd, newfd int) error { return errors.ErrUnsupported }

// giveFileBack does nothing here: there is no sudo.
func giveFileBack(string, int, int) {}

// fileOwner is not known here.
func fileOwner(os.FileInfo) (int, bool) { return -1, false }
