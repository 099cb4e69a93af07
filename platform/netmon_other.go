//go:build !linux && !darwin

package platform

import (
	"context"
	"log/slog"
)

// WatchNetwork reports changes of the machine's network on Linux and macOS; here it
// returns a channel that never receives, so reconnects keep to their
// backoff.
func WatchNetwork(ctx context.Context, log *slog.Logger) (<-chan struct{}, error) {
	return nil, nil
}
