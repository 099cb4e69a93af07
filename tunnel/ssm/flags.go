package ssm

import (
	"encoding/binary"
	"fmt"
)

// Flags is the header flags field of a Message (§3.3). Nobody branches on
// it when reading; writers follow the reference client: data 0, acks 3.
type Flags uint64

// Header flag bits.
const (
	FlagSYN Flags = 1 // first message of a stream (the agent's sequence 0)
	FlagFIN Flags = 2 // final message
	// FlagsAck is what both sides put on acknowledge messages.
	FlagsAck = FlagSYN | FlagFIN
)

// StreamFlag is the payload of a PayloadFlag message: a 4-byte big-endian
// number (§4.2, §6.6).
type StreamFlag uint32

// Stream flags.
const (
	// DisconnectToPort asks an agent in basic mode to close its connection
	// to the destination port (client -> agent).
	DisconnectToPort StreamFlag = 1
	// TerminateSession asks the agent to end the session (client -> agent).
	TerminateSession StreamFlag = 2
	// ConnectToPortError reports that the agent could not reach the
	// destination port for a multiplexed stream (agent -> client).
	ConnectToPortError StreamFlag = 3
)

// String returns the flag's name in the reference sources.
func (f StreamFlag) String() string {
	switch f {
	case DisconnectToPort:
		return "DisconnectToPort"
	case TerminateSession:
		return "TerminateSession"
	case ConnectToPortError:
		return "ConnectToPortError"
	}
	return fmt.Sprintf("StreamFlag(%d)", uint32(f))
}

// MarshalBinary returns the 4-byte payload of a flag message.
func (f StreamFlag) MarshalBinary() ([]byte, error) {
	return binary.BigEndian.AppendUint32(nil, uint32(f)), nil
}

// ParseStreamFlag decodes the payload of a PayloadFlag message.
func ParseStreamFlag(payload []byte) (StreamFlag, error) {
	if len(payload) != 4 {
		return 0, fmt.Errorf("ssm: flag payload of %d bytes, want 4", len(payload))
	}
	return StreamFlag(binary.BigEndian.Uint32(payload)), nil
}
