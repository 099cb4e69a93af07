package awsemu

// DescribeSessions (SSM-PROTOCOL.md §1): the sessions started, with what
// StartSession was told, Reason included, as `aws ssm describe-sessions`
// and the Session Manager console show them; State Active lists those not
// ended, History those ended.

// sessionRecord is one StartSession that succeeded.
type sessionRecord struct {
	SessionId    string
	Target       string
	DocumentName string
	Reason       string `json:",omitempty"`
	Owner        string
	StartDate    float64 // epoch seconds, as the JSON protocol sends times
}

// recorded wraps StartSession so that each session it starts is recorded.
func (s *Server) recorded(start operation) operation {
	return func(body []byte) (any, error) {
		out, err := start(body)
		so, ok := out.(sessionOutput)
		if err != nil || !ok {
			return out, err
		}
		var in startSessionInput
		decodeBody(body, &in) // start has decoded it already
		now := s.now()
		s.mu.Lock()
		s.history = append(s.history, sessionRecord{
			SessionId: so.SessionId, Target: in.Target, DocumentName: in.DocumentName, Reason: in.Reason,
			Owner: "arn:aws:iam::" + imdsAccountID + ":user/vpcvpn-lab", StartDate: float64(now.UnixMilli()) / 1000,
		})
		s.mu.Unlock()
		s.log.Info("session started", "session", so.SessionId, "target", in.Target, "reason", in.Reason)
		return out, nil
	}
}

type describeSessionsInput struct {
	State   string
	Filters []struct{ Key, Value string }
}

type sessionInfo struct {
	sessionRecord
	Status string
}

func (s *Server) describeSessions(body []byte) (any, error) {
	var in describeSessionsInput
	if err := decodeBody(body, &in); err != nil {
		return nil, err
	}
	if in.State != "Active" && in.State != "History" {
		return nil, badRequest("ValidationException", "1 validation error detected: Value '%s' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [Active, History]", in.State)
	}
	for _, f := range in.Filters {
		if f.Key != "Target" && f.Key != "SessionId" && f.Key != "Owner" {
			return nil, badRequest("InvalidFilterKey", "The filter key %s is not supported by the emulator (Target, SessionId, Owner).", f.Key)
		}
	}
	s.mu.Lock()
	history := append([]sessionRecord(nil), s.history...)
	s.mu.Unlock()
	list := []sessionInfo{}
	for i := len(history) - 1; i >= 0; i-- { // newest first
		rec := history[i]
		status := "Terminated"
		if s.sessionActive(rec.SessionId) {
			status = "Connected"
		}
		if (status == "Connected") != (in.State == "Active") || !matches(rec, in.Filters) {
			continue
		}
		list = append(list, sessionInfo{rec, status})
	}
	return map[string]any{"Sessions": list}, nil
}

// sessionActive reports whether session sid has not ended.
func (s *Server) sessionActive(sid string) bool {
	if r := s.relay(sid); r != nil {
		return !r.isEnded()
	}
	ss := s.session(sid)
	return ss != nil && !ss.isEnded()
}

func matches(rec sessionRecord, filters []struct{ Key, Value string }) bool {
	for _, f := range filters {
		v := map[string]string{"Target": rec.Target, "SessionId": rec.SessionId, "Owner": rec.Owner}[f.Key]
		if v != f.Value {
			return false
		}
	}
	return true
}
