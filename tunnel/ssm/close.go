package ssm

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/coder/websocket"
)

// end records why the Conn ends, the first time, fails pending and future
// Reads and Writes, and cancels every socket; watch then closes done.
func (c *Conn) end(cause error) {
	c.record(cause)
	c.cancel()
}

// record keeps the first cause and wakes Read and Write waiters.
func (c *Conn) record(cause error) {
	c.mu.Lock()
	first := !c.ended
	if first {
		c.ended, c.err = true, cause
	}
	c.mu.Unlock()
	if !first {
		return
	}
	c.out.fail(cause) // Writes first: whoever saw Read fail finds Write failing too
	c.in.fail(cause)
	if _, ok := cause.(*ChannelClosedError); ok {
		c.log.Info("session closed", "reason", cause)
	} else if !errors.Is(cause, net.ErrClosed) {
		c.log.Debug("session ended", "err", cause)
	}
}

// shutdown ends the session on our side (§6.7): Reads and Writes fail with
// cause at once; the TerminateSession flag is sent when terminate; then it
// waits up to CloseTimeout for the agent to acknowledge what was sent and
// for the WebSocket close handshake, and ends the Conn, which unblocks
// whatever still waits on a stalled peer.
func (c *Conn) shutdown(cause error, terminate bool) {
	c.record(cause)
	c.mu.Lock()
	s := c.sock
	c.mu.Unlock()
	if s == nil || s.ctx.Err() != nil {
		c.end(cause)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.CloseTimeout)
	defer cancel()
	if terminate {
		flag, _ := TerminateSession.MarshalBinary()
		if _, err := c.out.push(PayloadFlag, flag, true, time.Now()); err == nil {
			c.kick()
		}
	}
	c.awaitDrained(ctx, s)
	closed := c.closeSocket(ctx, s)
	c.end(cause)
	<-closed // prompt: ending the Conn closed the socket
}

// awaitDrained waits until the agent acknowledged every message, the
// socket failed, or timeout.
func (c *Conn) awaitDrained(ctx context.Context, s *socket) {
	for {
		drained, change := c.out.drained()
		if drained {
			return
		}
		select {
		case <-change:
		case <-s.ctx.Done():
			return
		case <-ctx.Done():
			c.log.Debug("closing with unacknowledged messages")
			return
		}
	}
}

// closeSocket starts closing s with status 1000 and waits for the close
// handshake until ctx is done. The returned channel is closed when the
// close returned, which ending the Conn hastens.
func (c *Conn) closeSocket(ctx context.Context, s *socket) <-chan struct{} {
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		s.ws.Close(websocket.StatusNormalClosure, "")
	}()
	select {
	case <-closed:
	case <-ctx.Done():
	}
	return closed
}
