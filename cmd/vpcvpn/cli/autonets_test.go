package cli

import (
	"bytes"
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func prefixes(ss ...string) []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

func TestPlanAutoNets(t *testing.T) {
	endpoint := netip.MustParseAddr("198.18.0.2")
	names := map[netip.Addr]string{endpoint: "the AWS endpoint ssm.us-east-1.amazonaws.com"}
	vpc := []netCandidate{{"10.77.0.0/16", "vpc-1"}, {"10.78.0.0/16", "vpc-1"}}
	tests := []struct {
		name    string
		cands   []netCandidate
		given   []netip.Prefix
		want    []netip.Prefix
		skipped []string // CIDR: reason
	}{
		{name: "vpc blocks", cands: vpc, want: prefixes("10.77.0.0/16", "10.78.0.0/16")},
		{name: "peering and transit gateway", cands: append(slices.Clone(vpc), netCandidate{"10.90.0.0/16", "peering pcx-1"}, netCandidate{"10.100.0.0/14", "transit gateway tgw-1"}),
			want: prefixes("10.77.0.0/16", "10.78.0.0/16", "10.90.0.0/16", "10.100.0.0/14")},
		{name: "default route", cands: []netCandidate{{"10.77.0.0/16", "vpc-1"}, {"0.0.0.0/0", "transit gateway tgw-1"}},
			want: prefixes("10.77.0.0/16"), skipped: []string{"0.0.0.0/0: a default route"}},
		{name: "captures the endpoint", cands: []netCandidate{{"10.77.0.0/16", "vpc-1"}, {"198.18.0.0/16", "transit gateway tgw-1"}},
			want: prefixes("10.77.0.0/16"), skipped: []string{"198.18.0.0/16: it would capture the AWS endpoint ssm.us-east-1.amazonaws.com (198.18.0.2)"}},
		{name: "inside a vpc block", cands: []netCandidate{{"10.77.0.0/16", "vpc-1"}, {"10.77.8.0/24", "peering pcx-1"}},
			want: prefixes("10.77.0.0/16"), skipped: []string{"10.77.8.0/24: inside 10.77.0.0/16"}},
		{name: "route wider than a block", cands: []netCandidate{{"10.77.0.0/16", "vpc-1"}, {"10.0.0.0/8", "transit gateway tgw-1"}},
			want: prefixes("10.0.0.0/8"), skipped: []string{"10.77.0.0/16: inside 10.0.0.0/8"}},
		{name: "given wins a tie", cands: vpc, given: prefixes("10.77.0.0/16", "172.16.0.0/12"),
			want: prefixes("10.77.0.0/16", "10.78.0.0/16", "172.16.0.0/12"), skipped: []string{"10.77.0.0/16: given on the command line"}},
		{name: "given inside a block", cands: vpc, given: prefixes("10.77.1.0/24"), want: prefixes("10.77.0.0/16", "10.78.0.0/16")},
		{name: "given around a block", cands: vpc, given: prefixes("10.0.0.0/8"), want: prefixes("10.0.0.0/8"),
			skipped: []string{"10.77.0.0/16: inside 10.0.0.0/8", "10.78.0.0/16: inside 10.0.0.0/8"}},
		{name: "listed twice", cands: []netCandidate{{"10.90.0.0/16", "peering pcx-1"}, {"10.90.0.0/16", "transit gateway tgw-1"}},
			want: prefixes("10.90.0.0/16"), skipped: []string{"10.90.0.0/16: listed twice"}},
		{name: "host bits", cands: []netCandidate{{"10.90.1.0/16", "peering pcx-1"}}, want: prefixes("10.90.0.0/16")},
		{name: "reserved", cands: []netCandidate{{"127.0.0.0/8", "peering pcx-1"}}, skipped: []string{"127.0.0.0/8: 127.0.0.0/8 overlaps"}},
		{name: "ipv6", cands: []netCandidate{{"fd00::/8", "peering pcx-1"}, {"garbage", "peering pcx-2"}},
			skipped: []string{"fd00::/8: not an IPv4 range", "garbage: not an IPv4 range"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := planAutoNets(tt.cands, tt.given, []netip.Addr{endpoint}, names)
			if !slices.Equal(plan.CIDRs, tt.want) {
				t.Errorf("CIDRs %v, want %v", plan.CIDRs, tt.want)
			}
			var skipped []string
			for _, s := range plan.Skipped {
				skipped = append(skipped, s.CIDR+": "+s.Reason)
			}
			if len(skipped) != len(tt.skipped) {
				t.Fatalf("skipped %q, want %q", skipped, tt.skipped)
			}
			for i, w := range tt.skipped {
				if !strings.HasPrefix(skipped[i], w) {
					t.Errorf("skipped %q, want %q", skipped[i], w)
				}
			}
			for _, n := range plan.Nets {
				if !slices.Contains(plan.CIDRs, n.Prefix) {
					t.Errorf("net %v not among the CIDRs %v", n.Prefix, plan.CIDRs)
				}
			}
		})
	}
}

// vpcAccount is labAccount with vpc-a's two blocks and a route table for
// subnet-a, and vpc-b's main route table.
func vpcAccount() *fakeAWS {
	f := labAccount()
	block := func(cidr string, state ec2types.VpcCidrBlockStateCode) ec2types.VpcCidrBlockAssociation {
		return ec2types.VpcCidrBlockAssociation{CidrBlock: aws.String(cidr), CidrBlockState: &ec2types.VpcCidrBlockState{State: state}}
	}
	f.vpcs = []ec2types.Vpc{
		{VpcId: aws.String("vpc-a"), CidrBlock: aws.String("10.77.0.0/16"), CidrBlockAssociationSet: []ec2types.VpcCidrBlockAssociation{
			block("10.77.0.0/16", ec2types.VpcCidrBlockStateCodeAssociated), block("10.78.0.0/16", ec2types.VpcCidrBlockStateCodeAssociated),
			block("10.79.0.0/16", ec2types.VpcCidrBlockStateCodeDisassociated),
		}},
		{VpcId: aws.String("vpc-b"), CidrBlock: aws.String("10.88.0.0/16")},
	}
	route := func(cidr string, set func(*ec2types.Route)) ec2types.Route {
		r := ec2types.Route{DestinationCidrBlock: aws.String(cidr), State: ec2types.RouteStateActive}
		set(&r)
		return r
	}
	f.tables = []ec2types.RouteTable{
		{VpcId: aws.String("vpc-a"), Associations: []ec2types.RouteTableAssociation{{SubnetId: aws.String("subnet-a")}}, Routes: []ec2types.Route{
			route("10.77.0.0/16", func(r *ec2types.Route) { r.GatewayId = aws.String("local") }),
			route("10.90.0.0/16", func(r *ec2types.Route) { r.VpcPeeringConnectionId = aws.String("pcx-1") }),
			route("10.100.0.0/16", func(r *ec2types.Route) { r.TransitGatewayId = aws.String("tgw-1") }),
			route("10.101.0.0/16", func(r *ec2types.Route) {
				r.TransitGatewayId, r.State = aws.String("tgw-1"), ec2types.RouteStateBlackhole
			}),
			route("0.0.0.0/0", func(r *ec2types.Route) { r.TransitGatewayId = aws.String("tgw-1") }),
			route("192.168.0.0/16", func(r *ec2types.Route) { r.NatGatewayId = aws.String("nat-1") }),
		}},
		{VpcId: aws.String("vpc-a"), Associations: []ec2types.RouteTableAssociation{{Main: aws.Bool(true)}}, Routes: []ec2types.Route{
			route("10.55.0.0/16", func(r *ec2types.Route) { r.VpcPeeringConnectionId = aws.String("pcx-main") }),
		}},
		{VpcId: aws.String("vpc-b"), Associations: []ec2types.RouteTableAssociation{{Main: aws.Bool(true)}}, Routes: []ec2types.Route{
			route("10.66.0.0/16", func(r *ec2types.Route) { r.VpcPeeringConnectionId = aws.String("pcx-2") }),
		}},
	}
	return f
}

func TestAutoNets(t *testing.T) {
	tests := []struct {
		name    string
		in      instance
		denied  string
		want    []netip.Prefix
		wantErr string
	}{
		{name: "subnet's table", in: instance{ID: "i-0000000000000000a", VPC: "vpc-a", Subnet: "subnet-a"},
			want: prefixes("10.77.0.0/16", "10.78.0.0/16", "10.90.0.0/16", "10.100.0.0/16")},
		{name: "main table", in: instance{ID: "i-0000000000000000b", VPC: "vpc-b", Subnet: "subnet-b"},
			want: prefixes("10.66.0.0/16", "10.88.0.0/16")},
		{name: "by id", in: instance{ID: "i-0000000000000000b"}, want: prefixes("10.66.0.0/16", "10.88.0.0/16")},
		{name: "unknown id", in: instance{ID: "i-0123456789abcdef0"}, wantErr: "EC2 knows no VPC of i-0123456789abcdef0"},
		{name: "vpcs denied", in: instance{ID: "i-0000000000000000a", VPC: "vpc-a", Subnet: "subnet-a"}, denied: "DescribeVpcs",
			wantErr: "-N needs ec2:DescribeVpcs, which these AWS credentials may not call (UnauthorizedOperation): give the VPC's ranges as CIDRs instead"},
		{name: "route tables denied", in: instance{ID: "i-0000000000000000a", VPC: "vpc-a", Subnet: "subnet-a"}, denied: "DescribeRouteTables",
			wantErr: "-N needs ec2:DescribeRouteTables"},
		{name: "instances denied", in: instance{ID: "i-0000000000000000a"}, denied: "DescribeInstances", wantErr: "-N needs ec2:DescribeInstances"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := vpcAccount()
			f.denied = tt.denied
			plan, err := autoNetsWith(context.Background(), f.inventory(), tt.in, nil, nil, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(plan.CIDRs, tt.want) {
				t.Errorf("CIDRs %v, want %v", plan.CIDRs, tt.want)
			}
		})
	}
}

func TestPrintAutoNets(t *testing.T) {
	plan := planAutoNets([]netCandidate{{"10.77.0.0/16", "vpc-a"}, {"10.90.0.0/16", "peering pcx-1"}, {"0.0.0.0/0", "transit gateway tgw-1"}}, nil, nil, nil)
	plan.VPC = "vpc-a"
	var b bytes.Buffer
	printAutoNets(&b, instance{ID: "i-0000000000000000a", Name: "bastion"}, plan)
	want := "vpcvpn: -N: the ranges of bastion (i-0000000000000000a) in vpc-a:\n" +
		"vpcvpn:   10.77.0.0/16  vpc-a\n" +
		"vpcvpn:   10.90.0.0/16  peering pcx-1\n" +
		"vpcvpn:   0.0.0.0/0     transit gateway tgw-1  skipped: a default route\n"
	if b.String() != want {
		t.Errorf("printed\n%s\nwant\n%s", b.String(), want)
	}
}
