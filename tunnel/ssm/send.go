package ssm

// The client -> agent path:
//
//	Write -> push (sequence number, frame) -> sendWindow -> writeLoop -> WebSocket
//	acknowledge (readLoop) -> sendWindow.ack -> room for Write, RTT sample
//	resend tick (writeLoop) -> sendWindow.due -> the head again

import (
	"fmt"
	"sync"
	"time"

	"github.com/coder/websocket"
)

const (
	// chunkSize is the largest Output payload sent, as both reference
	// implementations do (§4.6).
	chunkSize = 1024
	// maxUnacked bounds the messages sent and not yet acknowledged; Write
	// blocks beyond it.
	maxUnacked = 1024
	// maxPause bounds a pause_publication: it lasts until start_publication,
	// an ack or data from the agent, or this long (§4.7).
	maxPause = 5 * time.Second
	// resendTimeout is how long the head of the window may stay
	// unacknowledged before the session is given up (the plugin gives up
	// after 3000 resends, about 5 minutes).
	resendTimeout = 5 * time.Minute
)

// Retransmission timing, as in both reference implementations (§4.4).
const (
	resendTick     = 100 * time.Millisecond
	initialSRTT    = 100 * time.Millisecond
	initialRTO     = 200 * time.Millisecond
	minRTOVariance = 10 * time.Millisecond // the clock granularity
	maxRTO         = time.Second
)

// rtt is the retransmission timeout estimator of §4.4.
type rtt struct {
	srtt, rttvar, rto time.Duration
}

func newRTT() rtt { return rtt{srtt: initialSRTT, rto: initialRTO} }

// sample feeds one round trip r.
func (e *rtt) sample(r time.Duration) {
	diff := e.srtt - r
	if diff < 0 {
		diff = -diff
	}
	e.rttvar = e.rttvar*3/4 + diff/4
	e.srtt = e.srtt*7/8 + r/8
	e.rto = min(e.srtt+max(minRTOVariance, 4*e.rttvar), maxRTO)
}

// outMsg is one sequenced message kept until it is acknowledged.
type outMsg struct {
	seq      int64
	frame    []byte
	first    time.Time // first sent
	last     time.Time // last sent
	sockSent time.Time // first sent on the current socket
	off      uint64    // Output bytes pushed before this message
	resends  int
	flagSent bool // first was set
}

// sendWindow holds the client's sequence state and its unacknowledged
// messages. It outlives sockets: a new socket sends from where it is.
type sendWindow struct {
	mu          sync.Mutex // guards following
	next        int64      // the next sequence number
	written     uint64     // Output payload bytes pushed
	msgs        []*outMsg  // unacknowledged, by sequence number
	unsent      int        // msgs[unsent:] are not sent on the current socket
	limit       int
	rtt         rtt
	pausedUntil time.Time
	pausedAt    time.Time     // the agent's side went away (pause_publication); zero once it is back
	err         error         // set once the Conn ends: push fails
	change      chan struct{} // closed and replaced on ack or end
}

func newSendWindow(limit int) *sendWindow {
	return &sendWindow{limit: limit, rtt: newRTT(), change: make(chan struct{})}
}

// push queues a sequenced input_stream_data message. When the window is
// full and force is false it queues nothing and returns a channel that is
// closed when that may have changed. force is for handshake answers and
// flags, which must not wait behind data.
func (w *sendWindow) push(pt PayloadType, payload []byte, force bool, now time.Time) (<-chan struct{}, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil && !force {
		return nil, w.err
	}
	if len(w.msgs) >= w.limit && !force {
		return w.change, nil
	}
	m := Message{
		Type:           TypeInputStreamData,
		SchemaVersion:  1,
		CreatedDate:    unixMilli(now),
		SequenceNumber: w.next,
		MessageID:      newUUID(),
		PayloadType:    pt,
		Payload:        payload,
	}
	frame, err := m.MarshalBinary()
	if err != nil {
		return nil, err
	}
	w.msgs = append(w.msgs, &outMsg{seq: w.next, frame: frame, off: w.written})
	w.next++
	if pt == PayloadOutput {
		w.written += uint64(len(payload))
	}
	return nil, nil
}

// nextToSend returns the first message not yet sent on the current socket
// and marks it sent, unless publication is paused.
func (w *sendWindow) nextToSend(now time.Time) []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.unsent >= len(w.msgs) || now.Before(w.pausedUntil) {
		return nil
	}
	m := w.msgs[w.unsent]
	w.unsent++
	if !m.flagSent {
		m.first, m.flagSent = now, true
	}
	m.last, m.sockSent = now, now
	return m.frame
}

// due returns the head of the window if its retransmission timeout has
// passed, and marks it sent again (as the agent does, so that a lost
// message is resent once per timeout). It fails when the head has waited
// longer than resendTimeout.
func (w *sendWindow) due(now time.Time) ([]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.msgs) == 0 || w.unsent == 0 || now.Before(w.pausedUntil) {
		return nil, nil
	}
	m := w.msgs[0]
	if now.Sub(m.first) > resendTimeout {
		return nil, fmt.Errorf("%w: message %d unacknowledged for %s", ErrResendTimeout, m.seq, now.Sub(m.first).Round(time.Second))
	}
	if now.Sub(m.last) <= w.rtt.rto {
		return nil, nil
	}
	m.last = now
	m.resends++
	return m.frame, nil
}

// waiting returns when the head of the window was first sent on the
// current socket and how many messages are unacknowledged; zero when
// nothing sent on it waits, or while publication is paused.
func (w *sendWindow) waiting(now time.Time) (time.Time, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.msgs) == 0 || w.unsent == 0 || now.Before(w.pausedUntil) {
		return time.Time{}, 0
	}
	return w.msgs[0].sockSent, len(w.msgs)
}

// acknowledged returns the Output bytes acknowledged without a gap: all
// those before the oldest unacknowledged message.
func (w *sendWindow) acknowledged() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.msgs) == 0 {
		return w.written
	}
	return w.msgs[0].off
}

// away returns since when the agent's side has been away (paused, with
// nothing from the agent since), the zero time while it is there.
func (w *sendWindow) away() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pausedAt
}

// ack removes the message with sequence number seq, wherever it is, and
// feeds the estimator with the time since it was last sent. An ack also
// ends a pause.
func (w *sendWindow) ack(seq int64, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pausedUntil, w.pausedAt = time.Time{}, time.Time{}
	i, ok := w.find(seq)
	if !ok {
		return
	}
	if m := w.msgs[i]; i < w.unsent {
		w.rtt.sample(now.Sub(m.last))
		w.unsent--
	}
	w.msgs = append(w.msgs[:i], w.msgs[i+1:]...)
	w.broadcast()
}

// find returns the index of seq in msgs, which is sorted.
func (w *sendWindow) find(seq int64) (int, bool) {
	if len(w.msgs) == 0 {
		return 0, false
	}
	i := int(seq - w.msgs[0].seq) // sequence numbers are consecutive
	if i < 0 || i >= len(w.msgs) || w.msgs[i].seq != seq {
		for j, m := range w.msgs {
			if m.seq == seq {
				return j, true
			}
		}
		return 0, false
	}
	return i, true
}

// broadcast wakes everyone waiting on change. Call it with mu held.
func (w *sendWindow) broadcast() {
	close(w.change)
	w.change = make(chan struct{})
}

// pause holds new data and resends until resume or maxPause.
func (w *sendWindow) pause(now time.Time) {
	w.mu.Lock()
	w.pausedUntil = now.Add(maxPause)
	if w.pausedAt.IsZero() {
		w.pausedAt = now
	}
	w.mu.Unlock()
}

// resume ends a pause.
func (w *sendWindow) resume() {
	w.mu.Lock()
	w.pausedUntil, w.pausedAt = time.Time{}, time.Time{}
	w.mu.Unlock()
}

// rewind makes every unacknowledged message due on a new socket.
func (w *sendWindow) rewind() {
	w.mu.Lock()
	w.unsent = 0
	w.mu.Unlock()
}

// fail makes push return err and wakes its waiters.
func (w *sendWindow) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
		w.broadcast()
	}
}

// drained reports whether every message was acknowledged, and otherwise
// returns a channel closed on the next change.
func (w *sendWindow) drained() (bool, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.msgs) == 0, w.change
}

// Acknowledgements of a steady inbound stream go out in small batches, at
// most ackDelay late, like TCP's delayed ACK. The agent sleeps 1 ms after
// each message it sends (§4.6), and every ack that lands during that sleep
// wakes it and re-arms its timer, which the Go runtime rounds up to a whole
// millisecond: one ack per message costs it a fifth of its throughput, a
// batch per few messages far less. ackDelay stays two orders of magnitude
// under the agent's minimum retransmission timeout.
const (
	ackDelay = 2 * time.Millisecond
	ackBatch = 8 // acks that go at once, without waiting
)

// writeLoop is the only writer of s's data frames: acknowledgements first,
// then new messages, and on every tick the head if it is due.
func (c *Conn) writeLoop(s *socket) {
	defer c.wg.Done()
	tick := time.NewTicker(resendTick)
	defer tick.Stop()
	ackTimer := time.NewTimer(ackDelay)
	ackTimer.Stop()
	armed, acksDue := false, false
	for {
		held, err := c.flush(s, acksDue)
		if err != nil {
			s.fail(err)
			return
		}
		acksDue = false
		if !held {
			armed = false
		} else if !armed {
			ackTimer.Reset(ackDelay)
			armed = true
		}
		select {
		case <-s.ctx.Done():
			return
		case <-c.wake:
		case <-ackTimer.C:
			armed, acksDue = false, true
		case now := <-tick.C:
			frame, err := c.out.due(now)
			if err != nil {
				c.end(err)
				return
			}
			if frame != nil {
				c.log.Debug("resending", "seq", seqOf(frame))
				if err := s.send(frame); err != nil {
					s.fail(err)
					return
				}
				c.signalRecovered()
			}
			if err := c.checkStall(s, now); err != nil {
				s.fail(err)
				return
			}
			if err := c.checkAway(now); err != nil {
				c.end(err)
				return
			}
		}
	}
}

// checkStall fails when a message sent on s has waited StallTimeout for
// its acknowledgement and nothing at all came from the agent meanwhile:
// the service or the agent lost the socket without closing it (the
// WebSocket's pings reach only the service). Resuming costs little when
// the agent was merely slow.
func (c *Conn) checkStall(s *socket, now time.Time) error {
	if c.cfg.StallTimeout <= 0 {
		return nil
	}
	sent, n := c.out.waiting(now)
	heard := time.Unix(0, s.heard.Load())
	if sent.IsZero() || now.Sub(sent) < c.cfg.StallTimeout || now.Sub(heard) < c.cfg.StallTimeout {
		return nil
	}
	return fmt.Errorf("%w: nothing from the agent for %s with %d messages unacknowledged",
		ErrStalled, now.Sub(heard).Round(time.Millisecond), n)
}

// checkAway ends the session when the agent's side has been away for
// AwayTimeout: the service pauses the client when the agent's data channel
// closes, and the agent reopens it within a fraction of a second when only
// its WebSocket broke; when its session worker died, it never does, and
// the service says no more.
func (c *Conn) checkAway(now time.Time) error {
	since := c.out.away()
	if c.cfg.AwayTimeout <= 0 || since.IsZero() || now.Sub(since) < c.cfg.AwayTimeout {
		return nil
	}
	return fmt.Errorf("%w: its data channel closed and did not come back within %s "+
		"(its session worker ended, or the instance stopped)", ErrAgentGone, c.cfg.AwayTimeout)
}

// signalRecovered tells Recovered's reader that the stream had to be
// repaired.
func (c *Conn) signalRecovered() {
	select {
	case c.recovered <- struct{}{}:
	default:
	}
}

// flush writes the messages not sent yet, and the queued acknowledgements
// with them, or when acksDue or a batch is full. held reports acks left
// queued for later.
func (c *Conn) flush(s *socket, acksDue bool) (held bool, err error) {
	for {
		frame := c.out.nextToSend(time.Now())
		if frame == nil && !acksDue && c.acks.len() < ackBatch {
			return c.acks.len() > 0, nil
		}
		for _, a := range c.acks.take() {
			if err := s.send(a); err != nil {
				return false, err
			}
		}
		if frame == nil {
			return false, nil
		}
		if err := s.send(frame); err != nil {
			return false, err
		}
	}
}

// send writes one frame.
func (s *socket) send(frame []byte) error {
	if err := s.ws.Write(s.ctx, websocket.MessageBinary, frame); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// seqOf returns the sequence number of an encoded frame, for logs.
func seqOf(frame []byte) int64 {
	m, err := ParseMessage(frame)
	if err != nil {
		return -1
	}
	return m.SequenceNumber
}

// ackQueue holds encoded acknowledgements for the writer.
type ackQueue struct {
	mu     sync.Mutex // guards frames
	frames [][]byte
}

// maxQueuedAcks bounds ackQueue; an ack dropped beyond it only makes the
// agent resend, and the resend is acked again.
const maxQueuedAcks = 4096

func (q *ackQueue) add(frame []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) < maxQueuedAcks {
		q.frames = append(q.frames, frame)
	}
}

func (q *ackQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.frames)
}

func (q *ackQueue) take() [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	f := q.frames
	q.frames = nil
	return f
}
