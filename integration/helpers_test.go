//go:build linux

package integration_test

import (
	"context"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// newLab builds a lab for t, or skips t when the machine cannot (not root,
// tools missing). The lab is removed when t ends.
func newLab(t *testing.T, opts lab.Options) *lab.Lab {
	t.Helper()
	if reason := lab.Missing(); reason != "" {
		t.Skip("integration: " + reason)
	}
	if testing.Short() {
		t.Skip("integration: skipped in -short mode")
	}
	if err := lab.CleanupStale(lab.DefaultPrefix); err != nil {
		t.Logf("cleanup of stale labs: %v", err)
	}
	opts.Logger = vpctest.Logger(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := lab.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() && l.AWS.Process != nil {
			t.Logf("the emulator's log:\n%s", logTail(l.AWS.Process.Log(), 6000))
		}
		if t.Failed() && l.AWS.AgentProcess != nil {
			t.Logf("the SSM agent's log:\n%s", logTail(l.AgentLog(), 6000))
		}
		if err := l.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
	})
	return l
}

// testContext returns a context that ends a little before the test's
// deadline, or after d.
func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// logTail returns the last n bytes of a log.
func logTail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
