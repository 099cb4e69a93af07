package ssm

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for Config fields left zero.
const (
	// DefaultClientVersion keeps agents out of multiplexed (smux) port
	// forwarding, which starts at client version 1.1.70 (§5.3): this Conn
	// carries one plain byte stream.
	DefaultClientVersion    = "1.1.0.0"
	DefaultHandshakeTimeout = 30 * time.Second
	DefaultPingInterval     = 30 * time.Second
	DefaultCloseTimeout     = 2 * time.Second
	DefaultStallTimeout     = 3 * time.Second
	DefaultAwayTimeout      = 1500 * time.Millisecond
)

// Config configures Dial.
type Config struct {
	// StreamURL is the StartSession response's StreamUrl, used verbatim: its
	// query (cell-number holds + / =) is never re-encoded. Required.
	StreamURL string

	// Token is the StartSession (or ResumeSession) TokenValue. It is sent
	// in OpenDataChannel and never logged. Required.
	Token string

	// Header, if set, returns extra headers for the WebSocket upgrade
	// request to StreamURL, such as a SigV4 signature (§2.1).
	Header func(ctx context.Context, streamURL string) (http.Header, error)

	// HTTPClient performs the upgrade. Nil means a client that honours
	// HTTPS_PROXY and trusts TLSConfig's roots.
	HTTPClient *http.Client

	// TLSConfig is used when HTTPClient is nil; nil means the system roots.
	TLSConfig *tls.Config

	// ClientVersion is reported to the service and the agent. Agents
	// switch protocols on it (§5.3); empty means DefaultClientVersion.
	ClientVersion string

	// ClientID identifies this client in OpenDataChannel; it should be the
	// same for every data channel of a process. Empty means a random one.
	ClientID string

	// Logger receives the Conn's logs, with component=ssm. Nil discards.
	Logger *slog.Logger

	// HandshakeTimeout bounds Dial when ctx has no earlier deadline; zero
	// means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration

	// PingInterval is how often a WebSocket ping is sent; a pong must
	// come back within the same time or the data channel is broken. Zero
	// means DefaultPingInterval; negative disables pings.
	PingInterval time.Duration

	// ServerSpeaksFirst makes the first Write wait until the destination's
	// first bytes have arrived, for at most HandshakeTimeout after the
	// handshake. The agent marks its handshake complete only after it has
	// sent HandshakeComplete, and acknowledges and discards what arrives in
	// between, so that a client writing at once loses its first bytes now
	// and then; it connects to the destination and relays its output only
	// after, so the destination's first bytes prove it ready. An SSH
	// server speaks first (RFC 4253 §4.2; sshd sends its version line on
	// accept), so Start sets it; with a server that waits for the client,
	// Write would fail.
	ServerSpeaksFirst bool

	// StallTimeout is how long messages may stay unacknowledged while
	// nothing at all arrives from the agent before the WebSocket is taken
	// for broken (and the session resumed). Zero means
	// DefaultStallTimeout; negative disables it.
	StallTimeout time.Duration

	// AwayTimeout is how long the agent's side may stay away (the service
	// paused the client with pause_publication, and nothing came from the
	// agent since) before the session is given up with ErrAgentGone. Zero
	// means DefaultAwayTimeout; negative disables it.
	AwayTimeout time.Duration

	// CloseTimeout bounds how long Close waits for the agent to
	// acknowledge what was sent and the WebSocket close handshake; zero
	// means DefaultCloseTimeout.
	CloseTimeout time.Duration

	// Resuming, if set, is called when the data channel breaks and the
	// Conn starts resuming the session, with the cause; Resumed when it
	// has. Neither is called when the session ends instead (Read and
	// Write report that). They must not block.
	Resuming func(cause error)
	Resumed  func()

	// Set by Start: how to resume and end the session.
	sessionID      string
	resume         resumer
	resumeAttempts int
	terminate      func() // calls TerminateSession, bounded
}

func (cfg *Config) setDefaults() error {
	if cfg.StreamURL == "" {
		return errors.New("ssm: no stream URL")
	}
	if cfg.Token == "" {
		return errors.New("ssm: no token")
	}
	if cfg.ClientVersion == "" {
		cfg.ClientVersion = DefaultClientVersion
	}
	if cfg.ClientID == "" {
		cfg.ClientID = newUUID().String()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.HandshakeTimeout = cmp(cfg.HandshakeTimeout, DefaultHandshakeTimeout)
	cfg.PingInterval = cmp(cfg.PingInterval, DefaultPingInterval)
	cfg.CloseTimeout = cmp(cfg.CloseTimeout, DefaultCloseTimeout)
	cfg.StallTimeout = cmp(cfg.StallTimeout, DefaultStallTimeout)
	cfg.AwayTimeout = cmp(cfg.AwayTimeout, DefaultAwayTimeout)
	if cfg.HTTPClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = cfg.TLSConfig
		cfg.HTTPClient = &http.Client{Transport: t}
	}
	return nil
}

// cmp returns v, or def when v is zero.
func cmp(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// Conn is an SSM data channel carrying one byte stream, as a net.Conn:
// Write sends Output messages, Read returns the agent's Output in order.
// Its sequence and acknowledgement state (sendWindow, receiver) is kept
// apart from the WebSocket (socket), so that after ResumeSession a new
// socket attaches to the same session (resume.go).
type Conn struct {
	cfg Config
	log *slog.Logger

	ctx    context.Context // lifetime, until Close or the session ends
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine of every socket
	done   chan struct{}  // closed when ended and wg is done

	out  *sendWindow // client -> agent
	in   *receiver   // agent -> client
	acks ackQueue    // acknowledgements waiting for the writer
	wake chan struct{}

	handshook chan struct{} // closed at HandshakeComplete
	refused   chan error    // the handshake refusal, if any (capacity 1)
	greeted   chan struct{} // closed at the first Output from the agent
	greetBy   time.Time     // when the first Write stops waiting for it
	recovered chan struct{} // signalled after a resend or a resume (capacity 1)
	received  atomic.Uint64 // Output bytes received, in order or early

	mu    sync.Mutex // guards following
	sock  *socket    // the current WebSocket
	info  Handshake
	err   error // why the Conn ended, nil while it is up
	ended bool

	wmu       sync.Mutex // serialises Write
	rdl, wdl  deadline
	closeOnce sync.Once
}

var _ net.Conn = (*Conn)(nil)

// Dial opens the data channel at cfg.StreamURL, sends OpenDataChannel and
// performs the agent's handshake. The returned Conn carries the session's
// byte stream. A handshake that asks for what Conn cannot do is refused
// cleanly (the agent aborts the session) and Dial returns an error that
// matches ErrKMSEncryption or ErrUnsupportedSession.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer cancel()
	c := newConn(cfg)
	ws, err := c.openSocket(ctx, cfg.Token)
	if err != nil {
		c.end(err)
		<-c.done
		return nil, err
	}
	c.attach(ws)
	if err := c.awaitHandshake(ctx); err != nil {
		c.shutdown(err, false)
		<-c.done
		return nil, err
	}
	c.greetBy = time.Now().Add(cfg.HandshakeTimeout)
	return c, nil
}

func newConn(cfg Config) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "ssm"),
		ctx:       ctx,
		cancel:    cancel,
		done:      make(chan struct{}),
		out:       newSendWindow(maxUnacked),
		in:        newReceiver(),
		wake:      make(chan struct{}, 1),
		handshook: make(chan struct{}),
		refused:   make(chan error, 1),
		greeted:   make(chan struct{}),
		recovered: make(chan struct{}, 1),
	}
	c.rdl.init()
	c.wdl.init()
	go c.watch()
	return c
}

// watch closes done once the Conn has ended and its goroutines are gone.
func (c *Conn) watch() {
	<-c.ctx.Done()
	c.wg.Wait()
	close(c.done)
}

// awaitHandshake waits for HandshakeComplete, a refusal, or the end.
func (c *Conn) awaitHandshake(ctx context.Context) error {
	select {
	case <-c.handshook:
		c.log.Debug("data channel ready", "agent", c.Handshake().AgentVersion)
		return nil
	case err := <-c.refused:
		return err
	case <-c.ctx.Done():
		return c.Err()
	case <-ctx.Done():
		return fmt.Errorf("ssm: handshake with the agent: %w", ctx.Err())
	}
}

// Handshake returns what the agent said during the handshake.
func (c *Conn) Handshake() Handshake {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.info
}

// Read reads the agent's stream. Once the session has ended, Read returns
// what was received before, then the reason: a *ChannelClosedError when
// the service closed the channel (its Output is the reason for the user),
// net.ErrClosed after Close.
func (c *Conn) Read(p []byte) (int, error) {
	for {
		n, wait, err := c.in.read(p)
		if n > 0 || err != nil || len(p) == 0 {
			return n, err
		}
		select {
		case <-wait:
		case <-c.rdl.wait():
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// Write sends p as Output messages of at most chunkSize bytes. It returns
// once they are queued, blocking while too many messages are
// unacknowledged; the Conn retransmits them until the agent acknowledges
// them. After the session ended it returns the reason, as Read does.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.cfg.ServerSpeaksFirst {
		if err := c.awaitGreeting(); err != nil {
			return 0, err
		}
	}
	n := 0
	for n < len(p) {
		chunk := p[n:min(len(p), n+chunkSize)]
		if err := c.push(PayloadOutput, chunk); err != nil {
			return n, err
		}
		n += len(chunk)
	}
	return n, nil
}

// awaitGreeting waits for the destination's first bytes (see
// Config.ServerSpeaksFirst), the write deadline, or the end.
func (c *Conn) awaitGreeting() error {
	select {
	case <-c.greeted:
		return nil
	default:
	}
	t := time.NewTimer(time.Until(c.greetBy))
	defer t.Stop()
	select {
	case <-c.greeted:
		return nil
	case <-c.ctx.Done():
		return c.Err()
	case <-c.wdl.wait():
		return os.ErrDeadlineExceeded
	case <-t.C:
		return fmt.Errorf("%w within %s of the handshake: vpcvpn sends only after the server's greeting, "+
			"as the agent drops data that comes too early; is an SSH server listening on the target's port?",
			ErrNoGreeting, c.cfg.HandshakeTimeout)
	}
}

// push queues one sequenced message, waiting for room in the window.
func (c *Conn) push(pt PayloadType, payload []byte) error {
	for {
		wait, err := c.out.push(pt, payload, false, time.Now())
		if err != nil {
			return err
		}
		if wait == nil {
			c.kick()
			return nil
		}
		select {
		case <-wait:
		case <-c.wdl.wait():
			return os.ErrDeadlineExceeded
		}
	}
}

// kick wakes the writer.
func (c *Conn) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Close ends the session: it sends the TerminateSession flag, waits up to
// CloseTimeout for the agent to acknowledge everything sent, closes the
// WebSocket and waits for the Conn's goroutines; a Conn made by Start also
// calls TerminateSession. Blocked Reads and Writes
// return net.ErrClosed. Close is idempotent and returns nil.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		select {
		case <-c.handshook:
			c.shutdown(net.ErrClosed, true)
		default:
			c.shutdown(net.ErrClosed, false)
		}
		if c.cfg.terminate != nil {
			c.cfg.terminate()
		}
	})
	<-c.done
	return nil
}

// Done returns a channel that is closed when the session has ended and
// the Conn's goroutines are gone.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the session ended, nil while it is up.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Recovered returns a channel that receives a value after the Conn had to
// resend a message or resume the session. The stream may have been
// damaged then: the agent may write a message to the destination, fail to
// acknowledge it as its own WebSocket breaks, and write it again when it
// is resent (seen with agent 3.3.987.0). A reader of the stream can check
// it at once, as tunnel.Client does with an SSH keepalive.
func (c *Conn) Recovered() <-chan struct{} { return c.recovered }

// Acknowledged returns how many bytes of the stream written so far the
// agent has acknowledged, all of them up to that offset: it has written
// them to the destination.
func (c *Conn) Acknowledged() uint64 { return c.out.acknowledged() }

// Received returns how many bytes of the destination's stream have
// arrived, counting those that wait for a gap before them to be filled
// (after a loss the agent resends one message at a time): a sign of life
// from the destination that Read cannot give yet.
func (c *Conn) Received() uint64 { return c.received.Load() }

// SessionID returns the ID of the session the Conn carries, as
// StartSession returned it; "" for a Conn not made by Start.
func (c *Conn) SessionID() string { return c.cfg.sessionID }

// Carrier names what relays the stream, for messages about damage to it.
func (c *Conn) Carrier() string { return "the instance's SSM agent" }

// LocalAddr returns a placeholder address.
func (c *Conn) LocalAddr() net.Addr { return addr("ssm-client") }

// RemoteAddr returns a placeholder address in host:port form, the form
// known_hosts checking expects.
func (c *Conn) RemoteAddr() net.Addr { return addr("ssm:22") }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

// SetReadDeadline bounds the wait of Read for data.
func (c *Conn) SetReadDeadline(t time.Time) error { c.rdl.set(t); return nil }

// SetWriteDeadline bounds the wait of Write for room in the window of
// unacknowledged messages; queued data is sent regardless.
func (c *Conn) SetWriteDeadline(t time.Time) error { c.wdl.set(t); return nil }

type addr string

func (a addr) Network() string { return "ssm" }
func (a addr) String() string  { return string(a) }
