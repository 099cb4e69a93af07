package awsemu

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// Session Manager's service side for agents (ssmmessages, "MGS"), as AWS's
// SSM agent speaks it (see README.md):
//
//	POST /v1/control-channel/<instance>  CreateControlChannel, SigV4 → 201 XML TokenValue
//	GET  /v1/control-channel/<instance>?stream=input&role=subscribe
//	     WebSocket, SigV4 on the upgrade; first frame OpenControlChannel (text);
//	     then AgentMessages: interactive_shell and channel_closed to the agent,
//	     agent_task_reply / agent_task_complete from it (agent_task_acknowledge back)
//	POST /v1/data-channel/<session>       CreateDataChannel → 201 XML TokenValue
//	GET  /v1/data-channel/<session>?role=publish_subscribe
//	     WebSocket; first frame OpenDataChannel (text) with that token; see relay.go

// agentState is what the service knows of one instance's agent.
type agentState struct {
	ctl       *websocket.Conn // the open control channel, or nil
	ctlTokens map[string]bool
	version   string
	offline   bool      // admin disconnect: the service refuses the agent
	pinged    time.Time // last UpdateInstanceInformation
}

// createChannelOutput is the XML body of CreateControlChannel and
// CreateDataChannel.
type createChannelOutput struct {
	XMLName              xml.Name `xml:"CreateChannelOutput"`
	MessageSchemaVersion string
	TokenValue           string
}

type openControlChannel struct {
	MessageSchemaVersion string
	RequestId            string
	TokenValue           string
	AgentVersion         string
	PlatformType         string
}

// verifyAgentCall checks the SigV4 signature (service ssmmessages) of an
// agent's MGS call, body included.
func (s *Server) verifyAgentCall(w http.ResponseWriter, r *http.Request) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = s.verify(r, body, "ssmmessages")
	}
	if err != nil {
		s.log.Info("mgs: call rejected", "path", r.URL.Path, "error", err)
		http.Error(w, "<AccessDeniedException><Message>"+err.Error()+"</Message></AccessDeniedException>", http.StatusForbidden)
		return false
	}
	return true
}

func writeChannelToken(w http.ResponseWriter, tok string) {
	b, _ := xml.Marshal(createChannelOutput{MessageSchemaVersion: "1.0", TokenValue: tok})
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(b)
}

func (s *Server) serveCreateControlChannel(w http.ResponseWriter, r *http.Request) {
	if !s.verifyAgentCall(w, r) {
		return
	}
	id := r.PathValue("id")
	if c := s.signer(r); c.Instance != "" && c.Instance != id {
		s.log.Info("mgs: control channel refused", "instance", id, "signer", c.Instance)
		http.Error(w, "<AccessDeniedException><Message>credentials of "+c.Instance+" may not open the control channel of "+id+"</Message></AccessDeniedException>", http.StatusForbidden)
		return
	}
	tok := randomToken(48)
	s.mu.Lock()
	a := s.agents[id]
	refused := a == nil || a.offline
	if !refused {
		a.ctlTokens[tok] = true
	}
	s.mu.Unlock()
	if refused {
		s.log.Info("mgs: control channel refused", "instance", id)
		http.Error(w, "<ServiceUnavailableException/>", http.StatusServiceUnavailable)
		return
	}
	writeChannelToken(w, tok)
}

func (s *Server) serveControlChannel(w http.ResponseWriter, r *http.Request) {
	if !s.track() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	id := r.PathValue("id")
	if err := s.verify(r, nil, "ssmmessages"); err != nil {
		s.log.Info("control channel: signature", "instance", id, "error", err)
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	var open openControlChannel
	ws, ok := s.acceptOpening(w, r, &open)
	if ws == nil {
		return
	}
	if !ok || !s.claimControl(id, open.TokenValue, ws, open.AgentVersion) {
		s.log.Info("control channel: bad OpenControlChannel", "instance", id)
		_ = ws.Close(websocket.StatusPolicyViolation, "invalid token")
		return
	}
	s.log.Info("control channel: open", "instance", id, "agent_version", open.AgentVersion, "platform", open.PlatformType)
	defer s.dropControl(id, ws)
	for {
		_, b, err := ws.Read(s.ctx)
		if err != nil {
			s.log.Info("control channel: closed", "instance", id, "error", err)
			return
		}
		m, err := decode(b)
		if err != nil {
			s.log.Debug("control channel: dropped frame", "instance", id, "error", err)
			continue
		}
		s.controlMessage(id, ws, m)
	}
}

// claimControl uses up tok and makes ws the instance's control channel.
func (s *Server) claimControl(id, tok string, ws *websocket.Conn, version string) bool {
	s.mu.Lock()
	a := s.agents[id]
	if a == nil || a.offline || !a.ctlTokens[tok] {
		s.mu.Unlock()
		return false
	}
	delete(a.ctlTokens, tok)
	old := a.ctl
	a.ctl, a.version = ws, version
	s.mu.Unlock()
	if old != nil {
		_ = old.CloseNow()
	}
	return true
}

// dropControl forgets ws if it is still the instance's control channel.
func (s *Server) dropControl(id string, ws *websocket.Conn) {
	s.mu.Lock()
	if a := s.agents[id]; a != nil && a.ctl == ws {
		a.ctl = nil
	}
	s.mu.Unlock()
	_ = ws.CloseNow()
}

// taskComplete is the part of agent_task_complete the service reads.
type taskComplete struct {
	TaskId          string
	Topic           string
	FinalTaskStatus string
	Output          string
}

// controlMessage handles one message from an agent's control channel.
func (s *Server) controlMessage(id string, ws *websocket.Conn, m message) {
	switch m.Type {
	case "agent_task_complete":
		var tc taskComplete
		_ = json.Unmarshal(m.Payload, &tc)
		s.log.Info("control channel: task complete", "instance", id, "session", tc.TaskId, "status", tc.FinalTaskStatus)
		ack, _ := json.Marshal(map[string]any{"SchemaVersion": 1, "MessageId": m.ID.String(), "TaskId": tc.TaskId, "Topic": tc.Topic})
		s.writeControl(ws, message{Type: "agent_task_acknowledge", Schema: 1,
			Created: uint64(time.Now().UnixMilli()), ID: newUUID(), Payload: ack})
		if r := s.relay(tc.TaskId); r != nil {
			r.end(tc.Output, false)
		}
	case "agent_task_reply":
		s.log.Info("control channel: task reply", "instance", id)
	default:
		s.log.Info("control channel: ignored message", "instance", id, "type", m.Type)
	}
}

func (s *Server) writeControl(ws *websocket.Conn, m message) {
	if err := ws.Write(s.ctx, websocket.MessageBinary, encode(m)); err != nil {
		s.log.Info("control channel: write", "error", err)
	}
}

// sendControl sends a frame to the instance's agent over its control
// channel, if it has one open.
func (s *Server) sendControl(id string, frame []byte) bool {
	s.mu.Lock()
	var ws *websocket.Conn
	if a := s.agents[id]; a != nil {
		ws = a.ctl
	}
	s.mu.Unlock()
	if ws == nil {
		return false
	}
	return ws.Write(s.ctx, websocket.MessageBinary, frame) == nil
}

func (s *Server) serveCreateDataChannel(w http.ResponseWriter, r *http.Request) {
	if !s.verifyAgentCall(w, r) {
		return
	}
	rl := s.relay(r.PathValue("sid"))
	if rl == nil || rl.isEnded() {
		s.log.Info("mgs: data channel for an ended session", "session", r.PathValue("sid"))
		http.Error(w, "Session is already terminated", http.StatusBadRequest)
		return
	}
	writeChannelToken(w, rl.newAgentToken())
}

// serveRelayChannel serves a data-channel WebSocket of a relay session:
// the client's (the StreamUrl's exact query, token from StartSession or
// ResumeSession) or the agent's (signed, token from CreateDataChannel).
func (s *Server) serveRelayChannel(w http.ResponseWriter, r *http.Request, rl *relay) {
	agent := r.URL.RawQuery == "role=publish_subscribe"
	if !agent && r.URL.RawQuery != rl.rawQuery {
		s.log.Info("data channel: query mismatch", "session", rl.id, "got", r.URL.RawQuery)
		http.Error(w, `{"message":"invalid stream url"}`, http.StatusForbidden)
		return
	}
	if agent || r.Header.Get("Authorization") != "" {
		if err := s.verify(r, nil, "ssmmessages"); err != nil {
			s.log.Info("data channel: signature", "session", rl.id, "error", err)
			http.Error(w, `{"message":"`+err.Error()+`"}`, http.StatusForbidden)
			return
		}
	}
	var open openDataChannel
	ws, ok := s.acceptOpening(w, r, &open)
	if ws == nil {
		return
	}
	if !ok {
		_ = ws.CloseNow()
		return
	}
	sd, ok := rl.claim(open.TokenValue)
	if !ok || (sd == agentSide) != agent {
		s.log.Info("data channel: bad OpenDataChannel", "session", rl.id)
		_ = ws.Close(websocket.StatusPolicyViolation, "invalid token")
		return
	}
	if sd == clientSide {
		s.log.Info("data channel: open", "session", rl.id, "client_version", open.ClientVersion)
	} else {
		s.log.Info("agent data channel: open", "session", rl.id)
	}
	if !rl.attach(sd, ws) {
		_ = ws.Close(websocket.StatusNormalClosure, "session terminated")
		return
	}
	defer rl.detach(sd, ws)
	for {
		_, b, err := ws.Read(rl.ctx)
		if err != nil {
			s.log.Info("data channel: closed", "session", rl.id, "side", sd, "error", err)
			return
		}
		rl.receive(sd, b)
	}
}

// relay returns the relay session sid, or nil.
func (s *Server) relay(sid string) *relay {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.relays[sid]
}

// acceptOpening accepts a channel's WebSocket and reads its opening
// frame, a JSON text frame, into v. It returns nil when the upgrade
// failed, and ok false when the opening frame was not one.
func (s *Server) acceptOpening(w http.ResponseWriter, r *http.Request, v any) (ws *websocket.Conn, ok bool) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return nil, false
	}
	ws.SetReadLimit(maxFrame)
	typ, b, err := ws.Read(s.ctx)
	return ws, err == nil && typ == websocket.MessageText && json.Unmarshal(b, v) == nil
}
