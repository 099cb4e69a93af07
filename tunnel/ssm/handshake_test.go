package ssm

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// Renderings from SSM-PROTOCOL.md §5.2 and §2.2.
const (
	sshRequest    = `{"AgentVersion":"3.3.1142.0","RequestedClientActions":[{"ActionType":"SessionType","ActionParameters":{"SessionType":"Port","Properties":{"portNumber":"22"}}}]}`
	remoteRequest = `{"AgentVersion":"3.3.1142.0","RequestedClientActions":[{"ActionType":"SessionType","ActionParameters":{"SessionType":"Port","Properties":{"host":"db.internal","localPortNumber":"15432","portNumber":"5432","type":"LocalPortForwarding"}}}]}`
	kmsAction     = `{"ActionType":"KMSEncryption","ActionParameters":{"KMSKeyId":"arn:aws:kms:eu-west-1:1:key/k","Challenge":"AAAAAAAAAAAAAAAAAAAAAA=="}}`
	okResponse    = `{"ClientVersion":"1.2.0.0","ProcessedClientActions":[{"ActionType":"SessionType","ActionStatus":1,"ActionResult":null,"Error":""}],"Errors":null}`
	completeJSON  = `{"HandshakeTimeToComplete":1500000000,"CustomerMessage":""}`
)

func TestPayloadRenderings(t *testing.T) {
	var req HandshakeRequest
	if err := json.Unmarshal([]byte(sshRequest), &req); err != nil {
		t.Fatal(err)
	}
	var hc HandshakeComplete
	if err := json.Unmarshal([]byte(completeJSON), &hc); err != nil || hc.HandshakeTimeToComplete != 1500*time.Millisecond {
		t.Fatalf("HandshakeComplete = %+v, %v", hc, err)
	}
	open := OpenDataChannel{MessageSchemaVersion: "1.0", RequestID: "r", TokenValue: "t", ClientID: "c", ClientVersion: "1.3.0.0"}
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"handshake request", req, sshRequest},
		{"handshake complete", hc, completeJSON},
		{"open data channel", open, `{"MessageSchemaVersion":"1.0","RequestId":"r","TokenValue":"t","ClientId":"c","ClientVersion":"1.3.0.0"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.v)
			if err != nil || string(got) != tt.want {
				t.Errorf("got %s, %v\nwant %s", got, err, tt.want)
			}
		})
	}
}

func TestAnswer(t *testing.T) {
	withKMS := strings.Replace(sshRequest, "}}}]}", "}}},"+kmsAction+"]}", 1)
	shell := strings.Replace(sshRequest, `"Port"`, `"Standard_Stream"`, 1)
	tests := []struct {
		name     string
		req      string
		version  string
		want     string // the response, exactly; empty: not checked
		statuses []ActionStatus
		refusal  error
	}{
		{name: "ssh", req: sshRequest, version: "1.2.0.0", want: okResponse, statuses: []ActionStatus{1}},
		{name: "remote host, basic", req: remoteRequest, version: DefaultClientVersion, statuses: []ActionStatus{1}},
		{name: "remote host, mux", req: remoteRequest, version: "1.2.0.0", statuses: []ActionStatus{3}, refusal: ErrUnsupportedSession},
		{name: "kms", req: withKMS, version: DefaultClientVersion, statuses: []ActionStatus{1, 3}, refusal: ErrKMSEncryption},
		{name: "shell", req: shell, version: DefaultClientVersion, statuses: []ActionStatus{3}, refusal: ErrUnsupportedSession},
		{name: "unknown action", req: `{"AgentVersion":"3","RequestedClientActions":[{"ActionType":"Teleport","ActionParameters":{}}]}`,
			version: DefaultClientVersion, statuses: []ActionStatus{3}, refusal: errors.New("")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req HandshakeRequest
			if err := json.Unmarshal([]byte(tt.req), &req); err != nil {
				t.Fatal(err)
			}
			resp, _, refusal := answer(&req, tt.version)
			got, _ := json.Marshal(resp)
			if tt.want != "" && string(got) != tt.want {
				t.Errorf("response %s\nwant %s", got, tt.want)
			}
			if len(resp.ProcessedClientActions) != len(tt.statuses) {
				t.Fatalf("response %s: want %d actions", got, len(tt.statuses))
			}
			for i, pa := range resp.ProcessedClientActions {
				if pa.ActionStatus != tt.statuses[i] || pa.ActionType != req.RequestedClientActions[i].ActionType {
					t.Errorf("action %d = %+v, want status %d", i, pa, tt.statuses[i])
				}
			}
			if (refusal == nil) != (tt.refusal == nil) || tt.refusal != nil && tt.refusal.Error() != "" && !errors.Is(refusal, tt.refusal) {
				t.Errorf("refusal %v, want %v", refusal, tt.refusal)
			}
		})
	}
}

func TestKMSRefusalText(t *testing.T) {
	const want = "the session document asks for KMS encryption, which vpcvpn does not support yet: use a document without it"
	if !strings.Contains(ErrKMSEncryption.Error(), want) {
		t.Errorf("ErrKMSEncryption = %q", ErrKMSEncryption)
	}
	var req HandshakeRequest
	json.Unmarshal([]byte(strings.Replace(sshRequest, "}}}]}", "}}},"+kmsAction+"]}", 1)), &req)
	resp, _, _ := answer(&req, DefaultClientVersion)
	if got := resp.ProcessedClientActions[1].Error; got != want {
		t.Errorf("error sent to the agent %q, want %q", got, want)
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.1.0.0", "1.1.70", -1},
		{"1.2.0.0", "1.1.70", 1},
		{"3.0.196.0", "3.0.196.0", 0},
		{"3.3.1142.0", "3.0.196.0", 1},
		{"1.1.70", "1.1.70.0", 0},
	}
	for _, tt := range tests {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestStreamFlag(t *testing.T) {
	b, _ := TerminateSession.MarshalBinary()
	if string(b) != "\x00\x00\x00\x02" {
		t.Errorf("TerminateSession = %x", b)
	}
	if f, err := ParseStreamFlag([]byte{0, 0, 0, 3}); err != nil || f != ConnectToPortError {
		t.Errorf("ParseStreamFlag = %v, %v", f, err)
	}
	if _, err := ParseStreamFlag([]byte{1}); err == nil {
		t.Error("a 1-byte flag parsed")
	}
}
