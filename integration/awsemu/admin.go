package awsemu

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Emulator-private fault injection, POST adminPath<action>:
//
//	drop?session=ID[&side=agent]
//	                           break the session's WebSocket (session kept): the
//	                           client's, or with a real agent the agent's
//	bye?session=ID[&side=agent] close it with 1000 "Bye" like the hourly recycle
//	delay?[session=ID&]d=D     relay every frame of a real agent's session D
//	                           late, both ways (d=0: none); without a session,
//	                           every session's, present and future
//	fault?target=i-…&error=E[&after=N]
//	                           StartSession for the instance fails with E =
//	                           AccessDenied | TargetNotConnected | Throttling
//	                           (HTTP 400 ThrottlingException "Rate exceeded",
//	                           as the service answers a burst of starts) | ""
//	                           (clear); with after=N, the first N starts from
//	                           now on pass and the fault applies to the rest
//	disconnect?target=i-…      mark the instance's agent offline (connect: online);
//	                           a real agent's control channel is closed and
//	                           refused until connect, so PingStatus turns
//	                           ConnectionLost
//	frames?[session=ID&]F      frame faults F (see ParseFrameFaults), e.g.
//	                           drop-out=1/50&ack-delay=300ms, replacing those in
//	                           force; none clears them. Without a session they
//	                           apply to every session, present and future, that
//	                           has none of its own. Replacing faults logs their
//	                           counters ("frame faults"), as does a session end.
//	pause?[session=ID&][for=D&][zero=1]
//	                           send pause_publication and pause the agent (§4.7)
//	                           until start, input, an ack, a reconnect or D;
//	                           zero=1 sends the zero-field form
//	start?[session=ID&][zero=1] send start_publication and resume the agent
//	pacing?mode=real|none      the agent's pacing (Config.Pacing) from now on
//	preferences?[idle-timeout=D&][max-duration=D]
//	                           the account's session preferences from now on
//	                           (Config.IdleTimeout, MaxSessionDuration; 0: off)
//	latency?op=TARGET&d=D      answer the calls of X-Amz-Target TARGET (e.g.
//	                           AmazonSSM.ResumeSession) D late; d=0 clears
//	terminate?session=ID[&output=TEXT]
//	                           end the session from the service side, as an
//	                           administrator or a timeout does: channel_closed
//	                           with TEXT to the client
//	eice?endpoint=ID&mode=M[&status=N][&reason=TEXT][&after=D]
//	                           the EC2 Instance Connect Endpoint's tunnels from
//	                           now on: refuse (HTTP N, default 403, with TEXT),
//	                           close (close code 1011 with TEXT after the
//	                           upgrade), expire (end after D, code 1008), none
//	quota?[instances=N][&vcpus=N]
//	                           the account's quotas from now on: RunInstances
//	                           refuses with InstanceLimitExceeded beyond N
//	                           pending or running instances, VcpuLimitExceeded
//	                           beyond N vCPUs of them (0: no limit)
//	consistency?[calls=N][&for=D]
//	                           EC2's eventual consistency from now on: an
//	                           instance RunInstances launches is unknown
//	                           (InvalidInstanceID.NotFound) to the first N
//	                           DescribeInstances, TerminateInstances and
//	                           CreateTags calls naming it, and for D after
//	                           its launch; calls=0&for=0s: seen at once
//	eice?endpoint=ID&state=S   the endpoint's state from now on (create-complete,
//	                           update-in-progress, delete-in-progress, ...):
//	                           create-complete and update-* open tunnels
//	eice?endpoint=ID&max_duration=N
//	                           the caller's IAM condition from now on: a tunnel
//	                           asking for more than N seconds (3600 when it
//	                           asks for none) is denied; 0 lifts it
//
// Without a session, pause and start act on every open session.
const adminPath = "/_awsemu/admin/"

// errNoSession reports an admin request for a session the emulator has not.
var errNoSession = errors.New("no such session")

func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var err error
	switch r.PathValue("action") {
	case "drop", "bye":
		err = s.closeWebSocket(q.Get("session"), q.Get("side"), r.PathValue("action") == "bye")
	case "delay":
		err = s.setDelay(q)
	case "fault":
		err = s.setFault(q)
	case "disconnect", "connect":
		s.setOffline(q.Get("target"), r.PathValue("action") == "disconnect")
	case "frames":
		err = s.setFrameFaults(q)
	case "eice":
		err = s.setEICEFault(q)
	case "quota":
		err = s.setQuota(q)
	case "consistency":
		err = s.setConsistency(q)
	case "pause", "start":
		err = s.publication(q, r.PathValue("action") == "pause")
	case "pacing":
		err = s.setPacing(q.Get("mode"))
	case "latency":
		var d time.Duration
		if d, err = time.ParseDuration(q.Get("d")); err != nil || d < 0 || q.Get("op") == "" {
			err = errors.New("want op=X-Amz-Target&d=DURATION")
			break
		}
		s.mu.Lock()
		s.delays[q.Get("op")] = d
		s.mu.Unlock()
	case "preferences":
		err = s.setPreferences(q)
	case "terminate":
		if rl := s.relay(q.Get("session")); rl != nil {
			rl.end(q.Get("output"), true)
			break
		}
		ss := s.session(q.Get("session"))
		if ss == nil {
			err = errNoSession
			break
		}
		ss.end(q.Get("output"))
	default:
		err = errors.New("unknown action")
	}
	if err != nil {
		http.Error(w, fmt.Sprintf("bad admin request %s?%s: %v", r.PathValue("action"), r.URL.RawQuery, err), http.StatusBadRequest)
		return
	}
	s.log.Info("admin", "action", r.PathValue("action"), "query", r.URL.RawQuery)
	w.WriteHeader(http.StatusNoContent)
}

// setPreferences is the admin action preferences.
func (s *Server) setPreferences(q url.Values) error {
	for key, v := range map[string]*atomic.Int64{"idle-timeout": &s.idle, "max-duration": &s.maxAge} {
		if !q.Has(key) {
			continue
		}
		d, err := time.ParseDuration(q.Get(key))
		if err != nil || d < 0 {
			return fmt.Errorf("%s: want a duration such as 20m, 0 for off", key)
		}
		if d == 0 && key == "idle-timeout" {
			d = -1 // stored negative: off
		}
		v.Store(int64(d))
	}
	return nil
}

// startFault is a StartSession error forced for one instance by the
// admin action fault: kind, once after starts have passed.
type startFault struct {
	kind   string // AccessDenied, TargetNotConnected or Throttling
	after  int    // starts to let pass before the fault applies
	passed int    // starts let pass so far
}

// setFault is the admin action fault.
func (s *Server) setFault(q url.Values) error {
	target, kind := q.Get("target"), q.Get("error")
	switch kind {
	case "", "AccessDenied", "TargetNotConnected", "Throttling":
	default:
		return fmt.Errorf("unknown error %q (want AccessDenied, TargetNotConnected, Throttling or none to clear)", kind)
	}
	if target == "" {
		return errors.New("want target=INSTANCE-ID")
	}
	f := &startFault{kind: kind}
	if v := q.Get("after"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("after %q: want a count of starts, 0 or more", v)
		}
		f.after = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if kind == "" {
		delete(s.faults, target)
	} else {
		s.faults[target] = f
	}
	return nil
}

func (s *Server) closeWebSocket(sid, sideName string, bye bool) error {
	if rl := s.relay(sid); rl != nil {
		switch sideName {
		case "", "client":
			rl.dropSide(clientSide, bye)
		case "agent":
			rl.dropSide(agentSide, bye)
		default:
			return fmt.Errorf("side %q: want client or agent", sideName)
		}
		return nil
	}
	if sideName != "" && sideName != "client" {
		return errors.New("side=agent needs a session with a real agent")
	}
	ss := s.session(sid)
	if ss == nil {
		return errNoSession
	}
	ss.mu.Lock()
	ws := ss.ws
	ss.mu.Unlock()
	if ws == nil {
		return nil
	}
	if bye {
		_ = ws.Close(websocket.StatusNormalClosure, "Bye")
		return nil
	}
	_ = ws.CloseNow()
	return nil
}

// setFrameFaults is the admin action frames.
func (s *Server) setFrameFaults(q url.Values) error {
	f, err := ParseFrameFaults(q, "session")
	if err != nil {
		return err
	}
	sid := q.Get("session")
	if sid != "" {
		ss := s.session(sid)
		if ss == nil {
			return errNoSession
		}
		ss.setFaults(f, true)
		return nil
	}
	s.mu.Lock()
	s.frames = f
	s.mu.Unlock()
	for _, ss := range s.targets("") {
		ss.setFaults(f, false)
	}
	return nil
}

// publication is the admin actions pause and start.
func (s *Server) publication(q url.Values, pause bool) error {
	var d time.Duration
	if v := q.Get("for"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return err
		}
	}
	list := s.targets(q.Get("session"))
	if q.Get("session") != "" && len(list) == 0 {
		return errNoSession
	}
	for _, ss := range list {
		ss.publication(pause, q.Get("zero") == "1", d)
	}
	return nil
}

// setPacing is the admin action pacing.
func (s *Server) setPacing(mode string) error {
	if mode != "real" && mode != "none" {
		return fmt.Errorf("pacing mode %q: want real or none", mode)
	}
	s.pacing.Store(mode == "real")
	return nil
}

// session returns the session sid, or nil.
func (s *Server) session(sid string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[sid]
}

// targets returns the session sid, or every session not ended when sid is
// empty.
func (s *Server) targets(sid string) []*session {
	if sid != "" {
		if ss := s.session(sid); ss != nil {
			return []*session{ss}
		}
		return nil
	}
	s.mu.Lock()
	list := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		list = append(list, ss)
	}
	s.mu.Unlock()
	live := list[:0]
	for _, ss := range list {
		if !ss.isEnded() {
			live = append(live, ss)
		}
	}
	return live
}

// setDelay is the admin action delay.
func (s *Server) setDelay(q url.Values) error {
	d, err := time.ParseDuration(q.Get("d"))
	if err != nil || d < 0 {
		return errors.New("want d=DURATION")
	}
	var list []*relay
	if sid := q.Get("session"); sid != "" {
		rl := s.relay(sid)
		if rl == nil {
			return errNoSession
		}
		list = append(list, rl)
	} else {
		s.delay.Store(int64(d)) // and sessions started from now on
		s.mu.Lock()
		for _, rl := range s.relays {
			list = append(list, rl)
		}
		s.mu.Unlock()
	}
	for _, rl := range list {
		rl.setDelay(d)
	}
	return nil
}

// setOffline marks target's agent offline or online again. A real
// agent's control channel is closed and refused while offline.
func (s *Server) setOffline(target string, offline bool) {
	s.mu.Lock()
	s.offline[target] = offline
	var ctl interface{ CloseNow() error }
	if a := s.agents[target]; a != nil {
		a.offline = offline
		if offline && a.ctl != nil {
			ctl = a.ctl
		}
	}
	s.mu.Unlock()
	if ctl != nil {
		_ = ctl.CloseNow()
	}
}
