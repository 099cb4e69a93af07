package platform

import (
	"context"
	"fmt"
	"log/slog"

	"golang.org/x/sys/unix"
)

// WatchNetwork returns a channel that receives a value whenever an
// interface of this machine changes state or an address is added or
// removed (coalesced: one pending value at most), until ctx ends: a Mac
// that wakes up or joins another network shows here first. Route messages
// are left out: the routing socket reports every ARP entry as one.
func WatchNetwork(ctx context.Context, log *slog.Logger) (<-chan struct{}, error) {
	fd, err := routeSocketFD()
	if err != nil {
		return nil, fmt.Errorf("platform: watch the network: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("platform: watch the network: %w", err)
	}
	return watchSocket(ctx, fd, "route", log, linkOrAddrChange), nil
}
