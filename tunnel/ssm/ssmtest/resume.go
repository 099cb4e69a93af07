package ssmtest

import (
	"time"

	"github.com/coder/websocket"
)

// NewToken returns a fresh token that attaches the next WebSocket opened
// with it to s, as ResumeSession's TokenValue does. Each token is good once.
func (s *Session) NewToken() string {
	tok := "resume-" + randomID().String()
	s.a.mu.Lock()
	defer s.a.mu.Unlock()
	if s.a.resume == nil {
		s.a.resume = make(map[string]*Session)
	}
	s.a.resume[tok] = s
	return tok
}

// Break drops the current WebSocket without a close handshake, as a
// network failure or the service's hourly recycle does. The session
// lives on, waiting for the client to resume it with a NewToken.
func (s *Session) Break() {
	s.wmu.Lock()
	ws := s.ws
	s.wmu.Unlock()
	s.mu.Lock()
	s.broken = ws
	s.mu.Unlock()
	ws.CloseNow()
}

// Upgrades returns the WebSockets opened for s so far, the first one first.
func (s *Session) Upgrades() []Upgrade {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Upgrade(nil), s.upgrades...)
}

// socketEnded ends the session when ws ended other than by Break or,
// with Agent.KeepOnDrop, a drop by the client.
func (s *Session) socketEnded(ws *websocket.Conn, err error) {
	s.mu.Lock()
	broken := s.broken == ws || s.a.KeepOnDrop && websocket.CloseStatus(err) == -1 && s.ctx.Err() == nil
	if broken {
		s.broken = ws
	}
	s.mu.Unlock()
	if !broken {
		s.cancel()
	}
}

// reattach makes ws the session's socket, resends every unacknowledged
// message on it, as the agent does after reconnecting, and reads it until
// it ends.
func (s *Session) reattach(ws *websocket.Conn, up Upgrade) {
	defer ws.CloseNow()
	s.wmu.Lock()
	s.ws, s.held = ws, nil
	s.wmu.Unlock()
	s.mu.Lock()
	s.upgrades = append(s.upgrades, up)
	s.broken = nil
	var frames [][]byte
	for _, u := range s.unacked {
		u.last = time.Now()
		frames = append(frames, u.frame)
	}
	s.mu.Unlock()
	for _, f := range frames {
		s.write(f)
	}
	s.readLoop(ws)
}
