package ssm

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// Message types on a data channel (SSM-PROTOCOL.md §4.1).
const (
	TypeInputStreamData  = "input_stream_data"  // client -> agent, sequenced
	TypeOutputStreamData = "output_stream_data" // agent -> client, sequenced
	TypeAcknowledge      = "acknowledge"        // both ways, never sequenced
	TypeChannelClosed    = "channel_closed"     // service -> client
	TypeStartPublication = "start_publication"  // service -> client
	TypePausePublication = "pause_publication"  // service -> client
)

// Offsets of the AgentMessage header fields (§3.1). The payload length sits
// at the header length, which writers set to HeaderLength.
const (
	offType          = 4
	offSchemaVersion = 36
	offCreatedDate   = 40
	offSequence      = 48
	offFlags         = 56
	offMessageID     = 64
	offDigest        = 80
	offPayloadType   = 112
	// HeaderLength is the header length every writer puts in a frame: the
	// offset of the payload length field.
	HeaderLength = 116
	// minFrame is the shortest frame ParseMessage accepts: the fixed fields
	// up to and including the payload digest.
	minFrame = offPayloadType
	typeLen  = offSchemaVersion - offType
)

// UUID is a message id in its canonical (RFC 4122) byte order. On the wire
// its two 8-byte halves are swapped (§3.2); MarshalBinary and ParseMessage
// do the swap.
type UUID [16]byte

// String returns the canonical lowercase, hyphenated form.
func (u UUID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], u[10:16])
	return string(b[:])
}

// newUUID returns a random version 4 UUID.
func newUUID() UUID {
	var u UUID
	rand.Read(u[:]) // never fails (crypto/rand)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// Message is one AgentMessage, the unit carried by every binary frame of a
// data channel after OpenDataChannel.
type Message struct {
	// HeaderLength is the header length read from a frame. MarshalBinary
	// ignores it and always writes HeaderLength.
	HeaderLength   uint32
	Type           string // e.g. TypeOutputStreamData, at most 32 bytes
	SchemaVersion  uint32 // 1
	CreatedDate    uint64 // milliseconds since the Unix epoch
	SequenceNumber int64
	Flags          Flags
	MessageID      UUID
	// Digest is the SHA-256 read from a frame. MarshalBinary ignores it
	// and writes the digest of Payload.
	Digest      [32]byte
	PayloadType PayloadType
	Payload     []byte
}

// unixMilli returns t as CreatedDate wants it.
func unixMilli(t time.Time) uint64 { return uint64(t.UnixMilli()) }

// MarshalBinary encodes m as the writers of §3.5 do: header length 116,
// type space-padded to 32 bytes, digest over the payload.
func (m *Message) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, HeaderLength+4+len(m.Payload)))
}

// AppendBinary appends the encoding of m to b; see MarshalBinary.
func (m *Message) AppendBinary(b []byte) ([]byte, error) {
	if len(m.Type) > typeLen {
		return b, fmt.Errorf("ssm: message type %q is longer than %d bytes", m.Type, typeLen)
	}
	if uint64(len(m.Payload)) > 1<<32-1 {
		return b, fmt.Errorf("ssm: payload of %d bytes is too long", len(m.Payload))
	}
	b = binary.BigEndian.AppendUint32(b, HeaderLength)
	b = append(b, m.Type...)
	b = append(b, bytes.Repeat([]byte{' '}, typeLen-len(m.Type))...)
	b = binary.BigEndian.AppendUint32(b, m.SchemaVersion)
	b = binary.BigEndian.AppendUint64(b, m.CreatedDate)
	b = binary.BigEndian.AppendUint64(b, uint64(m.SequenceNumber))
	b = binary.BigEndian.AppendUint64(b, uint64(m.Flags))
	b = append(b, m.MessageID[8:16]...)
	b = append(b, m.MessageID[0:8]...)
	digest := sha256.Sum256(m.Payload)
	b = append(b, digest[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(m.PayloadType))
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Payload)))
	return append(b, m.Payload...), nil
}

// ParseMessage decodes a frame as tolerantly as the reference readers
// (§3.4): the payload length sits at the frame's own header length and the
// payload is everything after it, whatever the length field says; the type
// loses trailing NULs, then surrounding spaces; the payload type is read
// only when the header has room for it. Payload aliases frame. Call
// Validate before trusting the result.
func ParseMessage(frame []byte) (*Message, error) {
	if len(frame) < minFrame {
		return nil, fmt.Errorf("ssm: frame of %d bytes is shorter than a message header", len(frame))
	}
	hl := binary.BigEndian.Uint32(frame)
	if uint64(hl)+4 > uint64(len(frame)) {
		return nil, fmt.Errorf("ssm: header length %d overruns a frame of %d bytes", hl, len(frame))
	}
	m := &Message{
		HeaderLength:   hl,
		Type:           string(bytes.TrimSpace(bytes.TrimRight(frame[offType:offSchemaVersion], "\x00"))),
		SchemaVersion:  binary.BigEndian.Uint32(frame[offSchemaVersion:]),
		CreatedDate:    binary.BigEndian.Uint64(frame[offCreatedDate:]),
		SequenceNumber: int64(binary.BigEndian.Uint64(frame[offSequence:])),
		Flags:          Flags(binary.BigEndian.Uint64(frame[offFlags:])),
		Payload:        frame[hl+4:],
	}
	copy(m.MessageID[8:16], frame[offMessageID:])
	copy(m.MessageID[0:8], frame[offMessageID+8:])
	copy(m.Digest[:], frame[offDigest:])
	if hl >= HeaderLength {
		m.PayloadType = PayloadType(binary.BigEndian.Uint32(frame[offPayloadType:]))
	}
	return m, nil
}

// Validate applies the reference client's checks (§3.4): publication
// control messages pass as they are; others need a header length, a type
// and a creation date; sequenced messages and acknowledgements need a
// payload digest that matches. A frame that fails is dropped unacked, and
// the sender retransmits it.
func (m *Message) Validate() error {
	switch m.Type {
	case TypeStartPublication, TypePausePublication:
		return nil
	case "":
		return errEmptyType
	}
	if m.HeaderLength < minFrame {
		return fmt.Errorf("ssm: %s message with header length %d", m.Type, m.HeaderLength)
	}
	if m.CreatedDate == 0 {
		return fmt.Errorf("ssm: %s message without a creation date", m.Type)
	}
	switch m.Type {
	case TypeInputStreamData, TypeOutputStreamData, TypeAcknowledge:
		if sha256.Sum256(m.Payload) != m.Digest {
			return fmt.Errorf("ssm: %s message %d: %w", m.Type, m.SequenceNumber, ErrDigestMismatch)
		}
	}
	return nil
}
