package integration_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

// upPeersLab builds a lab with the emulated AWS side and returns it with a
// runner of AWS's aws CLI and session-manager-plugin on its laptop, or
// skips t when the machine has no aws CLI version 2 or no plugin.
func upPeersLab(t *testing.T, opts lab.Options) (*lab.Lab, *lab.AWSCLI) {
	t.Helper()
	if reason := lab.Missing(); reason != "" {
		t.Skip("integration: " + reason)
	}
	peers, err := lab.FindPeers(testContext(t, 5*time.Minute))
	if err != nil {
		t.Skipf("integration: %v", err)
	}
	o := lab.AWSOptions{}
	if opts.AWS != nil {
		o = *opts.AWS
	}
	if o.Emulator == "" {
		o.Emulator = awsemuBin(t)
	}
	opts.AWS = &o
	l := newLab(t, opts)
	cli, err := l.AWSCLI(peers)
	if err != nil {
		t.Fatal(err)
	}
	// A region's latency between the client and the agent. Relayed at
	// once, a frame's round trip beats two races in the real agent
	// (3.3.987.0) when its threads are descheduled under load: the client's
	// ack before the agent has buffered the message (the message stays
	// unacknowledged, the agent resends only it, and the plugin, which
	// acknowledges no message below the one it expects, never answers:
	// frames lost later are never resent), and the client's first input
	// (ssh's banner) before the agent marks its handshake complete
	// (acknowledged and discarded). Neither is the plugin's doing.
	awsAdmin(t, l, "delay", url.Values{"d": {peersLatency.String()}})
	t.Logf("peers: %s, %s; the %s SSM agent", peers.AWSVersion, peers.Plugin, l.AWS.Agent)
	return l, cli
}

// peersLatency is how late the emulated service relays each frame of the
// peers' sessions, each way.
const peersLatency = 20 * time.Millisecond

// TestPeers runs AWS's own clients against the emulated service: ssh
// through `aws ssm start-session` as its ProxyCommand (AWS-StartSSHSession:
// the agent's basic port mode, the plugin's standard streams; a port
// forwarding document gets the multiplexed mode from every agent since
// 3.0.196.0, see TestPeersPortForwarding), a key pushed with
// `aws ec2-instance-connect send-ssh-public-key`, the plugin's resume
// after its WebSocket breaks, and the Wego chain (sshuttle over that ssh)
// to the VPC host's PostgreSQL.
func TestPeers(t *testing.T) {
	l, cli := upPeersLab(t, lab.Options{AWS: &lab.AWSOptions{Pacing: "none"}})
	t.Run("SSHLogin", func(t *testing.T) { testPeersSSHLogin(t, l, cli) })
	t.Run("SessionsAtOnce", func(t *testing.T) { testPeersSessionsAtOnce(t, l, cli, 4) })
	t.Run("16MiB", func(t *testing.T) { // each way at once: the plugin and the agent each pace one
		t.Run("Upload", func(t *testing.T) { t.Parallel(); testPeersUpload(t, l, cli, 16<<20) })
		t.Run("Download", func(t *testing.T) { t.Parallel(); testPeersDownload(t, l, cli, 16<<20) })
	})
	t.Run("ResumeAfterDrop", func(t *testing.T) { testPeersResume(t, l, cli) })
	t.Run("PushedKey", func(t *testing.T) { testPeersPushedKey(t, l, cli) })
	t.Run("Wego", func(t *testing.T) { testWego(t, l, cli) })
}

// testPeersSSHLogin: `ssh root@i-...` with the ProxyCommand logs in to
// the bastion: the command runs in its namespace, and sshd saw the login
// come from the SSM agent on the bastion, over a session the emulator
// started for AWS-StartSSHSession.
func testPeersSSHLogin(t *testing.T, l *lab.Lab, cli *lab.AWSCLI) {
	ctx := testContext(t, time.Minute)
	starts := l.AWS.Calls(opStartSession)
	out, err := cli.SSHCommand(ctx, l.SSH.KeyPath, "ip", "-o", "-4", "addr", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("ssh through aws ssm start-session: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), " "+lab.BastionAddr+"/") || !strings.Contains(string(out), " "+lab.BastionVPCAddr+"/") {
		t.Errorf("the command did not run on the bastion: ip addr printed\n%s", out)
	}
	if got := l.AWS.Calls(opStartSession); got != starts+1 {
		t.Errorf("StartSession calls %d -> %d; want one", starts, got)
	}
	m := acceptedKey.FindAllStringSubmatch(l.SSH.Process.Log(), -1)
	if len(m) == 0 {
		t.Fatalf("sshd logged no accepted key:\n%s", l.SSH.Process.Log())
	}
	if from := m[len(m)-1][1]; from == lab.LaptopAddr {
		t.Errorf("sshd saw the login from the laptop (%s); want it from the SSM agent on the bastion", from)
	}
}

// testPeersSessionsAtOnce runs n ssh logins at once, each its own session
// in the agent's basic port mode, each sending its own 1 MiB through.
func testPeersSessionsAtOnce(t *testing.T, l *lab.Lab, cli *lab.AWSCLI, n int) {
	ctx := testContext(t, 2*time.Minute)
	starts := l.AWS.Calls(opStartSession)
	g := new(errgroup.Group)
	for i := range n {
		g.Go(func() error {
			seed, size := uint64(30+i), int64(1<<20)
			cmd := cli.SSHCommand(ctx, l.SSH.KeyPath, "sha256sum")
			cmd.Stdin = io.LimitReader(lab.Pattern(seed), size)
			out, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("session %d: %w", i, err)
			}
			if got, _, _ := strings.Cut(string(out), " "); got != patternSHA(seed, size) {
				return fmt.Errorf("session %d: the bastion received bytes with SHA-256 %s; want %s", i, got, patternSHA(seed, size))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := l.AWS.Calls(opStartSession); got != starts+n {
		t.Errorf("StartSession calls %d -> %d; want %d sessions", starts, got, n)
	}
}

// testPeersUpload sends n bytes through ssh's stdin to sha256sum on the
// bastion.
func testPeersUpload(t *testing.T, l *lab.Lab, cli *lab.AWSCLI, n int64) {
	ctx := testContext(t, 2*time.Minute)
	const seed = 17
	cmd := cli.SSHCommand(ctx, l.SSH.KeyPath, "sha256sum")
	cmd.Stdin = io.LimitReader(lab.Pattern(seed), n)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ssh ... sha256sum: %v\n%s", err, stderr.Bytes())
	}
	got, _, _ := strings.Cut(string(out), " ")
	if want := patternSHA(seed, n); got != want {
		t.Errorf("the bastion received %d bytes with SHA-256 %s; want %s", n, got, want)
	}
}

// testPeersDownload reads n bytes written on the bastion through ssh's
// stdout.
func testPeersDownload(t *testing.T, l *lab.Lab, cli *lab.AWSCLI, n int64) {
	ctx := testContext(t, 2*time.Minute)
	file := writePatternFile(t, l, "download.bin", 18, n)
	cmd := cli.SSHCommand(ctx, l.SSH.KeyPath, "cat", file)
	got, err := sumCommand(cmd, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d %s", n, patternSHA(18, n)); got != want {
		t.Errorf("ssh ... cat: received %s; want %s", got, want)
	}
}

// testPeersResume breaks the plugin's data-channel WebSocket between two
// parts of a download: the plugin resumes the session (ResumeSession) and
// ssh receives every byte, the second part through the resumed channel.
//
// The break comes while nothing is in flight, on purpose. Mid-stream it
// races the plugin (1.2.650.0), which writes a message to ssh before it
// acknowledges it and keeps expecting it when the acknowledgement fails
// (the agent's resend is written twice: ssh's "Bad packet length"), and
// which never acknowledges a resent message below the one it expects (an
// acknowledgement lost in the break stops the agent's resends, which go
// oldest first: what the break lost never comes, ssh times out, exit 255).
func testPeersResume(t *testing.T, l *lab.Lab, cli *lab.AWSCLI) {
	ctx := testContext(t, 2*time.Minute)
	const n, part = 4 << 20, 1 << 20
	file := writePatternFile(t, l, "resume.bin", 19, n)
	sessions, resumes := len(l.AWS.Sessions()), l.AWS.Calls(opResumeSession)
	script := fmt.Sprintf("head -c %d %s; read go; tail -c +%d %s", part, file, part+1, file)
	cmd := cli.SSHCommand(ctx, l.SSH.KeyPath, "sh", "-c", "'"+script+"'")
	release, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer release.Close()
	p := &progress{at: part, reached: make(chan struct{})}
	done := make(chan transferResult, 1)
	go func() {
		got, err := sumCommand(cmd, p)
		done <- transferResult{got: got, err: err}
	}()
	select {
	case <-p.reached:
	case r := <-done:
		t.Fatalf("the download ended before its first %d bytes: %v", part, r.err)
	}
	ids := l.AWS.Sessions()
	if len(ids) <= sessions {
		t.Fatalf("the emulator opened no data channel for the download:\n%s", l.AWS.Process.Log())
	}
	sid := ids[len(ids)-1]
	opens := clientOpens(l, sid)
	awsAdmin(t, l, "drop", url.Values{"session": {sid}})
	// Input that comes while the plugin reconnects ends its session (the
	// send fails, it stops reading ssh): the second part is asked for once
	// the resumed channel is open.
	waitFor(t, ctx, "the plugin's resumed data channel", func() bool { return clientOpens(l, sid) > opens })
	if got := p.n.Load(); got != part {
		t.Fatalf("%d bytes arrived before the second part was asked for; want the first part, %d", got, part)
	}
	if _, err := io.WriteString(release, "go\n"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("download across the drop: %v", r.err)
	}
	if want := fmt.Sprintf("%d %s", n, patternSHA(19, n)); r.got != want {
		t.Errorf("after the drop: received %s; want %s", r.got, want)
	}
	if got := l.AWS.Calls(opResumeSession); got <= resumes {
		t.Errorf("no ResumeSession after the drop (%d calls before, %d after)", resumes, got)
	}
}

// clientOpens counts the client's data-channel openings of session id:
// StartSession's and each ResumeSession's.
func clientOpens(l *lab.Lab, id string) int {
	n := 0
	for _, e := range l.AWS.Events() {
		if e["msg"] == "data channel: open" && e["session"] == id {
			n++
		}
	}
	return n
}

// testPeersPushedKey: a fresh key is refused until `aws
// ec2-instance-connect send-ssh-public-key` pushes it; then sshd takes it
// from its AuthorizedKeysCommand.
func testPeersPushedKey(t *testing.T, l *lab.Lab, cli *lab.AWSCLI) {
	ctx := testContext(t, time.Minute)
	key, err := l.WegoKey(ctx, "id_pushed")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cli.SSHCommand(ctx, key, "true").CombinedOutput(); err == nil {
		t.Fatalf("ssh with a key nobody pushed succeeded; want it refused\n%s", out)
	}
	if err := cli.SendSSHPublicKey(ctx, key+".pub"); err != nil {
		t.Fatal(err)
	}
	if out, err := cli.SSHCommand(ctx, key, "true").CombinedOutput(); err != nil {
		t.Fatalf("ssh with the pushed key: %v\n%s", err, out)
	}
	fp := fingerprintOf(t, key+".pub")
	if log := l.SSH.Process.Log(); !strings.Contains(log, "Accepted publickey for "+lab.SSHUser) || !strings.Contains(log, fp) {
		t.Errorf("sshd did not log accepting the pushed key %s:\n%s", fp, log)
	}
}

// testWego runs the Wego chain: a fresh key pushed with send-ssh-public-key,
// sshuttle over ssh through `aws ssm start-session`, and psql from the
// laptop to the VPC host's PostgreSQL through it; the query arrives from
// the bastion.
func testWego(t *testing.T, l *lab.Lab, cli *lab.AWSCLI) {
	ctx := testContext(t, 2*time.Minute)
	key, err := l.WegoKey(ctx, "id_wego")
	if err != nil {
		t.Fatal(err)
	}
	p, err := cli.StartWego(ctx, "wego", key, lab.VPCCIDR)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	testPsqlViaBastion(t, l)
	fp := fingerprintOf(t, key+".pub")
	if !strings.Contains(l.SSH.Process.Log(), fp) {
		t.Errorf("sshd did not log the pushed key %s; sshuttle logged in with another:\n%s", fp, l.SSH.Process.Log())
	}
	p.Stop()
	if _, err := l.Query(testContext(t, 10*time.Second), "select 1"); err == nil {
		t.Errorf("the VPC host is reachable after sshuttle stopped; want the lab's laptop without a route to it")
	}
}

// writePatternFile writes n bytes of pattern seed to name in the lab's
// directory, which the bastion sees, and returns its path.
func writePatternFile(t *testing.T, l *lab.Lab, name string, seed uint64, n int64) string {
	t.Helper()
	path := l.Path(name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, io.LimitReader(lab.Pattern(seed), n)); err != nil {
		t.Fatal(err)
	}
	return path
}

// patternSHA is the hex SHA-256 of n bytes of pattern seed.
func patternSHA(seed uint64, n int64) string {
	h := sha256.New()
	io.Copy(h, io.LimitReader(lab.Pattern(seed), n))
	return hex.EncodeToString(h.Sum(nil))
}

// sumCommand runs cmd and returns "<bytes> <sha256>" of its stdout,
// counting the bytes into p (nil: no count) as they arrive.
func sumCommand(cmd *exec.Cmd, p io.Writer) (string, error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", err
	}
	var r io.Reader = out
	if p != nil {
		r = io.TeeReader(out, p)
	}
	got, rerr := sumReader(r)
	if err := cmd.Wait(); err != nil {
		return got, fmt.Errorf("%s: %w after %s: %s", cmd.Args[4], err, got, stderr.Bytes())
	}
	return got, rerr
}
