//go:build linux

package lab

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"
)

// pollInterval is the pause between readiness probes of an external daemon.
const pollInterval = 20 * time.Millisecond

// poll calls check until it succeeds, p exits, ctx ends or timeout passes.
// It is for daemons that announce readiness only by starting to accept.
func poll(ctx context.Context, timeout time.Duration, what string, p *Process, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		if p != nil {
			if perr := p.exitedEarly(); perr != nil {
				return perr
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lab: waiting for %s: %w (last: %v)", what, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// dialCheck returns a check that a TCP connect from ns to addr succeeds.
func (l *Lab) dialCheck(ns, addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		c, err := l.DialContext(ctx, ns, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// listenCheck returns a check that something listens on TCP addr in ns,
// without connecting to it.
func (l *Lab) listenCheck(ns, addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		out, err := l.Exec(ctx, ns, "ss", "-Hltn", "src", addr)
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) == "" {
			return fmt.Errorf("nothing listens on %s", addr)
		}
		return nil
	}
}

// hostPort joins a host and a port number.
func hostPort(host string, port int) string { return net.JoinHostPort(host, fmt.Sprint(port)) }
