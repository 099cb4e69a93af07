package awsemu

import "time"

// The calls AWS's SSM agent makes besides MGS (README.md): SSM's
// RegisterManagedInstance, UpdateInstanceInformation (its health ping,
// which PingStatus reports) and ListInstanceAssociations, and
// ec2messages' long poll for Run Command messages, which has none to give.

// getMessagesPoll is how long GetMessages holds a poll before it answers
// with no messages (the service holds it up to about 20 s as well).
const getMessagesPoll = 20 * time.Second

func (s *Server) agentOps() map[string]operation {
	return map[string]operation{
		"UpdateInstanceInformation": s.updateInstanceInformation,
		"ListInstanceAssociations":  s.listInstanceAssociations,
		"PutInventory":              func([]byte) (any, error) { return map[string]any{}, nil },
		"PutComplianceItems":        func([]byte) (any, error) { return map[string]any{}, nil },
	}
}

type instanceInput struct {
	InstanceId   string
	AgentVersion string
	AgentName    string
	PlatformType string
}

// registerManagedInstance registers the instance whose identity
// credentials signed the call (a managed instance's id is its EC2 id): a
// launched instance becomes a managed one, its agent's control channel
// accepted from now on.
func (s *Server) registerManagedInstance(instance string, body []byte) (any, error) {
	var in struct{ PublicKey, PublicKeyType, Fingerprint string }
	if err := decodeBody(body, &in); err != nil {
		return nil, err
	}
	if instance == "" {
		return nil, badRequest("InvalidInstanceId", "RegisterManagedInstance is signed with an instance's identity credentials, not a user's")
	}
	s.mu.Lock()
	if s.agents[instance] == nil {
		s.agents[instance] = &agentState{ctlTokens: map[string]bool{}}
		s.log.Info("instance registered", "instance", instance)
	}
	s.mu.Unlock()
	return map[string]string{"InstanceId": instance}, nil
}

func (s *Server) updateInstanceInformation(body []byte) (any, error) {
	var in instanceInput
	if err := decodeBody(body, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.agents[in.InstanceId]
	if a == nil {
		return nil, badRequest("InvalidInstanceId", "Instance %s is not a managed instance of this account.", in.InstanceId)
	}
	a.pinged = time.Now()
	if in.AgentVersion != "" {
		a.version = in.AgentVersion
	}
	return map[string]any{}, nil
}

func (s *Server) listInstanceAssociations(body []byte) (any, error) {
	var in instanceInput
	if err := decodeBody(body, &in); err != nil {
		return nil, err
	}
	return map[string]any{"Associations": []any{}}, nil
}

// ec2messagesService is ec2messages (target prefix
// EC2WindowsMessageDeliveryService on every platform).
func (s *Server) ec2messagesService() jsonService {
	empty := func([]byte) (any, error) { return map[string]any{}, nil }
	return jsonService{Prefix: "EC2WindowsMessageDeliveryService", Signing: "ec2messages", Ops: map[string]operation{
		"GetMessages":        s.getMessages,
		"AcknowledgeMessage": empty,
		"SendReply":          empty,
		"FailMessage":        empty,
		"DeleteMessage":      empty,
		"GetEndpoint":        empty,
	}}
}

// getMessages is the long poll: it waits and answers with no messages.
func (s *Server) getMessages(body []byte) (any, error) {
	var in struct{ Destination, MessagesRequestId string }
	if err := decodeBody(body, &in); err != nil {
		return nil, err
	}
	select {
	case <-time.After(getMessagesPoll):
	case <-s.ctx.Done():
	}
	return map[string]any{"Destination": in.Destination, "Messages": []any{},
		"MessagesRequestId": in.MessagesRequestId}, nil
}

// startRelay starts a session on instance target's real agent: the
// document goes to the agent over its control channel, and the client
// gets the StreamUrl and token of its side of the relay.
func (s *Server) startRelay(in startSessionInput) (any, error) {
	doc, ok := sessionDocuments[in.DocumentName]
	if !ok {
		return nil, badRequest("InvalidDocument", "Document %s is not a session document the emulator knows.", in.DocumentName)
	}
	params, err := checkParameters(in.DocumentName, doc, in.Parameters)
	if err != nil {
		return nil, err
	}
	sid := "awsemu-" + randomHex(17)
	streamURL := "wss://" + s.streamHost() + "/v1/data-channel/" + sid + "?" + streamQuery()
	r := newRelay(s, sid, in.Target, in.DocumentName, streamURL)
	tok := r.newClientToken()
	s.mu.Lock()
	s.relays[sid] = r
	s.mu.Unlock()
	r.start()
	frame := encode(interactiveShell(sid, in.DocumentName, doc, params, "arn:aws:iam::"+imdsAccountID+":user/vpcvpn-lab"))
	if !s.sendControl(in.Target, frame) {
		r.end("The agent's control channel closed before the session started.", false)
		return nil, badRequest("TargetNotConnected", "%s is not connected.", in.Target)
	}
	s.log.Info("relay: session started", "session", sid, "target", in.Target, "document", in.DocumentName)
	return sessionOutput{sid, tok, streamURL}, nil
}

// agentOnline reports whether the instance's agent has its control
// channel open.
func (s *Server) agentOnline(id string) (isAgent, online bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.agents[id]
	if a == nil {
		return false, false
	}
	return true, a.ctl != nil && !a.offline
}
