//go:build linux

package lab

// Load clients, for the load test and the benchmark: many Echo flows from
// a namespace, held open or short. proc.go reads what they cost the
// process that carries them.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// EchoMany is Echo for thousands of connections. io.Copy from a TCP conn
// to a TCP conn splices through a pipe, which holds two more descriptors
// for as long as the connection waits for data; EchoMany copies through a
// 4 KiB buffer of its own instead.
func EchoMany(c net.Conn) {
	buf := make([]byte, 4<<10)
	io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, buf)
	closeWrite(c)
}

// echoMessageSize is the size of each flow's messages: distinct per flow
// and per message, so a byte delivered to the wrong flow shows.
const echoMessageSize = 64

// echoMessage returns message i of flow id.
func echoMessage(id, i int) []byte {
	b := make([]byte, echoMessageSize)
	io.ReadFull(Pattern(uint64(id)<<8|uint64(i)), b)
	return b
}

// echoExchange writes msg to c and reads it back.
func echoExchange(c net.Conn, msg []byte) error {
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("read echo: %w", err)
	}
	if !bytes.Equal(got, msg) {
		return errors.New("echo differs from the message sent")
	}
	return nil
}

// EchoFlows are connections to an Echo server, held open by OpenEchoFlows
// until Close.
type EchoFlows struct {
	conns []net.Conn
}

// OpenEchoFlows connects n times from ns to the Echo server at addr, at
// most parallel connects at a time, and checks that each connection echoes
// a message of its own. The connections then stay open and idle until
// Close. On error the connections already open are closed.
func (l *Lab) OpenEchoFlows(ctx context.Context, ns, addr string, n, parallel int) (*EchoFlows, error) {
	f := &EchoFlows{conns: make([]net.Conn, n)}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i := range n {
		g.Go(func() error {
			c, err := l.DialContext(gctx, ns, "tcp", addr)
			if err != nil {
				return fmt.Errorf("flow %d: connect: %w", i, err)
			}
			f.conns[i] = c
			if err := withContext(gctx, c, func() error { return echoExchange(c, echoMessage(i, 0)) }); err != nil {
				return fmt.Errorf("flow %d: %w", i, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		f.abort()
		return nil, err
	}
	return f, nil
}

// Len is the number of flows.
func (f *EchoFlows) Len() int { return len(f.conns) }

// Close ends every flow, at most parallel at a time, the way a careful
// client does: a last message of its own, a half-close, and then exactly
// that message back before the server's EOF. Every connection is closed,
// also on error.
func (f *EchoFlows) Close(ctx context.Context, parallel int) error {
	defer f.abort()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i, c := range f.conns {
		g.Go(func() error {
			err := withContext(gctx, c, func() error { return lastEcho(c, echoMessage(i, 1)) })
			c.Close()
			if err != nil {
				return fmt.Errorf("flow %d: close: %w", i, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// lastEcho writes msg, half-closes c and reads until EOF, which must bring
// exactly msg.
func lastEcho(c net.Conn, msg []byte) error {
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return fmt.Errorf("half-close: %w", err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		return fmt.Errorf("read to EOF: %w", err)
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("%d bytes back before EOF, not the %d-byte message sent", len(got), len(msg))
	}
	return nil
}

// abort closes every connection.
func (f *EchoFlows) abort() {
	for _, c := range f.conns {
		if c != nil {
			c.Close()
		}
	}
}

// EchoConnects makes n short connections from ns to the Echo server at
// addr, one after another: connect, a message of its own, its echo, close.
// It returns the time they took; the first failure ends it.
func (l *Lab) EchoConnects(ctx context.Context, ns, addr string, n int) (time.Duration, error) {
	began := time.Now()
	for i := range n {
		if err := l.shortEcho(ctx, ns, addr, i); err != nil {
			return 0, fmt.Errorf("connection %d of %d: %w", i+1, n, err)
		}
	}
	return time.Since(began), nil
}

// EchoBurst starts n short connections from ns to the Echo server at addr
// at the same moment, as a database GUI opening its pool, and returns the
// time from the start until the last one's echo. Every one must succeed.
func (l *Lab) EchoBurst(ctx context.Context, ns, addr string, n int) (time.Duration, error) {
	start := make(chan struct{})
	var ready sync.WaitGroup
	ready.Add(n)
	g, gctx := errgroup.WithContext(ctx)
	for i := range n {
		g.Go(func() error {
			ready.Done()
			<-start
			if err := l.shortEcho(gctx, ns, addr, i); err != nil {
				return fmt.Errorf("connection %d of the burst: %w", i, err)
			}
			return nil
		})
	}
	ready.Wait()
	began := time.Now()
	close(start)
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return time.Since(began), nil
}

// shortEcho is one short connection: connect, message id, echo, close.
func (l *Lab) shortEcho(ctx context.Context, ns, addr string, id int) error {
	c, err := l.DialContext(ctx, ns, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	return withContext(ctx, c, func() error { return echoExchange(c, echoMessage(id, 0)) })
}

// withContext runs f, which uses c, and closes c if ctx ends first, so that
// f returns.
func withContext(ctx context.Context, c net.Conn, f func() error) error {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	err := f()
	if !stop() {
		return errors.Join(err, ctx.Err())
	}
	return err
}

// AllowManyConnections lets the laptop and the bastion make tens of
// thousands of connections a minute: every short connection leaves a port
// in TIME_WAIT for a minute on the side that closed first. Their outgoing
// connections may use ports 1024-65535, up from Linux's 28,232, and reuse
// a port in TIME_WAIT for a new connection (tcp_tw_reuse 1, which Linux
// allows by default on loopback only).
func (l *Lab) AllowManyConnections() error {
	settings := map[string]string{"ip_local_port_range": "1024 65535", "tcp_tw_reuse": "1"}
	for _, ns := range []string{l.Laptop, l.Bastion} {
		err := l.InNamespace(ns, func() error {
			for name, v := range settings {
				if err := os.WriteFile("/proc/sys/net/ipv4/"+name, []byte(v+"\n"), 0o644); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("lab: allow many connections in %s: %w", ns, err)
		}
	}
	return nil
}
