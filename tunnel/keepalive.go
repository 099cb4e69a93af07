package tunnel

import (
	"fmt"
	"time"
)

// keepalive declares the connection dead when KeepAliveCountMax+1
// intervals in a row pass without a byte from the server, like OpenSSH's
// ServerAliveInterval and ServerAliveCountMax. In each such interval it makes
// sure a keepalive@openssh.com request is outstanding; any reply, even a
// failure, is traffic. While KeepAliveActive says no, it only watches.
func (c *Client) keepalive() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.KeepAliveInterval)
	defer t.Stop()
	replies := make(chan error, 1)
	inflight, missed := false, 0
	lastRx := c.conn.rx.Load()
	for {
		select {
		case <-c.ctx.Done():
			return
		case err := <-replies:
			inflight = false
			if err != nil {
				return // the connection is ending; watch says why
			}
		case <-t.C:
			if rx := c.conn.rx.Load(); rx != lastRx || !c.keepAliveActive() {
				lastRx, missed = rx, 0
				continue
			}
			if missed++; missed > c.cfg.KeepAliveCountMax {
				c.end(fmt.Errorf("tunnel: ssh connection to %s lost: no reply from the server in %v: %w",
					c.cfg.Addr, time.Duration(missed-1)*c.cfg.KeepAliveInterval, ErrKeepaliveTimeout))
				return
			}
			if !inflight {
				inflight = true
				c.wg.Add(1)
				go c.ping(replies)
			}
		}
	}
}

func (c *Client) keepAliveActive() bool {
	return c.cfg.KeepAliveActive == nil || c.cfg.KeepAliveActive()
}

// ping sends one keepalive and reports the outcome to replies, which has
// room for it: keepalive has at most one ping outstanding.
func (c *Client) ping(replies chan<- error) {
	defer c.wg.Done()
	_, _, err := c.sc.SendRequest("keepalive@openssh.com", true, nil)
	replies <- err
}
