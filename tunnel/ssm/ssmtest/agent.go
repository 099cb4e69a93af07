package ssmtest

// One data channel as the agent sees it:
//
//	client frames -> readLoop -> acks (window), input_stream_data (sequenced, acked, re-acked)
//	    -> handshake response / flags / Output -> Stream.Read (Serve)
//	Serve's Stream.Write -> 1 KiB output_stream_data (paced, kept until acked,
//	    head resent) -> send (Filter: drop, duplicate, hold, delay) -> client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/vpcvpn/vpcvpn/tunnel/ssm"
)

// Verdict is what a Filter decides for one frame.
type Verdict int

// Verdicts.
const (
	Pass      Verdict = iota
	Drop              // never sent (or, received, ignored)
	Duplicate         // sent (or processed) twice
	Hold              // sent after the next frame that passes: reordered
	Delay             // sent after Agent.Delay (agent -> client only)
)

// Agent is an http.Handler that plays the Session Manager service and an
// SSM agent running AWS-StartSSHSession: a session per OpenDataChannel
// with Token, resumed by one with a token from Session.NewToken.
type Agent struct {
	Token        string         // the token OpenDataChannel must carry
	AgentVersion string         // empty means "3.3.1142.0"
	Properties   map[string]any // empty means {"portNumber":"22"}
	KMS          bool           // also request KMSEncryption in the handshake
	Pace         time.Duration  // pause after each Output message, as the agent's 1 ms
	Delay        time.Duration  // for Delay verdicts; zero means 300 ms
	CloseReason  string         // channel_closed Output when Serve returns

	// LateComplete makes the agent mark its handshake complete as late as
	// the real one may: after HandshakeComplete was sent, just before its
	// first Output. Client Output before then is acknowledged and
	// discarded (Stats.EarlyOutput); Serve should write first, as sshd does.
	LateComplete bool

	// KeepOnDrop keeps a session whose WebSocket the client dropped without
	// a close handshake, waiting for a resume, as the service does; without
	// it such a drop ends the session.
	KeepOnDrop bool

	// Greeting, if set, is written to the client before Serve runs, as
	// sshd writes its version line first.
	Greeting []byte

	// Filter, if set, decides the fate of each frame the agent sends
	// (toClient) or receives. It is called from several goroutines.
	Filter func(toClient bool, m *ssm.Message) Verdict

	// Serve runs the session's stream after the handshake; nil echoes.
	// When it returns, the agent sends channel_closed with CloseReason.
	Serve func(stream net.Conn)

	once     sync.Once
	sessions chan *Session
	mu       sync.Mutex // guards following
	all      []*Session
	resume   map[string]*Session // tokens from NewToken, each good once
}

// Sessions returns the sessions as they are accepted.
func (a *Agent) Sessions() <-chan *Session {
	a.init()
	return a.sessions
}

func (a *Agent) init() {
	a.once.Do(func() { a.sessions = make(chan *Session, 16) })
}

// Close kills every session still running and waits for them.
func (a *Agent) Close() {
	a.mu.Lock()
	all := a.all
	a.mu.Unlock()
	for _, s := range all {
		s.Kill()
		<-s.Done()
	}
}

// ServeHTTP accepts the WebSocket and reads OpenDataChannel. With the
// Agent's Token it runs a new session until the client closes it or it is
// killed; with a token from Session.NewToken it attaches the WebSocket to
// that session, as after ResumeSession, until the socket ends.
func (a *Agent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.init()
	var s *Session
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		OnPingReceived: func(context.Context, []byte) bool { return s != nil && !s.isStalled() },
	})
	if err != nil {
		return
	}
	up := Upgrade{RawQuery: r.URL.RawQuery, Header: r.Header.Clone()}
	if err := readOpen(ws, &up.Open); err != nil {
		ws.Close(websocket.StatusPolicyViolation, err.Error())
		return
	}
	a.mu.Lock()
	s = a.resume[up.Open.TokenValue]
	delete(a.resume, up.Open.TokenValue)
	a.mu.Unlock()
	switch {
	case s != nil:
		s.reattach(ws, up)
	case up.Open.TokenValue == a.Token:
		s = a.newSession(ws, up)
		s.serveHTTP()
	default:
		ws.Close(websocket.StatusPolicyViolation, "bad OpenDataChannel token")
	}
}

// newSession makes and registers the session of a first OpenDataChannel.
func (a *Agent) newSession(ws *websocket.Conn, up Upgrade) *Session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Session{
		a: a, ws: ws, ctx: ctx, cancel: cancel,
		RawQuery: up.RawQuery, Header: up.Header, Open: up.Open, upgrades: []Upgrade{up},
		early: make(map[int64]*ssm.Message), acked: make(map[int64]bool),
		room: make(chan struct{}), inbound: make(chan struct{}),
		responded: make(chan struct{}), terminated: make(chan struct{}),
		unstall: make(chan struct{}), done: make(chan struct{}),
	}
	a.mu.Lock()
	a.all = append(a.all, s)
	a.mu.Unlock()
	return s
}

// serveHTTP runs a new session until it is killed or its socket ends
// other than by Break.
func (s *Session) serveHTTP() {
	defer close(s.done)
	defer s.wg.Wait()
	defer s.Kill()
	ws := s.ws // before publishing s: reattach replaces s.ws
	s.a.sessions <- s
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.readLoop(ws)
	}()
	go s.resendLoop()
	s.run()
	<-s.ctx.Done()
}

// Upgrade is what the client sent when it opened one WebSocket.
type Upgrade struct {
	RawQuery string              // the upgrade request's query, as sent
	Header   http.Header         // the upgrade request's headers
	Open     ssm.OpenDataChannel // the client's first frame
}

// Session is one data channel. Its fields are set before it is published;
// they describe the first WebSocket (Upgrades lists them all).
type Session struct {
	a        *Agent
	ctx      context.Context // until Kill
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	RawQuery string              // the upgrade request's query, as sent
	Header   http.Header         // the upgrade request's headers
	Open     ssm.OpenDataChannel // the client's first frame

	wmu  sync.Mutex // serialises sends; guards held and ws
	held []byte
	ws   *websocket.Conn // the current WebSocket

	mu          sync.Mutex // guards following
	upgrades    []Upgrade
	broken      *websocket.Conn // the socket Break dropped, awaiting a resume
	next        int64           // the agent's next sequence number
	unacked     []*sent
	acked       map[int64]bool
	room        chan struct{} // closed and replaced on acks
	expected    int64
	early       map[int64]*ssm.Message
	in          []byte        // Output received, for Stream.Read
	inbound     chan struct{} // closed and replaced when in grows
	eof         bool
	response    *ssm.HandshakeResponse
	completed   bool
	earlyOutput int // Output received before HandshakeComplete
	dupIn       int // input_stream_data received again
	reAcks      int // acks received for what was acknowledged already
	stalled     bool

	responded, terminated, unstall, done chan struct{}
}

type sent struct {
	seq   int64
	frame []byte
	last  time.Time
}

// readOpen reads and checks OpenDataChannel, but not its token.
func readOpen(ws *websocket.Conn, open *ssm.OpenDataChannel) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, b, err := ws.Read(ctx)
	if err != nil {
		return err
	}
	if typ != websocket.MessageText {
		return fmt.Errorf("first frame is %v, want text", typ)
	}
	if err := json.Unmarshal(b, open); err != nil {
		return fmt.Errorf("OpenDataChannel: %w", err)
	}
	if open.MessageSchemaVersion != "1.0" || open.RequestID == "" {
		return fmt.Errorf("bad OpenDataChannel")
	}
	return nil
}

// run performs the handshake, then serves the stream.
func (s *Session) run() {
	props := s.a.Properties
	if props == nil {
		props = map[string]any{"portNumber": "22"}
	}
	params, _ := json.Marshal(ssm.SessionTypeRequest{SessionType: "Port", Properties: props})
	req := ssm.HandshakeRequest{AgentVersion: s.a.AgentVersion, RequestedClientActions: []ssm.RequestedClientAction{
		{ActionType: ssm.ActionSessionType, ActionParameters: params},
	}}
	if req.AgentVersion == "" {
		req.AgentVersion = "3.3.1142.0"
	}
	if s.a.KMS {
		req.RequestedClientActions = append(req.RequestedClientActions, ssm.RequestedClientAction{
			ActionType: ssm.ActionKMSEncryption, ActionParameters: json.RawMessage(`{"KMSKeyId":"alias/k","Challenge":"AAAAAAAAAAAAAAAAAAAAAA=="}`),
		})
	}
	b, _ := json.Marshal(req)
	s.push(ssm.PayloadHandshakeRequest, b)
	select {
	case <-s.responded:
	case <-s.ctx.Done():
		return
	}
	if errs := s.Response().Errors; len(errs) > 0 {
		s.CloseChannel("Handshake error: " + strings.Join(errs, "; "))
		return
	}
	// The real agent sets its flag just after sending HandshakeComplete,
	// a window that the service's round trip hides; here it is set first,
	// unless LateComplete, when it is set at the first Output (Stream.Write).
	s.mu.Lock()
	s.completed = !s.a.LateComplete
	s.mu.Unlock()
	s.push(ssm.PayloadHandshakeComplete, []byte(`{"HandshakeTimeToComplete":1500000000,"CustomerMessage":""}`))
	s.wg.Add(1)
	go s.serve()
}

// serve runs Serve on the stream, then ends the session from the agent's side.
func (s *Session) serve() {
	defer s.wg.Done()
	st := &Stream{s: s}
	if len(s.a.Greeting) > 0 {
		st.Write(s.a.Greeting)
	}
	if s.a.Serve != nil {
		s.a.Serve(st)
	} else {
		io.Copy(st, st)
	}
	s.awaitAcked()
	s.CloseChannel(s.a.CloseReason)
}

// Response returns the client's handshake response, once received.
func (s *Session) Response() ssm.HandshakeResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.response == nil {
		return ssm.HandshakeResponse{}
	}
	return *s.response
}

// Responded is closed when the handshake response arrived.
func (s *Session) Responded() <-chan struct{} { return s.responded }

// Terminated is closed when the TerminateSession flag arrived.
func (s *Session) Terminated() <-chan struct{} { return s.terminated }

// Done is closed when the session's handler returned.
func (s *Session) Done() <-chan struct{} { return s.done }

// Stats are counters of a session.
type Stats struct {
	EarlyOutput int // client Output received before HandshakeComplete
	DupIn       int // client messages received again (retransmitted)
	ReAcks      int // client acks for agent messages acknowledged already
}

// Stats returns the session's counters.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{EarlyOutput: s.earlyOutput, DupIn: s.dupIn, ReAcks: s.reAcks}
}

// Stall makes the agent stop reading the WebSocket, sending and answering
// pings, as a hung peer; Kill ends it.
func (s *Session) Stall() {
	s.mu.Lock()
	s.stalled = true
	s.mu.Unlock()
}

func (s *Session) isStalled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stalled
}

// Kill drops the WebSocket without a close handshake and ends the session.
func (s *Session) Kill() {
	s.cancel()
	s.wmu.Lock()
	s.ws.CloseNow()
	s.wmu.Unlock()
	s.mu.Lock()
	s.eof = true
	s.broadcast(&s.inbound)
	s.broadcast(&s.room)
	s.mu.Unlock()
}

// CloseChannel sends channel_closed as the service does: header length
// 112, NUL-padded type, reason in Output.
func (s *Session) CloseChannel(reason string) {
	payload, _ := json.Marshal(ssm.ChannelClosed{
		MessageID: "00000000-0000-4000-8000-000000000000", CreatedDate: time.Now().UTC().Format(time.RFC3339),
		DestinationID: "i-0123456789abcdef0", SessionID: "itsme-0625cb834d1273961",
		MessageType: ssm.TypeChannelClosed, SchemaVersion: 1, Output: reason,
	})
	m := ssm.Message{Type: ssm.TypeChannelClosed, SchemaVersion: 1, CreatedDate: uint64(time.Now().UnixMilli()), Payload: payload}
	b, _ := m.MarshalBinary()
	b[3] = 112
	for i := 4 + len(ssm.TypeChannelClosed); i < 36; i++ {
		b[i] = 0
	}
	b = append(b[:112], b[116:]...)
	s.wmu.Lock()
	s.ws.Write(s.ctx, websocket.MessageBinary, b)
	s.wmu.Unlock()
}

func (s *Session) broadcast(ch *chan struct{}) {
	close(*ch)
	*ch = make(chan struct{})
}
