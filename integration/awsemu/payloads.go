package awsemu

import (
	"encoding/binary"
	"encoding/json"
	"strconv"
	"time"
)

// ackContent is the acknowledge payload (§4.3); field order is the wire order.
type ackContent struct {
	AcknowledgedMessageType           string
	AcknowledgedMessageId             string
	AcknowledgedMessageSequenceNumber int64
	IsSequentialMessage               bool
}

// ackFor builds the acknowledge message for m (header Seq 0, Flags 3).
func ackFor(m message, now time.Time) message {
	p, _ := json.Marshal(ackContent{m.Type, m.ID.String(), m.Seq, true})
	return message{Type: typeAck, Schema: 1, Created: uint64(now.UnixMilli()),
		Flags: 3, ID: newUUID(), Payload: p}
}

// handshakeRequest is the agent's PT 5 payload for a Port session (§5.2).
type handshakeRequest struct {
	AgentVersion           string
	RequestedClientActions []requestedAction
}

type requestedAction struct {
	ActionType       string
	ActionParameters sessionTypeParams
}

type sessionTypeParams struct {
	SessionType string
	Properties  map[string]string
}

// handshakeResponse is the client's PT 6 payload.
type handshakeResponse struct {
	ClientVersion          string
	ProcessedClientActions []struct {
		ActionType   string
		ActionStatus int
		Error        string
	}
	Errors []string
}

// handshakeComplete is the agent's PT 7 payload.
type handshakeComplete struct {
	HandshakeTimeToComplete time.Duration
	CustomerMessage         string
}

// channelClosed is the service's channel_closed payload (§4.1).
type channelClosed struct {
	MessageId     string
	CreatedDate   string
	DestinationId string
	SessionId     string
	MessageType   string
	SchemaVersion int
	Output        string
}

func channelClosedMsg(sid, target, output string, now time.Time) message {
	id := newUUID()
	p, _ := json.Marshal(channelClosed{id.String(), strconv.FormatInt(now.UnixMilli(), 10),
		target, sid, typeChannelClosed, 1, output})
	return message{Type: typeChannelClosed, Schema: 1, Created: uint64(now.UnixMilli()), ID: id, Payload: p}
}

func flagValue(p []byte) (uint32, bool) {
	if len(p) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(p), true
}
