//go:build linux || darwin

package platform

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"golang.org/x/sys/unix"
)

// watchSocket reads the non-blocking event socket fd (netlink, PF_ROUTE)
// until ctx ends, and sends on the returned channel, coalesced (one pending
// value at most), for each read that relevant accepts (nil: every read).
// ENOBUFS, events lost to a full socket buffer, counts as a change too.
func watchSocket(ctx context.Context, fd int, name string, log *slog.Logger, relevant func([]byte) bool) <-chan struct{} {
	f := os.NewFile(uintptr(fd), name) // reads through the poller; Close unblocks them
	changes := make(chan struct{}, 1)
	stop := context.AfterFunc(ctx, func() { f.Close() })
	go func() {
		defer stop()
		buf := make([]byte, 64<<10)
		for {
			n, err := f.Read(buf)
			switch {
			case errors.Is(err, unix.ENOBUFS):
				notify(changes)
			case err != nil:
				if ctx.Err() == nil {
					log.Warn("watching the network stopped", "err", err)
					f.Close()
				}
				return
			case relevant == nil || relevant(buf[:n]):
				notify(changes)
			}
		}
	}()
	return changes
}

func notify(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
