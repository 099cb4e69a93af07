package tunnel

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// Defaults for Config fields left zero.
const (
	DefaultKeepAliveInterval = 10 * time.Second
	DefaultKeepAliveCountMax = 1
	DefaultMaxPendingOpens   = 256
	DefaultHandshakeTimeout  = 30 * time.Second
)

// Config configures Dial.
type Config struct {
	// User is the remote user. Required.
	User string

	// Addr is the server as "host:port". It appears in messages and is the
	// host name that HostKeyCallback checks (known_hosts writes it as
	// "[host]:port" when the port is not 22). Required.
	Addr string

	// Transport opens the stream that carries the SSH connection. Required.
	Transport Transport

	// HostKeyCallback verifies the server's host key, typically
	// HostKeys.Callback. Required.
	HostKeyCallback ssh.HostKeyCallback

	// HostKeyAlgorithms are the host key algorithms offered, typically
	// HostKeys.Algorithms(Addr). Nil means x/crypto's defaults, which can
	// pick a key type other than the one known_hosts holds.
	HostKeyAlgorithms []string

	// Auth are the authentication methods, tried in order; see NewAuth.
	Auth []ssh.AuthMethod

	// AuthSources describe where Auth's keys come from, for the error
	// reported when the server refuses them all; see Auth.Sources.
	AuthSources []string

	// Ciphers overrides the cipher preference. Nil picks aes128-gcm first
	// when the CPU accelerates it, else x/crypto's defaults.
	Ciphers []string

	// KeepAliveInterval is how often keepalive@openssh.com is sent while
	// nothing arrives from the server. Zero means DefaultKeepAliveInterval;
	// negative disables keepalives.
	KeepAliveInterval time.Duration

	// KeepAliveCountMax is how many keepalives may go unanswered for an
	// interval each; at the next interval the connection is considered dead
	// and closed, as with OpenSSH's ServerAliveCountMax. Zero means
	// DefaultKeepAliveCountMax. With the defaults a dead path is found 20
	// to 30 seconds after the last byte from the server.
	KeepAliveCountMax int

	// KeepAliveActive reports whether keepalives are wanted now, typically
	// while flows are open. While it returns false the connection sends
	// nothing of its own, so that an idle session can expire as its
	// administrator intends, and silence is not held against the server.
	// Nil means always.
	KeepAliveActive func() bool

	// MaxPendingOpens bounds concurrent direct-tcpip channel opens. Zero
	// means DefaultMaxPendingOpens.
	MaxPendingOpens int

	// HandshakeTimeout bounds opening the transport and the SSH handshake.
	// Zero means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration

	// Logger receives the client's logs, with component=tunnel. Per-flow
	// lines are at Debug. Nil discards them.
	Logger *slog.Logger
}

// Client is one SSH connection that carries TCP flows as direct-tcpip
// channels. It is safe for concurrent use. Dial creates and starts it;
// Close ends it.
type Client struct {
	cfg   Config
	log   *slog.Logger
	conn  *meteredConn
	sc    *ssh.Client
	sem   chan struct{} // one token per channel open in progress
	relay Relay         // the transport's conn, when it is one

	ctx    context.Context // lifetime until the connection ends
	cancel context.CancelFunc
	wg     sync.WaitGroup // keepalive, its requests, and channel opens
	ended  chan struct{}  // closed as soon as the connection ends (end)
	done   chan struct{}  // closed when the connection ended and goroutines exited

	endOnce   sync.Once
	lostOnce  sync.Once
	isLost    atomic.Bool // set by markLost
	idleAtEnd atomic.Bool // KeepAliveActive said no when the connection was lost
	checking  atomic.Bool // a check after a repair of the stream is pending (checkRelay)

	mu  sync.Mutex // guards err, and c.wg.Add against watch's Wait
	err error      // why the connection ended; nil while it is up
}

func newClient(cfg Config, log *slog.Logger, conn *meteredConn, sc *ssh.Client) *Client {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		cfg:    cfg,
		log:    log,
		conn:   conn,
		sc:     sc,
		sem:    make(chan struct{}, cfg.MaxPendingOpens),
		ctx:    ctx,
		cancel: cancel,
		ended:  make(chan struct{}),
		done:   make(chan struct{}),
	}
	c.relay, _ = conn.Conn.(Relay)
	markLost := c.markLost
	c.conn.onFail.Store(&markLost)
	return c
}

// start runs the goroutines the Client owns.
func (c *Client) start() {
	if c.cfg.KeepAliveInterval > 0 {
		c.wg.Add(1)
		go c.keepalive()
	}
	if c.relay != nil {
		c.wg.Add(1)
		go c.checkRelay()
	}
	go c.watch()
}

// watch waits for the connection to end, for whatever reason, and then for
// the other goroutines, before closing done.
func (c *Client) watch() {
	err := c.sc.Wait()
	c.end(fmt.Errorf("tunnel: ssh connection to %s lost: %w", c.cfg.Addr, c.why(err)))
	c.wg.Wait()
	close(c.done)
}

// end records why the connection ends, the first time, and closes it.
func (c *Client) end(cause error) {
	c.markLost()
	c.endOnce.Do(func() {
		c.mu.Lock()
		c.err = cause
		c.mu.Unlock()
		close(c.ended)
		c.cancel()
		c.sc.Close()
		if !errors.Is(cause, net.ErrClosed) {
			c.log.Warn("ssh connection ended", "err", cause)
		}
	})
}

// markLost records, once, that the connection is lost, and whether it was
// idle then: at the first of a failed transport Read and end, both of which
// come before x/crypto ends the channels' reads (chanConn) and their flows
// close.
func (c *Client) markLost() {
	c.lostOnce.Do(func() {
		c.idleAtEnd.Store(!c.keepAliveActive())
		c.isLost.Store(true)
	})
}

// EndedIdle reports whether KeepAliveActive said no (no flow open) when the
// connection was lost. It is valid once Done is closed.
func (c *Client) EndedIdle() bool { return c.idleAtEnd.Load() }

// Close closes the connection and every flow on it, and waits for the
// Client's goroutines. It is idempotent and always returns nil.
func (c *Client) Close() error {
	c.end(net.ErrClosed)
	<-c.done
	return nil
}

// Done returns a channel that is closed when the connection has ended:
// keepalive failure, transport EOF or error, or Close. It does not wait
// for the transport's own teardown (an SSM session's, say, which may take
// seconds on a dead path); Close does.
func (c *Client) Done() <-chan struct{} { return c.ended }

// Err returns why the connection ended: net.ErrClosed after Close, an error
// matching ErrKeepaliveTimeout when the server stopped answering, one
// matching ErrCorrupted (a *CorruptError) when the stream was damaged in
// transit, or the transport's error. It returns nil while the connection is up.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// RemoteVersion returns the server's SSH version string, such as
// "SSH-2.0-OpenSSH_9.2p1 Debian-2".
func (c *Client) RemoteVersion() string { return string(c.sc.ServerVersion()) }

// TransportID returns the transport's name for this connection, for
// status: an SSM session's ID, or "" when the transport's conn has none
// (it answers SessionID() string when it has).
func (c *Client) TransportID() string {
	if s, ok := c.conn.Conn.(interface{ SessionID() string }); ok {
		return s.SessionID()
	}
	return ""
}

// Expires returns when the transport ends the connection at the latest,
// whatever it carries (an EC2 Instance Connect Endpoint's tunnel lasts at
// most its maximum duration), or the zero Time when it sets no limit. The
// transport's conn says so by answering Expires() time.Time.
func (c *Client) Expires() time.Time {
	if e, ok := c.conn.Conn.(interface{ Expires() time.Time }); ok {
		return e.Expires()
	}
	return time.Time{}
}

// Stats are counters of a Client, for status output.
type Stats struct {
	BytesIn      uint64 // bytes read from the transport, SSH framing included
	BytesOut     uint64 // bytes written to the transport, those queued for it included
	PendingOpens int    // channel opens in progress
}

// Stats returns the Client's counters.
func (c *Client) Stats() Stats {
	return Stats{
		BytesIn:      c.conn.rx.Load(),
		BytesOut:     c.conn.tx.Load(),
		PendingOpens: len(c.sem),
	}
}

// transportReadSize is the read buffer under x/crypto/ssh's own 4 KiB one:
// a bulk download then costs one read syscall per several 32 KiB SSH
// packets instead of two or three per packet.
const transportReadSize = 64 << 10

// meteredConn buffers reads from a transport, coalesces the writes of
// several goroutines to it (batchWriter) and counts the bytes through it;
// the keepalive takes bytes read as a sign of life.
type meteredConn struct {
	net.Conn
	br         *bufio.Reader
	bw         *batchWriter
	rx, tx     atomic.Uint64
	readFailed atomic.Bool            // a Read returned an error
	onFail     atomic.Pointer[func()] // called at a failed Read: the connection is over
}

func newMeteredConn(c net.Conn) *meteredConn {
	mc := &meteredConn{Conn: c, br: bufio.NewReaderSize(c, transportReadSize)}
	mc.bw = newBatchWriter(c, func(int) {}, func() { c.Close() })
	return mc
}

func (c *meteredConn) Read(p []byte) (int, error) {
	n, err := c.br.Read(p)
	c.rx.Add(uint64(n))
	if err != nil {
		c.readFailed.Store(true)
		if f := c.onFail.Load(); f != nil {
			(*f)()
		}
	}
	return n, err
}

// Write counts p's bytes when the batchWriter takes them, not when they
// reach the transport: a byte counted is at that offset in the stream, in
// order, and checkRelay's mark for a keepalive it just sent then covers
// the keepalive itself, as it did when each Write went to the transport.
func (c *meteredConn) Write(p []byte) (int, error) {
	n, err := c.bw.Write(p)
	c.tx.Add(uint64(n))
	return n, err
}

// Close closes the transport and then stops the batchWriter's goroutine.
func (c *meteredConn) Close() error {
	err := c.Conn.Close()
	c.bw.Close()
	return err
}
