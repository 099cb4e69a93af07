package ssm

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Action types of a HandshakeRequest (§5.2).
const (
	ActionSessionType   = "SessionType"
	ActionKMSEncryption = "KMSEncryption"
)

// ActionStatus is how the client answers one requested action. Any value
// other than ActionSuccess makes the agent abort the session.
type ActionStatus int

// Action statuses.
const (
	ActionSuccess     ActionStatus = 1
	ActionFailed      ActionStatus = 2
	ActionUnsupported ActionStatus = 3
)

// HandshakeRequest is the agent's first message (PayloadHandshakeRequest).
type HandshakeRequest struct {
	AgentVersion           string                  `json:"AgentVersion"`
	RequestedClientActions []RequestedClientAction `json:"RequestedClientActions"`
}

// RequestedClientAction is one action of a HandshakeRequest. Its
// parameters are a SessionTypeRequest or a KMSEncryptionRequest, by
// ActionType.
type RequestedClientAction struct {
	ActionType       string          `json:"ActionType"`
	ActionParameters json.RawMessage `json:"ActionParameters"`
}

// SessionTypeRequest are the parameters of a SessionType action: the
// session document's type and its properties after substitution, e.g.
// {"portNumber":"22"} for AWS-StartSSHSession.
type SessionTypeRequest struct {
	SessionType string         `json:"SessionType"`
	Properties  map[string]any `json:"Properties"`
}

// KMSEncryptionRequest are the parameters of a KMSEncryption action.
type KMSEncryptionRequest struct {
	KMSKeyID  string `json:"KMSKeyId"`
	Challenge string `json:"Challenge"`
}

// HandshakeResponse is the client's answer (PayloadHandshakeResponse): one
// ProcessedClientAction per requested action, in the same order.
type HandshakeResponse struct {
	ClientVersion          string                  `json:"ClientVersion"`
	ProcessedClientActions []ProcessedClientAction `json:"ProcessedClientActions"`
	Errors                 []string                `json:"Errors"`
}

// ProcessedClientAction answers one RequestedClientAction.
type ProcessedClientAction struct {
	ActionType   string          `json:"ActionType"`
	ActionStatus ActionStatus    `json:"ActionStatus"`
	ActionResult json.RawMessage `json:"ActionResult"` // null for SessionType
	Error        string          `json:"Error"`
}

// HandshakeComplete is the agent's last handshake message
// (PayloadHandshakeComplete).
type HandshakeComplete struct {
	HandshakeTimeToComplete time.Duration `json:"HandshakeTimeToComplete"` // nanoseconds
	CustomerMessage         string        `json:"CustomerMessage"`
}

// Handshake is what the agent said about the session during the handshake.
type Handshake struct {
	AgentVersion    string         // e.g. "3.3.1142.0"
	SessionType     string         // "Port" for the port documents
	Properties      map[string]any // the document's properties, e.g. portNumber
	CustomerMessage string         // shown to the user when not empty
}

// Session types and the property that selects multiplexing (§6.1).
const (
	sessionTypePort     = "Port"
	localPortForwarding = "LocalPortForwarding"
	// muxClientVersion is the lowest client version for which the agent
	// multiplexes a LocalPortForwarding session; muxAgentVersion the
	// highest agent version that does not.
	muxClientVersion = "1.1.70"
	muxAgentVersion  = "3.0.196.0"
)

// answer builds the response to req. It refuses (status Unsupported, and a
// non-nil error for Dial) what a plain byte stream cannot carry: sessions
// other than Port, multiplexed port forwarding, KMS encryption and unknown
// actions.
func answer(req *HandshakeRequest, clientVersion string) (HandshakeResponse, Handshake, error) {
	resp := HandshakeResponse{ClientVersion: clientVersion}
	info := Handshake{AgentVersion: req.AgentVersion}
	var refusals []error
	for _, a := range req.RequestedClientActions {
		err := processAction(a, req.AgentVersion, clientVersion, &info)
		pa := ProcessedClientAction{ActionType: a.ActionType, ActionStatus: ActionSuccess}
		if err != nil {
			pa.ActionStatus = ActionUnsupported
			pa.Error = strings.TrimPrefix(err.Error(), "ssm: ")
			resp.Errors = append(resp.Errors, pa.Error)
			refusals = append(refusals, err)
		}
		resp.ProcessedClientActions = append(resp.ProcessedClientActions, pa)
	}
	return resp, info, errors.Join(refusals...)
}

// processAction checks one requested action and records what it says in
// info; an error is the reason to refuse it.
func processAction(a RequestedClientAction, agentVersion, clientVersion string, info *Handshake) error {
	switch a.ActionType {
	case ActionKMSEncryption:
		return ErrKMSEncryption
	case ActionSessionType:
	default:
		return fmt.Errorf("ssm: the agent requested the handshake action %q, which vpcvpn does not know", a.ActionType)
	}
	var st SessionTypeRequest
	if err := json.Unmarshal(a.ActionParameters, &st); err != nil {
		return fmt.Errorf("ssm: session type parameters: %w", err)
	}
	info.SessionType, info.Properties = st.SessionType, st.Properties
	if st.SessionType != sessionTypePort {
		return fmt.Errorf("ssm: the session document starts a %q session, not a port session: %w",
			st.SessionType, ErrUnsupportedSession)
	}
	if st.Properties["type"] == localPortForwarding &&
		compareVersions(agentVersion, muxAgentVersion) > 0 &&
		compareVersions(clientVersion, muxClientVersion) >= 0 {
		return fmt.Errorf("ssm: the session document asks for multiplexed port forwarding, "+
			"which vpcvpn does not speak (use AWS-StartSSHSession): %w", ErrUnsupportedSession)
	}
	return nil
}

// compareVersions compares dot-separated numeric versions such as
// "3.0.196.0", treating missing or non-numeric components as 0.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		x, y := versionPart(as, i), versionPart(bs, i)
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func versionPart(parts []string, i int) uint64 {
	if i >= len(parts) {
		return 0
	}
	n, _ := strconv.ParseUint(parts[i], 10, 64)
	return n
}
