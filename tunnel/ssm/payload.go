package ssm

import (
	"encoding/json"
	"fmt"
)

// PayloadType says what a Message's payload holds (§4.2).
type PayloadType uint32

// Payload types, identical in the plugin and the agent.
const (
	PayloadNone                 PayloadType = 0  // acks, channel_closed, publication control
	PayloadOutput               PayloadType = 1  // stream bytes, both directions
	PayloadError                PayloadType = 2  // shell (legacy)
	PayloadSize                 PayloadType = 3  // shell terminal size
	PayloadParameter            PayloadType = 4  // reserved
	PayloadHandshakeRequest     PayloadType = 5  // agent -> client, JSON
	PayloadHandshakeResponse    PayloadType = 6  // client -> agent, JSON
	PayloadHandshakeComplete    PayloadType = 7  // agent -> client, JSON
	PayloadEncChallengeRequest  PayloadType = 8  // agent -> client, JSON
	PayloadEncChallengeResponse PayloadType = 9  // client -> agent, JSON
	PayloadFlag                 PayloadType = 10 // a StreamFlag
	PayloadStdErr               PayloadType = 11 // agent -> client
	PayloadExitCode             PayloadType = 12 // agent -> client
)

// AcknowledgeContent is the JSON payload of an acknowledge message (§4.3).
// The receiver of an ack matches on AcknowledgedMessageSequenceNumber
// alone; the header's sequence number is always 0.
type AcknowledgeContent struct {
	MessageType    string `json:"AcknowledgedMessageType"`           // type of the acked message
	MessageID      string `json:"AcknowledgedMessageId"`             // canonical id of the acked message
	SequenceNumber int64  `json:"AcknowledgedMessageSequenceNumber"` // what the receiver matches on
	IsSequential   bool   `json:"IsSequentialMessage"`               // always true
}

// ChannelClosed is the JSON payload of a channel_closed message (§4.1).
type ChannelClosed struct {
	MessageID     string `json:"MessageId"`
	CreatedDate   string `json:"CreatedDate"`
	DestinationID string `json:"DestinationId"` // the target
	SessionID     string `json:"SessionId"`
	MessageType   string `json:"MessageType"` // "channel_closed"
	SchemaVersion int    `json:"SchemaVersion"`
	Output        string `json:"Output"` // a human-readable reason, may be empty
}

// OpenDataChannel is the JSON of the first, text, frame a client sends on
// a data channel (§2.2). Key order is that of the reference client.
type OpenDataChannel struct {
	MessageSchemaVersion string `json:"MessageSchemaVersion"` // "1.0"
	RequestID            string `json:"RequestId"`            // a fresh random UUID per send
	TokenValue           string `json:"TokenValue"`           // from StartSession or ResumeSession
	ClientID             string `json:"ClientId"`             // a random UUID, the same on every reconnect
	ClientVersion        string `json:"ClientVersion"`
}

// ackPayload returns the acknowledge content for m.
func ackPayload(m *Message) ([]byte, error) {
	return json.Marshal(AcknowledgeContent{
		MessageType:    m.Type,
		MessageID:      m.MessageID.String(),
		SequenceNumber: m.SequenceNumber,
		IsSequential:   true,
	})
}

// parseAck returns the sequence number an acknowledge message acknowledges.
func parseAck(m *Message) (int64, error) {
	var ac AcknowledgeContent
	if err := json.Unmarshal(m.Payload, &ac); err != nil {
		return 0, fmt.Errorf("ssm: acknowledge payload: %w", err)
	}
	return ac.SequenceNumber, nil
}

// parseChannelClosed reads a channel_closed payload, tolerating one that
// is empty or not JSON: the session is over either way.
func parseChannelClosed(m *Message) ChannelClosed {
	var cc ChannelClosed
	if err := json.Unmarshal(m.Payload, &cc); err != nil {
		cc.Output = ""
	}
	return cc
}
