package awsemu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/coder/websocket"
)

const agentInstance = "i-0aaaaaaaaaaaaaaa1"

// newAgentServer is an emulator whose instance agentInstance is served by
// a (test-played) real agent, with instance metadata on loopback.
func newAgentServer(t *testing.T) *Server {
	return newTestServer(t, func(c *Config) {
		c.AgentInstances = []string{agentInstance}
		c.IMDS, c.IMDSInstance = "127.0.0.1:0", agentInstance
	})
}

// imdsGet fetches path from the instance metadata with token ("" for none).
func imdsGet(t *testing.T, s *Server, path, token string) (int, string) {
	t.Helper()
	return imdsDo(t, s, http.MethodGet, path, "X-aws-ec2-metadata-token", token)
}

func imdsToken(t *testing.T, s *Server, ttl string) (int, string) {
	t.Helper()
	return imdsDo(t, s, http.MethodPut, "api/token", "X-aws-ec2-metadata-token-ttl-seconds", ttl)
}

// imdsDo asks the instance metadata for path under /latest/, with header
// set to value unless value is empty.
func imdsDo(t *testing.T, s *Server, method, path, header, value string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+s.IMDSAddr()+"/latest/"+path, nil)
	if value != "" {
		req.Header.Set(header, value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// roleCredentials reads the instance profile role's credentials as the
// agent does: IMDSv2 token first.
func roleCredentials(t *testing.T, s *Server) aws.Credentials {
	t.Helper()
	if code, _ := imdsGet(t, s, "meta-data/instance-id", ""); code != http.StatusUnauthorized {
		t.Fatalf("metadata without a token: %d, want 401 (IMDSv2 only)", code)
	}
	if code, _ := imdsToken(t, s, "0"); code != http.StatusBadRequest {
		t.Fatalf("token with TTL 0: %d, want 400", code)
	}
	code, tok := imdsToken(t, s, "21600")
	if code != http.StatusOK {
		t.Fatalf("token: %d", code)
	}
	if code, id := imdsGet(t, s, "meta-data/instance-id", tok); code != http.StatusOK || id != agentInstance {
		t.Fatalf("instance-id: %d %q", code, id)
	}
	_, doc := imdsGet(t, s, "dynamic/instance-identity/document", tok)
	var ident struct{ Region, InstanceId string }
	if err := json.Unmarshal([]byte(doc), &ident); err != nil || ident.Region != testCreds.Region || ident.InstanceId != agentInstance {
		t.Fatalf("identity document %s: %v", doc, err)
	}
	_, role := imdsGet(t, s, "meta-data/iam/security-credentials/", tok)
	_, body := imdsGet(t, s, "meta-data/iam/security-credentials/"+role, tok)
	var c struct{ AccessKeyId, SecretAccessKey, Token string }
	if err := json.Unmarshal([]byte(body), &c); err != nil || c.Token == "" {
		t.Fatalf("role credentials %s: %v", body, err)
	}
	return aws.Credentials{AccessKeyID: c.AccessKeyId, SecretAccessKey: c.SecretAccessKey, SessionToken: c.Token}
}

func ssmClientWith(t *testing.T, s *Server, creds aws.Credentials) *ssm.Client {
	return ssm.New(ssm.Options{Region: testCreds.Region, BaseEndpoint: aws.String(s.URL()), HTTPClient: httpClient(t, s),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })})
}

// fakeAgent plays the agent's side of MGS with creds, as AWS's agent does.
type fakeAgent struct {
	t     *testing.T
	s     *Server
	creds aws.Credentials
}

// sign signs r for ssmmessages with payload body.
func (a fakeAgent) sign(r *http.Request, body []byte) {
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), a.creds, r, hex.EncodeToString(sum[:]), "ssmmessages", testCreds.Region, time.Now()); err != nil {
		a.t.Fatal(err)
	}
}

// create calls CreateControlChannel or CreateDataChannel and returns the token.
func (a fakeAgent) create(kind, id string) string {
	a.t.Helper()
	body := []byte(`{"MessageSchemaVersion":"1.0","RequestId":"` + newUUID().String() + `"}`)
	req, _ := http.NewRequest(http.MethodPost, a.s.URL()+"/v1/"+kind+"/"+id, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	a.sign(req, body)
	resp, err := httpClient(a.t, a.s).Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct{ TokenValue string }
	if resp.StatusCode != http.StatusCreated || xml.Unmarshal(b, &out) != nil || out.TokenValue == "" {
		a.t.Fatalf("%s %s: %s %s", kind, id, resp.Status, b)
	}
	return out.TokenValue
}

// open dials a signed WebSocket and sends the first (text) frame.
func (a fakeAgent) open(path string, first any) *tclient {
	a.t.Helper()
	u := strings.Replace(a.s.URL(), "https://", "wss://", 1) + path
	req, _ := http.NewRequest(http.MethodGet, strings.Replace(u, "wss://", "https://", 1), nil)
	a.sign(req, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: httpClient(a.t, a.s), HTTPHeader: req.Header})
	if err != nil {
		a.t.Fatalf("dial %s: %v", path, err)
	}
	a.t.Cleanup(func() { _ = ws.CloseNow() })
	b, _ := json.Marshal(first)
	if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
		a.t.Fatal(err)
	}
	return &tclient{t: a.t, ws: ws}
}

// pingStatus returns the instance's PingStatus from DescribeInstanceInformation.
func pingStatus(t *testing.T, c *ssm.Client, id string) string {
	t.Helper()
	out, err := c.DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range out.InstanceInformationList {
		if aws.ToString(i.InstanceId) == id {
			return string(i.PingStatus)
		}
	}
	return ""
}

// TestAgentServiceSide plays AWS's agent against the service side: IMDSv2
// and its credentials, which SigV4 then accepts; the control channel that
// makes the instance Online; a session started on it, relayed both ways;
// the service's pause while the client is away; TerminateSession telling
// the agent on both channels.
func TestAgentServiceSide(t *testing.T) {
	s := newAgentServer(t)
	creds := roleCredentials(t, s)
	ctx := context.Background()
	// The role's credentials sign the agent's calls (UpdateInstanceInformation
	// and others the SDK does not export; any SSM call shows the keys work).
	if _, err := ssmClientWith(t, s, creds).DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{}); err != nil {
		t.Fatalf("a call signed with the role's credentials: %v", err)
	}
	noToken := creds
	noToken.SessionToken = ""
	if _, err := ssmClientWith(t, s, noToken).DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{}); err == nil {
		t.Fatal("temporary credentials without their session token were accepted")
	}
	user := ssmClient(t, s)
	if got := pingStatus(t, user, agentInstance); got != "ConnectionLost" {
		t.Fatalf("PingStatus before the control channel: %q, want ConnectionLost", got)
	}
	if _, err := startSSH(t, user, agentInstance); err == nil || !strings.Contains(err.Error(), "TargetNotConnected") {
		t.Fatalf("StartSession with the agent offline: %v, want TargetNotConnected", err)
	}

	a := fakeAgent{t, s, creds}
	ctl := a.open("/v1/control-channel/"+agentInstance+"?role=subscribe&stream=input", openControlChannel{
		"1.0", newUUID().String(), a.create("control-channel", agentInstance), "3.3.987.0", "linux"})
	waitFor(t, "PingStatus Online", func() bool { return pingStatus(t, user, agentInstance) == "Online" })

	out, err := user.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String(agentInstance),
		DocumentName: aws.String("AWS-StartPortForwardingSessionToRemoteHost"),
		Parameters:   map[string][]string{"host": {"10.77.0.10"}, "portNumber": {"5432"}}})
	if err != nil {
		t.Fatal(err)
	}
	sid := aws.ToString(out.SessionId)
	shell := ctl.next()
	var task struct{ Content, TaskId string }
	var content agentTaskPayload
	if shell.Type != "interactive_shell" || json.Unmarshal(shell.Payload, &task) != nil || json.Unmarshal([]byte(task.Content), &content) != nil {
		t.Fatalf("control channel: %s %s", shell.Type, shell.Payload)
	}
	if task.TaskId != sid || content.SessionId != sid || content.DocumentContent.SessionType != "Port" ||
		content.Parameters["host"] != "10.77.0.10" || content.DocumentContent.Properties["host"] != "{{ host }}" {
		t.Fatalf("interactive_shell for %s: %s", sid, task.Content)
	}

	agent := a.open("/v1/data-channel/"+sid+"?role=publish_subscribe", map[string]string{"MessageSchemaVersion": "1.0",
		"RequestId": newUUID().String(), "TokenValue": a.create("data-channel", sid), "ClientInstanceId": agentInstance, "ClientId": "x"})
	client := dialChannel(t, s, aws.ToString(out.StreamUrl), aws.ToString(out.TokenValue))
	agent.send(message{Type: "agent_session_state", Schema: 1, Created: 1, ID: newUUID(), Payload: []byte(`{"SessionState":"Connected"}`)})
	agent.send(message{Type: typeOutput, Schema: 1, Created: 1, Flags: 1, ID: newUUID(), PayloadType: ptOutput, Payload: []byte("from the agent")})
	if m := client.next(); m.Type != typeOutput || string(m.Payload) != "from the agent" {
		t.Fatalf("client got %s %q, want the agent's output (agent_session_state is the service's)", m.Type, m.Payload)
	}
	client.input(ptOutput, []byte("from the client"))
	if m := agent.next(); m.Type != typeInput || string(m.Payload) != "from the client" {
		t.Fatalf("agent got %s %q", m.Type, m.Payload)
	}

	if err := s.closeWebSocket(sid, "client", false); err != nil {
		t.Fatal(err)
	}
	if m := agent.next(); m.Type != "pause_publication" {
		t.Fatalf("agent got %s while the client was away, want pause_publication", m.Type)
	}
	dialResumed(t, s, user, sid)
	if m := agent.next(); m.Type != "start_publication" {
		t.Fatalf("agent got %s once the client was back, want start_publication", m.Type)
	}
	if _, err := user.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: aws.String(sid)}); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*tclient{"control": ctl, "data": agent} {
		if m := c.next(); m.Type != typeChannelClosed {
			t.Errorf("%s channel after TerminateSession: %s, want channel_closed", name, m.Type)
		}
	}
	if res, err := user.ResumeSession(ctx, &ssm.ResumeSessionInput{SessionId: aws.String(sid)}); err != nil || res.TokenValue != nil {
		t.Errorf("ResumeSession of a terminated session: %v, token %v; want no token", err, res.TokenValue)
	}
}

// dialResumed resumes session sid and opens the client's data channel again.
func dialResumed(t *testing.T, s *Server, c *ssm.Client, sid string) *tclient {
	t.Helper()
	res, err := c.ResumeSession(context.Background(), &ssm.ResumeSessionInput{SessionId: aws.String(sid)})
	if err != nil {
		t.Fatal(err)
	}
	return dialChannel(t, s, aws.ToString(res.StreamUrl), aws.ToString(res.TokenValue))
}

// agentSession is a session relayed between a test client and a
// test-played agent.
type agentSession struct {
	sid                string
	ctl, agent, client *tclient
}

// startAgentSession connects a played agent, starts an SSH session on it
// and opens both data channels.
func startAgentSession(t *testing.T, s *Server) agentSession {
	t.Helper()
	a := fakeAgent{t, s, roleCredentials(t, s)}
	ctl := a.open("/v1/control-channel/"+agentInstance+"?role=subscribe&stream=input", openControlChannel{
		"1.0", newUUID().String(), a.create("control-channel", agentInstance), "3.3.987.0", "linux"})
	user := ssmClient(t, s)
	waitFor(t, "PingStatus Online", func() bool { return pingStatus(t, user, agentInstance) == "Online" })
	out, err := startSSH(t, user, agentInstance)
	if err != nil {
		t.Fatal(err)
	}
	sid := aws.ToString(out.SessionId)
	if m := ctl.next(); m.Type != "interactive_shell" {
		t.Fatalf("control channel: %s", m.Type)
	}
	agent := a.open("/v1/data-channel/"+sid+"?role=publish_subscribe", map[string]string{"MessageSchemaVersion": "1.0",
		"RequestId": newUUID().String(), "TokenValue": a.create("data-channel", sid), "ClientInstanceId": agentInstance, "ClientId": "x"})
	client := dialChannel(t, s, aws.ToString(out.StreamUrl), aws.ToString(out.TokenValue))
	waitFor(t, "both sides attached", func() bool {
		for _, e := range s.relay(sid).ends {
			e.mu.Lock()
			ok := e.ws != nil
			e.mu.Unlock()
			if !ok {
				return false
			}
		}
		return true
	})
	return agentSession{sid, ctl, agent, client}
}

// TestAgentGone: a session whose agent's data channel goes and does not
// come back is ended by the service (after 30 s; shortened here).
func TestAgentGone(t *testing.T) {
	s := newAgentServer(t)
	s.agentAway.Store(int64(300 * time.Millisecond))
	as := startAgentSession(t, s)
	if err := s.closeWebSocket(as.sid, "agent", false); err != nil {
		t.Fatal(err)
	}
	if m := as.client.next(); m.Type != "pause_publication" {
		t.Fatalf("client got %s while the agent was away, want pause_publication", m.Type)
	}
	if m := as.client.next(); m.Type != typeChannelClosed || !strings.Contains(string(m.Payload), "did not reconnect") {
		t.Fatalf("client got %s %s, want channel_closed: the agent did not reconnect", m.Type, m.Payload)
	}
	if m := as.ctl.next(); m.Type != typeChannelClosed {
		t.Fatalf("control channel got %s, want channel_closed", m.Type)
	}
}

// TestRelayDelayAndMaxDuration: admin delay holds relayed frames back;
// the maximum session duration ends the session on both sides.
func TestRelayDelayAndMaxDuration(t *testing.T) {
	s := newAgentServer(t)
	as := startAgentSession(t, s)
	const d = 300 * time.Millisecond
	if err := s.setDelay(url.Values{"session": {as.sid}, "d": {d.String()}}); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	as.agent.send(message{Type: typeOutput, Schema: 1, Created: 1, Flags: 1, ID: newUUID(), PayloadType: ptOutput, Payload: []byte("late")})
	if m := as.client.next(); string(m.Payload) != "late" {
		t.Fatalf("client got %s %q", m.Type, m.Payload)
	}
	if got := time.Since(sent); got < d {
		t.Errorf("a frame relayed %v after it was sent, want at least the delay %v", got, d)
	}
	if err := s.setPreferences(url.Values{"max-duration": {"1ms"}}); err != nil {
		t.Fatal(err)
	}
	if m := as.client.next(); m.Type != typeChannelClosed || !strings.Contains(string(m.Payload), "maximum session duration") {
		t.Fatalf("client got %s %s, want channel_closed for the maximum duration", m.Type, m.Payload)
	}
	for name, c := range map[string]*tclient{"control": as.ctl, "data": as.agent} {
		if m := c.next(); m.Type != typeChannelClosed {
			t.Errorf("agent's %s channel got %s, want channel_closed", name, m.Type)
		}
	}
}

// TestRelayDelayForLaterSessions: admin delay without a session holds back
// the frames of sessions started afterwards too.
func TestRelayDelayForLaterSessions(t *testing.T) {
	s := newAgentServer(t)
	const d = 300 * time.Millisecond
	if err := s.setDelay(url.Values{"d": {d.String()}}); err != nil {
		t.Fatal(err)
	}
	as := startAgentSession(t, s)
	sent := time.Now()
	as.client.send(message{Type: typeInput, Schema: 1, Created: 1, ID: newUUID(), PayloadType: ptOutput, Payload: []byte("late")})
	if m := as.agent.next(); string(m.Payload) != "late" {
		t.Fatalf("agent got %s %q", m.Type, m.Payload)
	}
	if got := time.Since(sent); got < d {
		t.Errorf("a frame of a session started after the delay was set relayed %v after it was sent, want at least %v", got, d)
	}
}
