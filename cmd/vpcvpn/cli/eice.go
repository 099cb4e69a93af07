package cli

// --via eice: the tunnel goes through the EC2 Instance Connect Endpoint
// of the target: the one --eice-id names, or a usable one in the instance's VPC,
// preferring one in its subnet (SSM-PROTOCOL.md 8.2).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	ucli "github.com/urfave/cli/v3"

	"github.com/vpcvpn/vpcvpn/tunnel/eic"
)

// describeEndpointsFunc is ec2:DescribeInstanceConnectEndpoints (a method
// value, as in inventory).
type describeEndpointsFunc func(context.Context, *ec2.DescribeInstanceConnectEndpointsInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceConnectEndpointsOutput, error)

// usableEndpointStates are the states in which an endpoint opens tunnels,
// as the aws CLI's open-tunnel selects them: created, or being modified,
// which keeps the previous configuration until update-complete and after
// update-failed (the EC2 User Guide, "Modify an EC2 Instance Connect
// Endpoint", as of 2026-12-06).
var usableEndpointStates = []string{"create-complete", "update-in-progress", "update-failed", "update-complete"}

// eiceMaxConnections is an endpoint's limit on concurrent connections
// (tunnels), which all its callers share: --max-sessions above it could
// never be reached. A successor opened before a connection's maximum
// duration counts too: at the limit it is refused and retried (engine
// rollover), so --max-sessions 20 is allowed, not advised.
const eiceMaxConnections = 20

// eiceEndpoint is the endpoint a tunnel to an instance goes through.
type eiceEndpoint struct {
	ID, VPC, Subnet string
	DNSName         string // FipsDnsName when FIPS is on
}

// findEndpoint returns the endpoint id names (--eice-id), which must be
// usable and in vpc, or else a usable one in vpc, preferring one in subnet.
func findEndpoint(ctx context.Context, describe describeEndpointsFunc, id, vpc, subnet string, fips bool) (eiceEndpoint, error) {
	in := &ec2.DescribeInstanceConnectEndpointsInput{}
	if id != "" {
		in.InstanceConnectEndpointIds = []string{id}
	} else {
		in.Filters = []ec2types.Filter{
			{Name: aws.String("vpc-id"), Values: []string{vpc}},
			{Name: aws.String("state"), Values: usableEndpointStates},
		}
	}
	var found []ec2types.Ec2InstanceConnectEndpoint
	p := ec2.NewDescribeInstanceConnectEndpointsPaginator(describeEndpointsPager(describe), in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			var ae smithy.APIError
			if errors.As(err, &ae) && ae.ErrorCode() == "InvalidInstanceConnectEndpointId.NotFound" {
				return eiceEndpoint{}, fmt.Errorf("--eice-id %s: no such EC2 Instance Connect Endpoint in this region", id)
			}
			return eiceEndpoint{}, permissionHint(err, "ec2:DescribeInstanceConnectEndpoints")
		}
		found = append(found, out.InstanceConnectEndpoints...)
	}
	found = slices.DeleteFunc(found, func(e ec2types.Ec2InstanceConnectEndpoint) bool {
		return !slices.Contains(usableEndpointStates, string(e.State)) || aws.ToString(e.VpcId) != vpc
	})
	if len(found) == 0 {
		if id != "" {
			return eiceEndpoint{}, fmt.Errorf("--eice-id %s: the endpoint is not usable (its state) or not in %s, the instance's VPC", id, vpc)
		}
		return eiceEndpoint{}, fmt.Errorf("no EC2 Instance Connect Endpoint in %s, the instance's VPC: create one "+
			"(aws ec2 create-instance-connect-endpoint --subnet-id %s), or use --via ssm", vpc, subnet)
	}
	slices.SortFunc(found, func(a, b ec2types.Ec2InstanceConnectEndpoint) int {
		return strings.Compare(aws.ToString(a.InstanceConnectEndpointId), aws.ToString(b.InstanceConnectEndpointId))
	})
	best := found[0]
	if i := slices.IndexFunc(found, func(e ec2types.Ec2InstanceConnectEndpoint) bool { return aws.ToString(e.SubnetId) == subnet }); i >= 0 {
		best = found[i]
	}
	ep := eiceEndpoint{ID: aws.ToString(best.InstanceConnectEndpointId), VPC: vpc, Subnet: aws.ToString(best.SubnetId),
		DNSName: aws.ToString(best.DnsName)}
	if fips {
		ep.DNSName = aws.ToString(best.FipsDnsName)
	}
	if ep.DNSName == "" {
		return eiceEndpoint{}, fmt.Errorf("EC2 Instance Connect Endpoint %s has no DNS name%s", ep.ID, map[bool]string{true: " for FIPS"}[fips])
	}
	return ep, nil
}

// useFIPS reports whether c, made from the loaded configuration, uses
// FIPS endpoints: AWS_USE_FIPS_ENDPOINT or the profile's
// use_fips_endpoint. The endpoint's FipsDnsName is dialed then.
func useFIPS(c *ec2.Client) bool {
	return c.Options().EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled
}

// describeEndpointsPager adapts describe to the paginator's client.
type describeEndpointsPager describeEndpointsFunc

func (f describeEndpointsPager) DescribeInstanceConnectEndpoints(ctx context.Context, in *ec2.DescribeInstanceConnectEndpointsInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstanceConnectEndpointsOutput, error) {
	return f(ctx, in, opts...)
}

// parseEICEMax checks --eice-max-duration.
func (o *upOptions) parseEICEMax(cmd *ucli.Command) error {
	if !cmd.IsSet("eice-max-duration") {
		return nil
	}
	d := cmd.Duration("eice-max-duration")
	switch {
	case o.via != "eice":
		return errors.New("--eice-max-duration needs --via eice")
	case d < time.Second || d > eic.MaxDuration || d%time.Second != 0:
		return fmt.Errorf("--eice-max-duration %v: give whole seconds from 1s to %v", d, eic.MaxDuration)
	}
	o.eiceMax = d
	return nil
}

// viaAWS reports whether the transport runs over AWS's services, which
// find the instance by --target.
func (o *upOptions) viaAWS() bool { return o.via == "ssm" || o.via == "eice" }

// eicePeer reaches the instance through an EC2 Instance Connect Endpoint
// in its VPC, authenticated by -i or by an ephemeral key pushed with EC2
// Instance Connect before each tunnel, as over SSM.
func (d *dialer) eicePeer(ctx context.Context) (*peer, error) {
	o, inv := d.opts, d.inv
	awsCfg, err := awsConfig(ctx, o, inv)
	if err != nil {
		return nil, sudoHint(err, o, inv)
	}
	tlsCfg, err := caBundleTLS()
	if err != nil {
		return nil, err
	}
	c := ec2.NewFromConfig(awsCfg)
	in, err := describeTarget(ctx, c.DescribeInstances, o.host)
	if err != nil {
		return nil, err
	}
	fips := useFIPS(c)
	ep, err := findEndpoint(ctx, c.DescribeInstanceConnectEndpoints, o.eiceID, in.vpc, in.subnet, fips)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(o.port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("--ssh-port %s: %w", o.port, err)
	}
	p, push, err := d.ssmAuth(ctx, awsCfg)
	if err != nil {
		return nil, err
	}
	p.hostKeys = d.awsHostKeys()
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: tlsCfg}}
	cfg := eic.Config{
		EndpointID: ep.ID, DNSName: ep.DNSName, Region: awsCfg.Region, Credentials: awsCfg.Credentials,
		PrivateIP: in.ip, RemotePort: uint16(port), MaxTunnelDuration: o.eiceMax, HTTPClient: hc, UserAgent: "vpcvpn/" + Version, Logger: d.log,
	}
	d.log.Debug("through an EC2 Instance Connect Endpoint", "endpoint", ep.ID, "subnet", ep.Subnet, "target", in.ip)
	p.transport = func(ctx context.Context) (net.Conn, error) {
		if push != nil {
			if err := push(ctx); err != nil {
				return nil, err
			}
		}
		c, err := eic.Dial(ctx, cfg)
		if errors.Is(err, eic.ErrAccessDenied) && o.eiceMax == 0 {
			// vpcvpn asked for the service's hour
			return nil, fmt.Errorf("%w; a policy that limits ec2-instance-connect:maxTunnelDuration needs --eice-max-duration at or below its limit", err)
		}
		return c, err
	}
	return p, nil
}

// eiceTarget is what the endpoint needs of the instance.
type eiceTarget struct {
	ip          netip.Addr
	vpc, subnet string
}

// describeTarget looks the instance id up: running, with a private IPv4
// address in a VPC.
func describeTarget(ctx context.Context, describe func(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error), id string) (eiceTarget, error) {
	out, err := describe(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return eiceTarget{}, permissionHint(err, "ec2:DescribeInstances")
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if aws.ToString(in.InstanceId) != id {
				continue
			}
			if in.State == nil || in.State.Name != ec2types.InstanceStateNameRunning {
				return eiceTarget{}, fmt.Errorf("instance %s is not running: start it, or choose another --target", id)
			}
			ip, err := netip.ParseAddr(aws.ToString(in.PrivateIpAddress))
			if err != nil || !ip.Is4() || aws.ToString(in.VpcId) == "" {
				return eiceTarget{}, fmt.Errorf("instance %s has no private IPv4 address in a VPC, which an EC2 Instance Connect Endpoint needs", id)
			}
			return eiceTarget{ip: ip, vpc: aws.ToString(in.VpcId), subnet: aws.ToString(in.SubnetId)}, nil
		}
	}
	return eiceTarget{}, fmt.Errorf("instance %s not found in this region", id)
}

// findEICE looks the endpoint up once at start, so that its addresses stay
// out of the tunnel as the AWS endpoints' do, and every dial goes through
// the same one.
func (r *upRun) findEICE(ctx context.Context, cfg aws.Config) ([]netip.Addr, map[netip.Addr]string, error) {
	o := r.opts
	c := ec2.NewFromConfig(cfg)
	in, err := describeTarget(ctx, c.DescribeInstances, o.host)
	if err != nil {
		return nil, nil, err
	}
	fips := useFIPS(c)
	ep, err := findEndpoint(ctx, c.DescribeInstanceConnectEndpoints, o.eiceID, in.vpc, in.subnet, fips)
	if err != nil {
		return nil, nil, err
	}
	r.progress("--via eice: EC2 Instance Connect Endpoint %s in %s", ep.ID, ep.Subnet)
	r.found.Lock()
	o.eiceID = ep.ID
	r.found.Unlock()
	addrs, names := resolveAWSEndpoints(ctx, []string{endpointHost(ep.DNSName)})
	return addrs, names, nil
}

// endpointHost is the host of an endpoint's DNS name, which may carry a
// port (an emulator's does).
func endpointHost(dns string) string {
	if h, _, err := net.SplitHostPort(dns); err == nil {
		return h
	}
	return dns
}
