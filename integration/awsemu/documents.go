package awsemu

import (
	"encoding/json"
	"strings"
	"time"
)

// The AWS-owned session documents a real agent is sent (SSM-PROTOCOL.md
// §1.2), as `aws ssm get-document` shows them: parameters with defaults,
// properties with {{ }} placeholders that the agent substitutes.

type docParameter struct {
	Type           string `json:"type"`
	Description    string `json:"description"`
	AllowedPattern string `json:"allowedPattern,omitempty"`
	Default        string `json:"default,omitempty"`
}

type sessionDocument struct {
	SchemaVersion string                   `json:"schemaVersion"`
	Description   string                   `json:"description"`
	SessionType   string                   `json:"sessionType"`
	Parameters    map[string]*docParameter `json:"parameters"`
	Properties    map[string]string        `json:"properties"`
}

var (
	portParam = &docParameter{Type: "String", Description: "(Optional) Port number of the server on the instance",
		AllowedPattern: `^([1-9]|[1-9][0-9]{1,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$`}
	localPortParam = &docParameter{Type: "String", Description: "(Optional) Port number on local machine to forward traffic to. An open port is chosen at run-time if not provided",
		AllowedPattern: `^([0-9]|[1-9][0-9]{1,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$`, Default: "0"}
	hostParam = &docParameter{Type: "String", Description: "(Required) The IP address or DNS name of the remote host",
		AllowedPattern: `^[a-zA-Z0-9.\-:]{1,253}$`}
)

// sessionDocuments are the documents StartSession accepts for a real agent.
var sessionDocuments = map[string]sessionDocument{
	"AWS-StartSSHSession": {SchemaVersion: "1.0", SessionType: "Port",
		Description: "Document to start SSH session over Session Manager",
		Parameters:  map[string]*docParameter{"portNumber": withDefault(portParam, "22")},
		Properties:  map[string]string{"portNumber": "{{ portNumber }}"}},
	"AWS-StartPortForwardingSession": {SchemaVersion: "1.0", SessionType: "Port",
		Description: "Document to start port forwarding session over Session Manager",
		Parameters:  map[string]*docParameter{"portNumber": withDefault(portParam, "80"), "localPortNumber": localPortParam},
		Properties: map[string]string{"portNumber": "{{ portNumber }}", "type": "LocalPortForwarding",
			"localPortNumber": "{{ localPortNumber }}"}},
	"AWS-StartPortForwardingSessionToRemoteHost": {SchemaVersion: "1.0", SessionType: "Port",
		Description: "Document to start port forwarding session over Session Manager to a remote host",
		Parameters: map[string]*docParameter{"host": hostParam, "portNumber": withDefault(portParam, "80"),
			"localPortNumber": localPortParam},
		Properties: map[string]string{"host": "{{ host }}", "portNumber": "{{ portNumber }}",
			"type": "LocalPortForwarding", "localPortNumber": "{{ localPortNumber }}"}},
}

func withDefault(p *docParameter, def string) *docParameter {
	c := *p
	c.Default = def
	return &c
}

// agentTaskPayload is the Content of interactive_shell: the document and
// the session's parameters.
type agentTaskPayload struct {
	DocumentName    string
	DocumentContent sessionDocument
	SessionId       string
	Parameters      map[string]any
	RunAsUser       string
	SessionOwner    string
}

// checkParameters validates StartSession's parameters against doc: known
// names, one value each, required ones present. Values are passed on as
// strings, the documents' parameter type.
func checkParameters(name string, doc sessionDocument, in map[string][]string) (map[string]any, error) {
	out := map[string]any{}
	for k, v := range in {
		if doc.Parameters[k] == nil {
			return nil, badRequest("InvalidParameters", "Parameter %q is not defined in document %s.", k, name)
		}
		if len(v) != 1 {
			return nil, badRequest("InvalidParameters", "Parameter %q of document %s takes one value.", k, name)
		}
		out[k] = v[0]
	}
	for k, p := range doc.Parameters {
		if _, ok := out[k]; !ok && p.Default == "" && strings.HasPrefix(p.Description, "(Required)") {
			return nil, badRequest("InvalidParameters", "Parameter %q is required by document %s.", k, name)
		}
	}
	return out, nil
}

// interactiveShell builds the control-channel message that starts a
// session on the agent.
func interactiveShell(sid, name string, doc sessionDocument, params map[string]any, owner string) message {
	content, _ := json.Marshal(agentTaskPayload{DocumentName: name, DocumentContent: doc, SessionId: sid,
		Parameters: params, SessionOwner: owner})
	p, _ := json.Marshal(map[string]any{"Content": string(content), "TaskId": sid,
		"Topic": "aws.ssm.sessionManager." + sid, "SchemaVersion": 1})
	return message{Type: "interactive_shell", Schema: 1, Created: uint64(time.Now().UnixMilli()), ID: newUUID(), Payload: p}
}
