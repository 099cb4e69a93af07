package awsemu

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/coder/websocket"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

const (
	testInstance  = "i-0123456789abcdef0"
	offlineTarget = "i-0fedcba9876543210"
)

// tlogWriter sends slog output to t.Log.
type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// newTestServer starts an emulator whose instance dials a local echo server.
func newTestServer(t *testing.T, opts ...func(*Config)) *Server {
	t.Helper()
	vpctest.LeakCheck(t)
	echo := startEcho(t)
	cfg := Config{
		Listen: "127.0.0.1:0", AccessKey: testCreds.AccessKey, SecretKey: testCreds.Secret, Region: testCreds.Region,
		Instances:    map[string]string{testInstance: echo, offlineTarget: echo},
		Disconnected: []string{offlineTarget},
		Logger:       slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		<-s.Done()
	})
	return s
}

func startEcho(t *testing.T) string {
	t.Helper()
	return serveTCP(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
}

// serveTCP serves each connection to a loopback listener with handle,
// closing it after, until the test ends; it returns the address.
func serveTCP(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { handle(c); _ = c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func httpClient(t *testing.T, s *Server) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CAPEM()) {
		t.Fatal("bad CA PEM")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func ssmClient(t *testing.T, s *Server) *ssm.Client {
	t.Helper()
	return ssm.New(ssm.Options{
		Region:       testCreds.Region,
		BaseEndpoint: aws.String(s.URL()),
		HTTPClient:   httpClient(t, s),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: testCreds.AccessKey, SecretAccessKey: testCreds.Secret}, nil
		}),
	})
}

func startSSH(t *testing.T, c *ssm.Client, target string) (*ssm.StartSessionOutput, error) {
	t.Helper()
	return c.StartSession(context.Background(), &ssm.StartSessionInput{
		Target: aws.String(target), DocumentName: aws.String(sshDocument),
		Parameters: map[string][]string{"portNumber": {"22"}},
	})
}

// tclient is a minimal, test-only data-channel client.
type tclient struct {
	t      *testing.T
	ws     *websocket.Conn
	outSeq int64
	inNext int64 // the sequence number readOutput takes next
}

func dialChannel(t *testing.T, s *Server, url, token string) *tclient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: httpClient(t, s)})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	open, _ := json.Marshal(openDataChannel{"1.0", newUUID().String(), token, newUUID().String(), "1.0.0"})
	if err := ws.Write(ctx, websocket.MessageText, open); err != nil {
		t.Fatal(err)
	}
	return &tclient{t: t, ws: ws}
}

func (c *tclient) read() (message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		return message{}, err
	}
	return decode(b)
}

// next returns the next non-ack message, failing the test on error.
func (c *tclient) next() message {
	c.t.Helper()
	for {
		m, err := c.read()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		if m.Type != typeAck {
			return m
		}
	}
}

func (c *tclient) send(m message) {
	c.t.Helper()
	if err := c.ws.Write(context.Background(), websocket.MessageBinary, encode(m)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *tclient) input(pt uint32, payload []byte) message {
	m := message{Type: typeInput, Schema: 1, Created: uint64(time.Now().UnixMilli()),
		Seq: c.outSeq, ID: newUUID(), PayloadType: pt, Payload: payload}
	c.outSeq++
	c.send(m)
	return m
}

func (c *tclient) ack(m message) { c.send(ackFor(m, time.Now())) }

// handshake completes the agent handshake and returns the HandshakeRequest.
func (c *tclient) handshake() handshakeRequest {
	c.t.Helper()
	req := c.next()
	if req.PayloadType != ptHandshakeRequest || req.Seq != 0 || req.Flags != 1 {
		c.t.Fatalf("first message: %+v", req)
	}
	c.ack(req)
	var hr handshakeRequest
	if err := json.Unmarshal(req.Payload, &hr); err != nil {
		c.t.Fatal(err)
	}
	c.input(ptHandshakeResponse, []byte(`{"ClientVersion":"1.0.0","ProcessedClientActions":[{"ActionType":"SessionType","ActionStatus":1,"ActionResult":null,"Error":""}],"Errors":null}`))
	done := c.next()
	if done.PayloadType != ptHandshakeComplete {
		c.t.Fatalf("want HandshakeComplete, got %+v", done)
	}
	c.ack(done)
	return hr
}

// readOutput reads Output messages, acking them, until n bytes arrived.
// As a real client, it acks again and drops a retransmission of one it
// has taken (the agent resends what it sees no ack for in time).
func (c *tclient) readOutput(n int) []byte {
	c.t.Helper()
	var got []byte
	for len(got) < n {
		m := c.next()
		if m.PayloadType != ptOutput {
			c.t.Fatalf("unexpected %s pt %d: %s", m.Type, m.PayloadType, m.Payload)
		}
		c.ack(m)
		if m.Seq < c.inNext {
			continue
		}
		c.inNext = m.Seq + 1
		got = append(got, m.Payload...)
	}
	return got
}

func isCloseErr(err error) bool {
	return err != nil && (websocket.CloseStatus(err) != -1 || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed))
}
