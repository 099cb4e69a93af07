package ssm_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel/ssm"
	"github.com/vpcvpn/vpcvpn/tunnel/ssm/ssmtest"
)

const (
	testToken = "AAEAAT0ken+/=="
	// testQuery is a StreamUrl query as observed since 2025, with the
	// characters a re-encoding would damage.
	testQuery = "role=publish_subscribe&cell-number=AAEC+/x9z=="
)

// start serves a over TLS and returns a Config for it.
func start(t *testing.T, a *ssmtest.Agent) ssm.Config {
	t.Helper()
	if a.Token == "" {
		a.Token = testToken
	}
	srv := httptest.NewTLSServer(a)
	t.Cleanup(srv.Close)
	t.Cleanup(a.Close)
	return ssm.Config{
		StreamURL:    "wss://" + srv.Listener.Addr().String() + "/v1/data-channel/itsme-0625cb834d1273961?" + testQuery,
		Token:        a.Token,
		HTTPClient:   srv.Client(),
		Logger:       vpctest.Logger(t),
		CloseTimeout: time.Second,
	}
}

// dial starts a and dials it.
func dial(t *testing.T, a *ssmtest.Agent) (*ssm.Conn, *ssmtest.Session) {
	t.Helper()
	c, err := ssm.Dial(context.Background(), start(t, a))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, <-a.Sessions()
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// relayServe returns a Serve that reads len(up) bytes into got while
// writing down, then returns (the agent then closes the channel).
func relayServe(up, down []byte, got chan<- []byte) func(net.Conn) {
	return func(st net.Conn) {
		var wg sync.WaitGroup
		wg.Go(func() { st.Write(down) })
		buf := make([]byte, len(up))
		n, _ := io.ReadFull(st, buf)
		got <- buf[:n]
		wg.Wait()
	}
}

// relay moves up and down through the session at once and checks both,
// and that the end of the stream carries the agent's reason.
func relay(t *testing.T, a *ssmtest.Agent, size int) *ssmtest.Session {
	t.Helper()
	up, down := random(size), random(size)
	got := make(chan []byte, 1)
	a.Serve = relayServe(up, down, got)
	a.CloseReason = "done"
	c, s := dial(t, a)
	exchange(t, c, up, down, got)
	return s
}

// exchange writes up to c while it reads down from it, checks both (the
// agent's side of up arrives on got), and that the stream then ends with
// the agent's reason "done".
func exchange(t *testing.T, c *ssm.Conn, up, down []byte, got <-chan []byte) {
	t.Helper()
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(up)
		werr <- err
	}()
	buf := make([]byte, len(down))
	if n, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read after %d bytes: %v", n, err)
	}
	if !bytes.Equal(buf, down) {
		t.Error("agent -> client bytes differ")
	}
	if err := <-werr; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(<-got, up) {
		t.Error("client -> agent bytes differ")
	}
	var cc *ssm.ChannelClosedError
	if _, err := c.Read(buf); !errors.As(err, &cc) || cc.Output != "done" {
		t.Errorf("read after the agent closed: %v, want a ChannelClosedError with reason", err)
	}
}

func TestRelay(t *testing.T) {
	vpctest.LeakCheck(t)
	s := relay(t, &ssmtest.Agent{Pace: 20 * time.Microsecond}, 2<<20)
	if st := s.Stats(); st.EarlyOutput != 0 {
		t.Errorf("the client sent %d Output messages before HandshakeComplete", st.EarlyOutput)
	}
}

// every applies v to each n-th sequenced frame in each direction, on its
// first transmission only, and to each n-th acknowledge.
func every(n int64, v ssmtest.Verdict) func(bool, *ssm.Message) ssmtest.Verdict {
	var mu sync.Mutex
	seen := make(map[[2]int64]bool)
	acks := 0
	return func(toClient bool, m *ssm.Message) ssmtest.Verdict {
		mu.Lock()
		defer mu.Unlock()
		if m.Type == ssm.TypeAcknowledge {
			if acks++; acks%int(n) == 0 {
				return v
			}
			return ssmtest.Pass
		}
		dir := int64(0)
		if toClient {
			dir = 1
		}
		k := [2]int64{dir, m.SequenceNumber}
		if seen[k] || m.SequenceNumber < 2 || m.SequenceNumber%n != 0 {
			seen[k] = true
			return ssmtest.Pass
		}
		seen[k] = true
		return v
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name  string
		agent *ssmtest.Agent
		size  int
		check func(t *testing.T, st ssmtest.Stats)
	}{
		// Byte-exact delivery despite the drops proves the retransmissions.
		{name: "lost frames", agent: &ssmtest.Agent{Filter: every(16, ssmtest.Drop)}, size: 128 << 10},
		{name: "duplicated frames", agent: &ssmtest.Agent{Filter: every(3, ssmtest.Duplicate)}, size: 512 << 10,
			check: func(t *testing.T, st ssmtest.Stats) {
				if st.ReAcks == 0 || st.DupIn == 0 {
					t.Errorf("stats %+v: want re-acks from the client and duplicates at the agent", st)
				}
			}},
		{name: "reordered frames", agent: &ssmtest.Agent{Filter: every(4, ssmtest.Hold)}, size: 512 << 10},
		// The agent's pacing keeps the session up long enough for the
		// client's RTO to expire while an ack is late.
		{name: "delayed acks", agent: &ssmtest.Agent{Filter: delayAcks(50), Delay: 300 * time.Millisecond, Pace: time.Millisecond}, size: 512 << 10,
			check: func(t *testing.T, st ssmtest.Stats) {
				if st.DupIn == 0 {
					t.Errorf("stats %+v: the client did not retransmit while its ack was late", st)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vpctest.LeakCheck(t)
			s := relay(t, tt.agent, tt.size)
			if tt.check != nil {
				tt.check(t, s.Stats())
			}
		})
	}
}

// delayAcks delays every n-th acknowledgement the agent sends.
func delayAcks(n int) func(bool, *ssm.Message) ssmtest.Verdict {
	var mu sync.Mutex
	count := 0
	return func(toClient bool, m *ssm.Message) ssmtest.Verdict {
		if !toClient || m.Type != ssm.TypeAcknowledge {
			return ssmtest.Pass
		}
		mu.Lock()
		defer mu.Unlock()
		if count++; count%n == 0 {
			return ssmtest.Delay
		}
		return ssmtest.Pass
	}
}

func TestDialRequest(t *testing.T) {
	vpctest.LeakCheck(t)
	a := &ssmtest.Agent{}
	cfg := start(t, a)
	cfg.ClientID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	cfg.Header = func(ctx context.Context, u string) (http.Header, error) {
		if !strings.HasSuffix(u, "?"+testQuery) {
			t.Errorf("Header got URL %q", u)
		}
		return http.Header{"Authorization": {"AWS4-HMAC-SHA256 test"}}, nil
	}
	c, err := ssm.Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := <-a.Sessions()
	if s.RawQuery != testQuery {
		t.Errorf("query %q, want it verbatim: %q", s.RawQuery, testQuery)
	}
	if got := s.Header.Get("Authorization"); got != "AWS4-HMAC-SHA256 test" {
		t.Errorf("Authorization %q", got)
	}
	if s.Open.ClientID != cfg.ClientID || s.Open.ClientVersion != ssm.DefaultClientVersion || s.Open.TokenValue != testToken {
		t.Errorf("OpenDataChannel %+v", s.Open)
	}
	if r := s.Response(); len(r.ProcessedClientActions) != 1 || r.ProcessedClientActions[0].ActionStatus != ssm.ActionSuccess {
		t.Errorf("handshake response %+v", r)
	}
	if h := c.Handshake(); h.AgentVersion != "3.3.1142.0" || h.SessionType != "Port" || h.Properties["portNumber"] != "22" {
		t.Errorf("Handshake() = %+v", h)
	}
}

func TestDialBadToken(t *testing.T) {
	vpctest.LeakCheck(t)
	a := &ssmtest.Agent{}
	cfg := start(t, a)
	cfg.Token = "stale"
	if c, err := ssm.Dial(context.Background(), cfg); err == nil {
		c.Close()
		t.Fatal("Dial with a bad token succeeded")
	} else {
		t.Log(err)
	}
}

func TestKMSRefused(t *testing.T) {
	vpctest.LeakCheck(t)
	a := &ssmtest.Agent{KMS: true}
	c, err := ssm.Dial(context.Background(), start(t, a))
	if err == nil {
		c.Close()
		t.Fatal("Dial accepted a KMS handshake")
	}
	if !errors.Is(err, ssm.ErrKMSEncryption) || !strings.Contains(err.Error(), "use a document without it") {
		t.Errorf("error %q, want the KMS refusal", err)
	}
	s := <-a.Sessions()
	r := s.Response()
	if len(r.ProcessedClientActions) != 2 || r.ProcessedClientActions[1].ActionStatus != ssm.ActionUnsupported {
		t.Errorf("the agent got %+v, want KMSEncryption answered Unsupported", r)
	}
}

func TestChannelClosedReason(t *testing.T) {
	vpctest.LeakCheck(t)
	const reason = "Your session has been terminated for the following reasons: idle timeout"
	a := &ssmtest.Agent{CloseReason: reason, Serve: func(st net.Conn) { st.Write([]byte("last words")) }}
	c, _ := dial(t, a)
	b, err := io.ReadAll(c)
	if string(b) != "last words" {
		t.Errorf("read %q before the close", b)
	}
	var cc *ssm.ChannelClosedError
	if !errors.As(err, &cc) || cc.Output != reason || !strings.Contains(err.Error(), reason) {
		t.Fatalf("read error %v, want the reason", err)
	}
	if cc.SessionID != "itsme-0625cb834d1273961" {
		t.Errorf("session id %q", cc.SessionID)
	}
	if _, err := c.Write([]byte("x")); !errors.As(err, &cc) {
		t.Errorf("write after channel_closed: %v", err)
	}
	<-c.Done()
	if !errors.As(c.Err(), &cc) {
		t.Errorf("Err() = %v", c.Err())
	}
}

func TestCloseTerminates(t *testing.T) {
	vpctest.LeakCheck(t)
	got := make(chan []byte, 1)
	a := &ssmtest.Agent{Serve: func(st net.Conn) {
		b, _ := io.ReadAll(st)
		got <- b
	}}
	c, s := dial(t, a)
	if _, err := c.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	blocked := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		blocked <- err
	}()
	c.Close()
	select {
	case <-s.Terminated():
	default:
		t.Error("Close returned before the agent had the TerminateSession flag")
	}
	if err := <-blocked; !errors.Is(err, net.ErrClosed) {
		t.Errorf("blocked Read returned %v, want net.ErrClosed", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	select {
	case b := <-got:
		if string(b) != "bye" {
			t.Errorf("agent got %q", b)
		}
	case <-s.Done():
		if b := <-got; string(b) != "bye" {
			t.Errorf("agent got %q", b)
		}
	}
	c.Close() // idempotent
}

func TestCloseStalledPeer(t *testing.T) {
	vpctest.LeakCheck(t)
	c, s := dial(t, &ssmtest.Agent{Serve: func(st net.Conn) { io.Copy(io.Discard, st) }})
	s.Stall()
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(random(8 << 20)) // far beyond the window and socket buffers
		werr <- err
	}()
	begin := time.Now()
	c.Close()
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("Close took %v with a stalled peer", d)
	}
	if err := <-werr; !errors.Is(err, net.ErrClosed) {
		t.Errorf("blocked Write returned %v, want net.ErrClosed", err)
	}
}

func TestReadDeadline(t *testing.T) {
	vpctest.LeakCheck(t)
	c, _ := dial(t, &ssmtest.Agent{Serve: func(st net.Conn) { io.Copy(io.Discard, st) }})
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read past the deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	if _, err := c.Write([]byte("x")); err != nil {
		t.Errorf("Write: %v", err)
	}
}

func TestPingTimeout(t *testing.T) {
	vpctest.LeakCheck(t)
	a := &ssmtest.Agent{Serve: func(st net.Conn) { io.Copy(io.Discard, st) }}
	cfg := start(t, a)
	cfg.PingInterval = 100 * time.Millisecond
	c, err := ssm.Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	(<-a.Sessions()).Stall()
	<-c.Done()
	if err := c.Err(); err == nil || !strings.Contains(err.Error(), "no pong") {
		t.Errorf("Err() = %v, want a ping timeout", err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, net.ErrClosed) {
		t.Errorf("Read = %v, want the ping timeout", err)
	}
}
