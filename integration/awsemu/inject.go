package awsemu

import (
	"encoding/binary"
	"time"

	"github.com/coder/websocket"
)

// Where the frame faults act on a session:
//
//	sendSeq, resendLoop, attach → sendData → DropOut, ReorderOut, DupOut → WebSocket
//	receiveInput → sendAck → DropOutAck, AckDelay (ackLoop) → WebSocket
//	WebSocket → runDataChannel → inbound → DropIn, DupIn, DropInAck → receive

// delayedAck is an encoded ack waiting for AckDelay.
type delayedAck struct {
	due   time.Time
	frame []byte
}

// faults returns the faulter in force.
func (ss *session) faults() *faulter {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.fl
}

// sendData writes one output_stream_data frame, new or resent.
func (ss *session) sendData(ws *websocket.Conn, frame []byte) {
	if ws == nil {
		return
	}
	fl := ss.faults()
	if fl.hit(dropOut) {
		ss.srv.log.Debug("fault: lost output", "session", ss.id, "seq", seqOf(frame))
		return
	}
	for _, f := range fl.reorder(frame) {
		ss.write(ws, f)
		if fl.hit(dupOut) {
			ss.write(ws, f)
		}
	}
}

// sendAck acknowledges m, unless DropOutAck loses the ack; AckDelay
// queues it for ackLoop.
func (ss *session) sendAck(m message) {
	fl := ss.faults()
	if fl.hit(dropOutAck) {
		ss.srv.log.Debug("fault: lost ack", "session", ss.id, "seq", m.Seq)
		return
	}
	frame := encode(ackFor(m, time.Now()))
	if d := fl.f.AckDelay; d > 0 {
		ss.mu.Lock()
		ss.delayed = append(ss.delayed, delayedAck{time.Now().Add(d), frame})
		ss.mu.Unlock()
		fl.count(&fl.delayed)
		select {
		case ss.ackWake <- struct{}{}:
		default:
		}
		return
	}
	ss.mu.Lock()
	ws := ss.ws
	ss.mu.Unlock()
	ss.write(ws, frame)
}

// ackLoop sends the delayed acks when they are due, in order, on the
// connection current at that time.
func (ss *session) ackLoop() {
	defer ss.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		ss.mu.Lock()
		now := time.Now()
		var due [][]byte
		for len(ss.delayed) > 0 && !ss.delayed[0].due.After(now) {
			due = append(due, ss.delayed[0].frame)
			ss.delayed = ss.delayed[1:]
		}
		wait := time.Hour
		if len(ss.delayed) > 0 {
			wait = ss.delayed[0].due.Sub(now)
		}
		ws := ss.ws
		ss.mu.Unlock()
		for _, f := range due {
			ss.write(ws, f)
		}
		timer.Reset(wait)
		select {
		case <-ss.ctx.Done():
			return
		case <-ss.ackWake:
		case <-timer.C:
		}
	}
}

// inbound returns how many times a frame received from the client is
// handed on: 0 when DropIn or DropInAck loses it, 2 when DupIn copies it.
func (ss *session) inbound(m message) int {
	fl := ss.faults()
	switch {
	case m.Type == typeInput && fl.hit(dropIn):
		ss.srv.log.Debug("fault: lost input", "session", ss.id, "seq", m.Seq)
		return 0
	case m.Type == typeAck && fl.hit(dropInAck):
		ss.srv.log.Debug("fault: lost client ack", "session", ss.id)
		return 0
	case m.Type == typeInput && fl.hit(dupIn):
		return 2
	}
	return 1
}

// setFaults puts f in force for the session, unless it is global (own
// false) and the session has faults of its own. The replaced faulter's
// counters are logged and a frame it held back is sent.
func (ss *session) setFaults(f FrameFaults, own bool) {
	ss.mu.Lock()
	if ss.ended || !own && ss.ownFaults {
		ss.mu.Unlock()
		return
	}
	old, ws := ss.fl, ss.ws
	ss.fl, ss.ownFaults = newFaulter(f), own
	ss.mu.Unlock()
	ss.logFaulter(old)
	if held := old.takeHeld(); held != nil {
		ss.write(ws, held)
	}
}

// logFaults logs the counters of the faults in force, if any.
func (ss *session) logFaults() { ss.logFaulter(ss.faults()) }

func (ss *session) logFaulter(fl *faulter) {
	if fl.f.IsZero() {
		return
	}
	ss.srv.log.Info("frame faults", append([]any{"session", ss.id}, fl.logAttrs()...)...)
}

// publication sends pause_publication (pause) or start_publication to the
// client, as the service does when the agent's side goes inactive or
// active again (§4.7), and pauses or resumes the agent to match, the way
// the agent reacts to the same messages. A paused agent sends no new
// stream data, resends nothing and stops reading the destination; like
// the real one it resumes on start, on any input or ack, and after a
// reconnect. A pause with a non-zero d ends by itself after d, with a
// start_publication of the same form. zero sends the zero-field form (no
// schema, date, id or digest) the service may use (§3.4).
func (ss *session) publication(pause, zero bool, d time.Duration) {
	typ := "start_publication"
	ss.mu.Lock()
	if pause {
		typ = "pause_publication"
		ss.paused, ss.pauseUntil, ss.pauseZero = true, time.Time{}, zero
		if d > 0 {
			ss.pauseUntil = time.Now().Add(d)
		}
	} else {
		ss.unpauseLocked()
	}
	ws := ss.ws
	ss.mu.Unlock()
	m := message{Type: typ}
	if !zero {
		m.Schema, m.Created, m.ID = 1, uint64(time.Now().UnixMilli()), newUUID()
	}
	frame := encode(m)
	if zero {
		clear(frame[80:112]) // no digest either
	}
	ss.write(ws, frame)
}

// unpauseLocked ends a pause of the agent; the caller holds mu.
func (ss *session) unpauseLocked() {
	if ss.paused {
		ss.paused, ss.pauseUntil = false, time.Time{}
		ss.space.Broadcast()
	}
}

// seqOf returns the sequence number of a frame encode made, for logs.
func seqOf(frame []byte) int64 { return int64(binary.BigEndian.Uint64(frame[48:])) }
