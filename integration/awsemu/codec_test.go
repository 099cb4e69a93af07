package awsemu

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

func unhexdump(t *testing.T, dump string) []byte {
	t.Helper()
	var out []byte
	for _, line := range strings.Split(strings.TrimSpace(dump), "\n") {
		f := strings.Fields(line)[1:]
		for _, h := range f {
			if len(h) != 2 {
				break
			}
			b, err := hex.DecodeString(h)
			if err != nil {
				break
			}
			out = append(out, b...)
		}
	}
	return out
}

func mustUUID(t *testing.T, s string) uuid {
	t.Helper()
	var u uuid
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		t.Fatalf("bad uuid %q", s)
	}
	copy(u[:], b)
	return u
}

const goldenData = `
00000000  00 00 00 74 69 6e 70 75  74 5f 73 74 72 65 61 6d
00000010  5f 64 61 74 61 20 20 20  20 20 20 20 20 20 20 20
00000020  20 20 20 20 00 00 00 01  01 02 03 04 05 06 07 08
00000030  00 00 00 00 00 00 00 05  00 00 00 00 00 00 00 00
00000040  88 99 aa bb cc dd ee ff  00 11 22 33 44 55 66 77
00000050  8f 43 43 46 64 8f 6b 96  df 89 dd a9 01 c5 17 6b
00000060  10 a6 d8 39 61 dd 3c 1a  c8 8b 59 b2 dc 32 7a a4
00000070  00 00 00 01 00 00 00 02  68 69`

const goldenAckHeader = `
00000000  00 00 00 74 61 63 6b 6e  6f 77 6c 65 64 67 65 20
00000010  20 20 20 20 20 20 20 20  20 20 20 20 20 20 20 20
00000020  20 20 20 20 00 00 00 01  00 00 01 8b cf e5 68 00
00000030  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 03
00000040  88 a9 aa ab ac ad ae af  a0 a1 a2 a3 a4 a5 46 a7
00000050  62 d5 7c a2 df b7 aa 0e  ee 6a 8e 12 49 1c 3e 9f
00000060  ef fd 16 6f 2b 0f 36 b9  6e ba 41 86 66 69 e8 54
00000070  00 00 00 00 00 00 00 b0`

const goldenAckPayload = `{"AcknowledgedMessageType":"output_stream_data","AcknowledgedMessageId":"00112233-4455-6677-8899-aabbccddeeff","AcknowledgedMessageSequenceNumber":7,"IsSequentialMessage":true}`

const goldenFlag = `
00000000  00 00 00 74 69 6e 70 75  74 5f 73 74 72 65 61 6d
00000010  5f 64 61 74 61 20 20 20  20 20 20 20 20 20 20 20
00000020  20 20 20 20 00 00 00 01  00 00 01 8b cf e5 68 00
00000030  00 00 00 00 00 00 00 2a  00 00 00 00 00 00 00 00
00000040  88 19 1a 1b 1c 1d 1e 1f  10 11 12 13 14 15 46 17
00000050  43 3e bf 5b c0 3d ff a3  85 36 67 32 07 a2 12 81
00000060  61 2c ef 5f aa 9b c7 a4  d5 b9 be 2f db 12 cf 1a
00000070  00 00 00 0a 00 00 00 04  00 00 00 02`

func TestCodecGolden(t *testing.T) {
	ackSrc := message{Type: typeOutput, Seq: 7, ID: mustUUID(t, "00112233-4455-6677-8899-aabbccddeeff")}
	ack := ackFor(ackSrc, time.UnixMilli(1700000000000))
	ack.ID = mustUUID(t, "a0a1a2a3-a4a5-46a7-88a9-aaabacadaeaf")
	tests := []struct {
		name string
		msg  message
		want []byte
	}{
		{"data", message{Type: typeInput, Schema: 1, Created: 0x0102030405060708, Seq: 5,
			ID: mustUUID(t, "00112233-4455-6677-8899-aabbccddeeff"), PayloadType: ptOutput, Payload: []byte("hi")},
			unhexdump(t, goldenData)},
		{"ack", ack, append(unhexdump(t, goldenAckHeader), goldenAckPayload...)},
		{"flag", message{Type: typeInput, Schema: 1, Created: 1700000000000, Seq: 42,
			ID: mustUUID(t, "10111213-1415-4617-8819-1a1b1c1d1e1f"), PayloadType: ptFlag, Payload: []byte{0, 0, 0, 2}},
			unhexdump(t, goldenFlag)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := encode(tt.msg)
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("encode:\n got %x\nwant %x", got, tt.want)
			}
			m, err := decode(tt.want)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if m.Type != tt.msg.Type || m.Seq != tt.msg.Seq || m.ID != tt.msg.ID || m.Flags != tt.msg.Flags ||
				m.PayloadType != tt.msg.PayloadType || !bytes.Equal(m.Payload, tt.msg.Payload) {
				t.Fatalf("decode: got %+v want %+v", m, tt.msg)
			}
		})
	}
}

func TestDecodeTolerance(t *testing.T) {
	// Service-style channel_closed: HL 112, NUL padding, no PayloadType.
	p := []byte(`{"Output":"bye"}`)
	b := encode(message{Type: typeChannelClosed, Schema: 1, Created: 1, Payload: p})
	b = append(b[:112], b[116:]...)
	b[3] = 112
	copy(b[4:36], make([]byte, 32))
	copy(b[4:], typeChannelClosed)
	m, err := decode(b)
	if err != nil || m.Type != typeChannelClosed || string(m.Payload) != string(p) {
		t.Fatalf("decode HL112: %+v %v", m, err)
	}
	bad := encode(message{Type: typeInput, Created: 1, Payload: []byte("x")})
	bad[90] ^= 1
	if _, err := decode(bad); err == nil {
		t.Fatal("digest mismatch accepted")
	}
	for _, n := range []int{0, 3, 50, 119} {
		if _, err := decode(make([]byte, n)); err == nil {
			t.Fatalf("decode of %d zero bytes accepted", n)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(message{Type: typeInput, Created: 1, Payload: []byte("hi")}))
	f.Add([]byte{0, 0, 0, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decode(b)
		if err == nil && m.Type == "" {
			t.Fatal("empty type accepted")
		}
	})
}
