package awsemu

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/coder/websocket"
)

func openSession(t *testing.T, s *Server) (*ssm.Client, *ssm.StartSessionOutput, *tclient) {
	t.Helper()
	c := ssmClient(t, s)
	out, err := startSSH(t, c, testInstance)
	if err != nil {
		t.Fatal(err)
	}
	return c, out, dialChannel(t, s, aws.ToString(out.StreamUrl), aws.ToString(out.TokenValue))
}

func TestDataChannelRoundTrip(t *testing.T) {
	s := newTestServer(t)
	_, _, tc := openSession(t, s)
	hr := tc.handshake()
	props := hr.RequestedClientActions[0].ActionParameters
	if hr.AgentVersion != "3.3.1000.0" || props.SessionType != "Port" || props.Properties["portNumber"] != "22" || len(props.Properties) != 1 {
		t.Fatalf("HandshakeRequest %+v", hr)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 300) // 4800 bytes → 5 agent messages
	tc.input(ptOutput, data)
	if got := tc.readOutput(len(data)); !bytes.Equal(got, data) {
		t.Fatalf("echo mismatch: %d bytes", len(got))
	}
	tc.input(ptFlag, []byte{0, 0, 0, flagTerminateSession})
	m := tc.next()
	var cc channelClosed
	if m.Type != typeChannelClosed || json.Unmarshal(m.Payload, &cc) != nil || cc.DestinationId != testInstance {
		t.Fatalf("want channel_closed, got %s %s", m.Type, m.Payload)
	}
	if _, err := tc.read(); !isCloseErr(err) {
		t.Fatalf("want close, got %v", err)
	}
}

func TestDataChannelOrdering(t *testing.T) {
	s := newTestServer(t)
	_, _, tc := openSession(t, s)
	tc.handshake()
	// Seq 2 before 1: acked on arrival, delivered in order.
	m1 := message{Type: typeInput, Schema: 1, Created: 1, Seq: 1, ID: newUUID(), PayloadType: ptOutput, Payload: []byte("A")}
	m2 := m1
	m2.Seq, m2.ID, m2.Payload = 2, newUUID(), []byte("B")
	tc.outSeq = 3
	tc.send(m2)
	tc.send(m1)
	tc.send(m1) // duplicate: must be re-acked
	acks := map[int64]int{}
	var got []byte
	for len(got) < 2 || len(acks) < 2 || acks[1] < 2 {
		m, err := tc.read()
		if err != nil {
			t.Fatalf("read: %v (acks %v, got %q)", err, acks, got)
		}
		switch m.Type {
		case typeAck:
			var a ackContent
			_ = json.Unmarshal(m.Payload, &a)
			acks[a.AcknowledgedMessageSequenceNumber]++
		case typeOutput:
			tc.ack(m)
			got = append(got, m.Payload...)
		}
	}
	if string(got) != "AB" {
		t.Fatalf("delivered %q, want AB", got)
	}
}

func TestDataChannelResume(t *testing.T) {
	s := newTestServer(t)
	c, out, tc := openSession(t, s)
	tc.handshake()
	tc.input(ptOutput, []byte("ping"))
	unacked := tc.next() // echo, deliberately not acked
	if string(unacked.Payload) != "ping" {
		t.Fatalf("echo %q", unacked.Payload)
	}
	post(t, s, "drop?session="+aws.ToString(out.SessionId))
	if _, err := tc.read(); err == nil {
		t.Fatal("read after drop succeeded")
	}
	res, err := c.ResumeSession(context.Background(), &ssm.ResumeSessionInput{SessionId: out.SessionId})
	if err != nil {
		t.Fatal(err)
	}
	tc2 := dialChannel(t, s, aws.ToString(out.StreamUrl), aws.ToString(res.TokenValue))
	tc2.outSeq = tc.outSeq
	again := tc2.next()
	if again.Seq != unacked.Seq || again.ID != unacked.ID {
		t.Fatalf("resent %d/%s, want %d/%s", again.Seq, again.ID, unacked.Seq, unacked.ID)
	}
	tc2.ack(again)
	tc2.input(ptOutput, []byte("pong"))
	if got := tc2.readOutput(4); string(got) != "pong" {
		t.Fatalf("after resume %q", got)
	}
}

func TestDataChannelRejects(t *testing.T) {
	s := newTestServer(t)
	out, err := startSSH(t, ssmClient(t, s), testInstance)
	if err != nil {
		t.Fatal(err)
	}
	url := aws.ToString(out.StreamUrl)
	t.Run("re-encoded query", func(t *testing.T) {
		bad := strings.Replace(url, "+", "%2B", 1)
		_, resp, err := websocket.Dial(context.Background(), bad, &websocket.DialOptions{HTTPClient: httpClient(t, s)})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("bad upgrade signature", func(t *testing.T) {
		_, resp, err := websocket.Dial(context.Background(), url, &websocket.DialOptions{HTTPClient: httpClient(t, s),
			HTTPHeader: upgradeHeaders(t, url, "wrong-secret")})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("bad token", func(t *testing.T) {
		tc := dialChannel(t, s, url, "not-the-token")
		if _, err := tc.read(); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("token single use", func(t *testing.T) {
		tc := dialChannel(t, s, url, aws.ToString(out.TokenValue))
		tc.next()
		tc2 := dialChannel(t, s, url, aws.ToString(out.TokenValue))
		if _, err := tc2.read(); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Fatalf("got %v", err)
		}
	})
}

func TestCloseUnblocksSessions(t *testing.T) {
	s := newTestServer(t)
	_, _, tc := openSession(t, s)
	tc.handshake()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	m := tc.next()
	if m.Type != typeChannelClosed {
		t.Fatalf("got %s", m.Type)
	}
}

// upgradeHeaders signs GET url like the 2024+ plugin (service ssmmessages).
func upgradeHeaders(t *testing.T, url, secret string) http.Header {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	creds := aws.Credentials{AccessKeyID: testCreds.AccessKey, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hashHex(nil), "ssmmessages", testCreds.Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	return http.Header{"Authorization": r.Header["Authorization"], "X-Amz-Date": r.Header["X-Amz-Date"]}
}
