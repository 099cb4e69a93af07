package cli

// --ephemeral --vpc: the subnet to launch in when only the VPC is given,
// a private one (its route table sends no default route to an internet
// gateway), and the check that a --subnet given with --vpc is in it.

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// subnetLister lists subnets and route tables; method values as in inventory.
type subnetLister struct {
	describeSubnets     func(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
	describeRouteTables func(context.Context, *ec2.DescribeRouteTablesInput, ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error)
}

// chooseSubnet settles spec.Subnet: with --vpc alone, the VPC's first
// private subnet by id; with both, the subnet must be in the VPC.
func (s subnetLister) chooseSubnet(ctx context.Context, spec *ephemeralSpec) error {
	if spec.VPC == "" {
		return nil
	}
	in := &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{spec.VPC}}}}
	out, err := s.describeSubnets(ctx, in)
	if err != nil {
		return fmt.Errorf("ephemeral: subnets of %s (ec2:DescribeSubnets): %w", spec.VPC, err)
	}
	ids := make([]string, 0, len(out.Subnets))
	for _, sn := range out.Subnets {
		ids = append(ids, aws.ToString(sn.SubnetId))
	}
	slices.Sort(ids)
	if spec.Subnet != "" {
		if !slices.Contains(ids, spec.Subnet) {
			return fmt.Errorf("ephemeral: subnet %s is not in %s: give a subnet of that VPC, or drop --vpc", spec.Subnet, spec.VPC)
		}
		return nil
	}
	rts, err := s.describeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{spec.VPC}}}})
	if err != nil {
		return fmt.Errorf("ephemeral: route tables of %s (ec2:DescribeRouteTables): %w", spec.VPC, err)
	}
	for _, id := range ids {
		if !publicSubnet(rts.RouteTables, id) {
			spec.Subnet = id
			return nil
		}
	}
	if len(ids) == 0 {
		return fmt.Errorf("ephemeral: %s has no subnets (or does not exist in this region): check --vpc and --region", spec.VPC)
	}
	return fmt.Errorf("ephemeral: every subnet of %s routes to an internet gateway: name a private one with --subnet", spec.VPC)
}

// publicSubnet reports whether subnet's route table (its own, else the
// VPC's main one) sends the default route to an internet gateway.
func publicSubnet(tables []ec2types.RouteTable, subnet string) bool {
	var table *ec2types.RouteTable
	for i, t := range tables {
		for _, a := range t.Associations {
			switch {
			case aws.ToString(a.SubnetId) == subnet:
				table = &tables[i]
			case aws.ToBool(a.Main) && table == nil:
				table = &tables[i]
			}
		}
	}
	if table == nil {
		return false
	}
	for _, r := range table.Routes {
		if aws.ToString(r.DestinationCidrBlock) == "0.0.0.0/0" && strings.HasPrefix(aws.ToString(r.GatewayId), "igw-") {
			return true
		}
	}
	return false
}
