//go:build linux

package main

// Relay of the sshfwd forwarder: accepted conn ⇄ direct-tcpip channel, two
// io.CopyBuffer goroutines with 32 KiB buffers (SSH's maximum packet), each
// half-closing its destination at EOF.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
)

// dialFunc is how a forward reaches its remote: (*tunnel.Client).DialContext.
type dialFunc interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// serveForward accepts on ln until it is closed and relays each conn to
// remote through d. It returns once every relay has ended; ctx's end closes
// the open conns.
func serveForward(ctx context.Context, ln net.Listener, d dialFunc, remote string) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Go(func() {
			if err := relay(ctx, c, d, remote); err != nil {
				fmt.Fprintf(os.Stderr, "sshfwd: %s -> %s: %v\n", c.RemoteAddr(), remote, err)
			}
		})
	}
}

// relay dials remote before relaying anything, so a refused dial closes the
// local conn at once, then copies both ways until both sides are done.
func relay(ctx context.Context, local net.Conn, d dialFunc, remote string) error {
	defer local.Close()
	far, err := d.DialContext(ctx, "tcp", remote)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer far.Close()
	stop := context.AfterFunc(ctx, func() { local.Close(); far.Close() })
	defer stop()
	errc := make(chan error, 2)
	go func() { errc <- copyHalf(far, local, "local->remote") }()
	go func() { errc <- copyHalf(local, far, "remote->local") }()
	err = <-errc
	if err != nil { // a broken side: end the other direction too
		local.Close()
		far.Close()
	}
	return errors.Join(err, <-errc)
}

// copyHalf copies src to dst until EOF, then half-closes dst.
func copyHalf(dst, src net.Conn, what string) error {
	buf := make([]byte, 32<<10)
	_, err := io.CopyBuffer(dst, src, buf)
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		return fmt.Errorf("tcp relay %s: %w", what, err)
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
			return fmt.Errorf("tcp relay %s: half-close: %w", what, err)
		}
	}
	return nil
}
