package ssm

// The agent -> client path:
//
//	WebSocket -> readLoop -> readFrame (at most maxFrame) -> ParseMessage, Validate -> dispatch
//	    acknowledge        -> sendWindow.ack
//	    output_stream_data -> receiver.accept (in order, buffered out of order, duplicates)
//	                          -> ack queued for writeLoop; Output -> read buffer -> Read
//	    channel_closed     -> the session ends with a *ChannelClosedError
//	    pause/start_publication -> sendWindow.pause/resume

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

const (
	// maxBuffered bounds the agent's bytes received and not yet read; an
	// in-order message beyond it is dropped unacknowledged and the agent
	// resends it later.
	maxBuffered = 4 << 20
	// maxOutOfOrder bounds the messages held for a gap in the sequence.
	// It must cover what the agent sends before it resends a lost message
	// (a resend tick, or a whole RTO of up to a second): an unpaced agent
	// sends thousands. Beyond it an early message is dropped unacknowledged
	// and costs a resend tick of its own, so a single loss would collapse a
	// download. The session-manager-plugin holds 10,000 as well.
	maxOutOfOrder = 10000
	// maxOutOfOrderBytes bounds the payload bytes of those messages.
	maxOutOfOrderBytes = 16 << 20
)

// errStop ends readLoop after the Conn was ended.
var errStop = errors.New("ssm: stop reading")

// receiver holds the agent's sequence state and the bytes for Read.
type receiver struct {
	// expected and early are used by the one readLoop running at a time.
	expected   int64              // the next sequence number to process
	early      map[int64]*Message // acknowledged, waiting for expected
	earlyBytes int                // payload bytes in early

	mu      sync.Mutex // guards following
	chunks  [][]byte   // received Output, in order
	n       int        // bytes in chunks
	err     error      // the end of the stream, after chunks
	discard bool       // closed locally: Read fails at once
	change  chan struct{}
}

func newReceiver() *receiver {
	return &receiver{early: make(map[int64]*Message), change: make(chan struct{})}
}

// read copies buffered bytes into p. With nothing buffered it returns the
// end of the stream, or a channel closed when that may have changed.
func (r *receiver) read(p []byte) (int, <-chan struct{}, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.discard {
		return 0, nil, r.err
	}
	n := 0
	for n < len(p) && len(r.chunks) > 0 {
		k := copy(p[n:], r.chunks[0])
		n += k
		if r.chunks[0] = r.chunks[0][k:]; len(r.chunks[0]) == 0 {
			r.chunks[0] = nil
			r.chunks = r.chunks[1:]
		}
	}
	r.n -= n
	if n > 0 || r.err != nil {
		return n, nil, r.err
	}
	return 0, r.change, nil
}

// deliver appends Output for Read. It reports false when the buffer is
// full and force is false, so that the message is not acknowledged.
func (r *receiver) deliver(b []byte, force bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return true // nobody will read it
	}
	if r.n >= maxBuffered && !force {
		return false
	}
	r.chunks = append(r.chunks, b)
	r.n += len(b)
	r.broadcast()
	return true
}

// full reports whether deliver would refuse data.
func (r *receiver) full() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n >= maxBuffered
}

// fail ends the stream: Read returns err after the buffered bytes, or at
// once when err is net.ErrClosed (a local Close).
func (r *receiver) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
		r.discard = errors.Is(err, net.ErrClosed)
		r.broadcast()
	}
}

func (r *receiver) broadcast() {
	close(r.change)
	r.change = make(chan struct{})
}

// readLoop reads s until it fails or the Conn ends.
func (c *Conn) readLoop(s *socket) {
	defer c.wg.Done()
	for {
		frame, err := c.readFrame(s)
		if err != nil {
			s.fail(fmt.Errorf("read: %w", err))
			return
		}
		s.heard.Store(time.Now().UnixNano())
		if err := c.handleFrame(frame); err != nil {
			return
		}
	}
}

// readFrame returns the next WebSocket message of s, text or binary (the
// reference client takes both). A message over maxFrame is read to its end
// and dropped like any other malformed frame: the socket stays up, where
// the WebSocket's own read limit would close it.
func (c *Conn) readFrame(s *socket) ([]byte, error) {
	for {
		_, r, err := s.ws.Reader(s.ctx)
		if err != nil {
			return nil, err
		}
		frame, err := io.ReadAll(io.LimitReader(r, maxFrame+1))
		if err != nil {
			return nil, err
		}
		if len(frame) <= maxFrame {
			return frame, nil
		}
		n, err := io.Copy(io.Discard, r)
		if err != nil {
			return nil, err
		}
		c.log.Debug("dropping an oversized frame", "bytes", int64(len(frame))+n)
	}
}

// handleFrame dispatches one frame by message type; unknown types and
// malformed frames are ignored (the latter unacknowledged, so resent).
func (c *Conn) handleFrame(frame []byte) error {
	m, err := ParseMessage(frame)
	if err == nil {
		err = m.Validate()
	}
	if err != nil {
		c.log.Debug("dropping frame", "err", err)
		return nil
	}
	switch m.Type {
	case TypeAcknowledge:
		seq, err := parseAck(m)
		if err != nil {
			c.log.Debug("dropping acknowledge", "err", err)
			return nil
		}
		c.out.ack(seq, time.Now())
		c.kick()
	case TypeOutputStreamData:
		return c.onStreamData(m)
	case TypeChannelClosed:
		cc := parseChannelClosed(m)
		c.end(&ChannelClosedError{SessionID: cc.SessionID, Output: cc.Output})
		return errStop
	case TypePausePublication:
		c.log.Debug("agent paused")
		c.out.pause(time.Now())
	case TypeStartPublication:
		// The agent's side is back on a new WebSocket: what was sent while
		// it was away may be lost; the stream is checked.
		c.log.Debug("agent resumed")
		c.out.resume()
		c.signalRecovered()
		c.kick()
	default:
		c.log.Debug("ignoring message", "type", m.Type)
	}
	return nil
}

// onStreamData sequences a message from the agent (§4.5): process it when
// it is next, hold it when it is early, acknowledge again when it is a
// duplicate (our ack was lost).
func (c *Conn) onStreamData(m *Message) error {
	c.out.resume()
	in := c.in
	switch seq := m.SequenceNumber; {
	case seq < in.expected:
		c.ack(m)
		return nil
	case seq > in.expected:
		if _, dup := in.early[seq]; !dup {
			if len(in.early) >= maxOutOfOrder || in.earlyBytes+len(m.Payload) > maxOutOfOrderBytes || in.full() {
				return nil
			}
			in.early[seq] = m
			in.earlyBytes += len(m.Payload)
			c.countReceived(m)
		}
		c.ack(m)
		return nil
	}
	ok, err := c.process(m, false)
	if !ok {
		return err
	}
	c.countReceived(m)
	c.ack(m)
	for in.expected++; in.early[in.expected] != nil; in.expected++ {
		next := in.early[in.expected]
		delete(in.early, in.expected)
		in.earlyBytes -= len(next.Payload)
		if _, err := c.process(next, true); err != nil {
			return err
		}
	}
	return nil
}

// process acts on one in-order message by payload type. It reports false
// when the message must not be acknowledged yet: Output while the read
// buffer is full, unless force (the message was acknowledged already).
func (c *Conn) process(m *Message, force bool) (bool, error) {
	switch m.PayloadType {
	case PayloadOutput:
		if !c.in.deliver(m.Payload, force) {
			return false, nil
		}
		c.greet()
		return true, nil
	case PayloadHandshakeRequest:
		return true, c.onHandshakeRequest(m)
	case PayloadHandshakeComplete:
		c.onHandshakeComplete(m)
	case PayloadFlag:
		c.onFlag(m)
	case PayloadEncChallengeRequest:
		c.log.Warn("ignoring an encryption challenge: encryption was refused")
	default:
		c.log.Debug("ignoring payload", "type", m.PayloadType, "seq", m.SequenceNumber)
	}
	return true, nil
}

// ack queues the acknowledgement of m for the writer.
func (c *Conn) ack(m *Message) {
	payload, err := ackPayload(m)
	if err != nil {
		return
	}
	a := Message{
		Type:          TypeAcknowledge,
		SchemaVersion: 1,
		CreatedDate:   unixMilli(time.Now()),
		Flags:         FlagsAck,
		MessageID:     newUUID(),
		Payload:       payload,
	}
	frame, err := a.MarshalBinary()
	if err != nil {
		return
	}
	c.acks.add(frame)
	c.kick()
}

// onHandshakeRequest answers the agent's handshake (§5.2). A refusal is
// sent like an answer, so that the agent aborts with its reason, and
// reported to Dial.
func (c *Conn) onHandshakeRequest(m *Message) error {
	var req HandshakeRequest
	if err := json.Unmarshal(m.Payload, &req); err != nil {
		c.log.Warn("ignoring a malformed handshake request", "err", err)
		return nil
	}
	resp, info, refusal := answer(&req, c.cfg.ClientVersion)
	c.mu.Lock()
	c.info = info
	c.mu.Unlock()
	payload, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("ssm: handshake response: %w", err)
	}
	if _, err := c.out.push(PayloadHandshakeResponse, payload, true, time.Now()); err != nil {
		return err
	}
	c.kick()
	c.log.Debug("handshake", "agent", info.AgentVersion, "session_type", info.SessionType, "refused", refusal != nil)
	if refusal != nil {
		select {
		case c.refused <- refusal:
		default:
		}
	}
	return nil
}

// onHandshakeComplete lets Dial return.
func (c *Conn) onHandshakeComplete(m *Message) {
	var hc HandshakeComplete
	if err := json.Unmarshal(m.Payload, &hc); err != nil {
		c.log.Debug("malformed handshake complete", "err", err)
	}
	c.mu.Lock()
	c.info.CustomerMessage = hc.CustomerMessage
	c.mu.Unlock()
	if hc.CustomerMessage != "" {
		c.log.Info("message from the agent", "msg", hc.CustomerMessage)
	}
	select {
	case <-c.handshook:
	default:
		close(c.handshook)
	}
}

// countReceived counts the Output of m, a message received for the first
// time, in order or early (Received).
func (c *Conn) countReceived(m *Message) {
	if m.PayloadType == PayloadOutput {
		c.received.Add(uint64(len(m.Payload)))
	}
}

// greet lets Write send: output from the destination arrived, so the agent
// has marked its handshake complete (see Config.ServerSpeaksFirst).
func (c *Conn) greet() {
	select {
	case <-c.greeted:
	default:
		close(c.greeted)
	}
}

// onFlag logs a flag from the agent; none changes a plain stream.
func (c *Conn) onFlag(m *Message) {
	f, err := ParseStreamFlag(m.Payload)
	if err != nil {
		c.log.Debug("malformed flag", "err", err)
		return
	}
	if f == ConnectToPortError {
		c.log.Warn("the agent could not connect to the destination port")
		return
	}
	c.log.Debug("flag from the agent", "flag", f)
}
