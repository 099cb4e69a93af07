package tunnel

import (
	"context"
	"fmt"
	"time"
)

// probeResult is the outcome of one probe request.
type probeResult struct {
	rtt time.Duration
	err error
}

// Probe sends one keepalive@openssh.com request wanting a reply and returns
// how long the reply took. The server writes its reply into the same
// stream as the channels' data, behind whatever it has already queued
// there, so the time is the path's round trip plus the queue that a reply
// on any channel of this connection waits behind at that moment. Any
// reply counts, as with keepalives: OpenSSH answers failure.
//
// Probe returns when ctx is done; the request itself then stays
// outstanding, owned by the Client, until its reply arrives or the
// connection ends. Requests are answered in order, so a probe sent while
// another global request waits for its reply is timed from its call.
func (c *Client) Probe(ctx context.Context) (time.Duration, error) {
	if !c.track() {
		return 0, c.probeClosedError()
	}
	res := make(chan probeResult, 1)
	start := time.Now()
	go func() {
		defer c.wg.Done()
		_, _, err := c.sc.SendRequest("keepalive@openssh.com", true, nil)
		res <- probeResult{rtt: time.Since(start), err: err}
	}()
	select {
	case r := <-res:
		if r.err != nil {
			if c.ctx.Err() != nil {
				return 0, c.probeClosedError()
			}
			return 0, fmt.Errorf("tunnel: probe %s: %w", c.cfg.Addr, r.err)
		}
		return r.rtt, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("tunnel: probe %s: %w", c.cfg.Addr, ctx.Err())
	case <-c.ended:
		return 0, c.probeClosedError()
	}
}

func (c *Client) probeClosedError() error {
	if err := c.Err(); err != nil {
		return fmt.Errorf("tunnel: probe %s: %w", c.cfg.Addr, err)
	}
	return fmt.Errorf("tunnel: probe %s: connection ending", c.cfg.Addr)
}
