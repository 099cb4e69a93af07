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
		ss.receiveInput(m)
	default:
		ss.srv.log.Debug("ignored message", "session", ss.id, "type", m.Type)
	}
}

// receiveInput applies the receiver rules of §4.5: ack in-order and
// buffered messages, re-ack duplicates, deliver in order.
func (ss *session) receiveInput(m message) {
	ss.inMu.Lock()
	defer ss.inMu.Unlock()
	ss.mu.Lock()
	expected := ss.inExpected
	switch {
	case m.Seq > expected && len(ss.inOutOfOrder) >= maxOutOfOrder:
		ss.mu.Unlock()
		return
	case m.Seq > expected:
		m.Payload = append([]byte(nil), m.Payload...)
		ss.inOutOfOrder[m.Seq] = m
	case m.Seq == expected:
		ss.inExpected++
	}
	ss.mu.Unlock()
	ss.sendUnsequenced(ackFor(m, time.Now()))
	if m.Seq != expected {
		return
	}
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
		ss.process(next)
	}
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
			if ss.srv.cfg.Pacing {
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

// waitWindow blocks while too many messages are unacked; false once ended.
func (ss *session) waitWindow() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for !ss.ended && len(ss.unacked) >= sendWindow {
		ss.space.Wait()
	}
	return !ss.ended
}
