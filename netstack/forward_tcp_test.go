package netstack

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel/tunneltest"
)

// roundTrip writes size random bytes on c, half-closes it, reads everything
// back, and reports an error unless what came back hashes the same.
func roundTrip(c net.Conn, size int) error {
	data := make([]byte, size)
	rand.Read(data)
	want := sha256.Sum256(data)
	var g errgroup.Group
	g.Go(func() error {
		if _, err := c.Write(data); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		return c.(interface{ CloseWrite() error }).CloseWrite()
	})
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		return fmt.Errorf("read after %d bytes: %w", n, err)
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if n != int64(size) || [32]byte(h.Sum(nil)) != want {
		return fmt.Errorf("got %d bytes (hash mismatch %v), want %d", n, [32]byte(h.Sum(nil)) != want, size)
	}
	return nil
}

func TestRelayExact(t *testing.T) {
	for _, tt := range []struct {
		name  string
		batch int
		size  int
	}{
		{"batch1", 1, 4 << 20},
		{"batch64", 64, 8 << 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			vpctest.LeakCheck(t)
			h := newHarness(t, harnessOpts{batch: tt.batch, cfg: Config{Dial: dialTo(tunneltest.Echo(t))}})
			c, err := h.dialApp(t.Context(), vpcTarget)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := roundTrip(c, tt.size); err != nil {
				t.Fatal(err)
			}
			if got := <-h.dials; got != vpcTarget.String() {
				t.Errorf("dialed %q, want %q", got, vpcTarget)
			}
			st := h.stack.Stats()
			if st.BytesUp != uint64(tt.size) || st.BytesDown != uint64(tt.size) || st.FlowsTotal != 1 {
				t.Errorf("stats = %+v, want %d bytes each way, 1 flow", st, tt.size)
			}
		})
	}
}

func TestHalfClose(t *testing.T) {
	vpctest.LeakCheck(t)
	// The server reads until EOF, then answers: the reply must arrive after
	// the client's CloseWrite.
	addr := serve(t, func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		fmt.Fprintf(c, "got %d bytes", n)
	})
	h := newHarness(t, harnessOpts{cfg: Config{Dial: dialTo(addr)}})
	c, err := h.dialApp(t.Context(), vpcTarget)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(make([]byte, 100000)); err != nil {
		t.Fatal(err)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	reply, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(reply), "got 100000 bytes"; got != want {
		t.Errorf("reply %q, want %q", got, want)
	}
}

func TestRefused(t *testing.T) {
	vpctest.LeakCheck(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	h := newHarness(t, harnessOpts{cfg: Config{Dial: dialTo(addr)}})

	start := time.Now()
	c, err := h.dialApp(t.Context(), vpcTarget)
	if err == nil {
		c.Close()
		t.Fatal("dial succeeded, want connection refused")
	}
	if !isRefused(err) {
		t.Fatalf("dial error %v, want connection refused", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refused after %v, want < 1s", d)
	}
	if st := h.stack.Stats(); st.FlowsFailed != 1 || st.FlowsTotal != 0 {
		t.Errorf("stats = %+v, want 1 failed flow", st)
	}
}

// lateConn is a conn that reports its Close.
type lateConn struct {
	net.Conn
	closed chan struct{}
	once   sync.Once
}

func (c *lateConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func TestConnectTimeout(t *testing.T) {
	vpctest.LeakCheck(t)
	release := make(chan struct{})
	late := &lateConn{closed: make(chan struct{})}
	// The dial ignores its ctx, the worst case, and returns a conn only when
	// released: the app must get its RST anyway, and the conn must be closed.
	hang := func(context.Context, string, string) (net.Conn, error) {
		<-release
		return late, nil
	}
	const timeout = 200 * time.Millisecond
	h := newHarness(t, harnessOpts{cfg: Config{Dial: hang, ConnectTimeout: timeout}})

	start := time.Now()
	c, err := h.dialApp(t.Context(), vpcTarget)
	if err == nil {
		c.Close()
		t.Fatal("dial succeeded, want RST")
	}
	if !isRefused(err) {
		t.Fatalf("dial error %v, want connection refused", err)
	}
	if d := time.Since(start); d < timeout || d > timeout+2*time.Second {
		t.Errorf("RST after %v, want about %v", d, timeout)
	}
	close(release)
	select {
	case <-late.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("late conn was not closed")
	}
}

func TestManyFlows(t *testing.T) {
	vpctest.LeakCheck(t)
	h := newHarness(t, harnessOpts{batch: 32, cfg: Config{Dial: dialTo(tunneltest.Echo(t))}})
	const flows = 200
	var g errgroup.Group
	for i := range flows {
		g.Go(func() error {
			c, err := h.dialApp(t.Context(), vpcTarget)
			if err != nil {
				return fmt.Errorf("flow %d: %w", i, err)
			}
			defer c.Close()
			if err := roundTrip(c, 64<<10); err != nil {
				return fmt.Errorf("flow %d: %w", i, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if st := h.stack.Stats(); st.FlowsTotal != flows {
		t.Errorf("FlowsTotal = %d, want %d", st.FlowsTotal, flows)
	}
}

func TestCloseUnblocks(t *testing.T) {
	vpctest.LeakCheck(t)
	// One flow relaying to a server that never answers, and one dial that
	// hangs until its ctx ends: Close must end both and return.
	silent := serve(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	var once sync.Once
	dialing := make(chan struct{})
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		first := false
		once.Do(func() { first = true })
		if first {
			return dialTo(silent)(ctx, network, addr)
		}
		close(dialing)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	h := newHarness(t, harnessOpts{cfg: Config{Dial: dial}})
	c, err := h.dialApp(t.Context(), vpcTarget)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	go func() { // ends when the Stack closes: the app gets a RST or EOF
		c2, err := h.dialApp(context.Background(), vpcTarget)
		if err == nil {
			c2.Close()
		}
	}()
	<-dialing

	if err := h.stack.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.stack.Done():
	default:
		t.Error("Done not closed after Close")
	}
	if err := h.stack.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if st := h.stack.Stats(); st.FlowsOpen != 0 {
		t.Errorf("FlowsOpen = %d after Close", st.FlowsOpen)
	}
	// The app was told: its connection was reset, not left open.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "reset") {
		t.Errorf("the app's read after Close: %v, want a connection reset", err)
	}
}

// TestResetFlows: the apps of open flows get a reset at once, and the
// Stack goes on serving new flows.
func TestResetFlows(t *testing.T) {
	vpctest.LeakCheck(t)
	addr := tunneltest.Echo(t)
	h := newHarness(t, harnessOpts{cfg: Config{Dial: dialTo(addr)}})
	c, err := h.dialApp(t.Context(), vpcTarget)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	h.stack.ResetFlows()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "reset") {
		t.Errorf("the app's read after ResetFlows: %v, want a connection reset", err)
	}
	c2, err := h.dialApp(t.Context(), vpcTarget)
	if err != nil {
		t.Fatalf("a new flow after ResetFlows: %v", err)
	}
	defer c2.Close()
	if _, err := c2.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c2, make([]byte, 1)); err != nil {
		t.Errorf("a new flow after ResetFlows: %v", err)
	}
}
