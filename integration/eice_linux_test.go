//go:build linux

package integration_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"golang.org/x/crypto/ssh"

	"github.com/vpcvpn/vpcvpn/integration/lab"
	"github.com/vpcvpn/vpcvpn/internal/vpctest"
	"github.com/vpcvpn/vpcvpn/tunnel"
	"github.com/vpcvpn/vpcvpn/tunnel/eic"
)

// TestEICEndpointClient: SSH over a tunnel of the emulated EC2 Instance
// Connect Endpoint to the lab bastion's real sshd, opened by the test
// process in the laptop namespace with tunnel/eic and tunnel as vpcvpn
// will; a flow to the VPC host's echo through it; the refusal when
// OpenTunnel is denied; the end at the tunnel's maximum duration.
func TestEICEndpointClient(t *testing.T) {
	l, _ := upSSMLab(t, lab.Options{AWS: &lab.AWSOptions{Agent: lab.AgentBuiltin}})
	if err := l.StartDataServers(); err != nil {
		t.Fatal(err)
	}
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
	dial := func(ctx context.Context) (*tunnel.Client, error) {
		return tunnel.Dial(ctx, tunnel.Config{
			User: lab.SSHUser, Addr: net.JoinHostPort(lab.InstanceID, "22"),
			Transport:       func(ctx context.Context) (net.Conn, error) { return eic.Dial(ctx, cfg) },
			HostKeyCallback: ssh.FixedHostKey(d.host),
			Auth:            []ssh.AuthMethod{ssh.PublicKeys(d.signer)},
			Logger:          vpctest.Logger(t),
		})
	}
	ctx := testContext(t, 2*time.Minute)

	c, err := dial(ctx)
	if err != nil {
		t.Fatalf("ssh over the endpoint: %v", err)
	}
	flow, err := c.DialContext(ctx, "tcp", vpcAddr(lab.EchoPort))
	if err != nil {
		t.Fatalf("a flow through it: %v", err)
	}
	want := make([]byte, 256<<10)
	for i := range want {
		want[i] = byte(i * 7)
	}
	go func() { _, _ = flow.Write(want) }()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(flow, got); err != nil || string(got) != string(want) {
		t.Fatalf("echo through the endpoint: %v (equal: %v)", err, string(got) == string(want))
	}
	flow.Close()
	c.Close()

	if err := l.Admin(ctx, "eice", url.Values{"endpoint": {lab.EICEndpointID}, "mode": {"expire"}, "after": {"1s"}}); err != nil {
		t.Fatal(err)
	}
	c, err = dial(ctx)
	if err != nil {
		t.Fatalf("ssh over the endpoint, to expire: %v", err)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("the tunnel outlived its maximum duration")
	}
	if err := c.Err(); !errors.Is(err, eic.ErrDurationReached) {
		t.Errorf("the tunnel ended with %v, want the duration limit", err)
	}
	c.Close()

	if err := l.Admin(ctx, "deny", url.Values{"action": {"ec2-instance-connect:OpenTunnel"}}); err != nil {
		t.Fatal(err)
	}
	if c, err := dial(ctx); !errors.Is(err, eic.ErrAccessDenied) {
		if c != nil {
			c.Close()
		}
		t.Errorf("dial with OpenTunnel denied: %v, want access denied", err)
	}
}

// TestEICE: vpcvpn up --via eice with the lab's endpoint: psql through it,
// a byte-exact upload; an --eice-id the account has not, and a VPC without
// a usable endpoint, are refused in one line naming the fix.
func TestEICE(t *testing.T) {
	l, v := upSSMLab(t, lab.Options{AWS: &lab.AWSOptions{Agent: lab.AgentBuiltin}})
	if err := l.StartDataServers(); err != nil {
		t.Fatal(err)
	}
	t.Run("UnknownEndpoint", func(t *testing.T) {
		res, err := v.Run(testContext(t, 45*time.Second), append(v.UpArgsSSM(ifName), "--via", "eice", "--eice-id", "eice-0ffffffffffffffff")...)
		if err != nil {
			t.Fatal(err)
		}
		const want = "--eice-id eice-0ffffffffffffffff: no such EC2 Instance Connect Endpoint in this region"
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, want) {
			t.Fatalf("exit %d, stderr %q: want a failure saying %q", res.ExitCode, res.Stderr, want)
		}
	})
	t.Run("NoEndpointInVPC", func(t *testing.T) {
		ctx := testContext(t, 45*time.Second)
		if err := l.Admin(ctx, "eice", url.Values{"endpoint": {lab.EICEndpointID}, "state": {"delete-in-progress"}}); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := l.Admin(ctx, "eice", url.Values{"endpoint": {lab.EICEndpointID}, "state": {"create-complete"}}); err != nil {
				t.Fatal(err)
			}
		}()
		res, err := v.Run(ctx, append(v.UpArgsSSM(ifName), "--via", "eice")...)
		if err != nil {
			t.Fatal(err)
		}
		want := "no EC2 Instance Connect Endpoint in " + lab.VPCID + ", the instance's VPC: create one (aws ec2 create-instance-connect-endpoint --subnet-id " + lab.BastionSubnet + "), or use --via ssm"
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, want) {
			t.Fatalf("exit %d, stderr %q: want a failure saying %q", res.ExitCode, res.Stderr, want)
		}
	})
	t.Run("Refusals", func(t *testing.T) { testEICERefusals(t, l, v) })
	t.Run("ConnectionLimit", func(t *testing.T) { testEICEConnectionLimit(t, l, v) })
	t.Run("ByNameAgentOffline", func(t *testing.T) { testEICEByName(t, l, v) })
	t.Run("Rollover", func(t *testing.T) { testEICERollover(t, l, v) })
	in := startVPCVPN(t, v, append(v.UpArgsSSM(ifName), "--via", "eice")...)
	if want := "EC2 Instance Connect Endpoint " + lab.EICEndpointID + " in " + lab.BastionSubnet; !strings.Contains(in.Stderr(), want) {
		t.Errorf("vpcvpn did not say %q:\n%s", want, in.Stderr())
	}
	t.Run("PsqlViaBastion", func(t *testing.T) { testPsqlViaBastion(t, l) })
	t.Run("Upload", func(t *testing.T) { testUpload(t, l, vpcAddr(lab.SinkPort), 4<<20) })
	t.Run("NoSSM", func(t *testing.T) {
		tunnels, keys, starts := l.AWS.Calls("EC2InstanceConnect.OpenTunnel"), l.AWS.Calls("AWSEC2InstanceConnectService.SendSSHPublicKey"), l.AWS.Calls("AmazonSSM.StartSession")
		if tunnels == 0 || keys == 0 || starts != 0 {
			t.Errorf("%d tunnels opened, %d keys pushed, %d SSM sessions started: want the endpoint's tunnels with pushed keys, no SSM", tunnels, keys, starts)
		}
	})
}
