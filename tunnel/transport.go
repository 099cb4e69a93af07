package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// Transport opens the byte stream that carries the SSH connection: a TCP
// connection, a ProxyCommand's stdio, an SSM data channel. Closing the
// returned conn must unblock its pending reads and writes.
type Transport func(ctx context.Context) (net.Conn, error)

// tcpDialTimeout bounds a TCP connect when ctx has no earlier deadline.
const tcpDialTimeout = 15 * time.Second

// TCPTransport returns a Transport that connects over TCP to the first of
// addrs ("host:port") that answers, in order, with Nagle's algorithm off:
// SSH packets are latency-sensitive and already coalesced.
func TCPTransport(addrs ...string) Transport {
	return func(ctx context.Context) (net.Conn, error) {
		var errs []error
		for _, addr := range addrs {
			c, err := dialTCP(ctx, addr)
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
		if len(errs) == 0 {
			return nil, errors.New("tunnel: no address to connect to")
		}
		return nil, errors.Join(errs...)
	}
}

// dialTCP connects to addr with Nagle's algorithm off.
func dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: tcpDialTimeout, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tunnel: connect to %s: %w", addr, err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.SetNoDelay(true); err != nil {
			tc.Close()
			return nil, fmt.Errorf("tunnel: connect to %s: set TCP_NODELAY: %w", addr, err)
		}
	}
	return c, nil
}
