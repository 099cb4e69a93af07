package awsemu

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// AgentMessage layout (SSM-PROTOCOL.md §3.1), big-endian:
//
//	0 HL(4) | 4 type(32) | 36 schema(4) | 40 created ms(8) | 48 seq(8) |
//	56 flags(8) | 64 id(16, halves swapped) | 80 digest(32) | 112 ptype(4) |
//	116 plen(4) | 120 payload
const (
	headerLength = 116
	typeLen      = 32
	frameMin     = headerLength + 4
)

// Message types used on the data channel.
const (
	typeInput         = "input_stream_data"
	typeOutput        = "output_stream_data"
	typeAck           = "acknowledge"
	typeChannelClosed = "channel_closed"
)

// Payload types (§4.2).
const (
	ptOutput            = 1
	ptHandshakeRequest  = 5
	ptHandshakeResponse = 6
	ptHandshakeComplete = 7
	ptFlag              = 10
)

// Flag values (§4.2).
const (
	flagDisconnectToPort = 1
	flagTerminateSession = 2
)

// uuid is a message id in canonical (RFC 4122) byte order.
type uuid [16]byte

func newUUID() uuid {
	var u uuid
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

func (u uuid) String() string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// message is one decoded AgentMessage.
type message struct {
	Type        string
	Schema      uint32
	Created     uint64 // ms since the epoch
	Seq         int64
	Flags       uint64
	ID          uuid
	PayloadType uint32
	Payload     []byte
}

// encode serializes m with HL 116, space padding and a fresh digest.
func encode(m message) []byte {
	b := make([]byte, frameMin+len(m.Payload))
	binary.BigEndian.PutUint32(b[0:], headerLength)
	copy(b[4:36], strings.Repeat(" ", typeLen))
	copy(b[4:36], m.Type)
	binary.BigEndian.PutUint32(b[36:], m.Schema)
	binary.BigEndian.PutUint64(b[40:], m.Created)
	binary.BigEndian.PutUint64(b[48:], uint64(m.Seq))
	binary.BigEndian.PutUint64(b[56:], m.Flags)
	copy(b[64:72], m.ID[8:16])
	copy(b[72:80], m.ID[0:8])
	d := sha256.Sum256(m.Payload)
	copy(b[80:112], d[:])
	binary.BigEndian.PutUint32(b[112:], m.PayloadType)
	binary.BigEndian.PutUint32(b[116:], uint32(len(m.Payload)))
	copy(b[120:], m.Payload)
	return b
}

// decode parses a frame tolerantly (§3.4): payload at HL+4 to the end,
// PayloadType only when HL ≥ 116, NUL and space padding stripped. The
// digest is checked for stream data only.
func decode(b []byte) (message, error) {
	var m message
	if len(b) < 4 {
		return m, errShortFrame
	}
	hl := int(binary.BigEndian.Uint32(b))
	if hl < 112 || hl+4 > len(b) {
		return m, fmt.Errorf("%w: header length %d of %d bytes", errBadHeader, hl, len(b))
	}
	m.Type = strings.TrimSpace(strings.TrimRight(string(b[4:36]), "\x00"))
	m.Schema = binary.BigEndian.Uint32(b[36:])
	m.Created = binary.BigEndian.Uint64(b[40:])
	m.Seq = int64(binary.BigEndian.Uint64(b[48:]))
	m.Flags = binary.BigEndian.Uint64(b[56:])
	copy(m.ID[8:16], b[64:72])
	copy(m.ID[0:8], b[72:80])
	if hl >= headerLength {
		m.PayloadType = binary.BigEndian.Uint32(b[112:])
	}
	m.Payload = b[hl+4:]
	if m.Type == "" || (m.Created == 0 && !isPublication(m.Type)) {
		return m, fmt.Errorf("%w: empty type or created date", errBadHeader)
	}
	if len(m.Payload) > 0 && !isPublication(m.Type) {
		if d := sha256.Sum256(m.Payload); string(d[:]) != string(b[80:112]) {
			return m, errDigest
		}
	}
	return m, nil
}

func isPublication(t string) bool {
	return t == "start_publication" || t == "pause_publication"
}
