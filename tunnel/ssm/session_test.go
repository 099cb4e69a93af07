package ssm_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel/ssm"
	"github.com/vpcvpn/vpcvpn/tunnel/ssm/ssmtest"
)

const testSessionID = "itsme-0625cb834d1273961"

// greeting is what the agents of Start's tests send first, as sshd does:
// Start waits for it before it writes (Config.ServerSpeaksFirst).
var greeting = []byte("SSH-2.0-ssmtest\r\n")

// readGreeting reads greeting from c.
func readGreeting(t *testing.T, c io.Reader) {
	t.Helper()
	got := make([]byte, len(greeting))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, greeting) {
		t.Fatalf("greeting: %q, %v", got, err)
	}
}

// fakeAPI plays StartSession, ResumeSession and TerminateSession.
type fakeAPI struct {
	streamURL, token string
	startErr         error

	mu         sync.Mutex                                                 // guards following
	resume     func(context.Context) (*awsssm.ResumeSessionOutput, error) // nil: no token
	starts     []*awsssm.StartSessionInput
	resumes    []string // SessionIds
	terminated []string // SessionIds
}

var _ ssm.API = (*fakeAPI)(nil)

func (f *fakeAPI) StartSession(_ context.Context, in *awsssm.StartSessionInput, _ ...func(*awsssm.Options)) (*awsssm.StartSessionOutput, error) {
	f.mu.Lock()
	f.starts = append(f.starts, in)
	f.mu.Unlock()
	if f.startErr != nil {
		return nil, f.startErr
	}
	return &awsssm.StartSessionOutput{SessionId: aws.String(testSessionID),
		StreamUrl: aws.String(f.streamURL), TokenValue: aws.String(f.token)}, nil
}

func (f *fakeAPI) ResumeSession(ctx context.Context, in *awsssm.ResumeSessionInput, _ ...func(*awsssm.Options)) (*awsssm.ResumeSessionOutput, error) {
	f.mu.Lock()
	f.resumes = append(f.resumes, aws.ToString(in.SessionId))
	resume := f.resume
	f.mu.Unlock()
	if resume == nil {
		return &awsssm.ResumeSessionOutput{SessionId: in.SessionId}, nil
	}
	return resume(ctx)
}

func (f *fakeAPI) onResume(resume func(context.Context) (*awsssm.ResumeSessionOutput, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resume = resume
}

func (f *fakeAPI) TerminateSession(_ context.Context, in *awsssm.TerminateSessionInput, _ ...func(*awsssm.Options)) (*awsssm.TerminateSessionOutput, error) {
	f.mu.Lock()
	f.terminated = append(f.terminated, aws.ToString(in.SessionId))
	f.mu.Unlock()
	return &awsssm.TerminateSessionOutput{SessionId: in.SessionId}, nil
}

func (f *fakeAPI) calls() (starts, resumes, terminated int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.starts), len(f.resumes), len(f.terminated)
}

// startSession serves a and starts a session on it through f.
func startSession(t *testing.T, a *ssmtest.Agent, f *fakeAPI, opts ...ssm.SessionOptions) (*ssm.Conn, *ssmtest.Session) {
	t.Helper()
	cfg := start(t, a)
	f.streamURL, f.token = cfg.StreamURL, cfg.Token
	var o ssm.SessionOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	cfg.Resuming, cfg.Resumed = o.Config.Resuming, o.Config.Resumed
	if o.Config.StallTimeout != 0 {
		cfg.StallTimeout = o.Config.StallTimeout
	}
	o.Config = cfg
	c, err := ssm.Start(context.Background(), f, "i-0123456789abcdef0", o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, <-a.Sessions()
}

func TestStart(t *testing.T) {
	vpctest.LeakCheck(t)
	f := &fakeAPI{}
	c, s := startSession(t, &ssmtest.Agent{Greeting: greeting}, f)
	readGreeting(t, c)
	if id := c.SessionID(); id != testSessionID {
		t.Errorf("SessionID() = %q, want %q", id, testSessionID)
	}
	in := f.starts[0]
	if aws.ToString(in.Target) != "i-0123456789abcdef0" || aws.ToString(in.DocumentName) != "AWS-StartSSHSession" ||
		len(in.Parameters["portNumber"]) != 1 || in.Parameters["portNumber"][0] != "22" {
		t.Errorf("StartSession input: target %q document %q parameters %v",
			aws.ToString(in.Target), aws.ToString(in.DocumentName), in.Parameters)
	}
	want := random(10_000)
	go c.Write(want)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("echo: %v, equal %v", err, bytes.Equal(got, want))
	}
	c.Close()
	select {
	case <-s.Terminated():
	default:
		t.Error("no TerminateSession flag")
	}
	if _, _, n := f.calls(); n != 1 || f.terminated[0] != testSessionID {
		t.Errorf("TerminateSession calls: %v, want [%s]", f.terminated, testSessionID)
	}
}

// TestResume breaks the WebSocket while messages in both directions are
// unacknowledged; the transfer completes byte-exact on a resumed socket.
func TestResume(t *testing.T) {
	vpctest.LeakCheck(t)
	const half = 128 << 10
	up, down := random(2*half), random(2*half)
	var cut atomic.Bool // drop the agent's acks: client messages stay unacknowledged
	mid, gotUp, cont := make(chan struct{}), make(chan []byte, 1), make(chan struct{})
	a := &ssmtest.Agent{CloseReason: "done",
		Filter: func(toClient bool, m *ssm.Message) ssmtest.Verdict {
			if toClient && m.Type == ssm.TypeAcknowledge && cut.Load() {
				return ssmtest.Drop
			}
			return ssmtest.Pass
		},
		Serve: func(st net.Conn) {
			st.Write(down[:half])
			buf := make([]byte, len(up))
			io.ReadFull(st, buf[:half])
			close(mid)
			io.ReadFull(st, buf[half:])
			gotUp <- buf
			<-cont
			st.Write(down[half:])
		}}
	f := &fakeAPI{}
	events := make(chan string, 4)
	var o ssm.SessionOptions
	o.Config.Resuming = func(cause error) { events <- "resuming: " + cause.Error() }
	o.Config.Resumed = func() { events <- "resumed" }
	c, s := startSession(t, a, f, o)
	var token atomic.Value
	f.onResume(func(context.Context) (*awsssm.ResumeSessionOutput, error) {
		tok := s.NewToken()
		token.Store(tok)
		return &awsssm.ResumeSessionOutput{SessionId: aws.String(testSessionID), TokenValue: aws.String(tok),
			StreamUrl: aws.String("wss://elsewhere.invalid/must-not-be-used")}, nil
	})
	read := make(chan []byte, 1)
	go func() {
		buf := make([]byte, len(down))
		n, _ := io.ReadFull(c, buf)
		read <- buf[:n]
	}()
	c.Write(up[:half])
	<-mid
	cut.Store(true)
	c.Write(up[half:])
	if !bytes.Equal(<-gotUp, up) {
		t.Error("client -> agent bytes differ")
	}
	s.Break()
	cut.Store(false)
	close(cont)
	if !bytes.Equal(<-read, down) {
		t.Error("agent -> client bytes differ")
	}
	checkResumed(t, f, s, token.Load())
	if e := <-events; !strings.HasPrefix(e, "resuming: ") {
		t.Errorf("first event %q, want resuming with a cause", e)
	}
	if e := <-events; e != "resumed" {
		t.Errorf("second event %q, want resumed", e)
	}
	c.Close()
	if _, _, n := f.calls(); n != 1 {
		t.Errorf("%d TerminateSession calls, want 1", n)
	}
}

// checkResumed checks that one ResumeSession happened and that its token
// was used on the original stream URL, verbatim.
func checkResumed(t *testing.T, f *fakeAPI, s *ssmtest.Session, token any) {
	t.Helper()
	if _, n, _ := f.calls(); n != 1 || f.resumes[0] != testSessionID {
		t.Errorf("ResumeSession calls: %v, want one for %s", f.resumes, testSessionID)
	}
	ups := s.Upgrades()
	if len(ups) != 2 {
		t.Fatalf("%d WebSockets, want 2", len(ups))
	}
	if ups[1].RawQuery != testQuery || ups[1].Open.TokenValue != token {
		t.Errorf("resumed with query %q token %q, want %q %q", ups[1].RawQuery, ups[1].Open.TokenValue, testQuery, token)
	}
	if ups[1].Open.ClientID != ups[0].Open.ClientID {
		t.Error("ClientID changed on resume")
	}
}

func TestResumeNoToken(t *testing.T) {
	vpctest.LeakCheck(t)
	f := &fakeAPI{}
	c, s := startSession(t, &ssmtest.Agent{}, f)
	s.Break()
	_, err := c.Read(make([]byte, 1))
	var ended *ssm.SessionEndedError
	if !errors.As(err, &ended) || !strings.Contains(err.Error(), "session "+testSessionID+" has ended") {
		t.Fatalf("Read after a resume without token: %v, want a SessionEndedError", err)
	}
	<-c.Done()
	if _, n, _ := f.calls(); n != 1 {
		t.Errorf("%d ResumeSession calls, want 1", n)
	}
}

// TestResumeRetry: a failed ResumeSession is retried after a backoff.
func TestResumeRetry(t *testing.T) {
	vpctest.LeakCheck(t)
	f := &fakeAPI{}
	c, s := startSession(t, &ssmtest.Agent{Greeting: greeting}, f)
	readGreeting(t, c)
	var calls atomic.Int32
	f.onResume(func(context.Context) (*awsssm.ResumeSessionOutput, error) {
		if calls.Add(1) == 1 {
			return nil, &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}
		}
		return &awsssm.ResumeSessionOutput{SessionId: aws.String(testSessionID), TokenValue: aws.String(s.NewToken())}, nil
	})
	s.Break()
	want := random(5000)
	go c.Write(want)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("echo after resume: %v, equal %v", err, bytes.Equal(got, want))
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d ResumeSession calls, want 2", n)
	}
	if n := len(s.Upgrades()); n != 2 {
		t.Errorf("%d WebSockets, want 2", n)
	}
}

func TestResumeGivesUp(t *testing.T) {
	vpctest.LeakCheck(t)
	f := &fakeAPI{}
	c, s := startSession(t, &ssmtest.Agent{}, f, ssm.SessionOptions{ResumeAttempts: 2})
	f.onResume(func(context.Context) (*awsssm.ResumeSessionOutput, error) {
		return nil, &smithy.GenericAPIError{Code: "InternalServerError", Message: "try later"}
	})
	s.Break()
	<-c.Done()
	err := c.Err()
	if err == nil || !strings.Contains(err.Error(), "gave up after 2 attempts") || !errors.Is(err, ssm.ErrSessionCallFailed) {
		t.Errorf("Conn ended with %v, want a give-up after 2 attempts", err)
	}
	if _, n, _ := f.calls(); n != 2 {
		t.Errorf("%d ResumeSession calls, want 2", n)
	}
}

// TestCloseWhileResuming: Close cancels a pending ResumeSession, returns,
// and still terminates the session.
func TestCloseWhileResuming(t *testing.T) {
	vpctest.LeakCheck(t)
	f := &fakeAPI{}
	c, s := startSession(t, &ssmtest.Agent{}, f)
	called := make(chan struct{})
	f.onResume(func(ctx context.Context) (*awsssm.ResumeSessionOutput, error) {
		close(called)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	s.Break()
	<-called
	c.Close()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close: %v, want net.ErrClosed", err)
	}
	if _, _, n := f.calls(); n != 1 {
		t.Errorf("%d TerminateSession calls, want 1", n)
	}
}
