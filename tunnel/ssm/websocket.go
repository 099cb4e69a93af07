package ssm

import (
	"github.com/vpcvpn/vpcvpn/internal/redact"

	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// maxFrame bounds a frame from the service; the agent's are about 1 KiB.
// A longer one is dropped (readFrame).
const maxFrame = 1 << 20

// socket is one WebSocket of a session, with its goroutines: readLoop,
// writeLoop, pingLoop and one that closes the WebSocket when the socket's
// lifetime ends.
type socket struct {
	ws     *websocket.Conn
	ctx    context.Context // lifetime of the socket, canceled by fail
	cancel context.CancelFunc
	conn   *Conn
	once   sync.Once
	wg     sync.WaitGroup // the socket's goroutines, awaited before a resume attaches
	heard  atomic.Int64   // when a frame last came from the agent, in Unix nanoseconds
}

// openSocket dials the stream URL and sends OpenDataChannel with token.
func (c *Conn) openSocket(ctx context.Context, token string) (*websocket.Conn, error) {
	h := http.Header{}
	if c.cfg.Header != nil {
		extra, err := c.cfg.Header(ctx, c.cfg.StreamURL)
		if err != nil {
			return nil, fmt.Errorf("ssm: headers for the data channel: %w", err)
		}
		for k, v := range extra {
			h[k] = v
		}
	}
	where := bareURL(c.cfg.StreamURL)
	ws, resp, err := websocket.Dial(ctx, c.cfg.StreamURL, &websocket.DialOptions{
		HTTPClient: c.cfg.HTTPClient,
		HTTPHeader: h,
	})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("ssm: open data channel %s: %s: %w", where, resp.Status, redact.URLError(err, c.cfg.StreamURL, where))
		}
		return nil, fmt.Errorf("ssm: open data channel %s: %w", where, redact.URLError(err, c.cfg.StreamURL, where))
	}
	ws.SetReadLimit(-1) // readFrame drops what is over maxFrame, keeping the socket
	open, err := json.Marshal(OpenDataChannel{
		MessageSchemaVersion: "1.0",
		RequestID:            newUUID().String(),
		TokenValue:           token,
		ClientID:             c.cfg.ClientID,
		ClientVersion:        c.cfg.ClientVersion,
	})
	if err == nil {
		err = ws.Write(ctx, websocket.MessageText, open)
	}
	if err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("ssm: send OpenDataChannel to %s: %w", where, err)
	}
	c.log.Debug("data channel open", "url", where)
	return ws, nil
}

// bareURL returns the stream URL without its query, for messages.
func bareURL(streamURL string) string {
	u, err := url.Parse(streamURL)
	if err != nil {
		return "(unparsable stream URL)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// attach makes ws the session's socket and starts its goroutines. The
// window resends everything unacknowledged on it.
func (c *Conn) attach(ws *websocket.Conn) {
	ctx, cancel := context.WithCancel(c.ctx)
	s := &socket{ws: ws, ctx: ctx, cancel: cancel, conn: c}
	s.heard.Store(time.Now().UnixNano())
	c.mu.Lock()
	c.sock = s
	c.mu.Unlock()
	c.out.rewind()
	s.run(c.readLoop)
	s.run(c.writeLoop)
	s.run(func(s *socket) {
		defer c.wg.Done()
		<-s.ctx.Done()
		s.ws.CloseNow()
	})
	if c.cfg.PingInterval > 0 {
		s.run(c.pingLoop)
	}
}

// run starts loop, which calls c.wg.Done, as one of the socket's goroutines.
func (s *socket) run(loop func(*socket)) {
	s.conn.wg.Add(1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		loop(s)
	}()
}

// fail tears the socket down. When the session can be resumed and the
// Conn has not ended, a new socket is sought (resume.go); otherwise losing
// the socket ends the Conn.
func (s *socket) fail(err error) {
	s.once.Do(func() {
		s.cancel()
		c := s.conn
		if c.cfg.resume == nil || c.Err() != nil || c.ctx.Err() != nil {
			c.end(fmt.Errorf("ssm: data channel: %w", err))
			return
		}
		c.wg.Add(1)
		go c.reconnect(s, err)
	})
}

// pingLoop pings every PingInterval; a pong that does not come back
// within the interval means the socket is broken (§2.4).
func (c *Conn) pingLoop(s *socket) {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(s.ctx, c.cfg.PingInterval)
		err := s.ws.Ping(ctx)
		cancel()
		if err != nil {
			s.fail(fmt.Errorf("no pong within %s: %w", c.cfg.PingInterval, err))
			return
		}
	}
}
