package awsemu

import (
	"encoding/json"
	"strings"
	"testing"
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
