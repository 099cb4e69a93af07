package ssm

// Resuming a session after its WebSocket broke (§1.4, §2.5):
//
//	socket.fail -> reconnect: ResumeSession (new token, same StreamUrl)
//	    -> openSocket (OpenDataChannel with the new token) -> attach
//	    -> the send window resends everything unacknowledged
//
// The sequence numbers, the unacknowledged messages and the receiver's
// state live in the Conn and survive; Read and Write only pause.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Resume pacing: a first delay random in [100, 200) ms, doubled after
// each failure up to a cap, jittered the same way (the reference retries
// 5 times within about 5 s; the service recycles sockets hourly, so be
// more patient).
const (
	resumeFirstDelay = 100 * time.Millisecond
	resumeMaxDelay   = 5 * time.Second

	// DefaultResumeAttempts bounds the ResumeSession attempts after one
	// breakage.
	DefaultResumeAttempts = 10
)

// resumer returns a new token for the session (ResumeSession). An error
// that matches *SessionEndedError means the session is gone.
type resumer func(ctx context.Context) (token string, err error)

// reconnect resumes the session after socket old failed with cause, or
// ends the Conn when the session is gone or the attempts ran out. It
// waits for old's goroutines first: the receiver has one reader.
func (c *Conn) reconnect(old *socket, cause error) {
	defer c.wg.Done()
	old.wg.Wait()
	id := c.cfg.sessionID
	c.log.Info("data channel broken, resuming the session", "session", id, "err", cause)
	if c.cfg.Resuming != nil {
		c.cfg.Resuming(cause)
	}
	delay := resumeFirstDelay
	var err error
	for attempt := 1; attempt <= c.cfg.resumeAttempts; attempt++ {
		if err = c.resumeOnce(); err == nil {
			c.log.Info("session resumed", "session", id, "attempt", attempt)
			c.signalRecovered()
			if c.cfg.Resumed != nil {
				c.cfg.Resumed()
			}
			return
		}
		var gone *SessionEndedError
		if errors.As(err, &gone) || c.ctx.Err() != nil {
			c.end(err)
			return
		}
		wait := delay + rand.N(delay)
		c.log.Info("resuming the session failed", "session", id, "attempt", attempt, "retry_in", wait, "err", err)
		if !c.sleep(wait) {
			return
		}
		delay = min(2*delay, resumeMaxDelay)
	}
	c.end(fmt.Errorf("ssm: resume session %s: gave up after %d attempts: %w", id, c.cfg.resumeAttempts, err))
}

// resumeOnce asks for a new token, opens a socket with it on the original
// StreamURL and attaches it.
func (c *Conn) resumeOnce() error {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.HandshakeTimeout)
	defer cancel()
	token, err := c.cfg.resume(ctx)
	if err != nil {
		return err
	}
	ws, err := c.openSocket(ctx, token)
	if err != nil {
		return err
	}
	c.attach(ws)
	return nil
}

// sleep waits for d and reports whether the Conn is still up.
func (c *Conn) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}
