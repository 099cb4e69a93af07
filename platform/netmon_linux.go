package platform

import (
	"context"
	"fmt"
	"log/slog"

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
	return watchSocket(ctx, fd, "netlink", log, nil), nil
}
