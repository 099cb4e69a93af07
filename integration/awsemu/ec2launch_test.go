package awsemu

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// launchServer is an emulator with a private subnet, the lab-ssm profile,
// room for two instances, and a clock the test moves; it records the
// OnLaunch and OnTerminate calls.
type launchServer struct {
	*Server
	mu                 sync.Mutex
	now                time.Time
	launched, finished []string
}

func newLaunchServer(t *testing.T) *launchServer {
	ls := &launchServer{now: time.Now()}
	ls.Server = newTestServer(t, func(c *Config) {
		c.EC2 = testInventory()
		c.EC2.Subnets = []EC2Subnet{{ID: "subnet-1", VPC: "vpc-1", CIDR: "10.77.0.0/28", AZ: "us-east-1a"}}
		c.EC2.InstanceProfiles = []string{"lab-ssm"}
		c.EC2.InstanceLimit = 8 // the inventory's 6 running and room for 2
		c.BootDelay, c.ShutdownDelay = 20*time.Second, 10*time.Second
		c.LaunchAs = testInstance + "=" + c.Instances[testInstance]
		c.OnLaunch = func(in EC2Instance) { ls.mu.Lock(); ls.launched = append(ls.launched, in.ID); ls.mu.Unlock() }
		c.OnTerminate = func(id string) { ls.mu.Lock(); ls.finished = append(ls.finished, id); ls.mu.Unlock() }
	})
	ls.Server.mu.Lock()
	ls.Server.clock = func() time.Time { ls.mu.Lock(); defer ls.mu.Unlock(); return ls.now }
	ls.Server.mu.Unlock()
	return ls
}

func (ls *launchServer) advance(d time.Duration) {
	ls.mu.Lock()
	ls.now = ls.now.Add(d)
	ls.mu.Unlock()
}

// runInput is the RunInstances call of an ephemeral bastion.
func runInput(image, subnet, profile string) *ec2.RunInstancesInput {
	return &ec2.RunInstancesInput{
		ImageId: aws.String(image), InstanceType: ec2types.InstanceTypeT4gNano, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String(profile)},
		MetadataOptions:    &ec2types.InstanceMetadataOptionsRequest{HttpTokens: ec2types.HttpTokensStateRequired},
		NetworkInterfaces: []ec2types.InstanceNetworkInterfaceSpecification{{
			DeviceIndex: aws.Int32(0), SubnetId: aws.String(subnet), AssociatePublicIpAddress: aws.Bool(false)}},
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{
			{Key: aws.String("vpcvpn:owner"), Value: aws.String(userARN)}, {Key: aws.String("vpcvpn:tool"), Value: aws.String("vpcvpn")}}}},
	}
}

func stsClient(t *testing.T, s *Server) *sts.Client {
	return sts.New(sts.Options{
		Region: testCreds.Region, BaseEndpoint: aws.String(s.URL()), HTTPClient: httpClient(t, s),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: testCreds.AccessKey, SecretAccessKey: testCreds.Secret}, nil
		}),
	})
}

func instanceState(t *testing.T, c *ec2.Client, id string) (ec2types.Instance, string) {
	t.Helper()
	out, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatalf("describe %s: %d reservations", id, len(out.Reservations))
	}
	in := out.Reservations[0].Instances[0]
	return in, string(in.State.Name)
}

// TestEphemeralLaunchLifecycle walks the calls `--ephemeral` makes: who
// am I, the current image, launch, wait for running, find by tag,
// terminate, and the states the instance goes through.
func TestEphemeralLaunchLifecycle(t *testing.T) {
	s := newLaunchServer(t)
	ctx := context.Background()
	c := ec2Client(t, s.Server, testCreds.Secret)
	id, err := stsClient(t, s.Server).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Arn) != userARN || aws.ToString(id.Account) != accountID {
		t.Fatalf("GetCallerIdentity: %v, %v", err, id)
	}
	p, err := ssmClient(t, s.Server).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(AL2023ARM64Param)})
	if err != nil || aws.ToString(p.Parameter.Value) != AL2023ARM64Image {
		t.Fatalf("GetParameter: %v, %v", err, p)
	}
	run, err := c.RunInstances(ctx, runInput(aws.ToString(p.Parameter.Value), "subnet-1", "lab-ssm"))
	if err != nil {
		t.Fatal(err)
	}
	in := run.Instances[0]
	iid := aws.ToString(in.InstanceId)
	if in.State.Name != ec2types.InstanceStateNamePending || aws.ToString(in.PrivateIpAddress) != "10.77.0.4" || in.PublicIpAddress != nil ||
		in.MetadataOptions.HttpTokens != ec2types.HttpTokensStateRequired || aws.ToString(in.IamInstanceProfile.Arn) != "arn:aws:iam::123456789012:instance-profile/lab-ssm" ||
		in.InstanceType != ec2types.InstanceTypeT4gNano || aws.ToString(in.VpcId) != "vpc-1" || in.LaunchTime == nil {
		t.Fatalf("launched %+v", in)
	}
	steps := []struct {
		advance   time.Duration
		terminate bool
		want      string
	}{
		{0, false, "pending"},
		{19 * time.Second, false, "pending"},
		{time.Second, false, "running"},
		{time.Minute, false, "running"},
		{0, true, "shutting-down"},
		{9 * time.Second, false, "shutting-down"},
		{time.Second, false, "terminated"},
	}
	for i, st := range steps {
		s.advance(st.advance)
		if st.terminate {
			out, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{iid}})
			if err != nil {
				t.Fatal(err)
			}
			if ch := out.TerminatingInstances[0]; ch.PreviousState.Name != "running" || ch.CurrentState.Name != "shutting-down" {
				t.Fatalf("terminate: %s -> %s", ch.PreviousState.Name, ch.CurrentState.Name)
			}
		}
		if _, got := instanceState(t, c, iid); got != st.want {
			t.Fatalf("step %d: state %s, want %s", i, got, st.want)
		}
		if got, want := pingStatus(t, ssmClient(t, s.Server), iid), map[string]string{"running": "Online"}[st.want]; got != want {
			t.Fatalf("step %d (%s): SSM ping %q, want %q", i, st.want, got, want)
		}
	}
	// Terminating again changes nothing and tells no one.
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{iid}}); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Equal(s.launched, []string{iid}) || !slices.Equal(s.finished, []string{iid}) {
		t.Errorf("hooks: launched %v, terminated %v; want [%s] each", s.launched, s.finished, iid)
	}
}

func TestEphemeralTagsAndClientToken(t *testing.T) {
	s := newLaunchServer(t)
	ctx := context.Background()
	c := ec2Client(t, s.Server, testCreds.Secret)
	in := runInput(AL2023ARM64Image, "subnet-1", "lab-ssm")
	in.ClientToken = aws.String("token-1")
	first, err := c.RunInstances(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.RunInstances(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	iid := aws.ToString(first.Instances[0].InstanceId)
	if got := aws.ToString(again.Instances[0].InstanceId); got != iid {
		t.Fatalf("retry with the same ClientToken launched %s, want %s again", got, iid)
	}
	if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{iid},
		Tags: []ec2types.Tag{{Key: aws.String("vpcvpn:expiry"), Value: aws.String("2026-12-06T12:00:00Z")}}}); err != nil {
		t.Fatal(err)
	}
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:vpcvpn:owner"), Values: []string{userARN}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Reservations) != 1 {
		t.Fatalf("owner's instances: %d reservations, want 1", len(out.Reservations))
	}
	tags := map[string]string{}
	for _, tg := range out.Reservations[0].Instances[0].Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if tags["vpcvpn:tool"] != "vpcvpn" || tags["vpcvpn:expiry"] != "2026-12-06T12:00:00Z" {
		t.Errorf("tags %v", tags)
	}
}

func TestEphemeralLaunchRefusals(t *testing.T) {
	tests := []struct {
		name   string
		deny   string
		before int // instances launched first
		in     func(*ec2.RunInstancesInput)
		code   string
		status int
	}{
		{"unknown subnet", "", 0, func(in *ec2.RunInstancesInput) { in.NetworkInterfaces[0].SubnetId = aws.String("subnet-9") }, "InvalidSubnetID.NotFound", 400},
		{"pass role denied", "iam:PassRole", 0, nil, "UnauthorizedOperation", 403},
		{"run denied", "ec2:RunInstances", 0, nil, "UnauthorizedOperation", 403},
		{"instance limit", "", 2, nil, "InstanceLimitExceeded", 400},
		{"unknown profile", "", 0, func(in *ec2.RunInstancesInput) { in.IamInstanceProfile.Name = aws.String("nobody") }, "InvalidParameterValue", 400},
		{"x86 type for arm64 image", "", 0, func(in *ec2.RunInstancesInput) { in.InstanceType = ec2types.InstanceTypeT3Micro }, "InvalidParameterValue", 400},
		{"unknown image", "", 0, func(in *ec2.RunInstancesInput) { in.ImageId = aws.String("ami-0000") }, "InvalidAMIID.NotFound", 400},
		{"two subnets", "", 0, func(in *ec2.RunInstancesInput) { in.SubnetId = aws.String("subnet-1") }, "InvalidParameterCombination", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newLaunchServer(t)
			ctx := context.Background()
			c := ec2Client(t, s.Server, testCreds.Secret)
			for range tt.before {
				if _, err := c.RunInstances(ctx, runInput(AL2023ARM64Image, "subnet-1", "lab-ssm")); err != nil {
					t.Fatal(err)
				}
			}
			if tt.deny != "" {
				post(t, s.Server, "deny?action="+tt.deny)
			}
			in := runInput(AL2023ARM64Image, "subnet-1", "lab-ssm")
			if tt.in != nil {
				tt.in(in)
			}
			_, err := c.RunInstances(ctx, in)
			if code, status := apiErr(err); code != tt.code || status != tt.status {
				t.Errorf("got %s (%d) %v, want %s (%d)", code, status, err, tt.code, tt.status)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if len(s.launched) != tt.before {
				t.Errorf("%d launched, want %d", len(s.launched), tt.before)
			}
		})
	}
}

func TestGetParameterNotFound(t *testing.T) {
	s := newTestServer(t)
	_, err := ssmClient(t, s).GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String("/aws/service/nothing")})
	if code, status := apiErr(err); code != "ParameterNotFound" || status != 400 {
		t.Errorf("got %s (%d), want ParameterNotFound (400)", code, status)
	}
}

func TestDescribeSubnets(t *testing.T) {
	s := newLaunchServer(t)
	c := ec2Client(t, s.Server, testCreds.Secret)
	ctx := context.Background()
	out, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{"vpc-1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Subnets) != 1 || aws.ToString(out.Subnets[0].SubnetId) != "subnet-1" || aws.ToString(out.Subnets[0].CidrBlock) != "10.77.0.0/28" ||
		aws.ToString(out.Subnets[0].VpcId) != "vpc-1" {
		t.Errorf("subnets of vpc-1: %+v", out.Subnets)
	}
	out, err = c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{"vpc-2"}}}})
	if err != nil || len(out.Subnets) != 0 {
		t.Errorf("subnets of vpc-2: %v, %v", out, err)
	}
	_, err = c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-9"}})
	if code, status := apiErr(err); code != "InvalidSubnetID.NotFound" || status != 400 {
		t.Errorf("unknown subnet: %s (%d)", code, status)
	}
}

// TestLaunchSecurityGroups: RunInstances puts the network interface's
// groups on the instance, the VPC's default group when it names none, and
// refuses a malformed one.
func TestLaunchSecurityGroups(t *testing.T) {
	s := newLaunchServer(t)
	ctx := context.Background()
	c := ec2Client(t, s.Server, testCreds.Secret)
	groups := func(in ec2types.Instance) (ids, names []string) {
		for _, g := range in.SecurityGroups {
			ids, names = append(ids, aws.ToString(g.GroupId)), append(names, aws.ToString(g.GroupName))
		}
		return ids, names
	}
	in := runInput(AL2023ARM64Image, "subnet-1", "lab-ssm")
	in.NetworkInterfaces[0].Groups = []string{"sg-0eice", "sg-0ssh"}
	run, err := c.RunInstances(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := instanceState(t, c, aws.ToString(run.Instances[0].InstanceId))
	if ids, _ := groups(got); !slices.Equal(ids, []string{"sg-0eice", "sg-0ssh"}) {
		t.Errorf("groups %v, want the launch's", ids)
	}
	run, err = c.RunInstances(ctx, runInput(AL2023ARM64Image, "subnet-1", "lab-ssm"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ = instanceState(t, c, aws.ToString(run.Instances[0].InstanceId))
	if ids, names := groups(got); len(ids) != 1 || !strings.HasPrefix(ids[0], "sg-") || names[0] != "default" {
		t.Errorf("groups %v %v, want the VPC's default group", ids, names)
	}
	in.NetworkInterfaces[0].Groups = []string{"default"}
	if _, err := c.RunInstances(ctx, in); !strings.Contains(fmt.Sprint(err), "InvalidGroupId.Malformed") {
		t.Errorf("group \"default\": %v, want InvalidGroupId.Malformed", err)
	}
}

// TestLaunchConsistency: with admin consistency, a new instance is
// unknown to DescribeInstances and TerminateInstances by its id for the
// first calls=N of them, or for=D after its launch, and missing from
// filtered listings meanwhile; instances launched before are not affected.
func TestLaunchConsistency(t *testing.T) {
	s := newLaunchServer(t)
	ctx := context.Background()
	c := ec2Client(t, s.Server, testCreds.Secret)
	launch := func() string {
		run, err := c.RunInstances(ctx, runInput(AL2023ARM64Image, "subnet-1", "lab-ssm"))
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(run.Instances[0].InstanceId)
	}
	notFound := func(err error) bool { return strings.Contains(fmt.Sprint(err), "InvalidInstanceID.NotFound") }
	before := launch()
	post(t, s.Server, "consistency?calls=2")
	id := launch()
	if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}); !notFound(err) {
		t.Errorf("first describe: %v, want NotFound", err)
	}
	list, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, r := range list.Reservations {
		listed = append(listed, aws.ToString(r.Instances[0].InstanceId))
	}
	if slices.Contains(listed, id) || !slices.Contains(listed, before) {
		t.Errorf("listing %v: want %s and not %s", listed, before, id)
	}
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); !notFound(err) {
		t.Errorf("terminate: %v, want NotFound", err)
	}
	if _, st := instanceState(t, c, id); st != "pending" {
		t.Errorf("third call: %s, want pending", st)
	}
	if _, st := instanceState(t, c, before); st != "pending" {
		t.Errorf("the instance launched before: %s", st)
	}

	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{before, id}}); err != nil {
		t.Fatal(err) // room for the next
	}
	post(t, s.Server, "consistency?calls=0&for=5s")
	id = launch()
	for range 3 {
		if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}); !notFound(err) {
			t.Errorf("describe within 5s: %v, want NotFound", err)
		}
	}
	s.advance(5 * time.Second)
	if _, st := instanceState(t, c, id); st != "pending" {
		t.Errorf("after 5s: %s, want pending", st)
	}
}
