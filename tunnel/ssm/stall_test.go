package ssm_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel/ssm"
	"github.com/vpcvpn/vpcvpn/tunnel/ssm/ssmtest"
)

// TestStallResumes: when the service stops relaying in both directions
// without closing the WebSocket (its pings still answered), the Conn
// notices after StallTimeout, resumes, and the stream completes.
func TestStallResumes(t *testing.T) {
	vpctest.LeakCheck(t)
	var cut atomic.Bool
	a := &ssmtest.Agent{Greeting: greeting, KeepOnDrop: true,
		Filter: func(bool, *ssm.Message) ssmtest.Verdict {
			if cut.Load() {
				return ssmtest.Drop
			}
			return ssmtest.Pass
		}}
	f := &fakeAPI{}
	causes := make(chan error, 1)
	var o ssm.SessionOptions
	o.Config.StallTimeout = 300 * time.Millisecond
	o.Config.Resuming = func(cause error) { causes <- cause }
	c, s := startSession(t, a, f, o)
	readGreeting(t, c)
	f.onResume(func(context.Context) (*awsssm.ResumeSessionOutput, error) {
		cut.Store(false)
		return &awsssm.ResumeSessionOutput{SessionId: aws.String(testSessionID), TokenValue: aws.String(s.NewToken())}, nil
	})
	cut.Store(true)
	want := random(20_000)
	go c.Write(want)
	if cause := <-causes; !errors.Is(cause, ssm.ErrStalled) {
		t.Errorf("resumed because of %v, want ErrStalled", cause)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("echo after the stall: %v, equal %v", err, bytes.Equal(got, want))
	}
}

// TestRecovered: a message the agent never received is resent, and
// Recovered says so; a clean exchange does not signal.
func TestRecovered(t *testing.T) {
	vpctest.LeakCheck(t)
	var drop atomic.Int32
	a := &ssmtest.Agent{Filter: func(toClient bool, m *ssm.Message) ssmtest.Verdict {
		if !toClient && m.PayloadType == ssm.PayloadOutput && drop.Add(-1) >= 0 {
			return ssmtest.Drop
		}
		return ssmtest.Pass
	}}
	c, _ := dial(t, a)
	echo(t, c, random(5000))
	select {
	case <-c.Recovered():
		t.Fatal("Recovered signalled without a loss")
	default:
	}
	drop.Store(1)
	echo(t, c, random(5000))
	<-c.Recovered()
	c.Close() // waits for the agent's acknowledgements
	if got := c.Acknowledged(); got != 10000 {
		t.Errorf("Acknowledged() = %d after 10000 bytes echoed, want 10000", got)
	}
}

// echo writes b to c and reads it back.
func echo(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	go c.Write(b)
	got := make([]byte, len(b))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("echo: %v, equal %v", err, bytes.Equal(got, b))
	}
}

// TestAgentGone: the service pauses the client when the agent's data
// channel closes; an agent that never comes back ends the Conn with
// ErrAgentGone after AwayTimeout.
func TestAgentGone(t *testing.T) {
	vpctest.LeakCheck(t)
	m := ssm.Message{Type: ssm.TypePausePublication, SchemaVersion: 1, CreatedDate: uint64(time.Now().UnixMilli())}
	pause, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var gone atomic.Bool // the agent's side went away: nothing more reaches the client
	a := &ssmtest.Agent{
		Filter: func(toClient bool, _ *ssm.Message) ssmtest.Verdict {
			if toClient && gone.Load() {
				return ssmtest.Drop
			}
			return ssmtest.Pass
		},
		Serve: func(st net.Conn) {
			st.Read(make([]byte, 1)) // the client has the handshake: nothing of it follows the pause
			gone.Store(true)
			st.(*ssmtest.Stream).Inject(pause, false)
			io.Copy(io.Discard, st)
		}}
	cfg := start(t, a)
	cfg.AwayTimeout = 200 * time.Millisecond
	c, err := ssm.Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte{1})
	<-c.Done()
	if err := c.Err(); !errors.Is(err, ssm.ErrAgentGone) {
		t.Errorf("Err() = %v, want ErrAgentGone", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, ssm.ErrAgentGone) {
		t.Errorf("Read = %v, want ErrAgentGone", err)
	}
}
