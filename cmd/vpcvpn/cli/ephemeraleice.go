package cli

// --ephemeral --via eice: the bastion is usable once its sshd answers
// through the EC2 Instance Connect Endpoint of its VPC; no SSM agent, so
// no instance profile, is needed.

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpcvpn/vpcvpn/tunnel/eic"
)

// bannerWait is how long a probe waits for the SSH banner.
const bannerWait = 5 * time.Second

// eiceReady is the readiness of a bastion reached through an EC2 Instance
// Connect Endpoint (--eice-id's, or its VPC's): running, and its sshd's
// banner read through a tunnel to port. A VPC without a usable endpoint
// fails at once.
func eiceReady(awsCfg aws.Config, eiceID, port string) readiness {
	var cfg *eic.Config
	return func(ctx context.Context, id, state string) (string, bool, error) {
		if state != "running" {
			return "sshd not answering", false, nil
		}
		if cfg == nil {
			c, err := eiceProbeConfig(ctx, awsCfg, eiceID, id, port)
			if err != nil {
				return "", false, err
			}
			cfg = c
		}
		if err := sshBanner(ctx, *cfg); err != nil {
			return "sshd not answering", false, nil
		}
		return "sshd answering through " + cfg.EndpointID, true, nil
	}
}

// eiceProbeConfig is the tunnel configuration to instance id's port.
func eiceProbeConfig(ctx context.Context, awsCfg aws.Config, eiceID, id, port string) (*eic.Config, error) {
	c := ec2.NewFromConfig(awsCfg)
	in, err := describeTarget(ctx, c.DescribeInstances, id)
	if err != nil {
		return nil, fmt.Errorf("ephemeral: %w", err)
	}
	fips := c.Options().EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled
	ep, err := findEndpoint(ctx, c.DescribeInstanceConnectEndpoints, eiceID, in.vpc, in.subnet, fips)
	if err != nil {
		return nil, fmt.Errorf("ephemeral: %w", err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("--ssh-port %s: %w", port, err)
	}
	tlsCfg, err := caBundleTLS()
	if err != nil {
		return nil, err
	}
	return &eic.Config{EndpointID: ep.ID, DNSName: ep.DNSName, Region: awsCfg.Region, Credentials: awsCfg.Credentials,
		PrivateIP: in.ip, RemotePort: uint16(p), UserAgent: "vpcvpn/" + Version,
		HTTPClient: &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: tlsCfg}}}, nil
}

// sshBanner opens a tunnel with cfg and reads an SSH server's banner.
func sshBanner(ctx context.Context, cfg eic.Config) error {
	ctx, cancel := context.WithTimeout(ctx, bannerWait)
	defer cancel()
	c, err := eic.Dial(ctx, cfg)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() }) // the conn has no deadlines
	defer stop()
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read the SSH banner: %w", err)
	}
	if !strings.HasPrefix(line, "SSH-") {
		return fmt.Errorf("not an SSH server: %q", strings.TrimSpace(line))
	}
	return nil
}
