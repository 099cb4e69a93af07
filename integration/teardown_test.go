//go:build linux

package integration_test

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// TestTeardown checks that every way of stopping `vpcvpn up` (Ctrl-C,
// SIGTERM, SIGHUP, vpcvpn down) exits 0 and leaves neither the interface,
// nor the route, nor its DNS configuration in the laptop namespace.
func TestTeardown(t *testing.T) {
	l, v := upLab(t, lab.Options{NoPostgres: true, DNS: true})
	resolvConf := filepath.Join("/etc/netns", l.Laptop, "resolv.conf")
	original, err := os.ReadFile(resolvConf)
	if err != nil {
		t.Fatal(err)
	}
	changed := func(t *testing.T) {
		t.Helper()
		if b, _ := os.ReadFile(resolvConf); bytes.Equal(b, original) {
			t.Fatal("resolv.conf unchanged while up: the restore check would prove nothing")
		}
	}
	restored := func(t *testing.T) {
		t.Helper()
		if b, _ := os.ReadFile(resolvConf); !bytes.Equal(b, original) {
			t.Errorf("resolv.conf after the stop:\n%s\nwant:\n%s", b, original)
		}
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			in := startUp(t, v)
			changed(t)
			if err := in.Signal(sig); err != nil {
				t.Fatal(err)
			}
			waitExit(t, in, 0)
			assertNoTunnel(t, l)
			restored(t)
		})
	}
	t.Run("Down", func(t *testing.T) {
		in := startUp(t, v)
		changed(t)
		res, err := v.Run(testContext(t, 15*time.Second), "down", "--name", ifName)
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("vpcvpn down: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
		}
		waitExit(t, in, 0)
		assertNoTunnel(t, l)
		restored(t)
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
