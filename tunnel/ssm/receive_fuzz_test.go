package ssm

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"
)

// agentFrame encodes an agent message with sequence number seq.
func agentFrame(tb testing.TB, seq int64, pt PayloadType, payload []byte) []byte {
	tb.Helper()
	m := Message{Type: TypeOutputStreamData, SchemaVersion: 1, CreatedDate: 1, SequenceNumber: seq,
		MessageID: newUUID(), PayloadType: pt, Payload: payload}
	b, err := m.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// buffered returns what Read would return now, without waiting.
func buffered(c *Conn) []byte {
	var out []byte
	p := make([]byte, 4096)
	for {
		n, _, _ := c.in.read(p)
		if n == 0 {
			return out
		}
		out = append(out, p[:n]...)
	}
}

// FuzzHandleFrame hands an arbitrary frame to a Conn's receive path, as
// readLoop does, after the agent's first two Output messages and with
// client messages in flight, then the agent's next message in sequence:
//   - a frame that fails ParseMessage or Validate is neither acknowledged
//     nor delivered, and leaves the stream as it was;
//   - only a valid channel_closed ends the session;
//   - otherwise the next message is still delivered, after what came
//     before, and acknowledged.
func FuzzHandleFrame(f *testing.F) {
	for _, g := range golden(f) {
		f.Add(g.frame)
	}
	ack := func(seq int64) []byte {
		p, _ := json.Marshal(AcknowledgeContent{MessageType: TypeInputStreamData, SequenceNumber: seq, IsSequential: true})
		m := Message{Type: TypeAcknowledge, SchemaVersion: 1, CreatedDate: 1, Flags: FlagsAck, Payload: p}
		b, _ := m.MarshalBinary()
		return b
	}
	flag, _ := ConnectToPortError.MarshalBinary()
	for _, b := range [][]byte{
		agentFrame(f, 2, PayloadOutput, []byte("cd")),
		agentFrame(f, 3, PayloadOutput, []byte("early")),
		agentFrame(f, 1, PayloadOutput, []byte("dup")),
		agentFrame(f, 2, PayloadHandshakeRequest, []byte(`{"AgentVersion":"3.3.1142.0","RequestedClientActions":[{"ActionType":"SessionType","ActionParameters":{"SessionType":"Port","Properties":{"portNumber":"22"}}}]}`)),
		agentFrame(f, 2, PayloadHandshakeRequest, []byte(`{"RequestedClientActions":[{"ActionType":"KMSEncryption"}]}`)),
		agentFrame(f, 2, PayloadHandshakeComplete, []byte(`{"CustomerMessage":"hi"}`)),
		agentFrame(f, 2, PayloadFlag, flag),
		agentFrame(f, 2, 99, []byte("?")),
		agentFrame(f, 1<<62, PayloadOutput, []byte("far")),
		agentFrame(f, -1, PayloadOutput, []byte("neg")),
		ack(0), ack(2), ack(-1), ack(1 << 62),
		serviceFrame(TypeChannelClosed, 1, []byte(`{"Output":"bye"}`)),
		serviceFrame(TypePausePublication, 0, nil),
		serviceFrame(TypeStartPublication, 0, nil),
		make([]byte, 120),
	} {
		f.Add(b)
	}
	probe := []byte("probe")
	f.Fuzz(func(t *testing.T, frame []byte) {
		c := newConn(Config{Logger: slog.New(slog.DiscardHandler)})
		defer func() {
			c.end(net.ErrClosed)
			<-c.done
		}()
		now := time.Now()
		for i := range 3 {
			if _, err := c.out.push(PayloadOutput, []byte{byte(i)}, false, now); err != nil {
				t.Fatal(err)
			}
		}
		for seq, p := range []string{"a", "b"} {
			if err := c.handleFrame(agentFrame(t, int64(seq), PayloadOutput, []byte(p))); err != nil {
				t.Fatal(err)
			}
		}
		acks := c.acks.len()
		m, err := ParseMessage(frame)
		valid := err == nil && m.Validate() == nil
		frameCopy := bytes.Clone(frame)

		err = c.handleFrame(frame)
		if !bytes.Equal(frame, frameCopy) {
			t.Fatal("handleFrame changed the frame")
		}
		if err != nil || c.Err() != nil {
			var cc *ChannelClosedError
			if !valid || m.Type != TypeChannelClosed || !errors.Is(err, errStop) || !errors.As(c.Err(), &cc) {
				t.Fatalf("session ended by %q (%v): %v, %v", m.Type, valid, err, c.Err())
			}
			return
		}
		if !valid && (c.acks.len() != acks || c.in.expected != 2 || len(c.in.early) != 0) {
			t.Fatalf("an invalid frame changed the stream: %d acks (was %d), expecting %d, %d early",
				c.acks.len(), acks, c.in.expected, len(c.in.early))
		}
		acks = c.acks.len()
		if err := c.handleFrame(agentFrame(t, c.in.expected, PayloadOutput, probe)); err != nil {
			t.Fatalf("next message: %v", err)
		}
		if c.acks.len() != acks+1 && acks < maxQueuedAcks {
			t.Fatalf("next message not acknowledged: %d acks, was %d", c.acks.len(), acks)
		}
		got := buffered(c)
		if !bytes.HasPrefix(got, []byte("ab")) || !bytes.Contains(got, probe) || (!valid && !bytes.Equal(got, []byte("abprobe"))) {
			t.Fatalf("stream %q after a %q frame (valid %v)", got, m.Type, valid)
		}
	})
}
