package awsemu

import (
	"context"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// A relay is a session with a real SSM agent (Config.AgentInstances): the
// service between the client's data channel and the agent's. It forwards
// AgentMessage frames as they are, input_stream_data and acknowledge from
// the client to the agent, output_stream_data and acknowledge from the
// agent to the client, and originates only what the service does:
// channel_closed (the session ended), and pause_publication /
// start_publication while one side is away. What the two sides send
// while the other is reconnecting is buffered (bounded, relayMaxBuffer)
// and delivered in order once it is back; see README.md for why.

// side is one end of a relay.
type side int

const (
	clientSide side = iota
	agentSide
)

func (sd side) String() string {
	if sd == clientSide {
		return "client"
	}
	return "agent"
}

func (sd side) other() side { return 1 - sd }

const (
	relayMaxBuffer = 64 << 20 // bytes held for an absent side before frames are dropped
	relayQueue     = 256      // frames queued per direction before the reader waits
	// agentAwayLimit ends a session whose agent's data channel has been
	// away this long: the agent retries its data channel five times within
	// about 5 s (DataChannelNumMaxAttempts), so it is not coming back.
	agentAwayLimit = 30 * time.Second
	// relayWriteTimeout gives up on a side that does not take a frame:
	// its connection is closed and the frame kept for its return, so a
	// silently dead connection cannot hold the relay.
	relayWriteTimeout = 30 * time.Second
)

// agentGoneOutput is the channel_closed output when the agent's data
// channel did not come back.
const agentGoneOutput = "The session was terminated because the instance's SSM agent closed its data channel and did not reconnect."

// relayEnd is one side's connection and what waits for it.
type relayEnd struct {
	mu      sync.Mutex // serializes writes and attach, so buffered frames go first
	ws      *websocket.Conn
	seen    bool      // ever attached: an absent side that was there is "away"
	away    time.Time // when it left, zero while attached
	buf     [][]byte
	size    int
	dropped int
}

type queued struct {
	frame []byte
	due   time.Time
}

type relay struct {
	srv                 *Server
	id, target          string
	document            string
	streamURL, rawQuery string
	ctx                 context.Context // lifetime until end
	cancel              context.CancelFunc
	wg                  sync.WaitGroup // the two pumps
	ends                [2]*relayEnd
	queues              [2]chan queued // frames towards each side

	mu          sync.Mutex // guards following
	clientToken string
	clientUsed  bool
	agentTokens map[string]bool
	ended       bool
	output      string // why it ended
	started     time.Time
	lastInput   time.Time
	delay       time.Duration
}

func newRelay(srv *Server, id, target, document, streamURL string) *relay {
	ctx, cancel := context.WithCancel(srv.ctx)
	_, rawQuery, _ := cutQuery(streamURL)
	now := time.Now()
	r := &relay{srv: srv, id: id, target: target, document: document, streamURL: streamURL,
		rawQuery: rawQuery, ctx: ctx, cancel: cancel, agentTokens: map[string]bool{},
		started: now, lastInput: now, delay: time.Duration(srv.delay.Load())}
	for i := range r.ends {
		r.ends[i] = &relayEnd{}
		r.queues[i] = make(chan queued, relayQueue)
	}
	return r
}

func (r *relay) start() {
	r.wg.Add(3)
	go r.pump(clientSide)
	go r.pump(agentSide)
	go r.watch()
}

// newClientToken issues the client's data-channel token (StartSession,
// ResumeSession); only the newest is valid, once.
func (r *relay) newClientToken() string {
	tok := randomToken(48)
	r.mu.Lock()
	r.clientToken, r.clientUsed = tok, false
	r.mu.Unlock()
	return tok
}

// newAgentToken issues a token for the agent's data channel
// (CreateDataChannel).
func (r *relay) newAgentToken() string {
	tok := randomToken(48)
	r.mu.Lock()
	r.agentTokens[tok] = true
	r.mu.Unlock()
	return tok
}

// claim returns which side tok opens the channel for, using it up.
func (r *relay) claim(tok string) (side, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.ended || tok == "":
		return 0, false
	case tok == r.clientToken && !r.clientUsed:
		r.clientUsed = true
		return clientSide, true
	case r.agentTokens[tok]:
		delete(r.agentTokens, tok)
		return agentSide, true
	}
	return 0, false
}

func (r *relay) isEnded() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ended
}

// attach makes ws sd's connection: what was buffered for sd goes first,
// and the other side, paused while sd was away, may publish again.
func (r *relay) attach(sd side, ws *websocket.Conn) bool {
	e := r.ends[sd]
	e.mu.Lock()
	old, returning := e.ws, e.seen && e.ws == nil
	for len(e.buf) > 0 {
		if err := r.writeFrame(ws, e.buf[0]); err != nil {
			e.mu.Unlock()
			return false
		}
		e.size -= len(e.buf[0])
		e.buf = e.buf[1:]
	}
	e.ws, e.seen, e.away = ws, true, time.Time{}
	dropped := e.dropped
	e.dropped = 0
	e.mu.Unlock()
	if old != nil {
		_ = old.CloseNow()
	}
	if dropped > 0 {
		r.srv.log.Info("relay: frames dropped while away", "session", r.id, "side", sd, "frames", dropped)
	}
	if returning {
		r.publication(sd.other(), false)
	}
	return !r.isEnded()
}

// detach forgets ws if it is still sd's connection, and pauses the other
// side until sd is back.
func (r *relay) detach(sd side, ws *websocket.Conn) {
	e := r.ends[sd]
	e.mu.Lock()
	current := e.ws == ws
	if current {
		e.ws, e.away = nil, time.Now()
	}
	e.mu.Unlock()
	_ = ws.CloseNow()
	if current && !r.isEnded() {
		r.publication(sd.other(), true)
	}
}

// publication tells sd to pause or start publishing (§4.7), out of band
// of the queue: it is the service's own message.
func (r *relay) publication(sd side, pause bool) {
	typ := "start_publication"
	if pause {
		typ = "pause_publication"
	}
	m := message{Type: typ, Schema: 1, Created: uint64(time.Now().UnixMilli()), ID: newUUID()}
	r.srv.log.Info("relay: publication", "session", r.id, "to", sd, "type", typ)
	r.write(sd, encode(m))
}

// write sends frame to sd now, or buffers it while sd is away.
func (r *relay) write(sd side, frame []byte) {
	e := r.ends[sd]
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ws != nil && len(e.buf) == 0 {
		if err := r.writeFrame(e.ws, frame); err == nil {
			return
		}
		// Broken: its reader sees the close and detaches it; the frame
		// and those after it wait for the side's next connection.
		_ = e.ws.CloseNow()
	}
	if e.size+len(frame) > relayMaxBuffer {
		e.dropped++
		return
	}
	e.buf = append(e.buf, frame)
	e.size += len(frame)
}

// writeFrame writes one frame to ws within relayWriteTimeout; on a timeout
// the WebSocket is closed.
func (r *relay) writeFrame(ws *websocket.Conn, frame []byte) error {
	ctx, cancel := context.WithTimeout(r.ctx, relayWriteTimeout)
	defer cancel()
	return ws.Write(ctx, websocket.MessageBinary, frame)
}

// forward queues a frame from sd's peer towards sd, after the relay's
// delay (admin delay).
func (r *relay) forward(to side, frame []byte) {
	r.mu.Lock()
	due := time.Now().Add(r.delay)
	r.mu.Unlock()
	select {
	case r.queues[to] <- queued{frame, due}:
	case <-r.ctx.Done():
	}
}

// pump delivers the frames queued towards sd in order.
func (r *relay) pump(sd side) {
	defer r.wg.Done()
	for {
		select {
		case <-r.ctx.Done():
			return
		case q := <-r.queues[sd]:
			if d := time.Until(q.due); d > 0 {
				select {
				case <-time.After(d):
				case <-r.ctx.Done():
					return
				}
			}
			r.write(sd, q.frame)
		}
	}
}

// receive handles one frame read from sd.
func (r *relay) receive(sd side, b []byte) {
	m, err := decode(b)
	if err != nil {
		r.srv.log.Debug("relay: dropped frame", "session", r.id, "from", sd, "error", err)
		return
	}
	switch {
	case sd == clientSide && (m.Type == typeInput || m.Type == typeAck):
		if m.Type == typeInput {
			r.touch()
		}
		r.forward(agentSide, b)
	case sd == agentSide && (m.Type == typeOutput || m.Type == typeAck):
		r.forward(clientSide, b)
	case sd == agentSide && m.Type == "agent_session_state":
		r.srv.log.Info("relay: agent session state", "session", r.id, "state", string(m.Payload))
	default:
		r.srv.log.Info("relay: ignored message", "session", r.id, "from", sd, "type", m.Type)
	}
}

// agentGone reports whether the agent's data channel has been away longer
// than agentAwayLimit.
func (r *relay) agentGone(now time.Time) bool {
	e := r.ends[agentSide]
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.away.IsZero() && now.Sub(e.away) > time.Duration(r.srv.agentAway.Load())
}

// touch records input from the client, which resets the idle timeout.
func (r *relay) touch() {
	r.mu.Lock()
	r.lastInput = time.Now()
	r.mu.Unlock()
}

// watch ends the session when the account's session preferences say so.
func (r *relay) watch() {
	defer r.wg.Done()
	t := time.NewTicker(resendTick)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		now := time.Now()
		reason := ""
		if d := time.Duration(r.srv.maxAge.Load()); d > 0 && now.Sub(r.started) > d {
			reason = maxAgeOutput
		} else if d := time.Duration(r.srv.idle.Load()); d > 0 && now.Sub(r.lastInput) > d {
			reason = idleTimeoutOutput
		}
		r.mu.Unlock()
		if reason == "" && r.agentGone(now) {
			reason = agentGoneOutput
		}
		if reason != "" {
			r.end(reason, true)
			return
		}
	}
}

// end terminates the session once: channel_closed to the client, and,
// when the service ends it (TerminateSession, timeouts, an administrator)
// rather than the agent, channel_closed to the agent on both its data and
// control channels; then both WebSockets close.
func (r *relay) end(output string, tellAgent bool) {
	r.mu.Lock()
	if r.ended {
		r.mu.Unlock()
		return
	}
	r.ended, r.output = true, output
	r.mu.Unlock()
	r.srv.log.Info("session ended", "session", r.id, "output", output)
	closed := encode(channelClosedMsg(r.id, r.target, output, time.Now()))
	sides := []side{clientSide}
	if tellAgent {
		sides = append(sides, agentSide)
		r.srv.sendControl(r.target, closed)
	}
	for _, sd := range sides {
		e := r.ends[sd]
		e.mu.Lock()
		if e.ws != nil {
			ctx, cancel := context.WithTimeout(r.srv.ctx, time.Second)
			_ = e.ws.Write(ctx, websocket.MessageBinary, closed)
			cancel()
		}
		e.mu.Unlock()
	}
	r.cancel()
	var open []*websocket.Conn
	for _, e := range r.ends {
		e.mu.Lock()
		if e.ws != nil {
			open = append(open, e.ws)
		}
		e.mu.Unlock()
	}
	if !r.srv.track() { // shutting down: no close handshake
		for _, ws := range open {
			_ = ws.CloseNow()
		}
		return
	}
	go func() { // the close handshakes take up to 5 s each
		defer r.srv.wg.Done()
		for _, ws := range open {
			_ = ws.Close(websocket.StatusNormalClosure, "")
		}
	}()
}

// dropSide breaks sd's WebSocket (bye: close 1000 "Bye" as the hourly
// recycle does).
func (r *relay) dropSide(sd side, bye bool) {
	e := r.ends[sd]
	e.mu.Lock()
	ws := e.ws
	e.mu.Unlock()
	if ws == nil {
		return
	}
	if bye {
		_ = ws.Close(websocket.StatusNormalClosure, "Bye")
		return
	}
	_ = ws.CloseNow()
}

func (r *relay) setDelay(d time.Duration) {
	r.mu.Lock()
	r.delay = d
	r.mu.Unlock()
}
