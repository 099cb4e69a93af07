package platform

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// WatchNetwork returns a channel that receives a value whenever an
// interface of this machine changes state or an address is added or
// removed (coalesced: one pending value at most), until ctx ends: a Mac
// that wakes up or joins another network shows here first. Route messages
// are left out: the routing socket reports every ARP entry as one.
func WatchNetwork(ctx context.Context, log *slog.Logger) (<-chan struct{}, error) {
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(unix.AF_ROUTE, unix.SOCK_RAW, unix.AF_UNSPEC)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("platform: watch the network: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("platform: watch the network: %w", err)
	}
	f := os.NewFile(uintptr(fd), "route") // reads through the poller; Close unblocks them
	changes := make(chan struct{}, 1)
	stop := context.AfterFunc(ctx, func() { f.Close() })
	go func() {
		defer stop()
		buf := make([]byte, 64<<10)
		for {
			n, err := f.Read(buf)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("watching the network stopped", "err", err)
					f.Close()
				}
				return
			}
			if linkOrAddrChange(buf[:n]) {
				notify(changes)
			}
		}
	}()
	return changes, nil
}

func notify(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
