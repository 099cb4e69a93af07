//go:build linux

package integration_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// TestSSMRealAgent runs vpcvpn against AWS's real SSM agent on the
// bastion (built from the pinned sources; skipped without them), behind
// the emulated service, for what only the real agent shows: 100 flows at
// once, the agent's own WebSocket breaking during a download, its core
// process restarting under an open session, the idle timeout ending its
// session worker and the reconnect on demand, and TerminateSession at
// SIGTERM ending the session worker. (TestSSM, which runs against the
// real agent too whenever it is there, covers the ephemeral key, 16 MiB
// each way and the client's WebSocket breaking during transfers.)
func TestSSMRealAgent(t *testing.T) {
	began := time.Now()
	l, v := upSSMLab(t, lab.Options{AWS: &lab.AWSOptions{Agent: lab.AgentReal}})
	if err := l.StartDataServers(); err != nil {
		t.Fatal(err)
	}
	in := startVPCVPN(t, v, v.UpArgsSSM(ifName)...)
	t.Logf("lab up and vpcvpn connected through the real agent in %v", time.Since(began).Round(time.Millisecond))
	t.Run("ConcurrentFlows100", func(t *testing.T) { testConcurrentEcho(t, l, vpcAddr(lab.EchoPort), 100, 16<<10) })
	t.Run("AgentDropDuringDownload", func(t *testing.T) { testAgentDropDuringDownload(t, l, in) })
	t.Run("CoreRestart", func(t *testing.T) { testAgentCoreRestart(t, l, in) })
	t.Run("OfflineThenOnline", func(t *testing.T) { testAgentOfflineThenOnline(t, l) })
	t.Run("IdleThenOnDemand", func(t *testing.T) { testIdleThenOnDemand(t, l, v, in) })
	t.Run("TerminateEndsSessionWorker", func(t *testing.T) { testTerminateEndsWorker(t, l, v, in) })
}

// timed runs f, a transfer of n bytes, and logs its rate and the agent.
func timed(t *testing.T, l *lab.Lab, what string, n int64, f func()) {
	began := time.Now()
	f()
	d := time.Since(began)
	t.Logf("%s of %d MiB through the %s SSM agent: %v, %.2f MB/s", what, n>>20, l.AWS.Agent, d.Round(time.Millisecond), float64(n)/d.Seconds()/1e6)
}

// testAgentDropDuringDownload breaks the agent's data-channel WebSocket
// (not the client's) while 8 MiB flow down: the agent reconnects its side
// by itself, the session and the flow survive byte-exact, and vpcvpn
// needs no new session.
func testAgentDropDuringDownload(t *testing.T, l *lab.Lab, in *lab.Instance) {
	ctx := testContext(t, 2*time.Minute)
	sid, starts := currentSession(t, l), l.AWS.Calls(opStartSession)
	opened := countEvents(l, "agent data channel: open", sid)
	const n = 8 << 20
	p := &progress{at: 1 << 20, reached: make(chan struct{})}
	done := make(chan transferResult, 1)
	go func() { done <- downloadFrom(ctx, l, vpcAddr(lab.SourcePort), 11, n, p) }()
	select {
	case <-p.reached:
	case r := <-done:
		t.Fatalf("download ended before %d bytes: %v", p.at, r.err)
	}
	awsAdmin(t, l, "drop", url.Values{"session": {sid}, "side": {"agent"}})
	if got := p.n.Load(); got >= n {
		t.Fatalf("the download had moved all %d bytes before the drop: it proves nothing", got)
	}
	if r := <-done; r.err != nil || r.got != r.want {
		t.Fatalf("download across the agent's drop: %s, %v; want %s\nvpcvpn said:\n%s", r.got, r.err, r.want, in.Stderr())
	}
	waitAWSLog(t, l, "the agent's data channel reopened", func() bool {
		return countEvents(l, "agent data channel: open", sid) > opened
	})
	if got := l.AWS.Calls(opStartSession); got != starts {
		t.Errorf("StartSession calls %d -> %d after the agent's drop; want the session kept", starts, got)
	}
	assertRunning(t, in)
}

// testAgentCoreRestart kills the agent's core process (amazon-ssm-agent)
// with a flow open; the instance's init restarts it as systemd would. The
// session worker carries on: the open flow still echoes, the agent's
// control channel comes back, and vpcvpn needed no new session.
func testAgentCoreRestart(t *testing.T, l *lab.Lab, in *lab.Instance) {
	ctx := testContext(t, 2*time.Minute)
	flow, r := openEcho(t, ctx, l)
	defer flow.Close()
	starts, connects := l.AWS.Calls(opStartSession), l.AWS.AgentConnects()
	before, err := l.AgentPIDs(ctx, "amazon-ssm-agent")
	if err != nil || len(before) != 1 {
		t.Fatalf("agent core processes: %v, %v; want one", before, err)
	}
	if n, err := l.KillAgentProgram(ctx, "amazon-ssm-agent"); err != nil || n != 1 {
		t.Fatalf("kill the agent's core: %d killed, %v", n, err)
	}
	if err := l.WaitAgentOnline(ctx, connects); err != nil {
		t.Fatal(err)
	}
	after, err := l.AgentPIDs(ctx, "amazon-ssm-agent")
	if err != nil || len(after) != 1 || after[0] == before[0] {
		t.Fatalf("agent core after the kill: %v, %v; want one new process (was %v)", after, err, before)
	}
	echo(t, flow, r, "the core restarted under me")
	if _, err := l.Query(ctx, "select 1"); err != nil {
		t.Fatalf("a new flow after the core's restart: %v", err)
	}
	if got := l.AWS.Calls(opStartSession); got != starts {
		t.Errorf("StartSession calls %d -> %d across the core's restart; want the session kept", starts, got)
	}
	assertRunning(t, in)
}

// testAgentOfflineThenOnline cuts the agent off the service (admin
// disconnect: its control channel closed and refused): PingStatus turns
// ConnectionLost and StartSession fails; once allowed back the agent
// reconnects by itself and PingStatus is Online again.
func testAgentOfflineThenOnline(t *testing.T, l *lab.Lab) {
	ctx := testContext(t, 2*time.Minute)
	c := ssmClientFor(t, l)
	if got := pingStatus(t, ctx, c); got != "Online" {
		t.Fatalf("PingStatus %q with the agent connected; want Online", got)
	}
	connects := l.AWS.AgentConnects()
	awsAdmin(t, l, "disconnect", url.Values{"target": {lab.InstanceID}})
	if got := pingStatus(t, ctx, c); got != "ConnectionLost" {
		t.Errorf("PingStatus %q with the agent cut off; want ConnectionLost", got)
	}
	_, err := c.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String(lab.InstanceID), DocumentName: aws.String("AWS-StartSSHSession")})
	if err == nil || !strings.Contains(err.Error(), "TargetNotConnected") {
		t.Errorf("StartSession with the agent cut off: %v; want TargetNotConnected", err)
	}
	awsAdmin(t, l, "connect", url.Values{"target": {lab.InstanceID}})
	if err := l.WaitAgentOnline(ctx, connects); err != nil {
		t.Fatal(err)
	}
	if got := pingStatus(t, ctx, c); got != "Online" {
		t.Errorf("PingStatus %q once the agent reconnected; want Online", got)
	}
}

// ssmClientFor is an SSM client for the emulator that dials from the
// laptop namespace with the lab's credentials.
func ssmClientFor(t *testing.T, l *lab.Lab) *ssm.Client {
	hc, err := l.AWSClient(l.Laptop)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hc.CloseIdleConnections)
	creds := aws.Credentials{AccessKeyID: lab.AWSAccessKey, SecretAccessKey: lab.AWSSecretKey, Source: "lab"}
	return ssm.New(ssm.Options{Region: lab.AWSRegion, BaseEndpoint: aws.String(l.AWS.Endpoint), HTTPClient: hc,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })})
}

// pingStatus returns the instance's PingStatus (DescribeInstanceInformation).
func pingStatus(t *testing.T, ctx context.Context, c *ssm.Client) string {
	t.Helper()
	out, err := c.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range out.InstanceInformationList {
		if aws.ToString(i.InstanceId) == lab.InstanceID {
			return string(i.PingStatus)
		}
	}
	return ""
}

// testIdleThenOnDemand shortens the account's idle timeout: with no flow
// open the service ends the session (and the agent's session worker with
// it), vpcvpn shows "idle", and the next query starts a session on demand.
func testIdleThenOnDemand(t *testing.T, l *lab.Lab, v *lab.VPCVPN, in *lab.Instance) {
	ctx := testContext(t, 2*time.Minute)
	w := watchStates(t, v)
	sid := currentSession(t, l)
	awsAdmin(t, l, "preferences", url.Values{"idle-timeout": {"2s"}})
	t.Cleanup(func() { awsAdmin(t, l, "preferences", url.Values{"idle-timeout": {"20m"}}) })
	w.waitFor(t, "idle", 30*time.Second)
	if out, ended := l.AWS.Ended(sid); !ended || !strings.Contains(out, "idle") {
		t.Errorf("session %s: ended %v with %q; want the idle timeout", sid, ended, out)
	}
	waitNoSessionWorker(t, ctx, l)
	starts := l.AWS.Calls(opStartSession)
	began := time.Now()
	if _, err := l.Query(ctx, "select 1"); err != nil {
		t.Fatalf("query on the idle tunnel: %v\n%s", err, in.Stderr())
	}
	t.Logf("a query on the idle tunnel took %v, the new session through the real agent included", time.Since(began).Round(time.Millisecond))
	if got := l.AWS.Calls(opStartSession); got != starts+1 {
		t.Errorf("StartSession calls %d -> %d; want one on demand", starts, got)
	}
}

// testTerminateEndsWorker: SIGTERM makes vpcvpn call TerminateSession;
// the service tells the agent, whose session worker exits.
func testTerminateEndsWorker(t *testing.T, l *lab.Lab, v *lab.VPCVPN, in *lab.Instance) {
	ctx := testContext(t, time.Minute)
	if pids, err := l.AgentPIDs(ctx, "ssm-session-worker"); err != nil || len(pids) == 0 {
		t.Fatalf("session workers before SIGTERM: %v, %v; want the open session's", pids, err)
	}
	testTerminateSession(t, l, v, in)
	waitNoSessionWorker(t, ctx, l)
}

// waitNoSessionWorker waits up to 10 s until the agent runs no session
// worker.
func waitNoSessionWorker(t *testing.T, ctx context.Context, l *lab.Lab) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		pids, err := l.AgentPIDs(ctx, "ssm-session-worker")
		if err == nil && len(pids) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("session workers left after the session ended: %v (%v)\n%s", pids, err, logTail(l.AgentLog(), 3000))
		case <-tick.C:
		}
	}
}

// countEvents counts the emulator's log lines msg about session sid.
func countEvents(l *lab.Lab, msg, sid string) int {
	n := 0
	for _, e := range l.AWS.Events() {
		if e["msg"] == msg && e["session"] == sid {
			n++
		}
	}
	return n
}

// assertRunning fails t if vpcvpn up has exited.
func assertRunning(t *testing.T, in *lab.Instance) {
	t.Helper()
	select {
	case <-in.Done():
		t.Fatalf("vpcvpn up exited:\n%s", in.Stderr())
	default:
	}
}

// TestSSMRealAgentDocuments starts the port-forwarding documents through
// the emulated service on the real agent, with AWS's session-manager-plugin
// (beside the agent's binaries) as the client, as `aws ssm start-session`
// runs it: AWS-StartPortForwardingSessionToRemoteHost to the VPC host's
// echo server with several connections at once (the agent and the plugin
// pick the multiplexed mode), and AWS-StartPortForwardingSession to the
// instance's own sshd. TerminateSession then leaves no session worker.
func TestSSMRealAgentDocuments(t *testing.T) {
	l, _ := upSSMLab(t, lab.Options{NoPostgres: true, AWS: &lab.AWSOptions{Agent: lab.AgentReal}})
	if err := l.StartDataServers(); err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t, 2*time.Minute)
	plugin := filepath.Join(ssmAgentDir(t, true), "session-manager-plugin")
	if _, err := os.Stat(plugin); err != nil {
		t.Skipf("integration: no session-manager-plugin beside the agent: %v", err)
	}
	// The plugin writes at once after the handshake, so without a region's
	// latency it races the real agent as in TestPeers (see peersLab).
	awsAdmin(t, l, "delay", url.Values{"d": {peersLatency.String()}})
	c := ssmClientFor(t, l)
	t.Run("RemoteHost", func(t *testing.T) {
		p, sid := startPortForward(t, ctx, l, c, plugin, "AWS-StartPortForwardingSessionToRemoteHost", map[string][]string{
			"host": {lab.VPCHostAddr}, "portNumber": {strconv.Itoa(lab.EchoPort)}, "localPortNumber": {"17007"}})
		g, gctx := errgroup.WithContext(ctx)
		for i := range 4 {
			g.Go(func() error { return echoLine(gctx, l, "127.0.0.1:17007", fmt.Sprintf("connection %d", i)) })
		}
		if err := g.Wait(); err != nil {
			t.Fatalf("through the plugin's forwarded port: %v\n%s", err, p.Log())
		}
		stopPortForward(t, ctx, l, c, p, sid)
	})
	t.Run("InstancePort", func(t *testing.T) {
		p, sid := startPortForward(t, ctx, l, c, plugin, "AWS-StartPortForwardingSession", map[string][]string{
			"portNumber": {"22"}, "localPortNumber": {"17022"}})
		conn, err := l.DialContext(ctx, l.Laptop, "tcp", "127.0.0.1:17022")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		banner, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || !strings.HasPrefix(banner, "SSH-2.0-OpenSSH") {
			t.Fatalf("through the forwarded port: %q, %v; want sshd's version line\n%s", banner, err, p.Log())
		}
		stopPortForward(t, ctx, l, c, p, sid)
	})
}

// startPortForward starts a session of document doc with StartSession and
// hands it to the session-manager-plugin in the laptop namespace, as the
// aws CLI does, and waits until the plugin listens.
func startPortForward(t *testing.T, ctx context.Context, l *lab.Lab, c *ssm.Client, plugin, doc string, params map[string][]string) (*lab.Process, string) {
	t.Helper()
	out, err := c.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String(lab.InstanceID), DocumentName: aws.String(doc), Parameters: params})
	if err != nil {
		t.Fatalf("StartSession %s: %v", doc, err)
	}
	sid := aws.ToString(out.SessionId)
	resp, _ := json.Marshal(map[string]string{"SessionId": sid, "TokenValue": aws.ToString(out.TokenValue), "StreamUrl": aws.ToString(out.StreamUrl)})
	req, _ := json.Marshal(map[string]any{"Target": lab.InstanceID, "DocumentName": doc, "Parameters": params})
	// Stopped with Ctrl-C's SIGINT, on which the plugin ends the session.
	// Its mux socket goes in TMPDIR, removed with the test.
	p, err := l.Start(l.Laptop, "plugin-"+sid, syscall.SIGINT, "env", "SSL_CERT_FILE="+l.AWS.CABundle, "TMPDIR="+t.TempDir(), plugin,
		string(resp), lab.AWSRegion, "StartSession", "", string(req), l.AWS.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	waitLog(t, p, "Waiting for connections")
	return p, sid
}

// stopPortForward stops the plugin (SIGINT, as Ctrl-C: it sends the
// TerminateSession flag and exits at once, so that the flag may or may not
// outrun the reset of its connection), then ends the session with
// TerminateSession as an administrator would, and checks that the agent
// has no session worker left.
func stopPortForward(t *testing.T, ctx context.Context, l *lab.Lab, c *ssm.Client, p *lab.Process, sid string) {
	t.Helper()
	p.Stop()
	if _, err := c.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: aws.String(sid)}); err != nil {
		t.Fatal(err)
	}
	waitAWSLog(t, l, "the end of session "+sid, func() bool { _, ended := l.AWS.Ended(sid); return ended })
	waitNoSessionWorker(t, ctx, l)
}

// waitLog waits up to 20 s until p has logged s.
func waitLog(t *testing.T, p *lab.Process, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.Log(), s) {
		select {
		case <-p.Done():
			t.Fatalf("%s exited: %v\n%s", p.Name, p.Err(), p.Log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never said %q:\n%s", p.Name, s, p.Log())
		}
	}
}

// echoLine sends line to the echo server at addr (in the laptop namespace)
// and checks that it comes back.
func echoLine(ctx context.Context, l *lab.Lab, addr, line string) error {
	c, err := l.DialContext(ctx, l.Laptop, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	defer context.AfterFunc(ctx, func() { c.Close() })()
	if _, err := fmt.Fprintln(c, line); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != line+"\n" {
		return fmt.Errorf("%s: echoed %q, %v", line, got, err)
	}
	return nil
}
