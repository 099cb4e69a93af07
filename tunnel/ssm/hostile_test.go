package ssm_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel/ssm"
	"github.com/vpcvpn/vpcvpn/tunnel/ssm/ssmtest"
)

// hostileFrame is a frame that a broken or hostile peer sends.
type hostileFrame struct {
	name  string
	frame []byte
	text  bool // in a text WebSocket message
}

// frame encodes m, then lets edit change the bytes.
func frame(m ssm.Message, edit func([]byte) []byte) []byte {
	if m.SchemaVersion == 0 {
		m.SchemaVersion = 1
	}
	b, err := m.MarshalBinary()
	if err != nil {
		panic(err)
	}
	if edit != nil {
		b = edit(b)
	}
	return b
}

// hostileFrames returns frames to send after the agent sent its message
// next-1. None may cost the stream a byte: each is dropped unacknowledged,
// or ignored, or taken for a duplicate of a message already processed.
func hostileFrames(next int64) []hostileFrame {
	now := uint64(time.Now().UnixMilli())
	output := func(seq int64, payload []byte) ssm.Message {
		return ssm.Message{Type: ssm.TypeOutputStreamData, CreatedDate: now, SequenceNumber: seq,
			PayloadType: ssm.PayloadOutput, Payload: payload}
	}
	evil := bytes.Repeat([]byte("EVIL"), 256)
	setUint32 := func(off int, v uint32) func([]byte) []byte {
		return func(b []byte) []byte { binary.BigEndian.PutUint32(b[off:], v); return b }
	}
	return []hostileFrame{
		{name: "random bytes", frame: random(300)},
		{name: "empty", frame: []byte{}},
		{name: "JSON text", frame: []byte(`{"MessageSchemaVersion":"1.0","RequestId":"x","TokenValue":"y"}`), text: true},
		{name: "wrong digest, text", frame: frame(output(next, evil), func(b []byte) []byte { b[81] ^= 1; return b }), text: true},
		{name: "shorter than a header", frame: frame(output(next, evil), nil)[:100]},
		{name: "payload cut short", frame: frame(output(next, evil), nil)[:600]},
		{name: "wrong digest", frame: frame(output(next, evil), func(b []byte) []byte { b[80] ^= 1; return b })},
		{name: "payload swapped after digest", frame: frame(output(next, evil), func(b []byte) []byte { b[len(b)-1] ^= 1; return b })},
		{name: "no creation date", frame: frame(ssm.Message{Type: ssm.TypeOutputStreamData, SequenceNumber: next, PayloadType: ssm.PayloadOutput, Payload: evil}, nil)},
		{name: "empty type", frame: frame(ssm.Message{CreatedDate: now, SequenceNumber: next, PayloadType: ssm.PayloadOutput, Payload: evil}, nil)},
		{name: "header length 0", frame: frame(output(next, evil), setUint32(0, 0))},
		{name: "header length 50", frame: frame(output(next, evil), setUint32(0, 50))},
		{name: "header length beyond the frame", frame: frame(output(next, evil), setUint32(0, 1<<31))},
		{name: "header length 2^32-1", frame: frame(output(next, evil), setUint32(0, 1<<32-1))},
		{name: "payload length 2^32-1, a duplicate", frame: frame(output(next-1, evil), setUint32(ssm.HeaderLength, 1<<32-1))},
		{name: "unknown payload type, a duplicate", frame: frame(ssm.Message{Type: ssm.TypeOutputStreamData, CreatedDate: now, SequenceNumber: next - 1, PayloadType: 99, Payload: evil}, nil)},
		{name: "unknown message type", frame: frame(ssm.Message{Type: "agent_job_reply", CreatedDate: now, SequenceNumber: next, PayloadType: ssm.PayloadOutput, Payload: evil}, nil)},
		{name: "acknowledge, not JSON", frame: frame(ssm.Message{Type: ssm.TypeAcknowledge, CreatedDate: now, Flags: ssm.FlagsAck, Payload: []byte("not JSON")}, nil)},
		{name: "acknowledge of nothing sent", frame: frame(ssm.Message{Type: ssm.TypeAcknowledge, CreatedDate: now, Flags: ssm.FlagsAck,
			Payload: []byte(`{"AcknowledgedMessageType":"input_stream_data","AcknowledgedMessageId":"x","AcknowledgedMessageSequenceNumber":1099511627776,"IsSequentialMessage":true}`)}, nil)},
		{name: "handshake request, not JSON, a duplicate", frame: frame(ssm.Message{Type: ssm.TypeOutputStreamData, CreatedDate: now, SequenceNumber: 0, PayloadType: ssm.PayloadHandshakeRequest, Payload: []byte("{")}, nil)},
		// Last, and sent once: larger than any frame the service sends.
		{name: "oversized", frame: frame(output(next, bytes.Repeat(evil, 2<<10)), nil)},
	}
}

// TestHostileFrames sends garbage between the agent's messages while
// data flows both ways: every byte arrives in order and in time, the
// WebSocket stays up (an oversized frame closed it before), and the
// session ends only when the agent closes it.
func TestHostileFrames(t *testing.T) {
	vpctest.LeakCheck(t)
	const chunk = 1024 // one agent message per Write
	up, down := random(256<<10), random(64*chunk)
	got := make(chan []byte, 1)
	sent := make(chan string, 128)
	a := &ssmtest.Agent{CloseReason: "done", Serve: func(st net.Conn) {
		var wg sync.WaitGroup
		wg.Go(func() {
			buf := make([]byte, len(up))
			n, _ := io.ReadFull(st, buf)
			got <- buf[:n]
		})
		defer wg.Wait()
		inj := st.(*ssmtest.Stream)
		for i := 0; i*chunk < len(down); i++ {
			if _, err := st.Write(down[i*chunk : (i+1)*chunk]); err != nil {
				return
			}
			next := int64(2 + i + 1) // handshake request, complete, then Output
			fs := hostileFrames(next)
			f := fs[i%(len(fs)-1)]
			if i == len(fs)-1 {
				f = fs[i]
			}
			inj.Inject(f.frame, f.text)
			sent <- f.name
		}
	}}
	c, s := dial(t, a)
	start := time.Now()
	exchange(t, c, up, down, got)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v: the garbage stalled the stream", d)
	}
	if len(sent) != len(down)/chunk {
		t.Errorf("%d frames of garbage sent, want %d", len(sent), len(down)/chunk)
	}
	if n := len(s.Upgrades()); n != 1 {
		t.Errorf("%d WebSockets, want the first one only", n)
	}

}
