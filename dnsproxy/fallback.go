package dnsproxy

// The fallback, for the mode in which the proxy answers every name: names
// outside the split domains go unchanged, ID and all, to the host's original
// nameservers over the host network.
//
//	query --> nameserver 1: UDP --TC, client on TCP--> TCP
//	      --> nameserver 2 ... when one fails, each with its share of the time left

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/miekg/dns"
)

type fallback struct {
	dial    DialFunc
	servers []string // host:port
}

// newFallback returns nil for no servers.
func newFallback(servers []string, dial DialFunc) (*fallback, error) {
	if len(servers) == 0 {
		return nil, nil
	}
	f := &fallback{dial: dial}
	if f.dial == nil {
		f.dial = new(net.Dialer).DialContext
	}
	for _, s := range servers {
		addr, err := serverAddr(s)
		if err != nil {
			return nil, fmt.Errorf("dnsproxy: fallback %w", err)
		}
		f.servers = append(f.servers, addr)
	}
	return f, nil
}

// exchange asks the nameservers in turn until one answers q. A truncated
// UDP answer is asked again over TCP if stream is set (the client is on
// TCP); a UDP client gets it as it is, and retries over TCP itself.
func (f *fallback) exchange(ctx context.Context, q []byte, stream bool) ([]byte, error) {
	var errs []error
	for i, s := range f.servers {
		actx, cancel := share(ctx, len(f.servers)-i)
		ans, err := f.roundTrip(actx, "udp", s, q)
		if err == nil && stream && ans[2]&tcBit != 0 {
			ans, err = f.roundTrip(actx, "tcp", s, q)
		}
		cancel()
		if err == nil {
			return ans, nil
		}
		errs = append(errs, fmt.Errorf("dnsproxy: fallback nameserver %s: %w", s, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// share gives one of n attempts left its share of the time until ctx's
// deadline.
func share(ctx context.Context, n int) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok || n <= 1 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, time.Until(d)/time.Duration(n))
}

func (f *fallback) roundTrip(ctx context.Context, network, server string, q []byte) ([]byte, error) {
	c, err := f.dial(ctx, network, server)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	var ans []byte
	if network == "tcp" {
		ans, err = exchangeStream(c, q)
	} else {
		ans, err = exchangeDatagram(c, q)
	}
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return ans, err
}

// exchangeDatagram sends q and reads until its answer comes, skipping
// datagrams that do not answer it.
func exchangeDatagram(c net.Conn, q []byte) ([]byte, error) {
	if _, err := c.Write(q); err != nil {
		return nil, err
	}
	buf := make([]byte, dns.MaxMsgSize)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		if answers(q, buf[:n]) {
			return bytes.Clone(buf[:n]), nil
		}
	}
}

func exchangeStream(c net.Conn, q []byte) ([]byte, error) {
	if _, err := c.Write(appendMsg(nil, q)); err != nil {
		return nil, err
	}
	ans, err := readMsg(c)
	if err != nil {
		return nil, err
	}
	if !answers(q, ans) {
		return nil, errMismatch
	}
	return ans, nil
}

// answers reports whether ans is a response with q's ID.
func answers(q, ans []byte) bool {
	return len(ans) >= headerLen && ans[0] == q[0] && ans[1] == q[1] && ans[2]&qrBit != 0
}
