package awsemu

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
)

// AmazonSSM operations (SSM-PROTOCOL.md §1).

const sshDocument = "AWS-StartSSHSession"

func (s *Server) ssmService() jsonService {
	ops := map[string]operation{
		"StartSession":                s.recorded(s.startSession),
		"DescribeSessions":            s.describeSessions,
		"ResumeSession":               s.resumeSession,
		"TerminateSession":            s.terminateSession,
		"DescribeInstanceInformation": s.describeInstances,
		"GetParameter":                s.getParameter,
	}
	for name, op := range s.agentOps() {
		ops[name] = op
	}
	return jsonService{Prefix: "AmazonSSM", Signing: "ssm", Ops: ops,
		InstanceOps: map[string]func(string, []byte) (any, error){"RegisterManagedInstance": s.registerManagedInstance}}
}

type startSessionInput struct {
	Target       string
	DocumentName string
	Parameters   map[string][]string
	Reason       string
}

type sessionOutput struct {
	SessionId  string
	TokenValue string `json:",omitempty"`
	StreamUrl  string `json:",omitempty"`
}

func (s *Server) startSession(body []byte) (any, error) {
	var in startSessionInput
	if err := decodeBody(body, &in); err != nil {
		return nil, err
	}
	if isAgent, online := s.agentOnline(in.Target); isAgent {
		if err := s.targetFault(in.Target); err != nil {
			return nil, err
		}
		if !online {
			return nil, badRequest("TargetNotConnected", "%s is not connected.", in.Target)
		}
		return s.startRelay(in)
	}
	if in.DocumentName != sshDocument {
		return nil, badRequest("InvalidDocument", "Document %s is not supported by the emulator (only %s).", in.DocumentName, sshDocument)
	}
	port := "22"
	if p := in.Parameters["portNumber"]; len(p) == 1 {
		port = p[0]
	}
	dest, err := s.checkTarget(in.Target)
	if err != nil {
		return nil, err
	}
	sid := "awsemu-" + randomHex(17)
	streamURL := "wss://" + s.streamHost() + "/v1/data-channel/" + sid + "?" + streamQuery()
	ss := newSession(s, sid, in.Target, dest, map[string]string{"portNumber": port}, streamURL)
	s.mu.Lock()
	ss.fl = newFaulter(s.frames)
	s.sessions[sid] = ss
	s.mu.Unlock()
	ss.start()
	return sessionOutput{sid, ss.newToken(), streamURL}, nil
}

// targetFault returns the StartSession error the admin action fault set
// for target, or nil; a start it lets pass counts towards the fault's
// after.
func (s *Server) targetFault(target string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults[target]
	if f == nil {
		return nil
	}
	if f.passed < f.after {
		f.passed++
		return nil
	}
	switch f.kind {
	case "AccessDenied":
		return &apiError{http.StatusBadRequest, "AccessDeniedException",
			"User is not authorized to perform: ssm:StartSession on resource: " + target}
	case "TargetNotConnected":
		return badRequest("TargetNotConnected", "%s is not connected.", target)
	case "Throttling":
		return badRequest("ThrottlingException", "Rate exceeded")
	}
	return nil
}

// checkTarget returns the instance's destination or the service's error.
func (s *Server) checkTarget(target string) (string, error) {
	if err := s.targetFault(target); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dest, ok := s.cfg.Instances[target]
	if !ok || s.offline[target] {
		return "", badRequest("TargetNotConnected", "%s is not connected.", target)
	}
	return dest, nil
}

// streamHost is the listen address, with an unspecified IP (0.0.0.0, ::)
// replaced by loopback so that the StreamUrl is dialable.
func (s *Server) streamHost() string {
	host, port, _ := net.SplitHostPort(s.Addr())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// streamQuery is the observed 2025 query: role plus an opaque cell-number
// containing + / = so that clients which re-encode the URL are caught.
func streamQuery() string {
	b := make([]byte, 13)
	_, _ = rand.Read(b)
	return "role=publish_subscribe&cell-number=AQ+x/" + base64.StdEncoding.EncodeToString(b)
}

func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

type sessionIDInput struct{ SessionId string }

func (s *Server) lookup(body []byte) (*session, string, error) {
	var in sessionIDInput
	if err := decodeBody(body, &in); err != nil {
		return nil, "", err
	}
	s.mu.Lock()
	ss := s.sessions[in.SessionId]
	s.mu.Unlock()
	return ss, in.SessionId, nil
}

func (s *Server) resumeSession(body []byte) (any, error) {
	ss, sid, err := s.lookup(body)
	if err != nil {
		return nil, err
	}
	if r := s.relay(sid); r != nil {
		if r.isEnded() {
			return sessionOutput{SessionId: sid}, nil
		}
		r.touch() // a resume counts as activity
		return sessionOutput{sid, r.newClientToken(), r.streamURL}, nil
	}
	if ss == nil {
		return nil, badRequest("DoesNotExistException", "Session with id %s does not exist.", sid)
	}
	if ss.isEnded() {
		return sessionOutput{SessionId: sid}, nil
	}
	ss.touch() // a resume counts as activity
	return sessionOutput{sid, ss.newToken(), ss.streamURL}, nil
}

func (s *Server) terminateSession(body []byte) (any, error) {
	ss, sid, err := s.lookup(body)
	if err != nil {
		return nil, err
	}
	s.log.Info("terminate session", "session", sid) // the client asked; tests look for this line
	if ss != nil {
		ss.end("")
	}
	if r := s.relay(sid); r != nil {
		r.end("", true)
	}
	return sessionOutput{SessionId: sid}, nil
}
