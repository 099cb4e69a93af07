package tunnel

import (
	"context"
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

// TCPTransport returns a Transport that connects to addr ("host:port") over
// TCP, with Nagle's algorithm off: SSH packets are latency-sensitive and
// already coalesced.
func TCPTransport(addr string) Transport {
	return func(ctx context.Context) (net.Conn, error) {
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
}
