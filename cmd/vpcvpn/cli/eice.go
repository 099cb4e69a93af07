package cli

// The EC2 Instance Connect Endpoint of a target (--via eice, not yet a
// flag): the one --eice-id names, or a usable one in the instance's VPC,
// preferring one in its subnet (SSM-PROTOCOL.md 8.2).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// describeEndpointsFunc is ec2:DescribeInstanceConnectEndpoints (a method
// value, as in inventory).
type describeEndpointsFunc func(context.Context, *ec2.DescribeInstanceConnectEndpointsInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceConnectEndpointsOutput, error)

// usableEndpointStates are the states in which an endpoint opens tunnels,
// as the aws CLI's open-tunnel selects them.
var usableEndpointStates = []string{"create-complete", "update-in-progress", "update-failed", "update-complete"}

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

// describeEndpointsPager adapts describe to the paginator's client.
type describeEndpointsPager describeEndpointsFunc

func (f describeEndpointsPager) DescribeInstanceConnectEndpoints(ctx context.Context, in *ec2.DescribeInstanceConnectEndpointsInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstanceConnectEndpointsOutput, error) {
	return f(ctx, in, opts...)
}
