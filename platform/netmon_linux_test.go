package platform

import (
	"context"
	"log/slog"
	"testing"
)

// TestWatchNetwork: a link coming up and an address added in the test's
// namespace are reported; nothing is reported before; the watcher stops
// with its context.
func TestWatchNetwork(t *testing.T) {
	ns, _ := testNetns(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes, err := WatchNetwork(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-changes:
		t.Fatal("a change reported before any")
	default:
	}
	ipIn(t, ns, "link", "add", "watch0", "type", "veth", "peer", "name", "watch1")
	<-changes
	ipIn(t, ns, "link", "set", "watch0", "up")
	ipIn(t, ns, "addr", "add", "192.0.2.1/24", "dev", "watch0")
	<-changes
	cancel()
}
