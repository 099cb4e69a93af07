package integration_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// TestTeardown checks that both ways of stopping `vpcvpn up` exit 0 and
// leave neither the interface nor the route in the laptop namespace.
func TestTeardown(t *testing.T) {
	l, v := upLab(t, lab.Options{NoPostgres: true})
	t.Run("SIGTERM", func(t *testing.T) {
		in := startUp(t, v)
		if err := in.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		waitExit(t, in, 0)
		assertNoTunnel(t, l)
	})
	t.Run("Down", func(t *testing.T) {
		in := startUp(t, v)
		res, err := v.Run(testContext(t, 15*time.Second), "down", "--name", ifName)
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("vpcvpn down: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
		}
		waitExit(t, in, 0)
		assertNoTunnel(t, l)
		res, err = v.Run(testContext(t, 10*time.Second), "status", "--name", ifName)
		if err != nil || res.ExitCode == 0 {
			t.Errorf("status after down: exit %d, %v; want non-zero (not running)\n%s", res.ExitCode, err, res.Stdout)
		}
	})
}

// waitExit waits up to 10 s for in to exit and checks its exit code.
func waitExit(t *testing.T, in *lab.Instance, code int) {
	t.Helper()
	select {
	case <-in.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("vpcvpn up still running 10s after it was told to stop:\n%s", in.Stderr())
	}
	if res := in.Result(); res.ExitCode != code {
		t.Errorf("vpcvpn up exited with %d, want %d:\n%s", res.ExitCode, code, res.Stderr)
	}
}
