package awsemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
)

// testInventory has seven instances, three of them Role=bastion, in a VPC
// with two blocks whose subnet route table has a peering, a transit
// gateway and a default route.
func testInventory() *EC2Inventory {
	inv := &EC2Inventory{
		VPCs: []EC2VPC{{ID: "vpc-1", CIDRs: []string{"10.77.0.0/16", "10.78.0.0/16"}}},
		RouteTables: []RouteTable{
			{ID: "rtb-main", VPC: "vpc-1", Main: true, Routes: []Route{{Dest: "10.77.0.0/16", Target: "local"}}},
			{ID: "rtb-1", VPC: "vpc-1", Subnets: []string{"subnet-1"}, Routes: []Route{
				{Dest: "10.77.0.0/16", Target: "local"},
				{Dest: "10.90.0.0/16", Target: "pcx-1"},
				{Dest: "10.100.0.0/16", Target: "tgw-1"},
				{Dest: "10.101.0.0/16", Target: "tgw-1", Blackhole: true},
				{Dest: "0.0.0.0/0", Target: "igw-1"},
			}},
		},
	}
	for i := range 7 {
		role := "web"
		if i < 3 {
			role = "bastion"
		}
		inv.Instances = append(inv.Instances, EC2Instance{
			ID: fmt.Sprintf("i-00000000000000a%d", i), State: "running", VPC: "vpc-1", Subnet: "subnet-1", AZ: "us-east-1a",
			PrivateIP: fmt.Sprintf("10.77.0.%d", 10+i), Tags: map[string]string{"Name": fmt.Sprintf("host-%d", i), "Role": role},
			Platform: "Ubuntu", PlatformVersion: "22.04",
		})
	}
	inv.Instances[6].State = "stopped"
	return inv
}

func newEC2TestServer(t *testing.T) *Server {
	return newTestServer(t, func(c *Config) {
		c.EC2 = testInventory()
		for _, in := range c.EC2.Instances {
			c.Instances[in.ID] = c.Instances[testInstance]
		}
	})
}

func ec2Client(t *testing.T, s *Server, secret string) *ec2.Client {
	t.Helper()
	return ec2.New(ec2.Options{
		Region:       testCreds.Region,
		BaseEndpoint: aws.String(s.URL()),
		HTTPClient:   httpClient(t, s),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: testCreds.AccessKey, SecretAccessKey: secret}, nil
		}),
	})
}

func TestDescribeInstancesPages(t *testing.T) {
	s := newEC2TestServer(t)
	c := ec2Client(t, s, testCreds.Secret)
	tests := []struct {
		filters []ec2types.Filter
		want    []string
	}{
		{nil, []string{"i-00000000000000a0", "i-00000000000000a1", "i-00000000000000a2", "i-00000000000000a3", "i-00000000000000a4", "i-00000000000000a5", "i-00000000000000a6"}},
		{[]ec2types.Filter{{Name: aws.String("tag:Role"), Values: []string{"bastion"}}}, []string{"i-00000000000000a0", "i-00000000000000a1", "i-00000000000000a2"}},
		{[]ec2types.Filter{{Name: aws.String("tag:Name"), Values: []string{"host-4", "host-5"}}}, []string{"i-00000000000000a4", "i-00000000000000a5"}},
		{[]ec2types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"stopped"}}}, []string{"i-00000000000000a6"}},
		{[]ec2types.Filter{{Name: aws.String("tag:Role"), Values: []string{"web"}}, {Name: aws.String("instance-id"), Values: []string{"i-00000000000000a0", "i-00000000000000a3"}}}, []string{"i-00000000000000a3"}},
		{[]ec2types.Filter{{Name: aws.String("tag:Owner"), Values: []string{"x"}}}, nil},
	}
	for _, tt := range tests {
		var got []string
		pages := 0
		p := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{Filters: tt.filters, MaxResults: aws.Int32(5)})
		for p.HasMorePages() {
			out, err := p.NextPage(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, r := range out.Reservations {
				for _, i := range r.Instances {
					got = append(got, aws.ToString(i.InstanceId))
				}
			}
		}
		if !slices.Equal(got, tt.want) || pages != max(1, (len(tt.want)+4)/5) {
			t.Errorf("filters %v: got %v in %d pages, want %v", tt.filters, got, pages, tt.want)
		}
	}
}

func TestDescribeInstancesFields(t *testing.T) {
	s := newEC2TestServer(t)
	out, err := ec2Client(t, s, testCreds.Secret).DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{"i-00000000000000a6"}})
	if err != nil {
		t.Fatal(err)
	}
	i := out.Reservations[0].Instances[0]
	if i.State.Name != ec2types.InstanceStateNameStopped || aws.ToInt32(i.State.Code) != 80 || aws.ToString(i.VpcId) != "vpc-1" ||
		aws.ToString(i.SubnetId) != "subnet-1" || aws.ToString(i.Placement.AvailabilityZone) != "us-east-1a" ||
		aws.ToString(i.PrivateIpAddress) != "10.77.0.16" || len(i.Tags) != 2 || aws.ToString(i.Tags[0].Key) != "Name" || aws.ToString(i.Tags[0].Value) != "host-6" {
		t.Errorf("instance %+v", i)
	}
}

// apiErr returns err's service error code and HTTP status.
func apiErr(err error) (string, int) {
	var ae smithy.APIError
	var re *awshttp.ResponseError
	if !errors.As(err, &ae) || !errors.As(err, &re) {
		return "", 0
	}
	return ae.ErrorCode(), re.HTTPStatusCode()
}

func TestEC2Errors(t *testing.T) {
	s := newEC2TestServer(t)
	c := ec2Client(t, s, testCreds.Secret)
	ctx := context.Background()
	tests := []struct {
		name   string
		call   func() error
		code   string
		status int
	}{
		{"unknown filter", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String("colour"), Values: []string{"red"}}}})
			return err
		}, "InvalidParameterValue", 400},
		{"unknown instance", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
			return err
		}, "InvalidInstanceID.NotFound", 400},
		{"max results too small", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(2)})
			return err
		}, "InvalidParameterValue", 400},
		{"unknown vpc", func() error {
			_, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{"vpc-2"}})
			return err
		}, "InvalidVpcID.NotFound", 400},
		{"wrong secret", func() error {
			_, err := ec2Client(t, s, "wrong").DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
			return err
		}, "SignatureDoesNotMatch", 403},
		{"unknown action", func() error {
			_, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{})
			return err
		}, "InvalidAction", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, status := apiErr(tt.call()); code != tt.code || status != tt.status {
				t.Errorf("got %s (%d), want %s (%d)", code, status, tt.code, tt.status)
			}
		})
	}
}

func TestDescribeVpcsAndRouteTables(t *testing.T) {
	s := newEC2TestServer(t)
	c := ec2Client(t, s, testCreds.Secret)
	ctx := context.Background()
	vpcs, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{"vpc-1"}})
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, a := range vpcs.Vpcs[0].CidrBlockAssociationSet {
		if a.CidrBlockState.State == ec2types.VpcCidrBlockStateCodeAssociated {
			blocks = append(blocks, aws.ToString(a.CidrBlock))
		}
	}
	if !slices.Equal(blocks, []string{"10.77.0.0/16", "10.78.0.0/16"}) || aws.ToString(vpcs.Vpcs[0].CidrBlock) != "10.77.0.0/16" {
		t.Errorf("vpc %+v: blocks %v", vpcs.Vpcs[0], blocks)
	}
	tables := func(filters ...string) []string {
		var fs []ec2types.Filter
		for f := range slices.Chunk(filters, 2) {
			fs = append(fs, ec2types.Filter{Name: aws.String(f[0]), Values: []string{f[1]}})
		}
		out, err := c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: fs})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, rt := range out.RouteTables {
			ids = append(ids, aws.ToString(rt.RouteTableId))
		}
		return ids
	}
	if got := tables("association.subnet-id", "subnet-1"); !slices.Equal(got, []string{"rtb-1"}) {
		t.Errorf("subnet-1's table: %v", got)
	}
	if got := tables("vpc-id", "vpc-1", "association.main", "true"); !slices.Equal(got, []string{"rtb-main"}) {
		t.Errorf("vpc-1's main table: %v", got)
	}
	out, err := c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: []string{"rtb-1"}})
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, r := range out.RouteTables[0].Routes {
		routes = append(routes, fmt.Sprintf("%s>%s%s%s/%s", aws.ToString(r.DestinationCidrBlock), aws.ToString(r.GatewayId),
			aws.ToString(r.VpcPeeringConnectionId), aws.ToString(r.TransitGatewayId), r.State))
	}
	want := []string{"10.77.0.0/16>local/active", "10.90.0.0/16>pcx-1/active", "10.100.0.0/16>tgw-1/active", "10.101.0.0/16>tgw-1/blackhole", "0.0.0.0/0>igw-1/active"}
	if !slices.Equal(routes, want) {
		t.Errorf("routes %v, want %v", routes, want)
	}
}

func TestDeny(t *testing.T) {
	s := newEC2TestServer(t)
	c := ec2Client(t, s, testCreds.Secret)
	sc := ssmClient(t, s)
	ctx := context.Background()
	post(t, s, "deny?action=ec2:DescribeVpcs&action=ssm:DescribeInstanceInformation")
	_, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	if code, status := apiErr(err); code != "UnauthorizedOperation" || status != 403 || !strings.Contains(err.Error(), "ec2:DescribeVpcs") {
		t.Errorf("DescribeVpcs denied: %v", err)
	}
	if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
		t.Errorf("DescribeInstances, not denied: %v", err)
	}
	_, err = sc.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
	if code, _ := apiErr(err); code != "AccessDeniedException" {
		t.Errorf("DescribeInstanceInformation denied: %v", err)
	}
	post(t, s, "deny")
	if _, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}); err != nil {
		t.Errorf("DescribeVpcs allowed again: %v", err)
	}
}

func TestDescribeInstanceInformationPages(t *testing.T) {
	s := newEC2TestServer(t)
	c := ssmClient(t, s)
	tests := []struct {
		filters []ssmtypes.InstanceInformationStringFilter
		want    int
		online  int
	}{
		{nil, 9, 8}, // seven, testInstance and offlineTarget
		{[]ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: []string{"i-00000000000000a1", offlineTarget}}}, 2, 1},
		{[]ssmtypes.InstanceInformationStringFilter{{Key: aws.String("PingStatus"), Values: []string{"ConnectionLost"}}}, 1, 0},
	}
	for _, tt := range tests {
		var got []ssmtypes.InstanceInformation
		p := ssm.NewDescribeInstanceInformationPaginator(c, &ssm.DescribeInstanceInformationInput{Filters: tt.filters, MaxResults: aws.Int32(5)})
		for p.HasMorePages() {
			out, err := p.NextPage(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, out.InstanceInformationList...)
		}
		online := 0
		for _, i := range got {
			if i.PingStatus == ssmtypes.PingStatusOnline {
				online++
			}
		}
		if len(got) != tt.want || online != tt.online {
			t.Errorf("filters %v: %d instances, %d online; want %d, %d", tt.filters, len(got), online, tt.want, tt.online)
		}
		for _, i := range got {
			if id := aws.ToString(i.InstanceId); strings.HasPrefix(id, "i-00000000000000a") &&
				(aws.ToString(i.PlatformName) != "Ubuntu" || aws.ToString(i.PlatformVersion) != "22.04" || aws.ToString(i.IPAddress) == "") {
				t.Errorf("%s: platform %q %q, address %q", id, aws.ToString(i.PlatformName), aws.ToString(i.PlatformVersion), aws.ToString(i.IPAddress))
			}
		}
	}
	_, err := c.DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{MaxResults: aws.Int32(60)})
	if code, _ := apiErr(err); code != "ValidationException" {
		t.Errorf("MaxResults 60: %v", err)
	}
}

// TestEC2QueryRaw checks the wire form the SDK hides: an unsigned call
// gets EC2's error XML, a JSON call still reaches the JSON services.
func TestEC2QueryRaw(t *testing.T) {
	s := newEC2TestServer(t)
	hc := httpClient(t, s)
	resp, err := hc.Post(s.URL()+"/", "application/x-www-form-urlencoded", strings.NewReader(url.Values{"Action": {"DescribeVpcs"}, "Version": {"2016-11-15"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(string(body), "<?xml") ||
		!strings.Contains(string(body), "<Response><Errors><Error><Code>MissingAuthenticationToken</Code>") || !strings.Contains(string(body), "<RequestID>") {
		t.Errorf("unsigned: %s %s", resp.Status, body)
	}
}
