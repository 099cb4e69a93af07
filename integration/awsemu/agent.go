package awsemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// The agent personality, Basic port mode (§5, §6.2):
//
//	HandshakeRequest → (ack, HandshakeResponse) → HandshakeComplete →
//	dial HOST:PORT → client Output → TCP; TCP (1 KiB reads) → Output.

const chunkSize = 1024

func (ss *session) sendHandshakeRequest() {
	req := handshakeRequest{AgentVersion: ss.srv.cfg.AgentVersion, RequestedClientActions: []requestedAction{{
		ActionType: "SessionType", ActionParameters: sessionTypeParams{SessionType: "Port", Properties: ss.props}}}}
	p, _ := json.Marshal(req)
	ss.mu.Lock()
	ss.hsSent = time.Now()
	ss.mu.Unlock()
	ss.sendSeq(ptHandshakeRequest, p)
}

// receive handles one decoded frame from the client.
func (ss *session) receive(m message) {
	switch m.Type {
	case typeAck:
		ss.handleAck(m)
	case typeInput:
		ss.touch()
		ss.receiveInput(m)
	default:
		ss.srv.log.Debug("ignored message", "session", ss.id, "type", m.Type)
	}
}

// receiveInput applies the agent's receiver rules (§4.5): ack and
// process the expected message, ack and hold an early one, re-ack a
// duplicate, and leave a message the agent is not ready for unacked so
// that the client resends it. Any input ends a pause (§4.7).
func (ss *session) receiveInput(m message) {
	ss.inMu.Lock()
	defer ss.inMu.Unlock()
	ss.mu.Lock()
	ss.unpauseLocked()
	expected, fl := ss.inExpected, ss.fl
	_, held := ss.inOutOfOrder[m.Seq]
	full := len(ss.inOutOfOrder) >= maxOutOfOrder
	if m.Seq > expected && !held && !full {
		m.Payload = append([]byte(nil), m.Payload...)
		ss.inOutOfOrder[m.Seq] = m
	}
	ss.mu.Unlock()
	switch {
	case m.Seq < expected || held:
		fl.count(&fl.dupsIn)
		ss.sendAck(m)
		return
	case m.Seq > expected:
		if !full {
			ss.sendAck(m)
		}
		return
	case !ss.ready(m):
		return
	}
	ss.sendAck(m)
	ss.mu.Lock()
	ss.inExpected++
	ss.mu.Unlock()
	ss.process(m)
	for {
		ss.mu.Lock()
		next, ok := ss.inOutOfOrder[ss.inExpected]
		if ok {
			delete(ss.inOutOfOrder, ss.inExpected)
			ss.inExpected++
		}
		ss.mu.Unlock()
		if !ok {
			return
		}
		ss.process(next) // acked on arrival
	}
}

// ready reports whether the agent can take m now: not Output after
// HandshakeComplete while the destination is not connected yet (the
// agent's ErrHandlerNotReady), which stays unacked so that it is resent.
func (ss *session) ready(m message) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return m.PayloadType != ptOutput || !ss.hsDone || ss.tcp != nil
}

// process acts on one in-order input message.
func (ss *session) process(m message) {
	ss.mu.Lock()
	done, tcp := ss.hsDone, ss.tcp
	ss.mu.Unlock()
	switch m.PayloadType {
	case ptHandshakeResponse:
		if !done {
			ss.completeHandshake(m.Payload)
		}
	case ptOutput:
		if !done || tcp == nil {
			return // acked and discarded, like the agent before HandshakeComplete
		}
		if _, err := tcp.Write(m.Payload); err != nil {
			ss.end(fmt.Sprintf("write to destination: %v", err))
		}
	case ptFlag:
		if v, ok := flagValue(m.Payload); ok && v == flagTerminateSession {
			ss.end("")
		}
	}
}

func (ss *session) completeHandshake(payload []byte) {
	var resp handshakeResponse
	if err := json.Unmarshal(payload, &resp); err != nil {
		ss.end(fmt.Sprintf("Handshake failed: decode response: %v", err))
		return
	}
	if len(resp.ProcessedClientActions) != 1 || resp.ProcessedClientActions[0].ActionStatus != 1 {
		ss.end(fmt.Sprintf("Handshake failed: client refused the session: %+v", resp.ProcessedClientActions))
		return
	}
	ss.mu.Lock()
	elapsed := time.Since(ss.hsSent)
	ss.hsDone = true
	ss.mu.Unlock()
	p, _ := json.Marshal(handshakeComplete{HandshakeTimeToComplete: elapsed})
	ss.sendSeq(ptHandshakeComplete, p)
	ss.srv.log.Info("handshake complete", "session", ss.id, "client_version", resp.ClientVersion)
	ss.connect()
}

// connect dials the destination (Basic mode dials at plugin start) and
// starts the TCP → client pump. A dial failure fails the session.
func (ss *session) connect() {
	c, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ss.ctx, "tcp", ss.dest)
	if err != nil {
		ss.end(fmt.Sprintf("Unable to connect to specified port: %v", err))
		return
	}
	ss.mu.Lock()
	if ss.ended {
		ss.mu.Unlock()
		_ = c.Close()
		return
	}
	ss.tcp = c
	ss.wg.Add(1)
	ss.mu.Unlock()
	go ss.pump(c)
}

// pump copies the destination to the client in 1 KiB messages, pacing
// like the real agent when configured. EOF ends the session (SSH document).
func (ss *session) pump(c net.Conn) {
	defer ss.wg.Done()
	buf := make([]byte, chunkSize)
	for {
		if !ss.waitWindow() {
			return
		}
		n, err := c.Read(buf)
		if n > 0 {
			ss.sendSeq(ptOutput, append([]byte(nil), buf[:n]...))
			if ss.srv.pacing.Load() {
				time.Sleep(time.Millisecond)
			}
		}
		if errors.Is(err, io.EOF) {
			ss.end("")
			return
		}
		if err != nil {
			ss.end(fmt.Sprintf("read from destination: %v", err))
			return
		}
	}
}

// waitWindow blocks while too many messages are unacked or the agent is
// paused (it stops reading the destination, §4.7); false once ended.
func (ss *session) waitWindow() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for !ss.ended && (len(ss.unacked) >= sendWindow || ss.paused) {
		ss.space.Wait()
	}
	return !ss.ended
}
