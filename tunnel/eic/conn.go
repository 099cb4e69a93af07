package eic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/vpcvpn/vpcvpn/internal/redact"
)

// maxFrame is the most bytes sent in one binary frame, as the CLI's.
const maxFrame = 65000

// maxText bounds a text frame read for its error message.
const maxText = 4096

// Conn is the instance's TCP stream through the endpoint. Read and Write
// may be called concurrently with each other and with Close. Deadlines are
// not supported: a WebSocket read cannot be abandoned half way.
type Conn struct {
	ws      *websocket.Conn
	ctx     context.Context // canceled by Close and on failure
	cancel  context.CancelFunc
	expires time.Time
	remote  net.Addr
	local   net.Addr
	cfg     Config
	log     *slog.Logger

	readMu sync.Mutex // serialises Read; guards r
	r      io.Reader  // the binary message being read, or nil

	writeMu sync.Mutex // serialises Write

	errMu sync.Mutex // guards err
	err   error      // why the stream ended, once it has

	closeOnce sync.Once
}

// Dial opens a tunnel through the endpoint to cfg.PrivateIP:RemotePort.
// A refusal by the endpoint is an *Error.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "eic", "endpoint", cfg.EndpointID)
	start := time.Now()
	u, err := Presign(ctx, &cfg, start)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	if cfg.UserAgent != "" {
		h.Set("User-Agent", cfg.UserAgent)
	}
	target := netip.AddrPortFrom(cfg.PrivateIP.Unmap(), cfg.port())
	ws, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		HTTPClient:      cfg.HTTPClient,
		HTTPHeader:      h,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, refusal(&cfg, target, resp)
		}
		err = redact.URLError(err, u, "wss://"+cfg.DNSName+"/openTunnel")
		return nil, fmt.Errorf("eic: open a tunnel through endpoint %s (%s) to %s: %w", cfg.EndpointID, cfg.DNSName, target, err)
	}
	ws.SetReadLimit(-1) // messages are streamed to Read, never buffered whole
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{
		ws:      ws,
		ctx:     ctx,
		cancel:  cancel,
		expires: start.Add(cfg.duration()),
		remote:  net.TCPAddrFromAddrPort(target),
		local:   addr(cfg.EndpointID),
		cfg:     cfg,
		log:     log,
	}
	log.Debug("tunnel open", "target", target, "request_id", resp.Header.Get("x-amzn-requestid"))
	return c, nil
}

// refusal is the *Error of an upgrade the endpoint answered with resp.
func refusal(cfg *Config, target netip.AddrPort, resp *http.Response) error {
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, maxText)) // the dialer kept at most 1 KiB
	}
	msg := message(body)
	return &Error{
		Endpoint:  cfg.EndpointID,
		Target:    target.String(),
		Kind:      classify(resp.StatusCode, msg),
		Status:    resp.StatusCode,
		Message:   msg,
		RequestID: resp.Header.Get("x-amzn-requestid"),
	}
}

// Expires is when the endpoint ends the tunnel at the latest: its maximum
// duration after Dial began.
func (c *Conn) Expires() time.Time { return c.expires }

// Read reads the instance's bytes. The endpoint's orderly close (code
// 1000) is io.EOF; any other end is an *Error or says what broke.
func (c *Conn) Read(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	for {
		if err := c.Err(); err != nil {
			return 0, err
		}
		if c.r == nil {
			typ, r, err := c.ws.Reader(c.ctx)
			if err != nil {
				return 0, c.fail(err)
			}
			if typ == websocket.MessageText {
				b, _ := io.ReadAll(io.LimitReader(r, maxText))
				return 0, c.fail(c.endpointError(0, message(b)))
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if err == io.EOF {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		if err != nil {
			return n, c.fail(err)
		}
		return n, nil
	}
}

// Write sends p to the instance in binary frames of at most 65000 bytes.
func (c *Conn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	var n int
	for n < len(p) {
		if err := c.Err(); err != nil {
			return n, writeErr(err)
		}
		chunk := p[n:min(len(p), n+maxFrame)]
		if err := c.ws.Write(c.ctx, websocket.MessageBinary, chunk); err != nil {
			return n, writeErr(c.fail(err))
		}
		n += len(chunk)
	}
	return n, nil
}

// writeErr is what Write reports for the stream's end err: the
// endpoint's orderly close is not an end of file for a writer.
func writeErr(err error) error {
	if err == io.EOF {
		return fmt.Errorf("eic: the endpoint closed the tunnel: %w", net.ErrClosed)
	}
	return err
}

// Err returns why the stream ended, or nil while it is open.
func (c *Conn) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// fail ends the stream with the first cause, translated from cause, and
// returns it.
func (c *Conn) fail(cause error) error {
	c.errMu.Lock()
	if c.err == nil {
		c.err = c.translate(cause)
	}
	err := c.err
	c.errMu.Unlock()
	if err != io.EOF {
		c.log.Debug("tunnel ended", "err", err)
		c.cancel()
		c.ws.CloseNow()
	}
	return err
}

// translate turns an error of the WebSocket into what Read and Write
// report.
func (c *Conn) translate(err error) error {
	var ee *Error
	if errors.As(err, &ee) {
		return ee
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Code == websocket.StatusNormalClosure {
			return io.EOF
		}
		return c.endpointError(int(ce.Code), message([]byte(ce.Reason)))
	}
	if c.ctx.Err() != nil {
		return net.ErrClosed
	}
	return fmt.Errorf("eic: tunnel through endpoint %s to %s: %w", c.cfg.EndpointID, c.remote, err)
}

func (c *Conn) endpointError(code int, msg string) *Error {
	return &Error{
		Endpoint:  c.cfg.EndpointID,
		Target:    c.remote.String(),
		Kind:      classify(0, msg),
		CloseCode: code,
		Message:   msg,
	}
}

// Close ends the tunnel with an orderly close. It is idempotent.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.errMu.Lock()
		if c.err == nil {
			c.err = net.ErrClosed
		}
		c.errMu.Unlock()
		c.ws.Close(websocket.StatusNormalClosure, "") // waits briefly for the endpoint's close
		c.cancel()
	})
	return nil
}

// LocalAddr names the endpoint.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr is the instance's address and port.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline is not supported.
func (c *Conn) SetDeadline(time.Time) error { return errors.ErrUnsupported }

// SetReadDeadline is not supported.
func (c *Conn) SetReadDeadline(time.Time) error { return errors.ErrUnsupported }

// SetWriteDeadline is not supported.
func (c *Conn) SetWriteDeadline(time.Time) error { return errors.ErrUnsupported }

// addr is the local side of a tunnel: the endpoint.
type addr string

func (a addr) Network() string { return "eic" }
func (a addr) String() string  { return string(a) }
