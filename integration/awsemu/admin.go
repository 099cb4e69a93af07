package awsemu

import (
	"net/http"

	"github.com/coder/websocket"
)

// Emulator-private fault injection, POST adminPath<action>:
//
//	drop?session=ID            break the session's WebSocket (session kept)
//	bye?session=ID             close it with 1000 "Bye" like the hourly recycle
//	fault?target=i-…&error=E   E = AccessDenied | TargetNotConnected | "" (clear)
//	disconnect?target=i-…      mark the instance's agent offline (connect: online)
const adminPath = "/_awsemu/admin/"

func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var ok bool
	switch r.PathValue("action") {
	case "drop":
		ok = s.closeWebSocket(q.Get("session"), false)
	case "bye":
		ok = s.closeWebSocket(q.Get("session"), true)
	case "fault":
		ok = s.setFault(q.Get("target"), q.Get("error"))
	case "disconnect", "connect":
		s.mu.Lock()
		s.offline[q.Get("target")] = r.PathValue("action") == "disconnect"
		s.mu.Unlock()
		ok = true
	}
	if !ok {
		http.Error(w, "bad admin request", http.StatusBadRequest)
		return
	}
	s.log.Info("admin", "action", r.PathValue("action"), "query", r.URL.RawQuery)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) setFault(target, kind string) bool {
	switch kind {
	case "", "AccessDenied", "TargetNotConnected":
	default:
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if kind == "" {
		delete(s.faults, target)
	} else {
		s.faults[target] = kind
	}
	return true
}

func (s *Server) closeWebSocket(sid string, bye bool) bool {
	s.mu.Lock()
	ss := s.sessions[sid]
	s.mu.Unlock()
	if ss == nil {
		return false
	}
	ss.mu.Lock()
	ws := ss.ws
	ss.mu.Unlock()
	if ws == nil {
		return true
	}
	if bye {
		_ = ws.Close(websocket.StatusNormalClosure, "Bye")
		return true
	}
	_ = ws.CloseNow()
	return true
}
