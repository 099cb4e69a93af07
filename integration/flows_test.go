//go:build linux

package integration_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// vpcAddr is the VPC host's address with port.
func vpcAddr(port int) string { return net.JoinHostPort(lab.VPCHostAddr, strconv.Itoa(port)) }

// dialLaptop connects from the laptop namespace to addr; the conn is closed
// when t ends or ctx is done.
func dialLaptop(t *testing.T, ctx context.Context, l *lab.Lab, addr string) net.Conn {
	t.Helper()
	c, err := l.DialContext(ctx, l.Laptop, "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from the laptop: %v", addr, err)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	t.Cleanup(func() { stop(); c.Close() })
	return c
}

// sumReader returns "<bytes> <sha256 hex>" of everything r yields.
func sumReader(r io.Reader) (string, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return fmt.Sprintf("%d %s", n, hex.EncodeToString(h.Sum(nil))), err
}

// testConcurrentEcho opens flows connections to the Echo at addr at once, each sending
// size bytes of its own pattern and reading them back.
func testConcurrentEcho(t *testing.T, l *lab.Lab, addr string, flows int, size int64) {
	ctx := testContext(t, 2*time.Minute)
	g, gctx := errgroup.WithContext(ctx)
	for i := range flows {
		g.Go(func() error { return echoOnce(gctx, l, addr, uint64(100+i), size) })
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

func echoOnce(ctx context.Context, l *lab.Lab, addr string, seed uint64, size int64) error {
	c, err := l.DialContext(ctx, l.Laptop, "tcp", addr)
	if err != nil {
		return fmt.Errorf("flow %d: dial: %w", seed, err)
	}
	defer context.AfterFunc(ctx, func() { c.Close() })()
	defer c.Close()
	want := make([]byte, size)
	io.ReadFull(lab.Pattern(seed), want)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(want)
		errc <- errors.Join(err, c.(*net.TCPConn).CloseWrite())
	}()
	got, err := io.ReadAll(c)
	if werr := <-errc; werr != nil || err != nil {
		return fmt.Errorf("flow %d: write: %v, read: %v", seed, werr, err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("flow %d: echoed %d bytes, not the %d sent", seed, len(got), len(want))
	}
	return nil
}
