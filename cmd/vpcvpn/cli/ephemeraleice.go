package cli

// --ephemeral --via eice: the bastion is usable once its sshd answers
// through the EC2 Instance Connect Endpoint of its VPC; no SSM agent, so
// no instance profile, is needed.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpcvpn/vpcvpn/tunnel/eic"
)

// bannerWait is how long a probe waits for the SSH banner.
const bannerWait = 5 * time.Second

// checkEICE refuses before the launch when the bastion's VPC has no usable
// EC2 Instance Connect Endpoint (or --eice-id's is not one of it): nothing
// is launched that could not be reached.
func checkEICE(ctx context.Context, awsCfg aws.Config, spec *ephemeralSpec, eiceID string) error {
	c := ec2.NewFromConfig(awsCfg)
	vpc := spec.VPC
	if vpc == "" {
		out, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("subnet-id"), Values: []string{spec.Subnet}}}})
		if err != nil {
			return fmt.Errorf("ephemeral: the VPC of %s: %w", spec.Subnet, permissionHint(err, "ec2:DescribeSubnets"))
		}
		if len(out.Subnets) == 0 {
			return fmt.Errorf("ephemeral: subnet %s does not exist in this region: check --subnet and --region", spec.Subnet)
		}
		vpc = aws.ToString(out.Subnets[0].VpcId)
	}
	fips := c.Options().EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled
	if _, err := findEndpoint(ctx, c.DescribeInstanceConnectEndpoints, eiceID, vpc, spec.Subnet, fips); err != nil {
		return fmt.Errorf("ephemeral: %w", err)
	}
	return nil
}

// eiceReady is the readiness of a bastion reached through an EC2 Instance
// Connect Endpoint (--eice-id's, or its VPC's): running, and its sshd's
// banner read through a tunnel to port. A VPC without a usable endpoint
// fails at once, as does an endpoint that refuses the caller.
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
			if ee := (*eic.Error)(nil); errors.As(err, &ee) && ee.Permanent() {
				return "", false, fmt.Errorf("ephemeral: %w", err) // the instance is not to blame
			}
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
