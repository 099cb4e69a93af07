//go:build linux || darwin

package cli

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// peerUID returns the user id of the process at the other end of c.
func peerUID(c net.Conn) (int, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1, errors.New("not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1, err
	}
	uid, serr := -1, error(nil)
	if err := raw.Control(func(fd uintptr) { uid, serr = fdPeerUID(int(fd)) }); err != nil {
		return -1, err
	}
	return uid, serr
}

// fileOwner returns the user id that owns the file fi describes.
func fileOwner(fi os.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return -1, false
	}
	return int(st.Uid), true
}

// giveFileBack makes the file at path, which root wrote into the directory of
// user uid, theirs again: only a regular file with one link, not reached
// through a symbolic link, in a directory that user owns, and owned by root
// now. Anything else is left alone.
func giveFileBack(path string, uid, gid int) {
	if dir, err := os.Lstat(filepath.Dir(path)); err != nil || !dir.IsDir() {
		return
	} else if owner, ok := fileOwner(dir); !ok || owner != uid {
		return
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid == 0 && st.Nlink == 1 {
		f.Chown(uid, gid)
	}
}
