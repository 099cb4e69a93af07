package awsemu

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestHandshakeRefused(t *testing.T) {
	s := newTestServer(t)
	_, _, tc := openSession(t, s)
	req := tc.next()
	tc.ack(req)
	tc.input(ptOutput, []byte("early")) // before HandshakeComplete: acked, discarded
	tc.input(ptHandshakeResponse, []byte(`{"ClientVersion":"1.0.0","ProcessedClientActions":[{"ActionType":"SessionType","ActionStatus":3,"Error":"no"}],"Errors":["no"]}`))
	m := tc.next()
	var cc channelClosed
	if m.Type != typeChannelClosed || json.Unmarshal(m.Payload, &cc) != nil || !strings.HasPrefix(cc.Output, "Handshake failed") {
		t.Fatalf("got %s %s", m.Type, m.Payload)
	}
}

func TestEarlyDataDiscarded(t *testing.T) {
	s := newTestServer(t)
	_, _, tc := openSession(t, s)
	req := tc.next()
	tc.ack(req)
	tc.input(ptOutput, []byte("early"))
	tc.input(ptHandshakeResponse, []byte(`{"ClientVersion":"1.0.0","ProcessedClientActions":[{"ActionType":"SessionType","ActionStatus":1}]}`))
	if m := tc.next(); m.PayloadType != ptHandshakeComplete {
		t.Fatalf("got %+v", m)
	} else {
		tc.ack(m)
	}
	tc.input(ptOutput, []byte("late"))
	if got := tc.readOutput(4); string(got) != "late" {
		t.Fatalf("echo %q: early data was not discarded", got)
	}
}

// openReady opens a session and completes the handshake.
func openReady(t *testing.T, s *Server) *tclient {
	t.Helper()
	_, _, tc := openSession(t, s)
	req := tc.next()
	tc.ack(req)
	tc.input(ptHandshakeResponse, []byte(`{"ClientVersion":"1.0.0","ProcessedClientActions":[{"ActionType":"SessionType","ActionStatus":1}]}`))
	m := tc.next()
	if m.PayloadType != ptHandshakeComplete {
		t.Fatalf("got %+v, want HandshakeComplete", m)
	}
	tc.ack(m)
	return tc
}

// closedOutput reads until channel_closed and returns its Output.
func closedOutput(t *testing.T, tc *tclient) string {
	t.Helper()
	for {
		m := tc.next()
		if m.Type != typeChannelClosed {
			tc.ack(m)
			continue
		}
		var cc channelClosed
		if err := json.Unmarshal(m.Payload, &cc); err != nil {
			t.Fatalf("channel_closed payload %q: %v", m.Payload, err)
		}
		return cc.Output
	}
}

// TestIdleTimeout: input from the client keeps a session open past the idle
// timeout; silence ends it with the service's channel_closed.
func TestIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	s := newTestServer(t, func(c *Config) { c.IdleTimeout = idle })
	tc := openReady(t, s)
	began := time.Now()
	var last time.Time               // when the last input was sent
	for time.Since(began) < 3*idle { // input all along: never idle
		last = time.Now()
		tc.input(ptOutput, []byte("x"))
		if got := tc.readOutput(1); string(got) != "x" {
			t.Fatalf("echo %q", got)
		}
	}
	if got := closedOutput(t, tc); got != idleTimeoutOutput {
		t.Fatalf("channel_closed %q, want %q", got, idleTimeoutOutput)
	}
	if d := time.Since(last); d < idle {
		t.Errorf("ended %v after the last input, before the idle timeout %v", d, idle)
	}
}

// TestTerminateAndMaxDuration: the admin action terminate and the maximum
// session duration end a session with channel_closed.
func TestTerminateAndMaxDuration(t *testing.T) {
	s := newTestServer(t)
	tc := openReady(t, s)
	ids := s.sessionIDs()
	if len(ids) != 1 {
		t.Fatalf("sessions %v", ids)
	}
	post(t, s, "terminate?"+url.Values{"session": {ids[0]}, "output": {"by admin"}}.Encode())
	if got := closedOutput(t, tc); got != "by admin" {
		t.Fatalf("channel_closed %q after terminate", got)
	}

	post(t, s, "preferences?max-duration=200ms")
	tc = openReady(t, s)
	if got := closedOutput(t, tc); got != maxAgeOutput {
		t.Fatalf("channel_closed %q, want %q", got, maxAgeOutput)
	}
}
