package tunnel

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Relay may be implemented by a Transport's conn when something between
// client and server acknowledges the bytes and may damage them, as an SSM
// agent does (*ssm.Conn implements it). After each repair of the stream
// (a resend, a reconnect) the Client checks the server at once with a
// keepalive, and names the relay when the connection breaks.
type Relay interface {
	// Recovered receives a value after the relay had to resend or
	// reconnect.
	Recovered() <-chan struct{}
	// Acknowledged returns how many bytes written to the conn the relay
	// has acknowledged, every one up to that offset: it has passed them
	// on to the server.
	Acknowledged() uint64
	// Received returns how many bytes from the server the relay has
	// delivered, counting those held for a gap before them: a sign of life
	// from the server before Read can show it.
	Received() uint64
	// Carrier names the relay for messages, e.g. "the instance's SSM agent".
	Carrier() string
}

// After a repair, once the relay has passed the keepalive on to the
// server, the server may stay silent for checkSilence before the
// connection is declared broken: the silence is then the server's.
// OpenSSH, on a bad MAC with an AEAD cipher, drops the connection without
// a word, and the SSM agent may have written a message to sshd twice
// (seen with agent 3.3.987.0): the SSH keepalive would take its 20 to 30
// seconds to notice. A reply queued behind a download is no false alarm:
// the download's bytes arrive meanwhile.
const (
	checkSilence = 1500 * time.Millisecond
	checkTick    = 250 * time.Millisecond
)

// checkRelay runs while the connection is up: after each repair of the
// stream it sends a keepalive and ends the connection when the server
// stays silent for checkSilence after the relay passed it on. While a
// check is pending, an end of the stream is blamed on the relay (why).
func (c *Client) checkRelay() {
	defer c.wg.Done()
	replies := make(chan error, 1)
	var (
		tick      *time.Ticker
		ticks     <-chan time.Time
		written   uint64    // bytes written before the keepalive
		mark      uint64    // bytes written up to the keepalive's end, once known
		delivered time.Time // when the relay had passed them all on
		quiet     time.Time // since when nothing came from the server
		lastRx    uint64    // Received then
		inflight  bool
		again     bool // a repair came while a keepalive was out
	)
	probe := func() {
		inflight = true
		written, mark, delivered = c.conn.tx.Load(), 0, time.Time{}
		quiet, lastRx = time.Now(), c.relay.Received()
		c.wg.Add(1)
		go c.ping(replies)
		tick = time.NewTicker(checkTick)
		ticks = tick.C
	}
	defer func() {
		if tick != nil {
			tick.Stop()
		}
	}()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.relay.Recovered():
			c.checking.Store(true)
			if inflight {
				again = true
				continue
			}
			c.log.Debug("stream repaired by the relay; checking the server")
			probe()
		case err := <-replies:
			inflight = false
			tick.Stop()
			tick, ticks = nil, nil
			if err != nil {
				return // the connection is ending; watch says why
			}
			if again { // once more, after the latest repair
				again = false
				probe()
				continue
			}
			c.checking.Store(false)
		case now := <-ticks:
			if rx := c.relay.Received(); rx != lastRx {
				lastRx, quiet = rx, now
			}
			switch {
			case mark == 0: // once written, the keepalive is in the stream below mark
				if tx := c.conn.tx.Load(); tx > written {
					mark = tx
				}
			case delivered.IsZero() && c.relay.Acknowledged() >= mark:
				delivered = now
			}
			if !delivered.IsZero() && now.Sub(delivered) >= checkSilence && now.Sub(quiet) >= checkSilence {
				c.end(fmt.Errorf("tunnel: ssh connection to %s lost: %w", c.cfg.Addr, &CorruptError{
					By: c.relay.Carrier(), Inferred: true,
					Err: fmt.Errorf("no reply to a keepalive %v after %s passed it on",
						now.Sub(delivered).Round(time.Millisecond), c.relay.Carrier()),
				}))
				return
			}
		}
	}
}

// why explains err, which ended the SSH connection: the transport's error,
// a disconnect by the server, or damage the SSH layer found.
func (c *Client) why(err error) error {
	if c.conn.readFailed.Load() {
		if errors.Is(err, io.EOF) {
			err = errors.New("closed by the server")
		}
		if c.checking.Load() {
			return &CorruptError{By: c.carrier(), Inferred: true, Err: err}
		}
		return err
	}
	if isDisconnect(err) && !strings.Contains(err.Error(), "reason 2:") && !strings.Contains(err.Error(), "reason 5:") {
		return err // not a protocol or MAC error
	}
	return &CorruptError{By: c.carrier(), Err: err}
}

// isDamage reports whether err, from x/crypto/ssh and not from the
// transport, says that the bytes from the server arrived damaged: a bad
// MAC or a malformed packet, such as the server's version line lost and
// its key exchange read as a packet. x/crypto/ssh has no error types for
// these, as of v0.58.0.
func isDamage(err error) bool {
	for _, s := range []string{"MAC failure", "message authentication failed", "invalid packet length",
		"packet too large", "max packet length exceeded", "padding", "empty packet", "disconnect, reason 2:"} {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}

// isDisconnect reports whether err is the server's SSH_MSG_DISCONNECT;
// x/crypto/ssh has no error type for it, as of v0.58.0.
func isDisconnect(err error) bool {
	return strings.HasPrefix(err.Error(), "ssh: disconnect, reason ")
}

func (c *Client) carrier() string {
	if c.relay != nil {
		return c.relay.Carrier()
	}
	return ""
}
