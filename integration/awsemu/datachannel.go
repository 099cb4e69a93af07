package awsemu

import (
	"encoding/json"
	"net/http"

	"github.com/coder/websocket"
)

// The ssmmessages data channel: GET /v1/data-channel/<sid>?<exact query>,
// WebSocket upgrade, a text OpenDataChannel frame with the current token,
// then binary AgentMessages both ways (§2).

type openDataChannel struct {
	MessageSchemaVersion string
	RequestId            string
	TokenValue           string
	ClientId             string
	ClientVersion        string
}

const maxFrame = 1 << 20

func (s *Server) serveDataChannel(w http.ResponseWriter, r *http.Request) {
	if !s.track() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	sid := r.PathValue("sid")
	if rl := s.relay(sid); rl != nil && !rl.isEnded() {
		s.serveRelayChannel(w, r, rl)
		return
	}
	s.mu.Lock()
	ss := s.sessions[sid]
	s.mu.Unlock()
	if ss == nil || ss.isEnded() {
		http.Error(w, `{"message":"session not found"}`, http.StatusNotFound)
		return
	}
	if r.URL.RawQuery != ss.rawQuery {
		s.log.Info("data channel: query mismatch", "session", sid, "got", r.URL.RawQuery)
		http.Error(w, `{"message":"invalid stream url"}`, http.StatusForbidden)
		return
	}
	if err := s.checkUpgradeSignature(r); err != nil {
		s.log.Info("data channel: signature", "session", sid, "error", err)
		http.Error(w, `{"message":"`+err.Error()+`"}`, http.StatusForbidden)
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.log.Info("data channel: upgrade", "session", sid, "error", err)
		return
	}
	ws.SetReadLimit(maxFrame)
	s.runDataChannel(ss, ws)
}

func (s *Server) runDataChannel(ss *session, ws *websocket.Conn) {
	typ, b, err := ws.Read(s.ctx)
	if err != nil {
		_ = ws.CloseNow()
		return
	}
	var open openDataChannel
	if typ != websocket.MessageText || json.Unmarshal(b, &open) != nil || !ss.consumeToken(open.TokenValue) {
		s.log.Info("data channel: bad OpenDataChannel", "session", ss.id)
		_ = ws.Close(websocket.StatusPolicyViolation, "invalid token")
		return
	}
	s.log.Info("data channel: open", "session", ss.id, "client_version", open.ClientVersion)
	if !ss.attach(ws) {
		_ = ws.Close(websocket.StatusNormalClosure, "session terminated")
		return
	}
	defer ss.detach(ws)
	for {
		_, b, err := ws.Read(s.ctx)
		if err != nil {
			s.log.Info("data channel: closed", "session", ss.id, "error", err)
			return
		}
		m, err := decode(b)
		if err != nil {
			s.log.Debug("data channel: dropped frame", "session", ss.id, "error", err)
			continue
		}
		for range ss.inbound(m) {
			ss.receive(m)
		}
	}
}

// checkUpgradeSignature verifies the optional SigV4 headers of the upgrade
// (service ssmmessages, empty payload, §2.1); unsigned upgrades pass, as
// the token alone authorizes the channel.
func (s *Server) checkUpgradeSignature(r *http.Request) error {
	if r.Header.Get("Authorization") == "" {
		return nil
	}
	return s.verify(r, nil, "ssmmessages")
}
