package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"log/slog"
)

func startTestControl(t *testing.T, allowed func(int) bool) (path string, downCalled <-chan struct{}) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "t.sock")
	ln, err := listenControl(path, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	down := make(chan struct{})
	s := &controlServer{
		ln: ln, path: path, allowed: allowed, log: slog.New(slog.DiscardHandler),
		status: func() Status { return Status{Name: "t", State: "connected", PID: 42, Routes: []string{"10.0.0.0/16"}} },
		down:   func() { close(down) },
	}
	s.start()
	t.Cleanup(s.close)
	return path, down
}

func TestControlStatusAndDown(t *testing.T) {
	path, down := startTestControl(t, func(int) bool { return true })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := callControl(ctx, path, "status")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != "connected" || st.PID != 42 || st.Routes[0] != "10.0.0.0/16" {
		t.Errorf("status = %+v", st)
	}
	if _, err := callControl(ctx, path, "down"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-down:
	case <-ctx.Done():
		t.Fatal("down was not delivered")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want 0600", fi.Mode().Perm())
	}
}

func TestControlRefusesOtherUsers(t *testing.T) {
	path, _ := startTestControl(t, func(uid int) bool { return false })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st, err := callControl(ctx, path, "status"); err == nil {
		t.Fatalf("a refused peer got a status: %+v", st)
	}
}

func TestControlAlreadyRunningAndStale(t *testing.T) {
	path, _ := startTestControl(t, func(int) bool { return true })
	if _, err := listenControl(path, -1, -1); !errors.Is(err, errAlreadyRunning) {
		t.Fatalf("second listen on a live socket: %v, want errAlreadyRunning", err)
	}
	// A socket file nobody listens on is what a crashed instance leaves.
	stale := filepath.Join(t.TempDir(), "stale.sock")
	ln, err := listenControl(stale, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	ln.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
	ln.Close()
	ln, err = listenControl(stale, -1, -1)
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	ln.Close()
}

func TestStatusNotRunning(t *testing.T) {
	t.Setenv("VPCVPN_RUN_DIR", t.TempDir())
	_, err := callControl(context.Background(), socketPath("nope"), "status")
	if !errors.Is(err, errNotRunning) {
		t.Fatalf("err = %v, want errNotRunning", err)
	}
}
