package awsemu

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// A session survives WebSocket breaks: sequence counters, the unacked list
// and the out-of-order buffer live here, not in the connection (§4.4).

const (
	resendTick       = 100 * time.Millisecond
	initialRTO       = 200 * time.Millisecond
	maxRTO           = time.Second
	sendWindow       = 4096 // unacked agent messages before the pump blocks
	maxOutOfOrder    = 10000
	handshakeTimeout = 15 * time.Second
)

// pending is one sent, not yet acknowledged sequenced message.
type pending struct {
	seq      int64
	frame    []byte
	lastSent time.Time
}

type session struct {
	srv        *Server
	id, target string
	dest       string
	props      map[string]string
	streamURL  string
	rawQuery   string
	ctx        context.Context // lifetime until end
	cancel     context.CancelFunc
	wg         sync.WaitGroup // resend loop, ack loop, TCP pump, closer
	inMu       sync.Mutex     // serializes processing of incoming frames
	ackWake    chan struct{}  // kicks ackLoop when a delayed ack is queued

	mu           sync.Mutex // guards following
	space        sync.Cond  // signalled when unacked shrinks or the session ends
	token        string
	tokenUsed    bool
	ws           *websocket.Conn
	ended        bool
	hsSent       time.Time // zero until the HandshakeRequest was sent
	hsDone       bool
	tcp          net.Conn
	outSeq       int64
	unacked      []*pending
	srtt, rttvar time.Duration
	rto          time.Duration
	inExpected   int64
	inOutOfOrder map[int64]message
	fl           *faulter     // frame faults in force, never nil
	ownFaults    bool         // fl was set for this session, not globally
	delayed      []delayedAck // acks waiting for AckDelay, oldest first
	paused       bool         // the service paused the agent (§4.7)
	pauseUntil   time.Time    // zero: until start_publication, input or an ack
	pauseZero    bool         // the pause was sent zero-field, so is its end
	started      time.Time    // for the maximum session duration
	lastInput    time.Time    // last input from the client, or resume: for the idle timeout
}

func newSession(srv *Server, id, target, dest string, props map[string]string, streamURL string) *session {
	ctx, cancel := context.WithCancel(srv.ctx)
	_, rawQuery, _ := cutQuery(streamURL)
	ss := &session{srv: srv, id: id, target: target, dest: dest, props: props,
		streamURL: streamURL, rawQuery: rawQuery, ctx: ctx, cancel: cancel,
		srtt: 100 * time.Millisecond, rto: initialRTO, inOutOfOrder: map[int64]message{},
		ackWake: make(chan struct{}, 1), fl: newFaulter(FrameFaults{})}
	ss.started = time.Now()
	ss.lastInput = ss.started
	ss.space.L = &ss.mu
	return ss
}

func cutQuery(u string) (string, string, bool) {
	for i := 0; i < len(u); i++ {
		if u[i] == '?' {
			return u[:i], u[i+1:], true
		}
	}
	return u, "", false
}

func (ss *session) start() {
	ss.wg.Add(2)
	go ss.resendLoop()
	go ss.ackLoop()
}

func (ss *session) newToken() string {
	b := make([]byte, 48)
	_, _ = rand.Read(b)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.token, ss.tokenUsed = base64.StdEncoding.EncodeToString(b), false
	return ss.token
}

// consumeToken reports whether tok is the current, unused token, and uses it.
func (ss *session) consumeToken(tok string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ended || ss.tokenUsed || tok == "" || tok != ss.token {
		return false
	}
	ss.tokenUsed = true
	return true
}

func (ss *session) isEnded() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.ended
}

// attach makes ws the session's connection and resends every unacked
// message; the first attach starts the handshake.
func (ss *session) attach(ws *websocket.Conn) bool {
	ss.mu.Lock()
	if ss.ended {
		ss.mu.Unlock()
		return false
	}
	old := ss.ws
	ss.ws = ws
	ss.unpauseLocked() // the agent resumes after a reconnect
	now := time.Now()
	frames := make([][]byte, 0, len(ss.unacked))
	for _, p := range ss.unacked {
		p.lastSent = now
		frames = append(frames, p.frame)
	}
	first := ss.hsSent.IsZero()
	ss.mu.Unlock()
	if old != nil {
		_ = old.CloseNow()
	}
	for _, f := range frames {
		ss.sendData(ws, f)
	}
	if first {
		ss.sendHandshakeRequest()
	}
	return true
}

// detach forgets ws if it is still the current connection.
func (ss *session) detach(ws *websocket.Conn) {
	ss.mu.Lock()
	if ss.ws == ws {
		ss.ws = nil
	}
	ss.mu.Unlock()
	_ = ws.CloseNow()
}

// sendSeq sends a sequenced output_stream_data message and keeps it until
// acknowledged. Agent Flags: 1 on sequence 0, else 0 (§3.3).
func (ss *session) sendSeq(pt uint32, payload []byte) {
	ss.mu.Lock()
	if ss.ended {
		ss.mu.Unlock()
		return
	}
	m := message{Type: typeOutput, Schema: 1, Created: uint64(time.Now().UnixMilli()),
		Seq: ss.outSeq, ID: newUUID(), PayloadType: pt, Payload: payload}
	if m.Seq == 0 {
		m.Flags = 1
	}
	ss.outSeq++
	frame := encode(m)
	ss.unacked = append(ss.unacked, &pending{m.Seq, frame, time.Now()})
	ws := ss.ws
	if ss.paused {
		ws = nil // buffered: the resend loop sends it once the pause ends
	}
	ss.mu.Unlock()
	ss.sendData(ws, frame)
}

func (ss *session) write(ws *websocket.Conn, frame []byte) {
	if ws == nil {
		return
	}
	_ = ws.Write(ss.ctx, websocket.MessageBinary, frame)
}

// handleAck removes the acknowledged entry (seq from the JSON payload,
// §4.3) and updates the RTO estimator.
func (ss *session) handleAck(m message) {
	var a ackContent
	if err := json.Unmarshal(m.Payload, &a); err != nil {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.unpauseLocked() // any ack ends a pause (§4.7)
	for i, p := range ss.unacked {
		if p.seq == a.AcknowledgedMessageSequenceNumber {
			ss.updateRTO(time.Since(p.lastSent))
			ss.unacked = append(ss.unacked[:i], ss.unacked[i+1:]...)
			ss.space.Broadcast()
			return
		}
	}
}

// updateRTO is the estimator of §4.4 (caller holds mu).
func (ss *session) updateRTO(r time.Duration) {
	diff := ss.srtt - r
	if diff < 0 {
		diff = -diff
	}
	ss.rttvar = ss.rttvar*3/4 + diff/4
	ss.srtt = ss.srtt*7/8 + r/8
	ss.rto = min(ss.srtt+max(10*time.Millisecond, 4*ss.rttvar), maxRTO)
}

// resendLoop resends the head of the unacked list after RTO, as the
// agent does (§4.4: head only, every resendTick, lastSent updated, never
// while paused), flushes a frame held back by ReorderOut, ends a timed
// pause and enforces the handshake timeout.
func (ss *session) resendLoop() {
	defer ss.wg.Done()
	t := time.NewTicker(resendTick)
	defer t.Stop()
	for {
		select {
		case <-ss.ctx.Done():
			return
		case <-t.C:
		}
		if reason := ss.timedOut(); reason != "" {
			ss.end(reason)
			return
		}
		ss.mu.Lock()
		expired := !ss.hsSent.IsZero() && !ss.hsDone && time.Since(ss.hsSent) > handshakeTimeout
		restart := ss.paused && !ss.pauseUntil.IsZero() && time.Now().After(ss.pauseUntil)
		zero := ss.pauseZero
		var frame []byte
		if len(ss.unacked) > 0 && ss.ws != nil && !ss.paused && time.Since(ss.unacked[0].lastSent) > ss.rto {
			ss.unacked[0].lastSent = time.Now()
			frame = ss.unacked[0].frame
		}
		ws, fl := ss.ws, ss.fl
		ss.mu.Unlock()
		if expired {
			ss.end("Handshake timed out. Please ensure that you have the latest version of the session manager plugin.")
			return
		}
		if restart {
			ss.publication(false, zero, 0)
		}
		if held := fl.takeHeld(); held != nil {
			ss.write(ws, held)
		}
		if frame != nil {
			fl.count(&fl.resent)
			ss.sendData(ws, frame)
		}
	}
}

// Outputs of the channel_closed that ends a session for the account's
// session preferences.
const (
	idleTimeoutOutput = "Your session has been terminated for the following reasons: the session was idle for longer than the idle session timeout."
	maxAgeOutput      = "Your session has been terminated for the following reasons: the session reached the maximum session duration."
)

// timedOut returns why the session preferences end the session now, or "".
func (ss *session) timedOut() string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := time.Now()
	if d := time.Duration(ss.srv.maxAge.Load()); d > 0 && now.Sub(ss.started) > d {
		return maxAgeOutput
	}
	if d := time.Duration(ss.srv.idle.Load()); d > 0 && now.Sub(ss.lastInput) > d {
		return idleTimeoutOutput
	}
	return ""
}

// touch records input from the client, which resets the idle timeout.
func (ss *session) touch() {
	ss.mu.Lock()
	ss.lastInput = time.Now()
	ss.mu.Unlock()
}

// end terminates the session once: channel_closed to the client, close
// 1000, destination closed, goroutines stopped.
func (ss *session) end(output string) {
	ss.mu.Lock()
	if ss.ended {
		ss.mu.Unlock()
		return
	}
	ss.ended = true
	ws, tcp := ss.ws, ss.tcp
	if ws != nil {
		ss.wg.Add(1) // the closer below; added under mu, before Close can Wait
	}
	ss.space.Broadcast()
	ss.mu.Unlock()
	ss.srv.log.Info("session ended", "session", ss.id, "output", output)
	ss.logFaults()
	if ws != nil {
		ctx, cancel := context.WithTimeout(ss.srv.ctx, time.Second)
		_ = ws.Write(ctx, websocket.MessageBinary, encode(channelClosedMsg(ss.id, ss.target, output, time.Now())))
		cancel()
		go func() {
			defer ss.wg.Done()
			_ = ws.Close(websocket.StatusNormalClosure, "")
		}()
	}
	if tcp != nil {
		_ = tcp.Close()
	}
	ss.cancel()
}

// abort drops the WebSocket without waiting for the close handshake.
func (ss *session) abort() {
	ss.mu.Lock()
	ws := ss.ws
	ss.mu.Unlock()
	if ws != nil {
		_ = ws.CloseNow()
	}
}
