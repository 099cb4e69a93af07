package ssmtest

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net"
	"time"

	"github.com/coder/websocket"
	"github.com/vpcvpn/vpcvpn/tunnel/ssm"
)

const (
	agentWindow = 256                    // agent messages in flight
	agentRTO    = 200 * time.Millisecond // the reference initial RTO
	agentTick   = 50 * time.Millisecond
)

// readLoop reads the client's frames from ws until it ends, which ends
// the session unless Break dropped ws.
func (s *Session) readLoop(ws *websocket.Conn) {
	var err error
	defer func() { s.socketEnded(ws, err) }()
	for {
		s.mu.Lock()
		stalled := s.stalled
		s.mu.Unlock()
		if stalled {
			<-s.ctx.Done()
			return
		}
		var b []byte
		if _, b, err = ws.Read(s.ctx); err != nil {
			return
		}
		m, err := ssm.ParseMessage(b)
		if err != nil || m.Validate() != nil {
			continue
		}
		v := Pass
		if s.a.Filter != nil {
			v = s.a.Filter(false, m)
		}
		switch v {
		case Drop:
			continue
		case Duplicate:
			s.receive(m)
		}
		s.receive(m)
	}
}

// receive handles one frame from the client.
func (s *Session) receive(m *ssm.Message) {
	switch m.Type {
	case ssm.TypeAcknowledge:
		var ac ssm.AcknowledgeContent
		if json.Unmarshal(m.Payload, &ac) == nil {
			s.acknowledged(ac.SequenceNumber)
		}
	case ssm.TypeInputStreamData:
		s.sequence(m)
	}
}

func (s *Session) acknowledged(seq int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.acked[seq] {
		s.reAcks++
		return
	}
	s.acked[seq] = true
	for i, u := range s.unacked {
		if u.seq == seq {
			s.unacked = append(s.unacked[:i], s.unacked[i+1:]...)
			s.broadcast(&s.room)
			return
		}
	}
}

// sequence acks m and processes it in order, as the agent does (§4.5):
// duplicates re-acked, early messages held.
func (s *Session) sequence(m *ssm.Message) {
	s.mu.Lock()
	seq := m.SequenceNumber
	switch {
	case seq < s.expected:
		s.dupIn++
	case seq > s.expected:
		if s.early[seq] != nil {
			s.dupIn++
		}
		s.early[seq] = m
	default:
		s.process(m)
		for s.expected++; s.early[s.expected] != nil; s.expected++ {
			next := s.early[s.expected]
			delete(s.early, s.expected)
			s.process(next)
		}
	}
	s.mu.Unlock()
	s.ack(m)
}

// process acts on one in-order client message; s.mu is held.
func (s *Session) process(m *ssm.Message) {
	switch m.PayloadType {
	case ssm.PayloadHandshakeResponse:
		var r ssm.HandshakeResponse
		if json.Unmarshal(m.Payload, &r) == nil && s.response == nil {
			s.response = &r
			close(s.responded)
		}
	case ssm.PayloadFlag:
		if f, err := ssm.ParseStreamFlag(m.Payload); err == nil && f == ssm.TerminateSession {
			select {
			case <-s.terminated:
			default:
				close(s.terminated)
			}
		}
	case ssm.PayloadOutput:
		if !s.completed {
			s.earlyOutput++ // the agent acks and discards it
			return
		}
		s.in = append(s.in, m.Payload...)
		s.broadcast(&s.inbound)
	}
}

// ack sends the acknowledgement of m.
func (s *Session) ack(m *ssm.Message) {
	payload, _ := json.Marshal(ssm.AcknowledgeContent{
		MessageType: m.Type, MessageID: m.MessageID.String(), SequenceNumber: m.SequenceNumber, IsSequential: true,
	})
	a := ssm.Message{Type: ssm.TypeAcknowledge, SchemaVersion: 1, CreatedDate: uint64(time.Now().UnixMilli()),
		Flags: ssm.FlagsAck, MessageID: randomID(), Payload: payload}
	b, _ := a.MarshalBinary()
	s.send(&a, b)
}

// push sends a sequenced output_stream_data message and keeps it until
// acknowledged, waiting for room in the agent's window.
func (s *Session) push(pt ssm.PayloadType, payload []byte) error {
	s.mu.Lock()
	for len(s.unacked) >= agentWindow && s.ctx.Err() == nil {
		room := s.room
		s.mu.Unlock()
		<-room
		s.mu.Lock()
	}
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		return net.ErrClosed
	}
	m := ssm.Message{Type: ssm.TypeOutputStreamData, SchemaVersion: 1, CreatedDate: uint64(time.Now().UnixMilli()),
		SequenceNumber: s.next, MessageID: randomID(), PayloadType: pt, Payload: payload}
	if s.next == 0 {
		m.Flags = ssm.FlagSYN
	}
	b, _ := m.MarshalBinary()
	s.unacked = append(s.unacked, &sent{seq: s.next, frame: b, last: time.Now()})
	s.next++
	s.mu.Unlock()
	s.send(&m, b)
	return nil
}

// resendLoop resends the head of the agent's window after agentRTO.
func (s *Session) resendLoop() {
	defer s.wg.Done()
	t := time.NewTicker(agentTick)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		var head *sent
		if len(s.unacked) > 0 && time.Since(s.unacked[0].last) > agentRTO && !s.stalled {
			head = s.unacked[0]
			head.last = time.Now()
		}
		s.mu.Unlock()
		if head != nil {
			m, _ := ssm.ParseMessage(head.frame)
			s.send(m, head.frame)
		}
	}
}

// send writes a frame to the client, as the Filter decides.
func (s *Session) send(m *ssm.Message, b []byte) {
	v := Pass
	if s.a.Filter != nil {
		v = s.a.Filter(true, m)
	}
	s.mu.Lock()
	stalled := s.stalled
	s.mu.Unlock()
	if stalled || v == Drop {
		return
	}
	if v == Delay {
		d := s.a.Delay
		if d == 0 {
			d = 300 * time.Millisecond
		}
		s.wg.Add(1)
		time.AfterFunc(d, func() { defer s.wg.Done(); s.write(b) })
		return
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if v == Hold && s.held == nil {
		s.held = b
		return
	}
	s.ws.Write(s.ctx, websocket.MessageBinary, b)
	if v == Duplicate {
		s.ws.Write(s.ctx, websocket.MessageBinary, b)
	}
	if s.held != nil {
		s.ws.Write(s.ctx, websocket.MessageBinary, s.held)
		s.held = nil
	}
}

func (s *Session) write(b []byte) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.ws.Write(s.ctx, websocket.MessageBinary, b)
}

// awaitAcked waits until the client acknowledged everything, for up to 5 s.
func (s *Session) awaitAcked() {
	deadline := time.After(5 * time.Second)
	for {
		s.mu.Lock()
		n, room := len(s.unacked), s.room
		s.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-room:
		case <-deadline:
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// Stream is the session's byte stream on the agent's side, as the
// destination port sees it.
type Stream struct {
	s *Session
}

var _ net.Conn = (*Stream)(nil)

// Read returns the client's Output, io.EOF once the session ended.
func (st *Stream) Read(p []byte) (int, error) {
	s := st.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.in) == 0 {
		if s.eof {
			return 0, io.EOF
		}
		ch := s.inbound
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
	n := copy(p, s.in)
	s.in = s.in[n:]
	return n, nil
}

// Write sends p to the client in 1 KiB Output messages, paced.
func (st *Stream) Write(p []byte) (int, error) {
	st.s.mu.Lock()
	st.s.completed = true // LateComplete: just before the first Output
	st.s.mu.Unlock()
	n := 0
	for n < len(p) {
		k := min(len(p)-n, 1024)
		if err := st.s.push(ssm.PayloadOutput, append([]byte(nil), p[n:n+k]...)); err != nil {
			return n, err
		}
		n += k
		if st.s.a.Pace > 0 {
			time.Sleep(st.s.a.Pace) // the agent's pacing, not synchronisation
		}
	}
	return n, nil
}

// Close ends the stream: reads return io.EOF.
func (st *Stream) Close() error {
	s := st.s
	s.mu.Lock()
	s.eof = true
	s.broadcast(&s.inbound)
	s.mu.Unlock()
	return nil
}

// CloseWrite is a no-op: the agent's side ends with the session.
func (st *Stream) CloseWrite() error { return nil }

func (st *Stream) LocalAddr() net.Addr              { return streamAddr{} }
func (st *Stream) RemoteAddr() net.Addr             { return streamAddr{} }
func (st *Stream) SetDeadline(time.Time) error      { return errors.ErrUnsupported }
func (st *Stream) SetReadDeadline(time.Time) error  { return errors.ErrUnsupported }
func (st *Stream) SetWriteDeadline(time.Time) error { return errors.ErrUnsupported }

type streamAddr struct{}

func (streamAddr) Network() string { return "ssm-agent" }
func (streamAddr) String() string  { return "agent:22" }

// randomID returns a random v4 UUID.
func randomID() ssm.UUID {
	var u ssm.UUID
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}
