package ssm

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// unhex decodes a hex dump's byte columns, ignoring spaces and newlines.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustUUID parses a canonical UUID.
func mustUUID(t testing.TB, s string) UUID {
	t.Helper()
	var u UUID
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		t.Fatalf("bad uuid %q", s)
	}
	copy(u[:], b)
	if u.String() != s {
		t.Fatalf("UUID round trip: %q != %q", u.String(), s)
	}
	return u
}

const goldenAckPayload = `{"AcknowledgedMessageType":"output_stream_data","AcknowledgedMessageId":"00112233-4455-6677-8899-aabbccddeeff","AcknowledgedMessageSequenceNumber":7,"IsSequentialMessage":true}`

// golden are the vectors of SSM-PROTOCOL.md §3.6, produced by the
// plugin's own serializer.
func golden(t testing.TB) []struct {
	name  string
	msg   Message
	frame []byte
} {
	return []struct {
		name  string
		msg   Message
		frame []byte
	}{{
		name: "data",
		msg: Message{
			Type: TypeInputStreamData, SchemaVersion: 1, CreatedDate: 0x0102030405060708,
			SequenceNumber: 5, MessageID: mustUUID(t, "00112233-4455-6677-8899-aabbccddeeff"),
			PayloadType: PayloadOutput, Payload: []byte("hi"),
		},
		frame: unhex(t, `
			00 00 00 74 69 6e 70 75  74 5f 73 74 72 65 61 6d
			5f 64 61 74 61 20 20 20  20 20 20 20 20 20 20 20
			20 20 20 20 00 00 00 01  01 02 03 04 05 06 07 08
			00 00 00 00 00 00 00 05  00 00 00 00 00 00 00 00
			88 99 aa bb cc dd ee ff  00 11 22 33 44 55 66 77
			8f 43 43 46 64 8f 6b 96  df 89 dd a9 01 c5 17 6b
			10 a6 d8 39 61 dd 3c 1a  c8 8b 59 b2 dc 32 7a a4
			00 00 00 01 00 00 00 02  68 69`),
	}, {
		name: "acknowledge",
		msg: Message{
			Type: TypeAcknowledge, SchemaVersion: 1, CreatedDate: 1700000000000,
			Flags: FlagsAck, MessageID: mustUUID(t, "a0a1a2a3-a4a5-46a7-88a9-aaabacadaeaf"),
			Payload: []byte(goldenAckPayload),
		},
		frame: append(unhex(t, `
			00 00 00 74 61 63 6b 6e  6f 77 6c 65 64 67 65 20
			20 20 20 20 20 20 20 20  20 20 20 20 20 20 20 20
			20 20 20 20 00 00 00 01  00 00 01 8b cf e5 68 00
			00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 03
			88 a9 aa ab ac ad ae af  a0 a1 a2 a3 a4 a5 46 a7
			62 d5 7c a2 df b7 aa 0e  ee 6a 8e 12 49 1c 3e 9f
			ef fd 16 6f 2b 0f 36 b9  6e ba 41 86 66 69 e8 54
			00 00 00 00 00 00 00 b0`), goldenAckPayload...),
	}, {
		name: "terminate flag",
		msg: Message{
			Type: TypeInputStreamData, SchemaVersion: 1, CreatedDate: 1700000000000,
			SequenceNumber: 42, MessageID: mustUUID(t, "10111213-1415-4617-8819-1a1b1c1d1e1f"),
			PayloadType: PayloadFlag, Payload: []byte{0, 0, 0, 2},
		},
		frame: unhex(t, `
			00 00 00 74 69 6e 70 75  74 5f 73 74 72 65 61 6d
			5f 64 61 74 61 20 20 20  20 20 20 20 20 20 20 20
			20 20 20 20 00 00 00 01  00 00 01 8b cf e5 68 00
			00 00 00 00 00 00 00 2a  00 00 00 00 00 00 00 00
			88 19 1a 1b 1c 1d 1e 1f  10 11 12 13 14 15 46 17
			43 3e bf 5b c0 3d ff a3  85 36 67 32 07 a2 12 81
			61 2c ef 5f aa 9b c7 a4  d5 b9 be 2f db 12 cf 1a
			00 00 00 0a 00 00 00 04  00 00 00 02`),
	}}
}

func TestGoldenEncode(t *testing.T) {
	for _, tt := range golden(t) {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.msg.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.frame) {
				t.Errorf("encoded\n%s\nwant\n%s", hex.Dump(got), hex.Dump(tt.frame))
			}
		})
	}
}

func TestGoldenDecode(t *testing.T) {
	for _, tt := range golden(t) {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMessage(tt.frame)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Validate(); err != nil {
				t.Fatal(err)
			}
			want := tt.msg
			want.HeaderLength = HeaderLength
			copy(want.Digest[:], tt.frame[offDigest:offPayloadType])
			if !equalMessages(m, &want) {
				t.Errorf("decoded %+v\nwant %+v", m, &want)
			}
		})
	}
}

func TestGoldenAckPayload(t *testing.T) {
	m := &Message{Type: TypeOutputStreamData, SequenceNumber: 7, MessageID: mustUUID(t, "00112233-4455-6677-8899-aabbccddeeff")}
	got, err := ackPayload(m)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != goldenAckPayload {
		t.Errorf("ack payload %s\nwant %s", got, goldenAckPayload)
	}
	seq, err := parseAck(&Message{Payload: got})
	if err != nil || seq != 7 {
		t.Errorf("parseAck = %d, %v; want 7", seq, err)
	}
}

func equalMessages(a, b *Message) bool {
	return a.HeaderLength == b.HeaderLength && a.Type == b.Type && a.SchemaVersion == b.SchemaVersion &&
		a.CreatedDate == b.CreatedDate && a.SequenceNumber == b.SequenceNumber && a.Flags == b.Flags &&
		a.MessageID == b.MessageID && a.Digest == b.Digest && a.PayloadType == b.PayloadType &&
		bytes.Equal(a.Payload, b.Payload)
}

// serviceFrame builds a frame the way the service is reported to send
// channel_closed: header length 112 (no payload type), NUL-padded type.
func serviceFrame(typ string, created uint64, payload []byte) []byte {
	m := Message{Type: typ, SchemaVersion: 1, CreatedDate: created, Payload: payload}
	b, _ := m.MarshalBinary()
	b[3] = 112
	for i := offType + len(typ); i < offSchemaVersion; i++ {
		b[i] = 0
	}
	return append(b[:offPayloadType], b[HeaderLength:]...) // drop the payload type
}

func TestParseTolerance(t *testing.T) {
	closed := serviceFrame(TypeChannelClosed, 1, []byte(`{"Output":"bye"}`))
	tests := []struct {
		name    string
		frame   []byte
		typ     string
		payload string
		parse   bool // ParseMessage succeeds
		valid   bool // and Validate too
	}{
		{name: "hl 112 nul padded", frame: closed, typ: TypeChannelClosed, payload: `{"Output":"bye"}`, parse: true, valid: true},
		{name: "zero fields", frame: make([]byte, 120), typ: "", payload: string(make([]byte, 116)), parse: true},
		{name: "pause zero fields", frame: func() []byte {
			b := make([]byte, 120)
			copy(b[offType:], TypePausePublication)
			return b
		}(), typ: TypePausePublication, payload: TypePausePublication + string(make([]byte, 116-len(TypePausePublication))), parse: true, valid: true},
		{name: "short", frame: make([]byte, 111)},
		{name: "header overruns", frame: append([]byte{0, 0, 0, 200}, make([]byte, 150)...)},
		{name: "bad digest", frame: func() []byte {
			b := append([]byte(nil), golden(t)[0].frame...)
			b[len(b)-1] ^= 1
			return b
		}(), typ: TypeInputStreamData, payload: "hh", parse: true},
		{name: "payload length ignored", frame: func() []byte {
			b := append([]byte(nil), golden(t)[0].frame...)
			b[119] = 99
			return b
		}(), typ: TypeInputStreamData, payload: "hi", parse: true, valid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMessage(tt.frame)
			if (err == nil) != tt.parse {
				t.Fatalf("ParseMessage error %v, want success %v", err, tt.parse)
			}
			if err != nil {
				return
			}
			if m.Type != tt.typ || string(m.Payload) != tt.payload {
				t.Errorf("type %q payload %q, want %q %q", m.Type, m.Payload, tt.typ, tt.payload)
			}
			if err := m.Validate(); (err == nil) != tt.valid {
				t.Errorf("Validate = %v, want success %v", err, tt.valid)
			}
		})
	}
}

func TestEncodeRefusesLongType(t *testing.T) {
	m := Message{Type: strings.Repeat("x", 33)}
	if _, err := m.MarshalBinary(); err == nil {
		t.Error("a 33-byte type was encoded")
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, g := range golden(f) {
		f.Add(g.frame)
	}
	f.Add(serviceFrame(TypeChannelClosed, 1, []byte(`{"Output":"x"}`)))
	f.Add(make([]byte, 120))
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := ParseMessage(frame)
		if err != nil {
			return
		}
		m.Validate()
		if len(m.Type) > typeLen {
			t.Fatalf("type of %d bytes", len(m.Type))
		}
		again, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		m2, err := ParseMessage(again)
		if err != nil {
			t.Fatalf("decode of the re-encoding: %v", err)
		}
		if err := m2.Validate(); err != nil && m.Validate() == nil {
			t.Fatalf("a valid message re-encodes as an invalid one: %v", err)
		}
		m.HeaderLength, m.Digest = HeaderLength, m2.Digest
		if !equalMessages(m, m2) {
			t.Fatalf("round trip:\n%+v\n%+v", m, m2)
		}
	})
}
