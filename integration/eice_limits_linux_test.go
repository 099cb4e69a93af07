package integration_test

// The EC2 Instance Connect Endpoint's limits through vpcvpn (issue 20):
// a tunnel's maximum duration rolled over to a successor connection, the
// endpoint's 20 connections, and its refusals, each one line naming the
// fix; and a --target by name whose SSM agent is offline, which an
// endpoint does not need.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"golang.org/x/crypto/ssh"

	"github.com/vpcvpn/vpcvpn/integration/lab"
	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel"
	"github.com/vpcvpn/vpcvpn/tunnel/eic"
)

// eiceRolloverLimit is the tunnels' maximum duration in the rollover
// test: a connection drains 5 s before it (engine's drainLeadMin).
const eiceRolloverLimit = 20 * time.Second

// eiceStatus is what these tests read of status --json.
type eiceStatus struct {
	Endpoint    string     `json:"endpoint"`
	Connections []eiceConn `json:"connections"`
}

type eiceConn struct {
	ID        int       `json:"id"`
	State     string    `json:"state"`
	FlowsOpen int       `json:"flows_open"`
	Expires   time.Time `json:"expires"`
}

// waitEICEStatus polls status --json until cond holds, and returns that
// status; it fails t with the last one when ctx ends.
func waitEICEStatus(t *testing.T, ctx context.Context, v *lab.VPCVPN, what string, cond func(eiceStatus) bool) eiceStatus {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for last := ""; ; {
		res, err := v.Run(ctx, "status", "--json", "--name", ifName)
		if err == nil && res.ExitCode == 0 {
			var st eiceStatus
			last = res.Stdout
			if json.Unmarshal([]byte(res.Stdout), &st) == nil && cond(st) {
				return st
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s in status: %v; the last:\n%s", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// echoExact sends n random bytes, hex-encoded on a line, on an echo flow
// and checks that exactly they come back.
func echoExact(t *testing.T, c net.Conn, r *bufio.Reader, n int) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	echo(t, c, r, hex.EncodeToString(b))
}

// testEICERollover: with tunnels of 20 s and one connection allowed, the
// connection drains before its limit and its successor comes up beside
// it; an interactive flow opened then keeps echoing byte-exact across the
// old connection's end, while the flow opened before is reset at the
// limit; status shows the endpoint, the expiry, the draining connection
// and then the successor alone, and the log says both.
func testEICERollover(t *testing.T, l *lab.Lab, v *lab.VPCVPN) {
	in := startVPCVPN(t, v, append(v.UpArgsSSM(ifName), "--via", "eice", "--eice-max-duration", eiceRolloverLimit.String(),
		"--max-sessions", "1", "-v")...)
	ctx := testContext(t, 2*time.Minute)
	old, oldR := openEcho(t, ctx, l)
	first := waitEICEStatus(t, ctx, v, "one connection up", func(st eiceStatus) bool { return len(st.Connections) == 1 })
	if c := first.Connections[0]; first.Endpoint != lab.EICEndpointID || c.State != "up" ||
		time.Until(c.Expires) > eiceRolloverLimit || time.Until(c.Expires) < eiceRolloverLimit/2 {
		t.Errorf("status: endpoint %q, connection %+v; want %s and one up, expiring within %v", first.Endpoint, c, lab.EICEndpointID, eiceRolloverLimit)
	}
	drainingID := first.Connections[0].ID

	st := waitEICEStatus(t, ctx, v, "the connection draining beside its successor", func(st eiceStatus) bool {
		return len(st.Connections) == 2 && st.Connections[0].State == "draining" && st.Connections[1].State == "up"
	})
	if st.Connections[0].ID != drainingID || st.Connections[0].FlowsOpen != 1 || st.Connections[0].Expires.IsZero() {
		t.Errorf("draining: %+v; want #%d with its flow and its expiry", st.Connections[0], drainingID)
	}
	successor := st.Connections[1].ID
	flow, r := openEcho(t, ctx, l)
	echoExact(t, flow, r, 512)

	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	rounds := 0
	for gone := false; !gone; rounds++ {
		echoExact(t, flow, r, 512)
		res, err := v.Run(ctx, "status", "--json", "--name", ifName)
		var now eiceStatus
		if err == nil && json.Unmarshal([]byte(res.Stdout), &now) == nil && len(now.Connections) > 0 {
			gone = !slices.ContainsFunc(now.Connections, func(c eiceConn) bool { return c.ID == drainingID })
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("the draining connection outlived its limit: %v", ctx.Err())
		}
	}
	for range 10 {
		echoExact(t, flow, r, 4096)
	}
	if rounds < 3 {
		t.Errorf("only %d round trips on the new flow before the old connection ended: it proved little", rounds)
	}
	old.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, oldR); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the flow opened before the rollover ended with %v, want a reset (ECONNRESET)", err)
	}
	after := waitEICEStatus(t, ctx, v, "the successor alone", func(st eiceStatus) bool { return len(st.Connections) == 1 })
	if c := after.Connections[0]; c.ID != successor || c.State != "up" || c.FlowsOpen != 1 {
		t.Errorf("after the rollover: %+v; want #%d up with the new flow", c, successor)
	}
	for _, want := range []string{
		fmt.Sprintf("connection #%d opened to succeed #%d", successor, drainingID),
		fmt.Sprintf("connection #%d ended at its maximum duration; 1 connection(s) still open on it reset", drainingID),
	} {
		if !strings.Contains(in.Stderr(), want) {
			t.Errorf("the log lacks %q:\n%s", want, logTail(in.Stderr(), 30))
		}
	}
}

// eiceSSH returns a dial of an SSH connection to the lab bastion through
// the endpoint, opened by the test process in the laptop namespace.
func eiceSSH(t *testing.T, l *lab.Lab) func(ctx context.Context) (*tunnel.Client, error) {
	d := newDirectSSM(t, l)
	u, err := url.Parse(l.AWS.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	cfg := eic.Config{
		EndpointID: lab.EICEndpointID, DNSName: u.Host, Region: lab.AWSRegion,
		Credentials: credentials.NewStaticCredentialsProvider(lab.AWSAccessKey, lab.AWSSecretKey, ""),
		PrivateIP:   netip.MustParseAddr(lab.BastionVPCAddr), HTTPClient: d.http, Logger: vpctest.Logger(t),
	}
	return func(ctx context.Context) (*tunnel.Client, error) {
		return tunnel.Dial(ctx, tunnel.Config{
			User: lab.SSHUser, Addr: net.JoinHostPort(lab.InstanceID, "22"),
			Transport:       func(ctx context.Context) (net.Conn, error) { return eic.Dial(ctx, cfg) },
			HostKeyCallback: ssh.FixedHostKey(d.host),
			Auth:            []ssh.AuthMethod{ssh.PublicKeys(d.signer)},
			Logger:          vpctest.Logger(t),
		})
	}
}

// testEICEConnectionLimit: with the endpoint's 20 connections in use,
// vpcvpn up is refused in one line naming the limit; nothing is left.
func testEICEConnectionLimit(t *testing.T, l *lab.Lab, v *lab.VPCVPN) {
	ctx := testContext(t, 90*time.Second)
	dial := eiceSSH(t, l)
	for i := range 20 {
		c, err := dial(ctx)
		if err != nil {
			t.Fatalf("connection %d of 20 through the endpoint: %v", i+1, err)
		}
		t.Cleanup(func() { c.Close() })
	}
	if c, err := dial(ctx); !errors.Is(err, eic.ErrLimit) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("a 21st connection: %v, want the endpoint's limit", err)
	}
	res, err := v.Run(ctx, append(v.UpArgsSSM(ifName), "--via", "eice")...)
	if err != nil {
		t.Fatal(err)
	}
	want := "refused the tunnel to " + lab.BastionVPCAddr + ":22 (HTTP 429): ThrottlingException: The maximum number of connections (20) to instance connect endpoint " +
		lab.EICEndpointID + " is reached: the endpoint allows 20 concurrent connections: close some, or wait"
	checkOneLineRefusal(t, res, want)
	assertNoTunnel(t, l)
}

// checkOneLineRefusal fails t unless vpcvpn up failed and its last line of
// stderr says want.
func checkOneLineRefusal(t *testing.T, res lab.Result, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(res.Stderr), "\n")
	if res.ExitCode == 0 || !strings.Contains(lines[len(lines)-1], want) {
		t.Errorf("exit %d, stderr:\n%s\nwant a failure whose last line says %q", res.ExitCode, res.Stderr, want)
	}
}

// testEICERefusals: OpenTunnel denied, and an instance port the endpoint
// cannot reach (its security group), each refused in one line naming the
// permission or the rule; nothing is left.
func testEICERefusals(t *testing.T, l *lab.Lab, v *lab.VPCVPN) {
	t.Run("OpenTunnelDenied", func(t *testing.T) {
		ctx := testContext(t, 45*time.Second)
		awsAdmin(t, l, "deny", url.Values{"action": {"ec2-instance-connect:OpenTunnel"}})
		t.Cleanup(func() { awsAdmin(t, l, "deny", nil) })
		res, err := v.Run(ctx, append(v.UpArgsSSM(ifName), "--via", "eice")...)
		if err != nil {
			t.Fatal(err)
		}
		checkOneLineRefusal(t, res, "(HTTP 403): AccessDeniedException: User: arn:aws:iam::")
		checkOneLineRefusal(t, res, "the caller needs permission ec2-instance-connect:OpenTunnel on the endpoint")
		assertNoTunnel(t, l)
	})
	t.Run("DurationCondition", func(t *testing.T) {
		ctx := testContext(t, 45*time.Second)
		awsAdmin(t, l, "eice", url.Values{"endpoint": {lab.EICEndpointID}, "max_duration": {"1800"}})
		t.Cleanup(func() { awsAdmin(t, l, "eice", url.Values{"endpoint": {lab.EICEndpointID}, "max_duration": {"0"}}) })
		res, err := v.Run(ctx, append(v.UpArgsSSM(ifName), "--via", "eice")...)
		if err != nil {
			t.Fatal(err)
		}
		checkOneLineRefusal(t, res, "a policy that limits ec2-instance-connect:maxTunnelDuration needs --eice-max-duration at or below its limit")
		assertNoTunnel(t, l)
		in := startVPCVPN(t, v, append(v.UpArgsSSM(ifName), "--via", "eice", "--eice-max-duration", "30m")...)
		c, r := openEcho(t, ctx, l)
		echoExact(t, c, r, 256)
		c.Close()
		stopUp(t, in)
	})
	t.Run("SecurityGroup", func(t *testing.T) {
		ctx := testContext(t, 45*time.Second)
		res, err := v.Run(ctx, append(v.UpArgsSSM(ifName), "--via", "eice", "--ssh-port", "2222")...)
		if err != nil {
			t.Fatal(err)
		}
		checkOneLineRefusal(t, res, "the instance's security group must allow TCP port 2222 from the endpoint's security group, and the port must be listening")
		assertNoTunnel(t, l)
	})
	t.Run("ChangedHostKey", func(t *testing.T) {
		// The endpoint is a TCP proxy: the host key is the instance's own,
		// checked under its id as over SSM.
		wrong := lab.InstanceID + " " + otherHostKey(t) + "\n"
		kh := writeKnownHosts(t, wrong)
		tunnels := l.AWS.Calls("EC2InstanceConnect.OpenTunnel")
		res := runSSMUp(t, v, kh, "--via", "eice")
		for _, want := range []string{"host key for " + lab.InstanceID + " has changed",
			l.SSH.Fingerprint, "man-in-the-middle", "ssh-keygen -R " + lab.InstanceID + " -f " + kh} {
			checkOneLineRefusal(t, res, want)
		}
		assertKnownHosts(t, kh, wrong)
		if l.AWS.Calls("EC2InstanceConnect.OpenTunnel") == tunnels {
			t.Error("no tunnel was opened through the endpoint, so the host key was never seen")
		}
		assertNoTunnel(t, l)
	})
}

// testEICEByName: --target jump, whose SSM agent is offline, goes through
// the endpoint (which needs no agent) to its sshd, with -i's key; a flow
// through it echoes.
func testEICEByName(t *testing.T, l *lab.Lab, v *lab.VPCVPN) {
	in := startVPCVPN(t, v, upTargetArgs(v, "jump", "--via", "eice", "-i", l.SSH.KeyPath)...)
	if want := "--target jump: jump (" + lab.JumpID + ") in " + lab.VPCID + " us-east-1a"; !strings.Contains(in.Stderr(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, in.Stderr())
	}
	ctx := testContext(t, 30*time.Second)
	c, r := openEcho(t, ctx, l)
	echoExact(t, c, r, 1024)
	c.Close()
	if st := tunnelStatus(t, v); st.Target != "jump" || !strings.Contains(st.Bastion, lab.JumpID) {
		t.Errorf("status bastion %q, target %q; want %s, jump", st.Bastion, st.Target, lab.JumpID)
	}
}
