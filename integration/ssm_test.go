//go:build linux

package integration_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	"golang.org/x/crypto/ssh"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// X-Amz-Targets of the calls the tests count in the emulator's log.
const (
	opStartSession     = "AmazonSSM.StartSession"
	opResumeSession    = "AmazonSSM.ResumeSession"
	opTerminateSession = "AmazonSSM.TerminateSession"
)

// awsemuBin returns ./integration/cmd/awsemu built once per run.
func awsemuBin(t *testing.T) string { return buildBin(t, "./integration/cmd/awsemu", "awsemu") }

// upSSMLab builds a lab with the emulated AWS side (opts.AWS, agent pacing
// "real" unless it says otherwise) and a vpcvpn runner for it. The
// instance's agent is AWS's real one whenever its sources or binaries are
// there (see lab.SSMAgentDir), unless opts.AWS asks for the built-in one;
// the test's log says which ran.
func upSSMLab(t *testing.T, opts lab.Options) (*lab.Lab, *lab.VPCVPN) {
	t.Helper()
	o := lab.AWSOptions{}
	if opts.AWS != nil {
		o = *opts.AWS
	}
	if o.Emulator == "" {
		o.Emulator = awsemuBin(t)
	}
	if o.Agent != lab.AgentBuiltin && o.AgentDir == "" {
		o.AgentDir = ssmAgentDir(t, o.Agent == lab.AgentReal)
	}
	opts.AWS = &o
	l, v := upLab(t, opts)
	t.Logf("SSM agent: %s %s", l.AWS.Agent, l.AWS.AgentNote)
	return l, v
}

var agentBuild struct {
	once        sync.Once
	dir, reason string
	err         error
}

// ssmAgentDir returns the real agent's binaries, built once per run (a
// minute or more on a cold cache, so not inside a lab's start-up), or ""
// when there are no sources; then a test that needs the real agent
// (required) skips.
func ssmAgentDir(t *testing.T, required bool) string {
	t.Helper()
	agentBuild.once.Do(func() {
		if lab.Missing() != "" {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		agentBuild.dir, agentBuild.reason, agentBuild.err = lab.SSMAgentDir(ctx)
	})
	if agentBuild.err != nil {
		t.Fatal(agentBuild.err)
	}
	if agentBuild.dir == "" && required {
		t.Skip("integration: needs AWS's SSM agent: " + agentBuild.reason)
	}
	return agentBuild.dir
}

// TestSSM runs `vpcvpn up --target i-...` through the emulated SSM and
// EC2 Instance Connect to the lab's real sshd, with no key given: the data
// path, the ephemeral key, the recorded host key, resuming after the
// WebSocket breaks, and TerminateSession at SIGTERM.
func TestSSM(t *testing.T) {
	l, v := upSSMLab(t, lab.Options{AWS: &lab.AWSOptions{Pacing: "none"}})
	if err := l.StartDataServers(); err != nil {
		t.Fatal(err)
	}
	// One session: the session a break hits is the one carrying the
	// transfer, and a StartSession after it means vpcvpn replaced the
	// session rather than resumed it. Several sessions: TestSSMSessions.
	in := startVPCVPN(t, v, append(v.UpArgsSSM(ifName), "--max-sessions", "1")...)
	t.Run("PsqlViaBastion", func(t *testing.T) { testPsqlViaBastion(t, l) })
	t.Run("LargeUpload", func(t *testing.T) {
		timed(t, l, "upload", 16<<20, func() { testUpload(t, l, vpcAddr(lab.SinkPort), 16<<20) })
	})
	t.Run("LargeDownload", func(t *testing.T) {
		timed(t, l, "download", 16<<20, func() { testDownload(t, l, vpcAddr(lab.SourcePort), 16<<20) })
	})
	t.Run("StatusJSON", func(t *testing.T) { testSSMStatus(t, v) })
	t.Run("EphemeralKey", func(t *testing.T) { testEphemeralKey(t, l) })
	t.Run("HostKeyRecorded", func(t *testing.T) { testHostKeyRecorded(t, l) })
	breaks := []struct {
		name   string
		action string // awsemu admin: drop breaks the WebSocket, bye closes it like the hourly recycle
		upload bool
	}{
		{"DropDuringDownload", "drop", false},
		{"DropDuringUpload", "drop", true},
		{"ByeDuringDownload", "bye", false},
		{"ByeDuringUpload", "bye", true},
	}
	for _, b := range breaks {
		t.Run(b.name, func(t *testing.T) { testBreakDuring(t, l, v, in, b.action, b.upload) })
	}
	t.Run("SIGTERMTerminatesSession", func(t *testing.T) { testTerminateSession(t, l, v, in) })
}

// testSSMStatus checks that status --json reports a connected tunnel over
// ssm to the instance.
func testSSMStatus(t *testing.T, v *lab.VPCVPN) {
	var st struct {
		State     string   `json:"state"`
		Transport string   `json:"transport"`
		Bastion   string   `json:"bastion"`
		Interface string   `json:"interface"`
		Routes    []string `json:"routes"`
	}
	res, err := v.Run(testContext(t, 10*time.Second), "status", "--json", "--name", ifName)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("status --json: exit %d, %v\n%s", res.ExitCode, err, res.Stderr)
	}
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, res.Stdout)
	}
	if st.State != "connected" || st.Transport != "ssm" || !strings.Contains(st.Bastion, lab.InstanceID) ||
		st.Interface != ifName || !slices.Contains(st.Routes, lab.VPCCIDR) {
		t.Errorf("status = %+v; want connected over ssm to %s, %s routing %s", st, lab.InstanceID, ifName, lab.VPCCIDR)
	}
}

// acceptedKey matches sshd's (LogLevel VERBOSE) line for a successful
// public key login: the client address and the key's fingerprint.
var acceptedKey = regexp.MustCompile(`Accepted publickey for ` + lab.SSHUser + ` from (\S+) port \d+ ssh2: \S+ (SHA256:\S+)`)

// testEphemeralKey: sshd let vpcvpn in with a key that the
// AuthorizedKeysCommand (the keys pushed with EC2 Instance Connect)
// listed, which is not the lab's own key, over a connection from the
// agent on the bastion rather than from the laptop.
func testEphemeralKey(t *testing.T, l *lab.Lab) {
	log := l.SSH.Process.Log()
	m := acceptedKey.FindAllStringSubmatch(log, -1)
	if len(m) == 0 {
		t.Fatalf("sshd logged no accepted public key:\n%s", log)
	}
	from, fp := m[len(m)-1][1], m[len(m)-1][2]
	if fp == fingerprintOf(t, l.SSH.KeyPath+".pub") {
		t.Errorf("vpcvpn logged in with the lab's own key %s; want an ephemeral one", fp)
	}
	// The real agent dials localhost, as on an instance; the built-in one
	// dials the bastion's address.
	want := []string{lab.BastionAddr}
	if l.AWS.Agent == lab.AgentReal {
		want = []string{"127.0.0.1", "::1"}
	}
	if !slices.Contains(want, from) {
		t.Errorf("sshd saw the login from %s; want %s, the SSM agent on the bastion", from, strings.Join(want, " or "))
	}
	command := filepath.Join(l.AWS.Dir, "awsemu") + " authorized-keys"
	if !strings.Contains(log, "Accepted key ED25519 "+fp+" found at "+command) {
		t.Errorf("sshd did not take key %s from the AuthorizedKeysCommand %s:\n%s", fp, command, log)
	}
}

// fingerprintOf returns the SHA256 fingerprint of the public key file path.
func fingerprintOf(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return ssh.FingerprintSHA256(k)
}

// testHostKeyRecorded: the first connection recorded the bastion's host
// key under the instance id (accept-new is the default over SSM).
func testHostKeyRecorded(t *testing.T, l *lab.Lab) {
	b, err := os.ReadFile(l.Path("known_hosts_ssm"))
	if err != nil {
		t.Fatal(err)
	}
	want := lab.InstanceID + " " + strings.Join(strings.Fields(l.SSH.HostKeyLine)[1:3], " ")
	if !slices.Contains(strings.Split(strings.TrimSpace(string(b)), "\n"), want) {
		t.Errorf("known_hosts_ssm:\n%s\nwant the line %q", b, want)
	}
}

// testBreakDuring breaks the session's WebSocket (admin action drop or
// bye) while 16 MiB flow down (or up), and checks that every byte arrives
// and that vpcvpn resumed the same session instead of starting another,
// and is connected again.
func testBreakDuring(t *testing.T, l *lab.Lab, v *lab.VPCVPN, in *lab.Instance, action string, upload bool) {
	ctx := testContext(t, time.Minute)
	sid := currentSession(t, l)
	starts, resumes := l.AWS.Calls(opStartSession), l.AWS.Calls(opResumeSession)
	const n = 16 << 20
	p := &progress{at: 2 << 20, reached: make(chan struct{})}
	done := make(chan transferResult, 1)
	if upload {
		go func() { done <- uploadTo(ctx, l, vpcAddr(lab.SinkPort), 7, n, p) }()
	} else {
		go func() { done <- downloadFrom(ctx, l, vpcAddr(lab.SourcePort), 8, n, p) }()
	}
	select {
	case <-p.reached:
	case r := <-done:
		t.Fatalf("transfer ended before %d bytes: %v", p.at, r.err)
	}
	awsAdmin(t, l, action, url.Values{"session": {sid}})
	if got := p.n.Load(); got >= n {
		t.Fatalf("the transfer had moved all %d bytes before the %s: it proves nothing", got, action)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("transfer across the %s: %v", action, r.err)
	}
	if r.got != r.want {
		t.Errorf("after the %s: %s, want %s", action, r.got, r.want)
	}
	waitAWSLog(t, l, "a ResumeSession", func() bool { return l.AWS.Calls(opResumeSession) > resumes })
	if got := l.AWS.Calls(opStartSession); got != starts || currentSession(t, l) != sid {
		t.Errorf("vpcvpn started a new session after the %s (StartSession calls %d -> %d); want %s resumed", action, starts, got, sid)
	}
	select {
	case <-in.Done():
		t.Fatalf("vpcvpn up exited after the %s:\n%s", action, in.Stderr())
	default:
	}
	testSSMStatus(t, v)
}

// progress counts the bytes written to it and closes reached once at
// least at have been.
type progress struct {
	n       atomic.Int64
	at      int64
	reached chan struct{}
	once    sync.Once
}

func (p *progress) Write(b []byte) (int, error) {
	if p.n.Add(int64(len(b))) >= p.at {
		p.once.Do(func() { close(p.reached) })
	}
	return len(b), nil
}

// transferResult is "<bytes> <sha256>" as received (got) and as sent (want).
type transferResult struct {
	got, want string
	err       error
}

// downloadFrom asks the Source at addr for n bytes of pattern seed,
// counting them into p as they arrive.
func downloadFrom(ctx context.Context, l *lab.Lab, addr string, seed uint64, n int64, p io.Writer) transferResult {
	c, err := l.DialContext(ctx, l.Laptop, "tcp", addr)
	if err != nil {
		return transferResult{err: err}
	}
	defer context.AfterFunc(ctx, func() { c.Close() })()
	defer c.Close()
	if _, err := fmt.Fprintf(c, "%d %d\n", n, seed); err != nil {
		return transferResult{err: err}
	}
	got, err := sumReader(io.TeeReader(c, p))
	return transferResult{got, lab.PatternSum(seed, n), err}
}

// uploadTo sends n bytes of pattern seed to the Sink at addr, counting
// them into p as they are written, and returns the Sink's answer.
func uploadTo(ctx context.Context, l *lab.Lab, addr string, seed uint64, n int64, p io.Writer) transferResult {
	c, err := l.DialContext(ctx, l.Laptop, "tcp", addr)
	if err != nil {
		return transferResult{err: err}
	}
	defer context.AfterFunc(ctx, func() { c.Close() })()
	defer c.Close()
	if _, err := io.Copy(io.MultiWriter(c, p), io.LimitReader(lab.Pattern(seed), n)); err != nil {
		return transferResult{err: fmt.Errorf("upload: %w", err)}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return transferResult{err: err}
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	return transferResult{strings.TrimSpace(got), lab.PatternSum(seed, n), err}
}

// testTerminateSession: SIGTERM makes vpcvpn exit 0 after TerminateSession
// ended each of its sessions (--max-sessions) at the emulator, leaving no
// interface or route.
func testTerminateSession(t *testing.T, l *lab.Lab, v *lab.VPCVPN, in *lab.Instance) {
	up := sessionsUp(t, v)
	terminates := l.AWS.Calls(opTerminateSession)
	if err := in.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, in, 0)
	if got := l.AWS.Calls(opTerminateSession); got < terminates+up {
		t.Errorf("TerminateSession calls %d -> %d at SIGTERM; want one more for each of the %d sessions up", terminates, got, up)
	}
	for _, sid := range l.AWS.Sessions() {
		if _, ended := l.AWS.Ended(sid); !ended {
			t.Errorf("session %s still open at the emulator after SIGTERM:\n%s", sid, l.AWS.Process.Log())
		}
	}
	assertNoTunnel(t, l)
}

// sessionsUp returns how many of vpcvpn's sessions status shows up, at
// least one.
func sessionsUp(t *testing.T, v *lab.VPCVPN) int {
	t.Helper()
	var st struct {
		Connections []struct {
			State string `json:"state"`
		} `json:"connections"`
	}
	res, err := v.Run(testContext(t, 10*time.Second), "status", "--json", "--name", ifName)
	if err != nil || res.ExitCode != 0 || json.Unmarshal([]byte(res.Stdout), &st) != nil {
		t.Fatalf("status --json: exit %d, %v\n%s%s", res.ExitCode, err, res.Stdout, res.Stderr)
	}
	n := 0
	for _, c := range st.Connections {
		if c.State == "up" {
			n++
		}
	}
	if n == 0 {
		t.Fatalf("status --json shows no session up:\n%s", res.Stdout)
	}
	return n
}

// currentSession returns the id of the newest session the emulator opened
// a data channel for.
func currentSession(t *testing.T, l *lab.Lab) string {
	t.Helper()
	ids := l.AWS.Sessions()
	if len(ids) == 0 {
		t.Fatalf("the emulator opened no data channel:\n%s", l.AWS.Process.Log())
	}
	return ids[len(ids)-1]
}

// waitAWSLog waits up to 10 s until cond, a question about the emulator's
// log, holds.
func waitAWSLog(t *testing.T, l *lab.Lab, what string, cond func() bool) {
	t.Helper()
	ctx := testContext(t, 10*time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("no %s in the emulator's log:\n%s", what, l.AWS.Process.Log())
		case <-tick.C:
		}
	}
}

// awsAdmin asks the emulator for a fault (see awsemu's admin.go) from the
// bastion namespace.
func awsAdmin(t *testing.T, l *lab.Lab, action string, query url.Values) {
	t.Helper()
	// Not t's context: this also undoes faults in t's cleanup.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Admin(ctx, action, query); err != nil {
		t.Fatal(err)
	}
}

// TestSSMRefusals: what the AWS side or sshd refuses ends `vpcvpn up` with
// one line naming the problem and the fix, and leaves nothing installed;
// and sshd refuses a pushed key once it is older than the key TTL.
func TestSSMRefusals(t *testing.T) {
	l, v := upSSMLab(t, lab.Options{NoPostgres: true, AWS: &lab.AWSOptions{Pacing: "none", KeyTTL: 2 * time.Second}})
	t.Run("ExpiredKey", func(t *testing.T) { testExpiredKey(t, l) })
	tests := []struct {
		name        string
		fault, undo string   // admin actions that set and clear the fault
		query       string   // the fault's parameters besides the target
		want        []string // the error line contains each
	}{
		{"AccessDenied", "fault", "fault", "error=AccessDenied", []string{"ssm:StartSession", lab.InstanceID}},
		{"TargetNotConnected", "fault", "fault", "error=TargetNotConnected", []string{lab.InstanceID, "not connected", "SSM agent"}},
		{"InstanceDisconnected", "disconnect", "connect", "", []string{lab.InstanceID, "not connected", "SSM agent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			q.Set("target", lab.InstanceID)
			connects := l.AWS.AgentConnects()
			awsAdmin(t, l, tt.fault, q)
			t.Cleanup(func() {
				awsAdmin(t, l, tt.undo, url.Values{"target": {lab.InstanceID}})
				if tt.fault == "disconnect" && l.AWS.Agent == lab.AgentReal {
					// The agent retries its control channel 5-10 s apart, and more.
					if err := l.WaitAgentOnline(context.Background(), connects); err != nil {
						t.Fatal(err)
					}
				}
			})
			res := runSSMUp(t, v, l.Path("known_hosts_ssm"))
			checkErrorLineNames(t, res, tt.want)
			assertNoTunnel(t, l)
		})
	}
	t.Run("StrictHostKeyUnknown", func(t *testing.T) {
		kh := writeKnownHosts(t, "")
		sessions := len(l.AWS.Sessions())
		res := runSSMUp(t, v, kh, "--strict-host-key")
		checkErrorLineNames(t, res, []string{lab.InstanceID, l.SSH.Fingerprint, "--strict-host-key", kh})
		assertKnownHosts(t, kh, "")
		assertSessionEnded(t, l, sessions)
		assertNoTunnel(t, l)
	})
	t.Run("ChangedHostKey", func(t *testing.T) {
		wrong := lab.InstanceID + " " + otherHostKey(t) + "\n"
		kh := writeKnownHosts(t, wrong)
		sessions := len(l.AWS.Sessions())
		res := runSSMUp(t, v, kh)
		checkOneErrorLine(t, res, []string{l.SSH.Fingerprint, "mismatch", "changed"})
		assertKnownHosts(t, kh, wrong)
		assertSessionEnded(t, l, sessions)
		assertNoTunnel(t, l)
	})
}

// runSSMUp runs `vpcvpn up` over SSM with known_hosts file kh and extra
// arguments to its end.
func runSSMUp(t *testing.T, v *lab.VPCVPN, kh string, extra ...string) lab.Result {
	t.Helper()
	args := v.UpArgsSSM(ifName)
	args[slices.Index(args, "--known-hosts")+1] = kh
	res, err := v.Run(testContext(t, 20*time.Second), append(args, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// checkErrorLineNames is checkOneErrorLine where the line must contain
// every one of want.
func checkErrorLineNames(t *testing.T, res lab.Result, want []string) {
	t.Helper()
	checkOneErrorLine(t, res, want[:1])
	lines := strings.Split(strings.TrimSpace(res.Stderr), "\n")
	last := lines[len(lines)-1]
	for _, w := range want[1:] {
		if !strings.Contains(last, w) {
			t.Errorf("error line %q does not name %q", last, w)
		}
	}
}

// writeKnownHosts writes content to a new known_hosts file.
func writeKnownHosts(t *testing.T, content string) string {
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return kh
}

// assertKnownHosts fails t unless kh still holds exactly want.
func assertKnownHosts(t *testing.T, kh, want string) {
	t.Helper()
	if b, err := os.ReadFile(kh); err != nil || string(b) != want {
		t.Errorf("known_hosts after a refused host key = %q, %v; want it unchanged, %q", b, err, want)
	}
}

// assertSessionEnded fails t unless vpcvpn opened a session after the
// first before (of the emulator's Sessions) and none of them is still open.
func assertSessionEnded(t *testing.T, l *lab.Lab, before int) {
	t.Helper()
	ids := l.AWS.Sessions()
	if len(ids) <= before {
		t.Fatalf("no session was started, so the host key was never seen:\n%s", l.AWS.Process.Log())
	}
	for _, id := range ids[before:] {
		if _, ended := l.AWS.Ended(id); !ended {
			t.Errorf("session %s left open at the emulator after vpcvpn gave up", id)
		}
	}
}

// testExpiredKey pushes a key with EC2 Instance Connect, as vpcvpn does,
// and checks that sshd accepts it at once but refuses it once the
// emulator no longer lists it (the key TTL has passed), while a freshly
// pushed key is accepted.
func testExpiredKey(t *testing.T, l *lab.Lab) {
	ctx := testContext(t, time.Minute)
	eic := eicClient(t, l)
	old, oldPub := newUserKey(t)
	pushKey(t, ctx, eic, oldPub)
	if out, err := sshWithKey(ctx, l, old); err != nil {
		t.Fatalf("ssh with a key just pushed: %v\n%s", err, out)
	}
	waitKeyUnlisted(t, ctx, l, oldPub)
	out, err := sshWithKey(ctx, l, old)
	if err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("ssh with a key older than the TTL: %v\n%s\nwant Permission denied", err, out)
	}
	fresh, freshPub := newUserKey(t)
	pushKey(t, ctx, eic, freshPub)
	if out, err := sshWithKey(ctx, l, fresh); err != nil {
		t.Errorf("ssh with a freshly pushed key: %v\n%s", err, out)
	}
}

// eicClient is an EC2 Instance Connect client for the emulator that dials
// from the laptop namespace.
func eicClient(t *testing.T, l *lab.Lab) *ec2instanceconnect.Client {
	hc, err := l.AWSClient(l.Laptop)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hc.CloseIdleConnections)
	creds := aws.Credentials{AccessKeyID: lab.AWSAccessKey, SecretAccessKey: lab.AWSSecretKey, Source: "lab"}
	return ec2instanceconnect.New(ec2instanceconnect.Options{
		Region:       lab.AWSRegion,
		BaseEndpoint: aws.String(l.AWS.Endpoint),
		Credentials:  aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
		HTTPClient:   hc,
	})
}

func pushKey(t *testing.T, ctx context.Context, eic *ec2instanceconnect.Client, pub string) {
	t.Helper()
	_, err := eic.SendSSHPublicKey(ctx, &ec2instanceconnect.SendSSHPublicKeyInput{
		InstanceId:     aws.String(lab.InstanceID),
		InstanceOSUser: aws.String(lab.SSHUser),
		SSHPublicKey:   aws.String(pub),
	})
	if err != nil {
		t.Fatalf("SendSSHPublicKey: %v", err)
	}
}

// newUserKey writes a new Ed25519 private key (OpenSSH format) and returns
// its path and authorized_keys line.
func newUserKey(t *testing.T) (path, pub string) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return path, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
}

// sshWithKey runs `ssh root@bastion true` from the laptop with only key.
func sshWithKey(ctx context.Context, l *lab.Lab, key string) (string, error) {
	return l.Exec(ctx, l.Laptop, "ssh", "-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none", "-o", "UserKnownHostsFile="+l.SSH.KnownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
		"-p", fmt.Sprint(l.SSH.Port), l.SSH.Target(), "true")
}

// waitKeyUnlisted polls what sshd's AuthorizedKeysCommand prints until
// pub is no longer among the keys.
func waitKeyUnlisted(t *testing.T, ctx context.Context, l *lab.Lab, pub string) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		out, err := l.Exec(ctx, l.Bastion, filepath.Join(l.AWS.Dir, "awsemu"), "authorized-keys",
			"--endpoint", l.AWS.Endpoint, "--ca", l.AWS.CABundle, "--instance", lab.InstanceID, lab.SSHUser)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, pub) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the emulator still lists the pushed key: %v", ctx.Err())
		case <-tick.C:
		}
	}
}
