package tunnel

import (
	"context"
	"errors"
	"testing"
)

// TestUntilDone: a prompt returns what the person typed, or, once ctx ends
// (Ctrl-C), at once with ctx's error after putting the terminal back.
func TestUntilDone(t *testing.T) {
	got, err := untilDone(t.Context(), func() (string, error) { return "yes", nil }, nil)
	if got != "yes" || err != nil {
		t.Errorf("answered: %q, %v", got, err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	typing := make(chan struct{}) // never answered
	defer close(typing)
	restored := false
	errc := make(chan error, 1)
	go func() {
		_, err := untilDone(ctx, func() (string, error) { <-typing; return "", nil }, func() { restored = true })
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) || !restored {
		t.Errorf("cancelled: %v, terminal restored %v; want context.Canceled and restored", err, restored)
	}
}
