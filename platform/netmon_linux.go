package platform

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"golang.org/x/sys/unix"
)

// WatchNetwork returns a channel that receives a value whenever a link, an
// IPv4 address or an IPv4 route of this machine changes (coalesced: one
// pending value at most), until ctx ends. A laptop that wakes up, joins a
// network or gets its link back shows here first, so a reconnect waiting
// out its backoff can try at once.
func WatchNetwork(ctx context.Context, log *slog.Logger) (<-chan struct{}, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("platform: watch the network: %w", err)
	}
	sa := &unix.SockaddrNetlink{Family: unix.AF_NETLINK,
		Groups: unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV4_ROUTE}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("platform: watch the network: %w", err)
	}
	f := os.NewFile(uintptr(fd), "netlink") // reads through the poller; Close unblocks them
	changes := make(chan struct{}, 1)
	stop := context.AfterFunc(ctx, func() { f.Close() })
	go func() {
		defer stop()
		buf := make([]byte, 64<<10)
		for {
			if _, err := f.Read(buf); err != nil {
				if ctx.Err() == nil {
					// ENOBUFS: events were lost, which is a change too.
					if err2, ok := err.(*os.PathError); ok && err2.Err == unix.ENOBUFS {
						notify(changes)
						continue
					}
					log.Warn("watching the network stopped", "err", err)
					f.Close()
				}
				return
			}
			notify(changes)
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
