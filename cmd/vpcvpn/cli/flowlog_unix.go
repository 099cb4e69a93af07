//go:build unix

package cli

import (
	"errors"
	"os"
	"syscall"
)

// noFollow opens the flow log without following a symbolic link: root
// must not append to, and hand over, the file a link points at.
const noFollow = syscall.O_NOFOLLOW

// checkLinks refuses a flow log with other hard links, for the same reason.
func checkLinks(fi os.FileInfo) error {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
		return errors.New("the file has other hard links")
	}
	return nil
}
