//go:build linux

package integration_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"
	"golang.org/x/crypto/ssh"

	"github.com/vpcvpn/vpcvpn/integration/lab"
	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel"
	"github.com/vpcvpn/vpcvpn/tunnel/ssm"
)

// TestSSMRealAgentClient checks the client's answers to what AWS's real
// SSM agent does (3.3.987.0, behind the emulated service): it discards
// data that arrives just after its HandshakeComplete, and it may write a
// message to sshd twice when its own WebSocket breaks during an upload.
// The sessions are opened by the test process itself, in the laptop
// namespace, with tunnel/ssm and tunnel, as vpcvpn opens them: the real
// agent and the real sshd, without vpcvpn's start-up around each one.
func TestSSMRealAgentClient(t *testing.T) {
	l, v := upSSMLab(t, lab.Options{AWS: &lab.AWSOptions{Agent: lab.AgentReal}})
	if err := l.StartDataServers(); err != nil {
		t.Fatal(err)
	}
	d := newDirectSSM(t, l)
	t.Run("Starts200", func(t *testing.T) { testStarts(t, d, 200) })
	t.Run("AgentDropDuringUpload", func(t *testing.T) { testAgentDropDuringUpload(t, l, d) })
	t.Run("StallResumed", func(t *testing.T) { testStallResumed(t, l, d) })
	t.Run("SessionWorkerKilled", func(t *testing.T) { testSessionWorkerKilled(t, l, d) })
	t.Run("StatusNamesTheCause", func(t *testing.T) { testStatusNamesTheCause(t, l, v) })
}

// testStatusNamesTheCause runs vpcvpn, kills its session's worker under an
// open flow, and reads the cause in status --json within noticeWithin.
func testStatusNamesTheCause(t *testing.T, l *lab.Lab, v *lab.VPCVPN) {
	in := startVPCVPN(t, v, v.UpArgsSSM(ifName)...)
	ctx := testContext(t, time.Minute)
	flow, r := openEcho(t, ctx, l)
	defer flow.Close()
	echo(t, flow, r, "before")
	killed := time.Now()
	if n, err := l.KillAgentProgram(ctx, "ssm-session-worker"); err != nil || n == 0 {
		t.Fatalf("kill the session worker: %d killed, %v", n, err)
	}
	const cause = "SSM agent left the session"
	var last string
	waitFor(t, ctx, "status naming the cause", func() bool {
		var st struct {
			LastError string `json:"last_error"`
		}
		res, err := v.Run(ctx, "status", "--json", "--name", ifName)
		if err == nil && json.Unmarshal([]byte(res.Stdout), &st) == nil {
			last = st.LastError
		}
		return strings.Contains(last, cause) || time.Since(killed) > 10*time.Second
	})
	took := time.Since(killed)
	t.Logf("status said %q %v after the kill", last, took.Round(time.Millisecond))
	if !strings.Contains(last, cause) {
		t.Fatalf("status last_error %q; want %q\n%s", last, cause, in.Stderr())
	}
	if took > noticeWithin+time.Second { // status polls take their time
		t.Errorf("status named the cause %v after the kill; want within %v", took.Round(time.Millisecond), noticeWithin)
	}
}

// directSSM opens SSH connections over SSM sessions from the test process.
type directSSM struct {
	l      *lab.Lab
	api    *awsssm.Client
	http   *http.Client
	signer ssh.Signer
	host   ssh.PublicKey
}

func newDirectSSM(t *testing.T, l *lab.Lab) *directSSM {
	hc, err := l.AWSClient(l.Laptop)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hc.CloseIdleConnections)
	api := awsssm.NewFromConfig(aws.Config{
		Region:       lab.AWSRegion,
		Credentials:  credentials.NewStaticCredentialsProvider(lab.AWSAccessKey, lab.AWSSecretKey, ""),
		HTTPClient:   hc,
		BaseEndpoint: aws.String(l.AWS.Endpoint),
	})
	pem, err := os.ReadFile(l.SSH.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	_, line, _ := strings.Cut(l.SSH.HostKeyLine, " ")
	host, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		t.Fatalf("the bastion's host key %q: %v", line, err)
	}
	return &directSSM{l: l, api: api, http: hc, signer: signer, host: host}
}

// dial starts a session and runs the SSH handshake over it; opts, if
// any, adjust the data channel's configuration.
func (d *directSSM) dial(t *testing.T, ctx context.Context, opts ...func(*ssm.Config)) (*tunnel.Client, error) {
	cfg := ssm.Config{HTTPClient: d.http, Logger: vpctest.Logger(t)}
	for _, o := range opts {
		o(&cfg)
	}
	return tunnel.Dial(ctx, tunnel.Config{
		User: lab.SSHUser,
		Addr: net.JoinHostPort(lab.InstanceID, "22"),
		Transport: func(ctx context.Context) (net.Conn, error) {
			return ssm.Start(ctx, d.api, lab.InstanceID, ssm.SessionOptions{Config: cfg, TerminateTimeout: 5 * time.Second})
		},
		HostKeyCallback: ssh.FixedHostKey(d.host),
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(d.signer)},
		Logger:          vpctest.Logger(t),
	})
}

// testStarts starts n sessions one after the other, each with an SSH
// handshake over it: not one may fail. Before the client waited for the
// server's greeting, about one in 15 lost its SSH version line.
func testStarts(t *testing.T, d *directSSM, n int) {
	began := time.Now()
	var failed []string
	for i := range n {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		c, err := d.dial(t, ctx)
		cancel()
		if err != nil {
			failed = append(failed, fmt.Sprintf("start %d: %v", i, err))
			continue
		}
		c.Close()
	}
	t.Logf("%d starts through the real agent in %v, %d failed", n, time.Since(began).Round(time.Millisecond), len(failed))
	if len(failed) > 0 {
		t.Errorf("%d of %d first attempts failed:\n%s", len(failed), n, strings.Join(failed, "\n"))
	}
}

// noticeWithin is how soon after the break the client must end a broken
// connection.
const noticeWithin = 2 * time.Second

// testAgentDropDuringUpload breaks the agent's data-channel WebSocket while
// a flow uploads, until the agent's fault shows (it wrote a message to
// sshd twice, and sshd dropped the connection): the client ends the
// connection within noticeWithin of the break, names the agent, and a new
// session carries new flows.
func testAgentDropDuringUpload(t *testing.T, l *lab.Lab, d *directSSM) {
	const tries = 10
	for try := 1; try <= tries; try++ {
		broke, err := dropDuringUpload(t, l, d)
		if err != nil {
			t.Fatal(err)
		}
		if !broke {
			t.Logf("try %d: the upload survived the agent's drop", try)
			continue
		}
		ctx := testContext(t, time.Minute)
		c, err := d.dial(t, ctx)
		if err != nil {
			t.Fatalf("a new session after the break: %v", err)
		}
		defer c.Close()
		conn, err := c.DialContext(ctx, "tcp", vpcAddr(lab.EchoPort))
		if err != nil {
			t.Fatalf("a new flow after the break: %v", err)
		}
		defer conn.Close()
		if _, err := conn.Write([]byte("after\n")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(conn, make([]byte, 6)); err != nil {
			t.Fatalf("echo on a new flow after the break: %v", err)
		}
		return
	}
	t.Logf("the agent's fault did not show in %d drops", tries)
}

// dropDuringUpload uploads through one connection and drops the agent's
// WebSocket midway. It reports whether the connection broke; if it did,
// it checks how soon and why.
func dropDuringUpload(t *testing.T, l *lab.Lab, d *directSSM) (bool, error) {
	ctx := testContext(t, 2*time.Minute)
	c, err := d.dial(t, ctx)
	if err != nil {
		return false, fmt.Errorf("start: %w", err)
	}
	defer c.Close()
	conn, err := c.DialContext(ctx, "tcp", vpcAddr(lab.SinkPort))
	if err != nil {
		return false, fmt.Errorf("flow to the sink: %w", err)
	}
	defer conn.Close()
	const n = 4 << 20
	var sent atomic.Int64
	wrote := make(chan error, 1)
	go func() {
		buf := make([]byte, 32<<10)
		for sent.Load() < n {
			k, err := conn.Write(buf)
			sent.Add(int64(k))
			if err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	waitFor(t, ctx, "256 KiB uploaded", func() bool { return sent.Load() >= 256<<10 })
	sid := currentSession(t, l)
	dropped := time.Now()
	awsAdmin(t, l, "drop", url.Values{"session": {sid}, "side": {"agent"}})
	select {
	case err := <-wrote:
		if err == nil {
			return false, nil
		}
	case <-c.Done():
	}
	<-c.Done()
	noticed := time.Now()
	err = c.Err()
	// The break is sshd's death, which the agent's session follows at once:
	// the last close of the agent's data channel, the drop's own unless
	// the agent left.
	broke := dropped
	if at, ok := lastAgentClose(l, sid); ok && at.After(broke) {
		broke = at
	}
	t.Logf("the connection broke %v after the agent's drop, noticed %v after the break: %v",
		broke.Sub(dropped).Round(time.Millisecond), noticed.Sub(broke).Round(time.Millisecond), err)
	t.Logf("sshd's log:\n%s", logTail(l.SSH.Process.Log(), 1000))
	if !errors.Is(err, tunnel.ErrCorrupted) || !strings.Contains(err.Error(), "SSM agent") {
		t.Errorf("the break was reported as %v; want the SSM agent named", err)
	}
	if took := noticed.Sub(broke); took > noticeWithin {
		t.Errorf("the break was noticed %v after it; want within %v", took.Round(time.Millisecond), noticeWithin)
	}
	return true, nil
}

// stallResumedWithin is how soon a stalled session must be resumed: the
// client's StallTimeout and a resend tick.
const stallResumedWithin = ssm.DefaultStallTimeout + time.Second

// testStallResumed holds every frame of the session for 10 s in the
// service, both ways, without closing anything: the client, with data
// unacknowledged and nothing arriving, resumes the session within
// stallResumedWithin, and the open flow carries on (its echo may come only
// when the service lets the held frames go).
func testStallResumed(t *testing.T, l *lab.Lab, d *directSSM) {
	ctx := testContext(t, time.Minute)
	resuming := make(chan error, 8)
	c, err := d.dial(t, ctx, func(cfg *ssm.Config) {
		cfg.Resuming = func(cause error) {
			select {
			case resuming <- cause:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	conn, err := c.DialContext(ctx, "tcp", vpcAddr(lab.EchoPort))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	echo(t, conn, r, "before")
	sid := currentSession(t, l)
	awsAdmin(t, l, "delay", url.Values{"session": {sid}, "d": {"10s"}})
	t.Cleanup(func() { awsAdmin(t, l, "delay", url.Values{"session": {sid}, "d": {"0s"}}) })
	stalled := time.Now()
	if _, err := fmt.Fprintln(conn, "during"); err != nil {
		t.Fatal(err)
	}
	var cause error
	select {
	case cause = <-resuming:
	case <-ctx.Done():
		t.Fatal("the stalled session was not resumed")
	}
	took := time.Since(stalled)
	awsAdmin(t, l, "delay", url.Values{"session": {sid}, "d": {"0s"}})
	t.Logf("the stalled session was resumed %v after the stall began: %v", took.Round(time.Millisecond), cause)
	if !errors.Is(cause, ssm.ErrStalled) {
		t.Errorf("resumed because of %v; want ErrStalled", cause)
	}
	if took > stallResumedWithin {
		t.Errorf("resumed %v after the stall began; want within %v", took.Round(time.Millisecond), stallResumedWithin)
	}
	conn.SetDeadline(time.Now().Add(40 * time.Second))
	if got, err := r.ReadString('\n'); err != nil || got != "during\n" {
		t.Fatalf("echo across the stall: %q, %v", got, err)
	}
	if err := c.Err(); err != nil {
		t.Errorf("the connection ended across the stall: %v", err)
	}
}

// testSessionWorkerKilled kills the agent's session worker under an open
// flow: the client notices within noticeWithin.
func testSessionWorkerKilled(t *testing.T, l *lab.Lab, d *directSSM) {
	ctx := testContext(t, time.Minute)
	c, err := d.dial(t, ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	conn, err := c.DialContext(ctx, "tcp", vpcAddr(lab.EchoPort))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	killed := time.Now()
	if n, err := l.KillAgentProgram(ctx, "ssm-session-worker"); err != nil || n == 0 {
		t.Fatalf("kill the session worker: %d killed, %v", n, err)
	}
	select {
	case <-c.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the connection is still up 30s after its session worker was killed")
	}
	took := time.Since(killed)
	t.Logf("the connection ended %v after its session worker was killed: %v", took.Round(time.Millisecond), c.Err())
	if took > noticeWithin {
		t.Errorf("noticed %v after the kill; want within %v", took.Round(time.Millisecond), noticeWithin)
	}
}

// lastAgentClose returns when the emulator last saw the agent's data
// channel of session sid close.
func lastAgentClose(l *lab.Lab, sid string) (time.Time, bool) {
	var last time.Time
	for _, e := range l.AWS.Events() {
		if e["msg"] != "data channel: closed" || e["session"] != sid || e["side"] != "agent" {
			continue
		}
		if at, err := time.Parse(time.RFC3339Nano, e["time"]); err == nil {
			last = at
		}
	}
	return last, !last.IsZero()
}

// waitFor polls cond every 10 ms until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}
